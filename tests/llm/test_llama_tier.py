"""The brain against a real model server: llama.cpp's llama-server with SmolLM2-135M-Instruct.

SmolLM2-135M has weak judgement, so these tests assert what the protocol guarantees (structured
answers that parse, grammar-constrained JSON, usage, caps, failure handling), not its opinions.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from switchboard.brain import actions
from switchboard.brain.converse import ConversationService
from switchboard.brain.intents import IntentClassifier
from switchboard.brain.llm import LLMClient, LLMError, LLMTimeout, Usage
from switchboard.brain.personas import PersonaRegistry
from switchboard.brain.semantic import SemanticClassifier
from switchboard.brain.tools import ToolRegistry
from switchboard.flows.validate import parse_scenario_file
from switchboard.settings import Settings
from switchboard.speech.base import ProviderFailure
from tests.brain.calls import ScriptedCall

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def llm(llama):
    client = LLMClient(base_url=llama.base_url, model_critical="smollm2", model_cheap="smollm2", timeout=60,
                       max_parallel=8, cache_ttl=0, backoff_base=0.05, backoff_max=0.2)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def salehi():
    parsed = parse_scenario_file(ROOT / "scenarios" / "salehi_language.yaml")
    assert parsed.scenario is not None
    return parsed.scenario.spec.llm


@pytest.fixture(scope="module")
def personas():
    return PersonaRegistry.load_dir(ROOT / "personas")


async def test_probe_finds_a_chat_template_without_tools(llm):
    caps = await llm.capabilities()
    assert caps.tools is False and caps.source.endswith("/props")


async def test_chat_with_a_json_schema_and_usage(llm):
    usage = Usage()
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
              "required": ["city"], "additionalProperties": False}
    result = await llm.chat([{"role": "user", "content": "Name one city in Iran as JSON."}], usage=usage,
                            response_format={"type": "json_schema",
                                             "json_schema": {"name": "c", "strict": True, "schema": schema}},
                            max_tokens=40)
    assert isinstance(json.loads(result.content)["city"], str)  # the grammar made it parse
    assert result.model == "smollm2"
    assert usage.requests == 1 and usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 40


@pytest.mark.parametrize("structured", ["json_schema", "tool"])
async def test_intent_is_one_of_the_categories_on_the_llm_path(llm, salehi, structured):
    """Tool mode on a template without tools is answered through the JSON schema (probe)."""
    clf = IntentClassifier(llm=llm, default_timeout=60, structured=structured)
    usage = Usage()
    for text in ("yes please, tell me more", "نه ممنون علاقه ندارم"):
        d = await clf.classify(text, prompt_template=salehi.prompt_template, categories=salehi.intent_categories,
                               fallback_tokens=salehi.fallback_tokens, examples=salehi.examples, usage=usage)
        assert d.path == "llm" and d.intent in salehi.intent_categories, d
    assert usage.requests == 2 and usage.errors == 0


async def test_eight_concurrent_callers_wait_at_most_the_intent_timeout(llm, salehi):
    """8 calls classify at once on the local server with the default INTENT_TIMEOUT: every caller
    gets one of the categories, none waits much past the timeout (a slow model costs the model's
    answer, never the call's), and warm requests come back from the model."""
    timeout = Settings().intent_timeout
    sem = SemanticClassifier("e5")
    await sem.prepare(salehi.intent_categories, salehi.fallback_tokens, salehi.examples)  # as at start-up
    clf = IntentClassifier(llm=llm, default_timeout=timeout, semantic=sem)
    texts = ["yes", "no thanks", "where did you get my number", "who is this", "بله", "نه", "نعم", "لا"]

    async def burst(tag: str):
        return await asyncio.gather(*(
            clf.classify(f"{t} {tag}", prompt_template=salehi.prompt_template, categories=salehi.intent_categories,
                         fallback_tokens=salehi.fallback_tokens, examples=salehi.examples) for t in texts))

    for decisions in (await burst("1"), await burst("2")):
        for d in decisions:
            assert d.intent in [*salehi.intent_categories, "unknown"], d
            assert d.path in ("llm", "timeout") and d.latency < timeout + 2.0, d
    sem.close()


async def test_a_timed_out_model_falls_back_to_the_offline_classifier(llm, salehi):
    sem = SemanticClassifier("e5")
    usage = Usage()
    d = await IntentClassifier(llm=llm, semantic=sem).classify(
        "بله حتما، بفرمایید", prompt_template=salehi.prompt_template, categories=salehi.intent_categories,
        fallback_tokens=salehi.fallback_tokens, examples=salehi.examples, timeout=0.001, usage=usage)
    assert (d.intent, d.path) == ("yes", "timeout")
    assert usage.errors == 1  # a timeout is counted
    sem.close()


async def test_failure_paths_are_typed_and_counted(llm, llama):
    usage = Usage()
    with pytest.raises(LLMTimeout):
        await llm.chat([{"role": "user", "content": "Write a long story."}], max_tokens=400, timeout=0.05,
                       usage=usage)
    assert usage.errors == 1
    with pytest.raises(LLMError):  # the server rejects the request (400): not retried, counted
        await llm.chat([{"role": "user", "content": "hi"}], response_format={"type": "no-such-format"},
                       usage=usage)
    assert usage.errors == 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = LLMClient(base_url=f"http://127.0.0.1:{closed}/v1", model_critical="m", model_cheap="m",
                     timeout=5, max_retries=1, backoff_base=0.01, backoff_max=0.02)
    with pytest.raises(ProviderFailure) as info:
        await down.chat([{"role": "user", "content": "hi"}], usage=usage)
    assert info.value.retryable and usage.errors == 3
    await down.aclose()


async def test_streamed_reply_is_capped_and_cut_at_a_sentence(llm, personas):
    """An 8-token cap (no reply to this request fits in it): the model is cut off mid-reply, the caller hears only whole sentences
    (or whole words ending in an ellipsis), and the usage of the streamed turn is counted."""
    plain = PersonaRegistry()
    plain.replace(personas.get("sales").model_copy(update={"tools": [], "greeting": {}}))
    svc = ConversationService(plain, llm=llm, company="Acme", max_reply_tokens=8)
    call = ScriptedCall(["Tell me everything about all of your plans, in great detail please."])
    out = await svc.run(call, persona="sales", language="en", max_turns=1)
    assert out.status == "max_turns"
    spoken = [t for t in out.turns if t.speaker == "agent"]
    assert spoken and spoken[0].text
    assert all(t.text.rstrip()[-1] in ".!?…" for t in spoken), [t.text for t in spoken]
    assert any(t.detail.get("kind") == "reply_capped" for t in out.turns)
    assert out.usage.requests == 1 and 0 < out.usage.completion_tokens <= 8


async def test_grammar_constrained_action_protocol_always_parses(llm):
    tools = ToolRegistry().specs(["save_details", "schedule_callback", "end_call"])
    fmt = actions.response_format(tools, say_max_chars=160)  # every string bounded: the JSON closes in budget
    messages = [{"role": "system", "content": "You are a phone agent.\n\n" + actions.instructions(tools)},
                {"role": "user", "content": "Please call me back tomorrow at ten."}]
    extractor = actions.SayExtractor()
    said = ""
    content = ""
    async for event in llm.stream(messages, response_format=fmt, max_tokens=400):
        if hasattr(event, "text"):
            said += extractor.feed(event.text)
        else:
            content = event.result.content or ""
    data = json.loads(content)  # grammar-constrained: always the protocol's JSON
    assert set(data) == {"say", "action"} and isinstance(data["say"], str) and len(data["say"]) <= 160
    assert said == data["say"]  # what streamed out of the JSON is exactly the say field
    if data["action"] is not None:
        assert data["action"]["name"] in {"save_details", "schedule_callback", "end_call"}


async def test_persona_with_tools_switches_to_the_action_protocol_and_says_it(llm, personas):
    svc = ConversationService(personas, llm=llm, company="Acme", max_reply_tokens=48)
    call = ScriptedCall(["Hello, I want to know your prices."])
    out = await svc.run(call, persona="sales", language="en", max_turns=1)
    notes = [t for t in out.turns if t.detail.get("kind") == "tool_protocol"]
    assert len(notes) == 1 and notes[0].detail["source"].endswith("/props")
    replies = [t.text for t in out.turns if t.speaker == "agent" and t.detail.get("kind") != "greeting"]
    assert replies and not any(r.lstrip().startswith("{") for r in replies), replies  # say text, not JSON
