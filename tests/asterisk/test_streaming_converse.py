"""Streamed AI turns over ARI: `record`/`speak` on an externalMedia channel (real RTP on loopback).

The double runs in real time here (scale 1.0): its far side plays the caller's words (Piper speech)
into the bridge, and the double's end of the externalMedia channel sends them as 20 ms RTP packets;
the agent's audio comes back as RTP, whose arrival times are tapped on the double's socket. The VAD
is the configured one (Silero, from the settings). Every case ends with nothing left on Asterisk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from switchboard.speech.audio import resample
from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.asterisk.session import AriCall
from switchboard.telephony.call import Audio, CallerHangup, DialOutcome
from tests.asterisk.conftest import APP, settings_for, voice_for
from tests.asterisk.double import AriDouble, assert_no_leaks, until

CUSTOMER = "09120000001"
LINE = "02150001000"
QUESTION = "Hello, I would like to know your opening hours, please."

_VOICE: dict[str, Audio] = {}


async def said(text: str) -> Audio:
    """`text` in Piper's English voice (synthesized once per test session)."""
    if text not in _VOICE:
        from switchboard.speech.tts.piper import PiperTTS

        _VOICE[text] = await PiperTTS().synthesize(text, language="en")
    return _VOICE[text]


def speech_span(audio: Audio, threshold: float = 500.0) -> float:
    """Seconds from the first to the last 20 ms frame louder than `threshold` (RMS)."""
    samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float64)
    per = audio.sample_rate // 50
    frames = samples[: len(samples) // per * per].reshape(-1, per)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > threshold)
    return 0.0 if not len(loud) else (loud[-1] - loud[0] + 1) / 50


def rms(audio: Audio) -> float:
    samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt((samples ** 2).mean())) if len(samples) else 0.0


def tone(seconds: float, rate: int = 16000, freq: float = 400.0) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes(), rate)


class AgentVoice:
    """The injected TTS: a tone as long as the text says (`"2.5s ..."`), so timing is exact."""

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def __call__(self, text: str, language: str | None, voice: str | None) -> Audio:
        self.spoken.append(text)
        seconds = float(text.split("s", 1)[0]) if text[:1].isdigit() else 1.0
        return tone(seconds)


@dataclass
class Tap:
    """Arrival times of the agent's RTP packets at the double's end of the externalMedia channel."""

    channel: Any
    times: list[float]

    @classmethod
    def on(cls, ari: AriDouble) -> Tap:
        channel = next(c for c in ari.sim.live_channels() if c.kind == "media")
        proto = channel.media_transport.get_protocol()
        loop = asyncio.get_running_loop()
        tap = cls(channel, [])
        original = proto.datagram_received

        def received(data: bytes, addr: tuple[str, int]) -> None:
            tap.times.append(loop.time())
            original(data, addr)

        proto.datagram_received = received
        return tap


@dataclass
class Rig:
    ari: AriDouble
    backend: AsteriskBackend
    voice: AgentVoice

    async def call(self, context: str) -> AriCall:
        self.ari.sim.route(CUSTOMER, context)
        outcome, call = await self.backend.originate(CUSTOMER, line=LINE)
        assert outcome is DialOutcome.ANSWERED and isinstance(call, AriCall)
        return call


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    question = await said(QUESTION)
    async with AriDouble(scale=1.0, sounds_dir=str(sounds)) as ari:
        ari.sim.add_sound("custom/question", question.pcm, question.sample_rate)
        # the caller asks as soon as the call is up / only after the agent has started talking
        ari.sim.add_context("asks", "exten => s,1,Answer()\n same => n,Wait(0.6)\n"
                                    " same => n,Playback(custom/question)\n same => n,Wait(600)")
        ari.sim.add_context("interrupts", "exten => s,1,Answer()\n same => n,Wait(1.5)\n"
                                          " same => n,Playback(custom/question)\n same => n,Wait(600)")
        voice = AgentVoice()
        settings = settings_for(ari, tmp_path)
        runtime = voice_for(settings, voice)
        backend = AsteriskBackend.from_settings(settings, synthesize=voice, voice=runtime)
        await backend.start()
        await ari.wait_ws(APP)
        try:
            yield Rig(ari, backend, voice)
        finally:
            await backend.close()
            await runtime.aclose()
        await assert_no_leaks(ari)


@pytest.mark.timeout(30)
async def test_record_cuts_the_callers_utterance_from_the_rtp_stream(rig: Rig) -> None:
    question = await said(QUESTION)
    call = await rig.call("asks")
    async with call.streaming() as session:
        assert session is not None and call.streaming_session is session
        media = next(c for c in rig.ari.sim.live_channels() if c.kind == "media")
        assert media.id in rig.ari.sim.bridges[call.bridge_id].channels  # in the call's bridge
        rec = await call.record(max_duration=15, max_silence=5)
    assert rec.audio is not None and rec.audio.sample_rate == 8000
    # the whole question, its speech as long as Piper's (VAD pre-roll and tail aside), at speech level
    assert abs(speech_span(rec.audio) - speech_span(question)) < 0.25
    assert rec.audio.duration < speech_span(question) + 0.8
    assert rms(rec.audio) > 0.3 * rms(resample(question, 8000))
    assert rec.path is not None and rec.path.startswith(str(rig.backend.config.recordings_dir))
    rig.backend.voice.recordings.flush()  # written off the turn's path, by the recordings writer
    assert Path(rec.path).is_file()  # kept for review like file recordings
    assert not any(c.kind == "media" for c in rig.ari.sim.live_channels())  # left with the block
    assert not any(c.kind == "snoop" for c in rig.ari.sim.channels.values())  # no file recording
    await call.hangup()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fmt,rate", [("ulaw", 8000), ("slin16", 16000)])
async def test_speak_sends_paced_rtp_and_completes(tmp_path: Path, fmt: str, rate: int) -> None:
    async with AriDouble(scale=1.0) as ari:
        ari.sim.add_context("listens", "exten => s,1,Answer()\n same => n,Wait(600)")
        ari.sim.route(CUSTOMER, "listens")
        voice = AgentVoice()
        settings = settings_for(ari, tmp_path, external_media_format=fmt)
        runtime = voice_for(settings, voice)
        backend = AsteriskBackend.from_settings(settings, synthesize=voice, voice=runtime)
        await backend.start()
        try:
            await ari.wait_ws(APP)
            outcome, call = await backend.originate(CUSTOMER, line=LINE)
            assert outcome is DialOutcome.ANSWERED and call is not None
            async with call.streaming():
                tap = Tap.on(ari)
                t0 = asyncio.get_running_loop().time()
                result = await call.speak("1.5s of agent speech", interruptible=True)
                took = asyncio.get_running_loop().time() - t0
            assert result.completed and result.interrupted_by is None
            assert voice.spoken == ["1.5s of agent speech"]
            assert len(tap.times) == 75  # 1.5 s in 20 ms packets, all of them
            gaps = np.diff(tap.times)
            assert 0.018 < float(np.median(gaps)) < 0.022  # one packet per 20 ms ...
            assert int((gaps > 0.045).sum()) <= 3 and float(gaps.max()) < 0.4  # (a busy machine's late tick aside)
            assert 1.4 < tap.times[-1] - tap.times[0] < 1.6 and took >= 1.45  # real time, not a burst
            got = np.frombuffer(bytes(tap.channel.media_received), dtype="<i2").astype(np.float64)
            sent = np.frombuffer(resample(tone(1.5), rate).pcm, dtype="<i2").astype(np.float64)
            assert len(got) == len(sent) and np.corrcoef(sent, got)[0, 1] > 0.99
            await call.hangup()
        finally:
            await backend.close()
            await runtime.aclose()
        await assert_no_leaks(ari)


@pytest.mark.timeout(30)
async def test_barge_in_stops_the_agent_and_keeps_the_callers_words(rig: Rig) -> None:
    question = await said(QUESTION)
    call = await rig.call("interrupts")
    loop = asyncio.get_running_loop()
    async with call.streaming() as session:
        assert session is not None
        tap = Tap.on(rig.ari)
        t0 = loop.time()
        result = await call.speak("6s of a long agent reply", interruptible=True)
        stopped = loop.time() - t0
        sent_at_stop = len(tap.times)
        assert not result.completed and result.interrupted_by == "speech"
        # the caller starts at ~1.5 s; the VAD needs a fraction of a second of speech. Not at once
        # (no false barge-in) and well before the 6 s reply ends (scheduling on a busy CI varies).
        assert 1.0 < stopped < 3.0
        await asyncio.sleep(0.3)
        assert len(tap.times) - sent_at_stop <= 2  # the agent's frames stopped at once
        assert len(tap.times) < 6 / 0.02 / 2
        rec = await call.record(max_duration=15, max_silence=5)
    # the words that started the barge-in are in the next utterance: nothing of the question is lost
    assert rec.audio is not None
    assert abs(speech_span(rec.audio) - speech_span(question)) < 0.25
    assert session.barge_ins == 1
    await call.hangup()


@pytest.mark.timeout(30)
async def test_speech_over_a_non_interruptible_reply_is_kept_for_the_next_record(rig: Rig) -> None:
    question = await said(QUESTION)
    call = await rig.call("interrupts")
    async with call.streaming():
        result = await call.speak("2.5s that must be heard in full", interruptible=False)
        assert result.completed  # the caller started at ~1.5 s and was not allowed to interrupt
        rec = await call.record(max_duration=15, max_silence=5)
    assert rec.audio is not None
    assert abs(speech_span(rec.audio) - speech_span(question)) < 0.25  # from its first word
    await call.hangup()


@pytest.mark.timeout(30)
async def test_hangup_while_streaming_ends_the_turn_and_leaves_nothing(rig: Rig) -> None:
    call = await rig.call("asks")
    with pytest.raises(CallerHangup):
        async with call.streaming():
            speaking = asyncio.ensure_future(call.speak("5s of talk", interruptible=False))
            await until(lambda: any(c.kind == "media" and c.media_received for c in rig.ari.sim.channels.values()))
            customer = rig.ari.sim.channels[call.channel_id]
            await rig.ari.sim.far_hangup(customer.peer or customer, 16)
            await asyncio.wait_for(speaking, 3)
    assert call.hung_up


# --- the real converse step, end to end ------------------------------------------------------------

REPLIES = ("What are your opening hours?", "Thank you, goodbye.")


class HeardBy:
    """The STT for the scripted far side: names which of the caller's replies this utterance is, by
    its speech length (they differ by over a second), and hears nothing in silence or noise."""

    def __init__(self, replies: dict[str, Audio]) -> None:
        self.spans = {text: speech_span(audio) for text, audio in replies.items()}
        self.heard: list[tuple[str, float]] = []

    async def transcribe(self, audio: Audio, *, language: str | None = None, **_: Any) -> Any:
        from switchboard.speech.base import Transcript

        span = speech_span(audio)
        text, expected = min(self.spans.items(), key=lambda kv: abs(kv[1] - span))
        if abs(expected - span) > 0.3:
            text = ""
        self.heard.append((text, span))
        return Transcript(text, language=language or "en")


class Customer:
    """The far side of a streamed conversation: it listens to the agent's RTP on the double and says
    its next reply 0.3 s after the agent has stopped talking, as a person on the phone would."""

    def __init__(self, ari: AriDouble, channel_id: str, replies: list[Audio]) -> None:
        self.sim = ari.sim
        self.source = ari.sim.channels[channel_id]
        self.replies = list(replies)
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        from tests.asterisk.double import Clip

        heard, quiet_since = 0, None
        loop = asyncio.get_running_loop()
        while self.replies:
            await asyncio.sleep(0.02)
            media = [c for c in self.sim.channels.values() if c.kind == "media" and not c.destroyed]
            if not media:
                continue
            now = len(media[0].media_received)
            if now != heard:
                heard, quiet_since = now, loop.time()
            elif heard and quiet_since is not None and loop.time() - quiet_since > 0.3:
                reply = self.replies.pop(0)
                clip = Clip.from_pcm(reply.pcm, reply.sample_rate)
                start = self.sim.now()
                self.source.segments.append((start, start + clip.duration, clip))
                await asyncio.sleep(clip.duration)
                quiet_since = None

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.timeout(60)
async def test_converse_step_streams_a_scripted_conversation_over_ari(tmp_path: Path) -> None:
    from switchboard.app import build_engine
    from switchboard.flows.registry import ScenarioRegistry

    root = Path(__file__).resolve().parents[2]
    scenario = ScenarioRegistry(root / "scenarios").get("reception")
    assert scenario is not None
    replies = {text: await said(text) for text in REPLIES}
    stt = HeardBy(replies)
    async with AriDouble(scale=1.0) as ari:
        ari.sim.add_context("listens", "exten => s,1,Answer()\n same => n,Wait(600)")
        ari.sim.route(CUSTOMER, "listens")
        settings = settings_for(ari, tmp_path, data_dir=str(tmp_path / "data"), llm_base_url="")
        engine = build_engine(settings, speech=stt)  # type: ignore[arg-type]
        voice = AgentVoice()
        runtime = voice_for(settings, voice)
        backend = AsteriskBackend.from_settings(settings, synthesize=voice, voice=runtime)
        await backend.start()
        try:
            await ari.wait_ws(APP)
            outcome, call = await backend.originate(CUSTOMER, line=LINE)
            assert outcome is DialOutcome.ANSWERED and call is not None
            customer = Customer(ari, call.channel_id, list(replies.values()))
            try:
                ctx = engine.new_context(call, scenario)
                await asyncio.wait_for(engine.run(call, scenario, ctx), 40)
            finally:
                await customer.close()
        finally:
            await backend.close()
            await runtime.aclose()
        await assert_no_leaks(ari)
    assert ctx.variables["conversation_status"] == "ended", ctx.timeline
    turns = [(e.detail["speaker"], e.detail.get("kind"), e.detail["text"]) for e in ctx.timeline
             if e.event == "turn"]
    assert [t["text"] for t in ctx.transcripts] == list(REPLIES), (stt.heard, turns)
    # the reception persona greeted, answered the FAQ and said goodbye, all as RTP, none interrupted
    assert [(speaker, kind) for speaker, kind, _ in turns] == [
        ("agent", "greeting"), ("caller", None), ("agent", "faq"), ("caller", None), ("agent", "goodbye"),
        ("tool", None), ("system", None)], turns
    assert not any(e.detail.get("interrupted") for e in ctx.timeline if e.event == "turn")
    assert voice.spoken[0].startswith("Hello, this is Sara") and len(voice.spoken) == 3
    assert ctx.steps_visited[:2] == ["start", "talk"]
    media = [c for c in ari.sim.channels.values() if c.kind == "media"]
    assert len(media) == 1 and len(media[0].media_received) >= 3 * 8000 * 2  # 3 s of agent audio
    assert not any(c.kind == "snoop" for c in ari.sim.channels.values())  # no file recordings
    assert not [e for e in ari.sim.events if e["type"] == "PlaybackStarted"]  # nor file prompts
