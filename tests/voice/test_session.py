"""Turn-taking on an in-memory port with a scripted VAD, on the virtual clock (exact timings).

The same behaviours are checked again on every real transport (tests/voice/test_twilio_media.py,
tests/asterisk/test_streaming_converse.py, tests/sim/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from switchboard.clock import run_virtual
from switchboard.speech.audio import Audio, write_wav
from switchboard.telephony.call import CallerHangup, CallFailed
from switchboard.voice.pacing import Pacer
from switchboard.voice.port import FRAME_SECONDS
from switchboard.voice.prompts import PromptLibrary
from switchboard.voice.session import VoiceSession
from tests.fakes.voice import FakePort, ScriptedVad, ToneSpeech

F = FRAME_SECONDS


def rig(*, buffered: bool = False, lead: float = F, prompts: PromptLibrary | None = None,
        speech: ToneSpeech | None = None) -> tuple[VoiceSession, FakePort, ScriptedVad, ToneSpeech]:
    port = FakePort(buffered=buffered)
    vad = ScriptedVad()
    speech = speech or ToneSpeech()
    session = VoiceSession(port, vad=vad, pacer=Pacer(lead=lead), prompts=prompts, speech=speech)
    return session, port, vad, speech


def loud_span(audio: Audio) -> float:
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    return float((np.abs(samples) > 4000).sum()) / audio.sample_rate


def test_listen_returns_the_utterance_with_its_first_word() -> None:
    async def main() -> None:
        session, port, vad, _ = rig()
        port.start_caller([("silence", 0.5), ("speech", 1.2), ("silence", 2.0)])
        heard = await session.listen(max_duration=10, max_silence=3)
        assert abs(loud_span(heard.audio) - 1.2) < 1e-6  # every speech frame, from the first
        # ended by the VAD's end of speech: 0.3 s of silence after 1.7 s
        assert heard.ended_at is not None and abs(heard.ended_at - (1.7 + 0.3)) < 0.021
        assert vad.pushed == session.frames_in  # each frame went through the VAD exactly once
        await session.close()

    run_virtual(main())


def test_silence_timeout_is_counted_in_audio() -> None:
    async def main() -> None:
        session, port, _, _ = rig()
        port.start_caller([("silence", 10)])
        loop = __import__("asyncio").get_running_loop()
        t0 = loop.time()
        heard = await session.listen(max_duration=10, max_silence=1.5)
        assert heard.audio.pcm == b"" and abs(loop.time() - t0 - 1.5) < 0.021
        await session.close()

    run_virtual(main())


def test_a_stream_that_stops_sending_still_ends_the_listen() -> None:
    async def main() -> None:
        session, port, _, _ = rig()  # no caller frames at all
        loop = __import__("asyncio").get_running_loop()
        t0 = loop.time()
        heard = await session.listen(max_duration=10, max_silence=1.0)
        assert heard.audio.pcm == b"" and abs(loop.time() - t0 - 1.5) < 0.01  # max_silence + slack
        await session.close()

    run_virtual(main())


def test_max_duration_cuts_a_long_utterance() -> None:
    async def main() -> None:
        session, port, _, _ = rig()
        port.start_caller([("speech", 8.0)])
        heard = await session.listen(max_duration=3, max_silence=2)
        assert 2.7 < loud_span(heard.audio) <= 3.0
        await session.close()

    run_virtual(main())


def test_playback_is_paced_and_completes_when_played() -> None:
    async def main() -> None:
        session, port, _, speech = rig(buffered=True)
        port.start_caller([("silence", 30)])
        loop = __import__("asyncio").get_running_loop()
        t0 = loop.time()
        result = await session.say("1.5s of agent speech")
        took = loop.time() - t0
        assert result.completed
        assert len(port.sent) == 75 and all(len(s.pcm) == 320 for s in port.sent)
        times = np.array([s.at for s in port.sent]) - t0
        due = np.arange(75) * F
        assert np.all(times <= due + 1e-9)  # never late
        assert np.all(due - times <= F + 1e-9)  # and never more than the jitter allowance early
        assert abs(took - 1.5) < 0.021  # done when the far end has played the last frame
        await session.close()

    run_virtual(main())


def test_barge_in_stops_the_agent_within_a_frame_and_keeps_the_words() -> None:
    async def main() -> None:
        session, port, vad, _ = rig(buffered=True)
        port.start_caller([("silence", 1.0), ("speech", 1.0), ("silence", 5.0)])
        result = await session.say("4s of a long agent reply", interruptible=True)
        assert not result.completed and result.interrupted_by == "speech"
        decided = vad.started_at()
        assert abs(decided - 1.1) < 0.021  # the caller started at 1.0 s; min_speech 0.1 s
        assert port.clears and port.clears[0] == decided  # the far end's buffer dropped at once
        after = [s for s in port.sent if s.at > decided]
        assert not after  # not one frame sent after the decision
        assert port.sent[-1].at >= decided - 2 * F  # it was still talking until then
        heard = await session.listen(max_duration=10, max_silence=3)
        assert abs(loud_span(heard.audio) - 1.0) < 1e-6  # the words that barged in, all of them
        assert session.barge_ins == 1
        await session.close()

    run_virtual(main())


def test_speech_over_a_non_interruptible_prompt_waits_for_the_next_listen() -> None:
    async def main() -> None:
        session, port, vad, _ = rig()
        port.start_caller([("silence", 0.5), ("speech", 0.8), ("silence", 5.0)])
        result = await session.say("2.5s that must be heard in full", interruptible=False)
        assert result.completed and len(port.sent) == 125
        loop = __import__("asyncio").get_running_loop()
        t0 = loop.time()
        heard = await session.listen(max_duration=10, max_silence=3)
        assert loop.time() == t0  # said already: no waiting
        assert abs(loud_span(heard.audio) - 0.8) < 1e-6
        await session.close()

    run_virtual(main())


def test_dtmf_interrupts_a_prompt_and_terminates_a_listen() -> None:
    async def main() -> None:
        import asyncio

        session, port, _, _ = rig()
        port.start_caller([("silence", 30)])
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, port.press, "5")
        result = await session.say("3s menu", interruptible=True)
        assert result.interrupted_by == "dtmf:5"
        loop.call_later(0.3, port.press, "1")
        loop.call_later(0.6, port.press, "#")
        heard = await session.listen(max_duration=10, max_silence=5, terminate_on="#")
        assert heard.dtmf == "1#"
        await session.close()

    run_virtual(main())


def test_hangup_during_playback_raises_and_stops_sending() -> None:
    async def main() -> None:
        import asyncio

        session, port, _, _ = rig()
        port.start_caller([("silence", 30)])
        loop = asyncio.get_running_loop()
        loop.call_later(0.7, port.far_hangup, "caller_hangup")
        with pytest.raises(CallerHangup):
            await session.say("3s of talk")
        sent = len(port.sent)
        await asyncio.sleep(0.5)
        assert len(port.sent) == sent and sent <= 0.7 / F + 2
        with pytest.raises(CallerHangup):
            await session.listen(max_duration=5, max_silence=1)

    run_virtual(main())


def test_sentences_are_synthesized_while_the_previous_one_plays() -> None:
    async def main() -> None:
        import asyncio

        speech = ToneSpeech(delay=0.3)  # each sentence takes 0.3 s to synthesize
        session, port, _, _ = rig(speech=speech)
        port.start_caller([("silence", 30)])

        async def llm() -> AsyncIterator[str]:
            yield "1s first sentence."
            await asyncio.sleep(0.1)
            yield "1s second sentence."

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        result = await session.say(llm())
        assert result.completed and len(port.sent) == 100
        times = np.array([s.at for s in port.sent]) - t0
        assert abs(times[0] - 0.3) < 1e-6  # first audio as soon as the first sentence is synthesized
        assert np.diff(times).max() <= F + 1e-9  # no gap between the sentences
        assert speech.asked[1][1] - t0 < 1.0  # the second was asked for while the first played
        await session.close()

    run_virtual(main())


def test_prompts_play_from_the_built_files_and_a_missing_one_is_named(tmp_path: Path) -> None:
    tone = (np.sin(np.arange(8000) / 5) * 5000).astype("<i2").tobytes()
    write_wav(tmp_path / "hello.wav", Audio(tone, 8000))

    async def main() -> None:
        session, port, _, speech = rig(prompts=PromptLibrary(tmp_path))
        port.start_caller([("silence", 30)])
        result = await session.play("sound:custom/hello")
        assert result.completed and b"".join(s.pcm for s in port.sent) == tone
        with pytest.raises(CallFailed, match="goodbye.wav"):
            await session.play("sound:custom/goodbye")
        await session.play("tts:0.5s of text prompt")
        assert speech.asked[-1][0] == "0.5s of text prompt" and len(port.sent) == 50 + 25
        await session.close()

    run_virtual(main())


def test_closing_the_session_under_a_playback_is_a_hangup_for_the_player() -> None:
    """A transport that ends the stream (Twilio `stop`, a closed socket) closes the session while
    the engine still waits on a prompt: the engine must see `CallerHangup`, not a cancellation."""
    async def main() -> None:
        import asyncio

        session, port, _, _ = rig()
        playing = asyncio.ensure_future(session.say("a long greeting " * 20))
        await asyncio.sleep(0.5)
        port.sink.on_hangup("stream_stopped")  # what the port reports first ...
        await session.close("stream_closed")  # ... and what the backend does right after
        with pytest.raises(CallerHangup):
            await playing

    run_virtual(main())
