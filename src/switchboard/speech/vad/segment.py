"""One caller utterance out of a stream of frames, for streaming backends' `record`.

Time is counted in audio (bytes received), not on a clock, so it works the same on the wall clock,
the simulator's virtual clock, and a replayed file.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from switchboard.speech.base import VAD
from switchboard.speech.audio import Audio


async def segment_utterance(frames: AsyncIterable[bytes], vad: VAD, *, max_duration: float,
                            max_silence: float) -> Audio:
    """Listen until the caller's speech ends (+ the VAD's end_silence), `max_duration` of audio has
    passed, or nobody spoke within `max_silence` (-> empty Audio). Resets `vad` first."""
    vad.reset()
    rate = vad.sample_rate
    received = 0.0
    started = False
    speech: list[bytes] = []
    async for frame in frames:
        received += len(frame) / 2 / rate
        for event in vad.process(frame):
            if event.kind == "start":
                started = True
            elif event.kind == "end" and event.audio is not None:
                return event.audio
        if started:
            speech.append(frame)
        if received >= max_duration:
            break
        if not started and received >= max_silence:
            return Audio(b"", rate)
    if not started:
        return Audio(b"", rate)
    flush = getattr(vad, "flush", None)
    if callable(flush):
        for event in flush():
            if event.kind == "end" and event.audio is not None:
                return event.audio
    return Audio(b"".join(speech), rate)
