"""STT, LLM and TTS failing or hanging during calls over the ARI double: the real providers (OpenAI
STT/TTS clients, the OpenAI-compatible LLM client) talk to wire-format doubles that answer 500s or
answer too late. A call never ends in `failed:internal_error` and never hangs: a failing STT is a
failed capture (the flow's on_failure path) counted as a provider failure; a failing TTS falls back to
eSpeak NG and the prompt is still spoken; a failing or slow LLM falls back to the keyword classifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from switchboard.app import build_engine
from switchboard.engine import results
from switchboard.flows.validate import parse_scenario_file
from switchboard.speech.service import SpeechService
from switchboard.telephony.asterisk.backend import AsteriskBackend
from tests.asterisk.double import assert_no_leaks
from tests.brain.fake_llm import FakeLLM, server_error
from tests.brain.fake_llm import Reply as LlmReply
from tests.hardening.pbx import HERE, OPERATORS, node_settings, start_double
from tests.speech.fakes.openai import API_KEY, FakeOpenAI
from tests.speech.fakes.server import serve

CUSTOMER = "09120000001"


class Faulty:
    """ASGI layer before the provider double: requests to `path` get a 500 (`error`) or an answer
    after `delay` seconds (a provider that answers too late)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.path = ""
        self.error = False
        self.delay = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.path and scope["path"].endswith(self.path):
            if self.error:
                body = b'{"error": {"message": "scripted outage", "type": "server_error"}}'
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
            await asyncio.sleep(self.delay)
        await self.app(scope, receive, send)


@asynccontextmanager
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Any, ...]]:
    fake = FakeOpenAI(transcript="yes I am interested")
    slow = Faulty(fake.app())
    ari, _faults, _ = await start_double(tmp_path)
    try:
        with FakeLLM(api_key="llm-key") as llm:
            async with serve(slow) as speech_url:
                yield fake, slow, llm, ari, speech_url
    finally:
        await ari.stop()


@pytest.mark.parametrize("fault", ["stt_error", "stt_timeout", "tts_error", "tts_timeout", "llm_error",
                                   "llm_timeout"])
async def test_a_failing_or_hanging_provider_never_breaks_a_call(tmp_path: Path, fault: str) -> None:
    async with rig(tmp_path) as (fake, slow, llm, ari, speech_url):
        settings = node_settings(tmp_path, ari, stt_provider="openai", tts_provider="openai",
                                 openai_base_url=f"{speech_url}/v1", openai_api_key=API_KEY, stt_timeout=1.0,
                                 tts_timeout=1.0, speech_http_retries=1, llm_base_url=llm.base_url,
                                 llm_api_key="llm-key", llm_timeout=1.0, intent_timeout=1.0, llm_max_retries=0,
                                 speech_enhance=False, tts_cache_dir=tmp_path / "tts")
        kind = fault.split("_")[0]
        if kind == "llm":
            llm.push(*[server_error() if fault.endswith("error") else LlmReply(delay=3.0, content="yes")
                       for _ in range(20)])
        else:
            slow.path = "/audio/transcriptions" if kind == "stt" else "/audio/speech"
            slow.error = fault.endswith("error")
            slow.delay = 3.0  # past the provider's 1 s timeout
        speech = SpeechService.from_settings(settings)
        engine = build_engine(settings, speech=speech)
        failures: list[tuple[str, str]] = []

        async def failed(provider: str, reason: str) -> None:
            failures.append((provider, reason))

        engine.services.on_provider_failure = failed
        from switchboard.engine.operators import Operator

        engine.services.operators.set_roster(None, "outbound", [Operator(n) for n in OPERATORS])
        scenario = parse_scenario_file(HERE / "data" / "every_step.yaml").scenario
        assert scenario is not None
        backend = AsteriskBackend.from_settings(settings, synthesize=lambda t, lang, v: speech.synthesize(
            t, language=lang, voice=v))
        await backend.start()
        try:
            ari.sim.add_context("talks-all-along", "exten => s,1,Answer()\n" + " same => n,Playback(custom/reply)\n"
                                " same => n,Wait(0.3)\n" * 0 + "".join(" same => n,Playback(custom/reply)\n"
                                                                          " same => n,Wait(0.3)\n" for _ in range(60))
                                + " same => n,Wait(600)\n same => n,Hangup()")
            ari.sim.route(CUSTOMER, "talks-all-along")
            outcome, call = await backend.originate(CUSTOMER, line="02150001000")
            assert call is not None, outcome
            ctx = engine.new_context(call, scenario, {"name": "Sara"})
            await asyncio.wait_for(engine.run(call, scenario, ctx), 120)
        finally:
            await backend.close()
        assert ctx.result and ctx.result != results.failed("internal_error"), (ctx.result, ctx.reason)
        assert "speak" in ctx.steps_visited and "listen" in ctx.steps_visited, (ctx.steps_visited, ctx.result)
        if kind == "stt":
            assert failures and all(p == "openai" for p, _ in failures), failures  # the STT provider
            assert not ctx.transcripts
        else:
            assert ctx.transcripts and "interested" in ctx.transcripts[0]["text"]
        if kind == "llm":
            assert ctx.intent == "yes"  # the keyword classifier decided
        if kind == "tts":
            # the prompt was spoken all the same: eSpeak NG took over
            assert any(e.event == "step" and e.step == "speak" for e in ctx.timeline)
            assert not any(e.event == "error" for e in ctx.timeline), [e for e in ctx.timeline if e.event == "error"]
        await assert_no_leaks(ari)
