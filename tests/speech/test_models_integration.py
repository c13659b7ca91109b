"""The real Whisper base model hearing synthesized callers through an 8 kHz μ-law phone line.

Callers speak with Piper's natural voice: Whisper base mishears eSpeak's robotic English after
μ-law too often to assert on ("no thanks" -> "no pain"; see benchmarks/speech.py for its WER)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from switchboard.speech import audio as A
from switchboard.speech.enhance import Enhancer
from switchboard.speech.service import SpeechService
from switchboard.speech.vad import SileroVAD, segment_utterance

pytestmark = pytest.mark.models

REPLIES = [
    ("yes, I'm interested", {"yes", "interested"}),
    ("no thanks", {"no", "thanks"}),
    ("where did you get my number", {"where", "number"}),
]


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


@pytest.mark.parametrize("text,keys", REPLIES)
async def test_piper_caller_over_ulaw(whisper, piper, tmp_path: Path, text: str, keys: set[str]) -> None:  # type: ignore[no-untyped-def]
    voice = await piper.synthesize(text)
    heard = A.from_phone_line(A.to_phone_line(voice, snr_db=30, seed=1))
    service = SpeechService(whisper, piper, enhancer=Enhancer(tmp_path))
    result = await service.transcribe(heard, language="en", name="reply")
    assert keys <= words(result.text), result.text
    assert result.language == "en" and result.confidence and result.latency > 0


async def test_vad_segmented_stream_then_whisper(whisper, piper) -> None:  # type: ignore[no-untyped-def]
    """A streaming backend's path: frames -> VAD endpointing -> one utterance -> STT."""
    voice = A.resample(await piper.synthesize("no thanks"), 8000)
    line = A.from_phone_line(A.to_phone_line(A.concat([A.silence(1, 8000), voice, A.silence(3, 8000)])))

    async def frames():  # type: ignore[no-untyped-def]
        for frame in A.frames(line, 20):
            yield frame

    utterance = await segment_utterance(frames(), SileroVAD(8000), max_duration=10, max_silence=5)
    result = await whisper.transcribe(utterance, language="en")
    assert {"no", "thanks"} <= words(result.text)


async def test_parallel_transcriptions_do_not_block_the_loop(whisper, piper) -> None:  # type: ignore[no-untyped-def]
    clip = A.resample(await piper.synthesize("yes, I'm interested"), 8000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(whisper.transcribe(clip, language="en") for _ in range(3)))
    elapsed = loop.time() - started
    task.cancel()
    assert all("interested" in r.text.lower() for r in results)
    assert ticks >= elapsed / 0.01 * 0.5  # the event loop kept running during inference


def test_service_under_the_simulators_virtual_clock(whisper, piper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The simulator runs calls on `VirtualClockLoop`; thread-pool inference must still complete."""
    from switchboard.clock import run_virtual

    async def scenario() -> str:
        service = SpeechService(whisper, piper, enhancer=Enhancer(tmp_path))
        voice = await service.synthesize("no thanks")
        heard = A.through_phone_line(voice, snr_db=30, seed=2)
        return (await service.transcribe(heard, language="en")).text

    assert {"no", "thanks"} <= words(run_virtual(scenario()))
