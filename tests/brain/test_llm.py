from __future__ import annotations

import asyncio

import pytest

from switchboard.brain.llm import LLMClient, LLMError, LLMTimeout, StreamEnd, TextDelta, Usage
from switchboard.settings import Settings
from switchboard.speech.base import ProviderFailure

from .fake_llm import Reply, auth_error, quota_error, rate_limit_error, server_error

MSGS = [{"role": "user", "content": "hello"}]


async def test_chat_roles_usage_and_auth_header(fake, make_llm):
    llm = make_llm()
    usage = Usage()
    fake.push(Reply(content="hi there"), Reply(content="cheap answer"))
    r1 = await llm.chat(MSGS, usage=usage)
    r2 = await llm.chat(MSGS, role="cheap", usage=usage)
    assert (r1.content, r1.model) == ("hi there", "crit-model")
    assert (r2.content, r2.model) == ("cheap answer", "cheap-model")
    assert [q["model"] for q in fake.requests] == ["crit-model", "cheap-model"]
    assert usage.requests == 2 and usage.prompt_tokens > 0 and usage.completion_tokens == 4
    assert set(usage.by_model) == {"crit-model", "cheap-model"}


async def test_identical_requests_are_cached_until_ttl(fake, make_llm):
    llm = make_llm(cache_ttl=60.0)
    usage = Usage()
    fake.push(Reply(content="one"), Reply(content="two"))
    a = await llm.chat(MSGS, usage=usage)
    b = await llm.chat(MSGS, usage=usage)
    assert (a.content, b.content, b.cached) == ("one", "one", True)
    assert len(fake.requests) == 1 and usage.cache_hits == 1
    c = await llm.chat(MSGS + [{"role": "user", "content": "more"}], usage=usage)
    assert c.content == "two" and len(fake.requests) == 2
    nocache = make_llm(cache_ttl=0)
    fake.push(Reply(content="x"), Reply(content="y"))
    assert [(await nocache.chat(MSGS)).content for _ in range(2)] == ["x", "y"]


async def test_tool_calls_non_streaming(fake, make_llm):
    llm = make_llm()
    fake.push(Reply(tool_calls=[("create_ticket", {"subject": "broken"})]))
    tools = [{"type": "function", "function": {"name": "create_ticket", "parameters": {"type": "object"}}}]
    r = await llm.chat(MSGS, tools=tools)
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls[0].name == "create_ticket"
    assert r.tool_calls[0].parsed_arguments() == {"subject": "broken"}
    assert fake.requests[0]["tools"] == tools


async def test_streaming_text_tool_deltas_and_usage(fake, make_llm):
    llm = make_llm()
    usage = Usage()
    fake.push(Reply(content="Hello there. How are you?", tool_calls=[("handoff", {"persona": "sales"})]))
    pieces, end = [], None
    async for ev in llm.stream(MSGS, usage=usage):
        if isinstance(ev, TextDelta):
            pieces.append(ev.text)
        else:
            assert isinstance(ev, StreamEnd)
            end = ev.result
    assert len(pieces) == 5 and "".join(pieces) == "Hello there. How are you?"
    assert end is not None and end.content == "Hello there. How are you?"
    assert [(t.name, t.parsed_arguments()) for t in end.tool_calls] == [("handoff", {"persona": "sales"})]
    assert end.tool_calls[0].id.startswith("call_")
    assert end.prompt_tokens > 0 and usage.completion_tokens == end.completion_tokens > 0
    assert fake.requests[0]["stream"] is True
    assert fake.requests[0]["stream_options"] == {"include_usage": True}


async def test_quota_error_is_a_provider_failure_without_retry(fake, make_llm):
    seen: list[ProviderFailure] = []
    llm = make_llm(on_provider_failure=seen.append)
    usage = Usage()
    fake.push(quota_error(), Reply(content="never reached"))
    with pytest.raises(ProviderFailure) as info:
        await llm.chat(MSGS, usage=usage)
    assert "quota" in info.value.reason and not info.value.retryable
    assert len(fake.requests) == 1 and seen == [info.value] and usage.errors == 1


async def test_auth_error_is_a_provider_failure(fake, make_llm):
    llm = make_llm(api_key="wrong-key")
    with pytest.raises(ProviderFailure) as info:
        await llm.chat(MSGS)
    assert info.value.reason.startswith("auth (401)")
    fake.push(auth_error())
    with pytest.raises(ProviderFailure):
        await make_llm().chat([{"role": "user", "content": "again"}])


async def test_rate_limit_and_5xx_are_retried_with_backoff(fake, make_llm):
    llm = make_llm(max_retries=2)
    fake.push(rate_limit_error(), server_error(), Reply(content="finally"))
    r = await llm.chat(MSGS)
    assert r.content == "finally" and len(fake.requests) == 3


async def test_outage_after_retries_is_retryable_provider_failure(fake, make_llm):
    llm = make_llm(max_retries=1)
    fake.push(server_error(), server_error(), Reply(content="late"))
    with pytest.raises(ProviderFailure) as info:
        await llm.chat(MSGS)
    assert info.value.retryable and "500" in info.value.reason
    assert len(fake.requests) == 2


async def test_connection_refused_is_provider_failure(make_llm):
    llm = make_llm(base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(ProviderFailure) as info:
        await llm.chat(MSGS)
    assert "connection" in info.value.reason


async def test_bad_request_is_llm_error(fake, make_llm):
    fake.push(Reply(status=400, error={"message": "response_format is not supported",
                                       "type": "invalid_request_error", "param": "response_format",
                                       "code": None}))
    with pytest.raises(LLMError) as info:
        await make_llm().chat(MSGS)
    assert "not supported" in str(info.value)


async def test_timeout(fake, make_llm):
    fake.push(Reply(content="slow", delay=1.0))
    with pytest.raises(LLMTimeout):
        await make_llm().chat(MSGS, timeout=0.2)


async def test_stream_stall_times_out(fake, make_llm):
    fake.push(Reply(content="a b c d", chunk_delay=1.0))
    got = []
    with pytest.raises(LLMTimeout):
        async for ev in make_llm().stream(MSGS, timeout=0.3):
            got.append(ev)


async def test_parallel_limit(fake, make_llm):
    llm = make_llm(max_parallel=2, cache_ttl=0)
    for i in range(6):
        fake.push(Reply(content=str(i), delay=0.2))
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(llm.chat([{"role": "user", "content": str(i)}]) for i in range(6)))
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed >= 0.55  # 6 requests, 2 at a time, 0.2 s each


def test_from_settings_prefers_llm_then_gapgpt():
    assert LLMClient.from_settings(Settings(_env_file=None)) is None
    g = LLMClient.from_settings(Settings(_env_file=None, gapgpt_base_url="http://g/v1", gapgpt_api_key="k"))
    assert g is not None and g.provider == "gapgpt" and g.base_url == "http://g/v1"
    s = Settings(_env_file=None, llm_base_url="http://l/v1", gapgpt_base_url="http://g/v1",
                 llm_model_cheap="small", max_parallel_llm=3)
    c = LLMClient.from_settings(s)
    assert c is not None and c.provider == "llm" and c.model_for("cheap") == "small" and c.max_parallel == 3


async def test_non_json_success_body_is_llm_error(fake, make_llm):
    from fastapi.responses import PlainTextResponse

    route_app = fake.app

    @route_app.post("/v2/chat/completions")
    async def broken():  # a proxy answering HTML with 200
        return PlainTextResponse("<html>gateway</html>")

    llm = make_llm(base_url=fake.base_url.replace("/v1", "/v2"))
    with pytest.raises(LLMError):
        await llm.chat(MSGS)


async def test_broken_stream_is_llm_error(fake, make_llm):
    good = ('data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", '
            '"choices": [{"index": 0, "delta": {"content": "Hello. "}, "finish_reason": null}]}\n\n')
    fake.push(Reply(raw_stream=[good, "data: {not json\n\n"]))
    got = []
    with pytest.raises(LLMError, match="stream broke"):
        async for ev in make_llm().stream(MSGS):
            got.append(ev)
    assert got == [TextDelta("Hello. ")]
