"""The empty-audio rule: what is too short or too quiet to be an answer counts as the caller hanging up.

Phone lines deliver near-silent snippets when a caller drops; transcribing them only produces
hallucinated words, so they never reach STT.
"""

from __future__ import annotations

from switchboard.speech.audio import Audio, rms
from switchboard.speech.base import EmptyAudio

MIN_DURATION = 0.1  # seconds
MIN_RMS = 0.001  # float scale
MIN_BYTES = 800


def empty_reason(audio: Audio | None) -> str | None:
    """Why `audio` counts as empty, or None when it may hold speech."""
    if audio is None or not audio.pcm:
        return "no audio"
    if len(audio.pcm) < MIN_BYTES:
        return f"{len(audio.pcm)} bytes < {MIN_BYTES}"
    if audio.duration < MIN_DURATION:
        return f"{audio.duration:.3f} s < {MIN_DURATION} s"
    level = rms(audio)
    if level < MIN_RMS:
        return f"RMS {level:.5f} < {MIN_RMS}"
    return None


def is_empty(audio: Audio | None) -> bool:
    return empty_reason(audio) is not None


def check_not_empty(audio: Audio | None) -> Audio:
    """Return `audio` unchanged, or raise `EmptyAudio` naming the rule it broke."""
    reason = empty_reason(audio)
    if reason is not None:
        raise EmptyAudio(reason)
    assert audio is not None
    return audio
