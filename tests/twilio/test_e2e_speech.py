"""The shipped scenarios over Twilio with real speech, end to end: the real dialer, engine, store and
offline speech stack (Silero VAD, Whisper, eSpeak NG / Piper) behind our webhook routes, and the
Twilio double in front playing a caller who really speaks — synthesized by Piper, sent as 20 ms
μ-law frames in real time — and hearing what Switchboard plays back.

As in the ARI flow tests, salehi_language listens in English here (`stt.language: en`): Whisper base
on synthesized Persian is not reliable enough to assert on.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

pytest.importorskip("switchboard.voice.session", reason="needs the voice layer (VoiceSession, StreamingCall)")

from switchboard.app import build_node, build_voice, seed_contacts
from switchboard.settings import Settings
from switchboard.speech import audio as A
from switchboard.speech.service import SpeechService
from switchboard.speech.tts.piper import PiperTTS
from switchboard.telephony.twilio.backend import build_stream_prompts
from switchboard.telephony.twilio.legs import voice_leg_factory
from tests.twilio.double import Callee, DoubleCall, Operator
from tests.twilio.harness import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, PUBLIC, start_harness

pytestmark = [pytest.mark.models, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = "+14155550100"
OPERATOR = "+14155550199"
_VOICE: dict[str, A.Audio] = {}


async def voice(text: str) -> A.Audio:
    """The caller's words as they come down a phone line (8 kHz). Tests render them before the call:
    synthesized while the call runs (Piper's first load takes seconds on a busy machine) the caller
    would answer late, and the scenario's `max_silence` rightly ends the listen empty."""
    if text not in _VOICE:
        speech = await PiperTTS().synthesize(text, language="en")
        _VOICE[text] = A.through_phone_line(speech)
    return _VOICE[text]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechService:
    root = tmp_path_factory.mktemp("speech")
    return SpeechService.from_settings(Settings(_env_file=None, recordings_dir=root / "rec",  # type: ignore[call-arg]
                                                tts_cache_dir=root / "tts"))


class Rig:
    """One scenario on Switchboard's production composition (`build_node`) over the Twilio double."""

    def __init__(self, tmp: Path, speech: SpeechService, scenario: str, *, english: bool = False,
                 machine_detection: str = "") -> None:
        self.machine_detection = machine_detection
        scenarios = tmp / "scenarios"
        scenarios.mkdir()
        text = (ROOT / "scenarios" / f"{scenario}.yaml").read_text()
        if english:
            assert "  stt: {" in text
            text = text.replace("  stt: {", "  stt: {language: en, ", 1)
        (scenarios / f"{scenario}.yaml").write_text(text)
        shutil.copytree(ROOT / "personas", tmp / "personas")
        self.settings = Settings(  # type: ignore[call-arg]
            _env_file=None, telephony_backend="twilio", scenarios_dir=scenarios, personas_dir=tmp / "personas",
            data_dir=tmp / "data", logs_dir=tmp / "logs", recordings_dir=tmp / "rec", tts_cache_dir=tmp / "tts",
            prompts_src_dir=ROOT / "assets" / "audio" / "src", prompts_wav_dir=tmp / "wav",
            twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_numbers=",".join(NUMBERS),
            twilio_public_base_url=PUBLIC, outbound_numbers=NUMBERS[0], inbound_agents=OPERATOR,
            outbound_agents=OPERATOR, calling_hours_start="00:00", calling_hours_end="23:59", max_attempts=1,
            operator_timeout=10, strategies_dir=tmp / "strategies")
        self.speech = speech

    async def __aenter__(self) -> Rig:
        await build_stream_prompts(self.settings)
        self.voice = build_voice(self.settings, self.speech)
        self.h = await start_harness(voice_leg_factory(self.voice), machine_detection=self.machine_detection)
        self.node = await build_node(self.settings, speech=self.speech, backend=self.h.backend, voice=self.voice)
        await self.node.deliverer.start()
        await self.node.dialer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.node.close()
        await self.voice.aclose()
        await self.h.double.close()
        self.h.server.should_exit = True
        await asyncio.wait_for(self.h.serve, 10)

    async def call_out(self, script, callee: Callee | None = None):  # type: ignore[no-untyped-def]
        """Seed one contact, let the dialer call it, return (its stored call row, the double's call)."""
        self.h.double.callees[CUSTOMER] = callee or Callee(script=script)
        if callee is not None:
            callee.script = script
        await seed_contacts(self.node, [(CUSTOMER, "Sara", {})], campaign="twilio e2e")
        # Until the call has its result (a call back it booked would keep `until_idle` waiting for
        # its due time on this wall clock).
        runner = asyncio.ensure_future(self.node.dialer.run(until_idle=True))
        deadline = asyncio.get_running_loop().time() + 200
        while not runner.done():
            rows = (await self.node.store.calls.list(direction="outbound", limit=5)).items
            if rows and all(r.result for r in rows) and not self.node.dialer.active_calls:
                runner.cancel()
                break
            assert asyncio.get_running_loop().time() < deadline, "the call did not end"
            await asyncio.sleep(0.5)
        await asyncio.gather(runner, return_exceptions=True)
        (row,) = (await self.node.store.calls.list(direction="outbound", limit=5)).items
        dcall = next(c for c in self.h.double.calls.values() if c.to == CUSTOMER)
        # Our side has its result; the caller's side (the script) may still be noting how it ended.
        await dcall.wait_ended(60)
        if dcall.script_task is not None:
            await asyncio.wait({dcall.script_task}, timeout=10)
        return row, dcall

    async def call_in(self, script):  # type: ignore[no-untyped-def]
        dcall = await self.h.double.incoming_call(CUSTOMER, NUMBERS[0], self.h.voice_url, script=script)
        await dcall.wait_ended(120)
        for _ in range(200):
            rows = (await self.node.store.calls.list(direction="inbound", limit=5)).items
            if rows and rows[0].result:
                return rows[0], dcall
            await asyncio.sleep(0.1)
        raise AssertionError("no inbound result stored")


def no_errors(dcall: DoubleCall) -> None:
    assert dcall.errors == []
    for stream in dcall.streams:
        assert stream.protocol_errors == []


# --- salehi_language ------------------------------------------------------------------------------------
async def test_salehi_yes_goes_to_an_operator_with_the_customer_s_number(tmp_path, speech) -> None:
    words = await voice("Yes, sure, I am interested.")  # before the call: see voice()
    async with Rig(tmp_path, speech, "salehi_language", english=True) as rig:
        rig.h.double.operators[OPERATOR] = Operator(after=0.5, talk=1.0)

        async def caller(call: DoubleCall) -> None:
            await call.media.wait_agent_spoke()  # the hello prompt
            await call.media.say_and_wait(words)

        row, dcall = await rig.call_out(caller)
        no_errors(dcall)
        assert row.result == "connected_to_operator" and row.operator == OPERATOR
        assert "yes" in (row.user_message or "").lower()
        (dial,) = dcall.dials
        assert dial["number"] == OPERATOR and dial["callerId"] == CUSTOMER and dial["status"] == "completed"
        first = dcall.streams[0]
        assert first.played_seconds() > 8  # hello, yes and the hold prompt were played as audio
        assert len(first.marks_returned) >= 3  # each playback waited for Twilio's mark


async def test_salehi_no_hears_goodbye_and_is_not_interested(tmp_path, speech) -> None:
    words = await voice("No, I am not interested, thanks.")  # before the call: see voice()
    async with Rig(tmp_path, speech, "salehi_language", english=True) as rig:
        heard_after_answer: list[float] = []

        async def caller(call: DoubleCall) -> None:
            await call.media.wait_agent_spoke()
            await call.media.say_and_wait(words)
            before = call.media.agent_audio_seconds()
            await call.ended.wait()
            heard_after_answer.append(call.media.agent_audio_seconds() - before)

        row, dcall = await rig.call_out(caller)
        no_errors(dcall)
        assert row.result == "not_interested"
        assert heard_after_answer and heard_after_answer[0] > 1.5  # the goodbye prompt, then our hang-up
        assert dcall.status == "completed" and not dcall.dials


async def test_caller_hangs_up_during_the_greeting(tmp_path, speech) -> None:
    async with Rig(tmp_path, speech, "salehi_language", english=True) as rig:
        async def caller(call: DoubleCall) -> None:
            await call.media.wait_agent_audio()
            await asyncio.sleep(1.0)
            await call.hangup()

        row, dcall = await rig.call_out(caller)
        no_errors(dcall)
        assert row.result == "hangup"
        assert dcall.media.agent_audio_seconds() < 2.5  # nothing more was played to a gone caller


async def test_answering_machine_is_missed(tmp_path, speech) -> None:
    async with Rig(tmp_path, speech, "salehi_language", english=True, machine_detection="Enable") as rig:
        row, dcall = await rig.call_out(None, Callee(answer="machine"))
        assert row.result == "missed" and row.reason == "answered_by:machine_start"
        assert not dcall.streams


# --- agrad_marketing ------------------------------------------------------------------------------------
async def test_agrad_yes_but_advisors_do_not_answer_goes_on_after_the_dial(tmp_path, speech) -> None:
    words = await voice("Yes, sure.")  # before the call: see voice()
    async with Rig(tmp_path, speech, "agrad_marketing") as rig:
        rig.h.double.operators[OPERATOR] = Operator(answer="no-answer")
        said_after: list[float] = []

        async def caller(call: DoubleCall) -> None:
            await call.media.wait_agent_spoke(min_audio=2.0)  # disclosure + greeting
            await call.media.say_and_wait(words)
            await call.wait_media(count=2, timeout=60)  # the <Dial> failed: a new stream
            await call.ended.wait()
            said_after.append(call.streams[1].agent_audio_seconds())

        row, dcall = await rig.call_out(caller)
        no_errors(dcall)
        assert row.result == "callback_scheduled" and row.reason == "said yes; all advisors busy"
        assert dcall.dials[0]["status"] == "no-answer"
        assert said_after and said_after[0] > 1.5  # "All our advisors are busy..." on the second stream


async def test_agrad_opt_out_lands_on_the_do_not_call_list(tmp_path, speech) -> None:
    words = await voice("Please do not call me again.")  # before the call: see voice()
    async with Rig(tmp_path, speech, "agrad_marketing") as rig:
        async def caller(call: DoubleCall) -> None:
            await call.media.wait_agent_spoke(min_audio=2.0)
            await call.media.say_and_wait(words)

        row, dcall = await rig.call_out(caller)
        no_errors(dcall)
        assert row.result == "not_interested"
        assert await rig.node.store.dnc.contains(CUSTOMER)


# --- reception (inbound, AI persona) -------------------------------------------------------------------
async def test_reception_inbound_barge_in_then_operator(tmp_path, speech) -> None:
    words = await voice("I would like to talk to a real person please.")  # before the call: see voice()
    async with Rig(tmp_path, speech, "reception") as rig:
        rig.h.double.operators[OPERATOR] = Operator(after=0.5, talk=1.0)
        barged: list[tuple[float, float]] = []

        async def caller(call: DoubleCall) -> None:
            media = call.media
            start = await media.wait_agent_audio()
            await asyncio.sleep(0.8)  # the caller talks over the greeting
            talk = media.say(words)
            while not media.clears and media.now() < start + 15:
                await asyncio.sleep(0.02)
            assert media.clears, "no clear after the caller started talking"
            barged.append((media.clears[0], media.now()))
            await talk.wait()

        row, dcall = await rig.call_in(caller)
        no_errors(dcall)
        first = dcall.streams[0]
        clear_at = first.clears[0]
        # Playback stopped at the clear: no agent audio in the half second after it.
        after = [s for t, s in first.agent_ticks if clear_at + 0.1 < t < clear_at + 0.6]
        assert after and not any(after)
        assert row.result == "inbound_call" and row.operator == OPERATOR
        assert dcall.dials and dcall.dials[0]["callerId"] == CUSTOMER


async def test_dtmf_and_marks_on_a_streamed_call(tmp_path, speech) -> None:
    async with Rig(tmp_path, speech, "salehi_language", english=True) as rig:
        await rig.h.backend.start(None)
        result = await rig.h.backend.originate(number=CUSTOMER, line_number=NUMBERS[0], timeout=10)
        call = result.call
        assert call is not None
        dcall = rig.h.double.calls[call.call_sid]
        media = await dcall.wait_media()
        loop = asyncio.get_running_loop()
        started = loop.time()
        played = await call.play("sound:custom/onhold")
        took = loop.time() - started
        length = A.read_wav(tmp_path / "wav" / "onhold.wav").duration
        assert played.completed and took >= length - 0.2  # done when Twilio said it was played
        assert media.marks_returned and media.played_seconds() >= length - 0.1
        pending = asyncio.ensure_future(call.record(max_duration=8, max_silence=3, terminate_on="#"))
        await asyncio.sleep(0.3)
        for digit in "42#":
            await media.press(digit)
        recording = await asyncio.wait_for(pending, 10)
        assert recording.dtmf.startswith("42")
        await call.hangup()
        await dcall.wait_ended()
