"""Early transcripts: STT starts in the quiet before the end of speech is certain, and the consumer
gets exactly the transcript of the utterance it was handed.

First on the virtual clock with the scripted VAD (exact timings: when each job starts, which one is
used, which is dropped because the caller spoke on), then with the real shared Silero and Moonshine
on real speech in real time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from switchboard.clock import run_virtual
from switchboard.speech.audio import Audio
from switchboard.speech.base import Transcript
from switchboard.voice.early import EarlyTranscripts
from switchboard.voice.pacing import Pacer
from switchboard.voice.port import FRAME_SECONDS
from switchboard.voice.session import VoiceSession
from tests.fakes.voice import FakePort, ScriptedVad

F = FRAME_SECONDS


class PausingVad(ScriptedVad):
    """The scripted VAD, able to report pauses as the real streams do."""

    def report_pauses(self, after: float | None) -> None:
        self.endpointer.pause_after = after


class SlowStt:
    """An STT that takes `delay` seconds of loop time and says how much audio it was given."""

    def __init__(self, delay: float = 0.25) -> None:
        self.delay = delay
        self.asked: list[tuple[float, bytes, str | None, list[str] | None]] = []

    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None, **kwargs: object) -> Transcript:
        self.asked.append((asyncio.get_running_loop().time(), audio.pcm, language, hotwords))
        await asyncio.sleep(self.delay)
        return Transcript(f"{len(audio.pcm)} bytes", language=language)


def rig(stt: SlowStt, after: float = 0.1) -> tuple[VoiceSession, FakePort, EarlyTranscripts]:
    port = FakePort()
    early = EarlyTranscripts(stt, after=after)
    session = VoiceSession(port, vad=PausingVad(), pacer=Pacer(), early=early)
    session.transcript_hints.language = "en"
    return session, port, early


def test_the_transcript_is_ready_when_the_end_of_speech_is_certain() -> None:
    async def main() -> None:
        stt = SlowStt(delay=0.25)
        session, port, early = rig(stt)
        loop = asyncio.get_running_loop()
        # a 0.15 s breath inside the utterance (under the 0.3 s end of speech), then its end
        port.start_caller([("silence", 0.2), ("speech", 0.6), ("silence", 0.16), ("speech", 0.5),
                           ("silence", 2.0)])
        heard = await session.listen(max_duration=10, max_silence=3)
        assert heard.ended_at is not None
        transcript = await early.transcribe(heard.audio, language="en")
        answered = loop.time()
        assert transcript.text == f"{len(heard.audio.pcm)} bytes"  # the whole utterance, breath and all
        # two jobs: the breath's (dropped when the caller spoke on) and the end's, which was used
        assert len(stt.asked) == 2 and early.stats.used == 1 and early.stats.dropped == 1
        assert stt.asked[1][1] == heard.audio.pcm
        # it started 0.1 s into the final quiet, 0.2 s before the end was certain: 0.05 s left
        assert abs(stt.asked[1][0] - (heard.ended_at - 0.2)) < F + 1e-6
        assert answered - heard.ended_at < 0.25 - 0.15
        await session.close()

    run_virtual(main())


def test_a_consumer_asking_otherwise_gets_its_own_transcription_and_the_next_job_asks_the_same() -> None:
    async def main() -> None:
        stt = SlowStt(delay=0.1)
        session, port, early = rig(stt)
        port.start_caller([("speech", 0.5), ("silence", 1.0), ("speech", 0.5), ("silence", 2.0)])
        first = await session.listen(max_duration=10, max_silence=3)
        await early.transcribe(first.audio, language="fa", hotwords=["Switchboard"])
        # the early job was in English without hot words: not used, the consumer's own request ran
        assert early.stats.used == 0 and stt.asked[-1][2:] == ("fa", ["Switchboard"])
        second = await session.listen(max_duration=10, max_silence=3)
        calls = len(stt.asked)
        transcript = await early.transcribe(second.audio, language="fa", hotwords=["Switchboard"])
        assert early.stats.used == 1 and len(stt.asked) == calls  # learned: started as asked, and used
        assert transcript.language == "fa"
        await session.close()

    run_virtual(main())


def test_other_audio_and_unasked_utterances() -> None:
    async def main() -> None:
        stt = SlowStt(delay=0.1)
        session, port, early = rig(stt)
        port.start_caller([("speech", 0.5), ("silence", 2.0)])
        heard = await session.listen(max_duration=10, max_silence=3)
        copy = Audio(bytes(bytearray(heard.audio.pcm)), heard.audio.sample_rate)  # equal, not the same object
        await early.transcribe(copy, language="en")
        assert early.stats.used == 0 and stt.asked[-1][1] == copy.pcm
        await session.close()  # the handed utterance nobody transcribed: its job is dropped
        assert early.stats.dropped == 1
        assert await early.transcribe(heard.audio, language="en")  # still answered, directly
        assert early.stats.used == 0

    run_virtual(main())


def test_a_listen_cut_short_drops_the_job() -> None:
    async def main() -> None:
        stt = SlowStt(delay=0.1)
        session, port, early = rig(stt)
        # a pause, speech again, then the listen's max duration cuts the utterance mid-word
        port.start_caller([("speech", 0.4), ("silence", 0.14), ("speech", 3.0)])
        heard = await session.listen(max_duration=1.0, max_silence=3)
        assert heard.audio.pcm and early.stats.started == 1 and early.stats.dropped == 1
        await early.transcribe(heard.audio, language="en")
        assert early.stats.used == 0
        await session.close()

    run_virtual(main())


@pytest.mark.timeout(120)
async def test_real_speech_through_the_shared_silero_and_moonshine() -> None:
    """The real pieces, in real time: the early job transcribes exactly the utterance handed over,
    and the words are right."""
    from switchboard.speech.audio import through_phone_line
    from switchboard.speech.stt.moonshine import MoonshineSTT
    from switchboard.speech.tts.piper import PiperTTS
    from switchboard.speech.vad.batch import SileroBatch
    from switchboard.speech.vad.endpointer import EndpointSettings

    words = through_phone_line(await PiperTTS().synthesize("What are your opening hours?", language="en")).pcm
    stt = MoonshineSTT()
    await stt.warm_up()
    asked: list[bytes] = []

    class Watched:
        async def transcribe(self, audio: Audio, **kwargs: object) -> Transcript:
            asked.append(audio.pcm)
            return await stt.transcribe(audio, **kwargs)  # type: ignore[arg-type]

    vad = SileroBatch(settings=EndpointSettings(min_speech=0.15, end_silence=0.4))
    early = EarlyTranscripts(Watched(), after=0.1)
    port = FakePort()
    session = VoiceSession(port, vad=vad.open(8000), pacer=Pacer(), early=early)
    session.transcript_hints.language = "en"
    loop = asyncio.get_running_loop()

    async def caller() -> None:
        pcm = b"\x00\x00" * 2400 + words + b"\x00\x00" * 16000
        t0 = loop.time()
        for n, i in enumerate(range(0, len(pcm) - 319, 320)):
            await asyncio.sleep(max(0.0, t0 + n * F - loop.time()))
            session.on_frame(pcm[i:i + 320])

    talking = asyncio.ensure_future(caller())
    try:
        heard = await session.listen(max_duration=10, max_silence=5)
        transcript = await early.transcribe(heard.audio, language="en")
        assert early.stats.used == 1 and asked[-1] == heard.audio.pcm
        assert "opening hours" in transcript.text.lower()
        loud = np.abs(np.frombuffer(heard.audio.pcm, "<i2")) > 300
        assert loud.any() and heard.audio.duration > 1.0
    finally:
        talking.cancel()
        await session.close()
        await vad.aclose()
        stt.close()
