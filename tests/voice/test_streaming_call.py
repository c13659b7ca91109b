"""`StreamingCall` under the real conversation runner: an LLM's reply is spoken while it is still
being written — each sentence synthesized while the previous one plays, no gap between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchboard.brain.converse import ConversationService, ListenConfig
from switchboard.brain.llm import LLMClient
from switchboard.brain.personas import PersonaRegistry
from switchboard.speech.base import Transcript
from switchboard.telephony.call import TransferResult
from switchboard.voice.call import StreamingCall
from switchboard.voice.pacing import Pacer
from switchboard.voice.session import VoiceSession
from tests.brain.fake_llm import FakeLLM, Reply
from tests.fakes.voice import FakePort, ScriptedVad, ToneSpeech

ROOT = Path(__file__).resolve().parents[2]


class Signalling:
    hung_up: list[str] = []

    async def answer(self) -> None: ...

    async def hangup(self, cause: str) -> None:
        self.hung_up.append(cause)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float) -> TransferResult:
        return TransferResult(True, operator_number)

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        return True


class Heard:
    async def transcribe(self, audio, *, language=None, hotwords=None):  # type: ignore[no-untyped-def]
        return Transcript("what are your opening hours", language="en")


@pytest.fixture(scope="module")
def llm_server():  # type: ignore[no-untyped-def]
    with FakeLLM(api_key="k") as server:
        yield server


@pytest.mark.timeout(30)
async def test_an_llm_reply_streams_sentence_by_sentence_without_gaps(llm_server) -> None:  # type: ignore[no-untyped-def]
    llm_server.push(Reply(content="0.6s We open at nine. 0.6s We close at nine in the evening. 0.6s Anything else?",
                          chunk_delay=0.05))
    llm = LLMClient(base_url=llm_server.base_url, api_key="k", model_critical="m", model_cheap="m", timeout=5.0,
                    max_retries=0, max_parallel=2, cache_ttl=0.0)
    speech = ToneSpeech(delay=0.15)  # each sentence takes 0.15 s to synthesize
    port = FakePort()
    session = VoiceSession(port, vad=ScriptedVad(), pacer=Pacer(), speech=speech)
    call = StreamingCall(session, Signalling(), call_id="c1", direction="inbound", remote_number="+1",
                         line_number="+2", language="en")
    assert call.capabilities.audio == "stream" and call.capabilities.speaks_text_streams
    port.start_caller([("silence", 1.3), ("speech", 0.5), ("silence", 30)])  # asks after the greeting
    service = ConversationService(PersonaRegistry.load_dir(ROOT / "personas"), llm=llm, transcriber=Heard(),
                                  listen=ListenConfig(max_duration=5, max_silence=5))
    try:
        outcome = await service.run(call, persona="reception", language="en", max_turns=1, max_seconds=20)
    finally:
        await llm.aclose()
        await call.hangup()
    assert outcome.status == "max_turns"
    agent = [t for t in outcome.turns if t.speaker == "agent"]
    assert agent[-1].text.startswith("0.6s We open at nine.") and not agent[-1].interrupted
    reply_asks = [at for text, at in speech.asked if text.startswith("0.6s")]
    assert len(reply_asks) == 3
    times = np.array([s.at for s in port.sent])
    reply = times[times >= reply_asks[0]]
    assert len(reply) == 90  # 3 x 0.6 s, every frame
    assert np.diff(reply).max() < 0.12  # no gap: synthesizing a sentence takes 0.15 s, a jittery tick less
    assert reply_asks[1] < reply[0] + 0.6  # the second was synthesized while the first played
