"""Audio the ARI backend needs beyond `speech.audio` (which reads and writes WAVs and resamples):
undo the roughly half amplitude that ARI recordings come out with, and write TTS prompts in the
two WAV formats Asterisk plays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from switchboard.speech.audio import read_wav_bytes, resample, write_wav
from switchboard.telephony.call import Audio

__all__ = ["normalise", "read_wav", "resample", "write_tts_sound", "write_wav"]

read_wav = read_wav_bytes  # Asterisk's recordings arrive as WAV bytes


def normalise(audio: Audio, *, target_peak: float = 0.9, max_gain: float = 8.0,
              floor: int = 64) -> Audio:
    """Peak-normalise (ARI recordings come out at about half the source amplitude).

    Near-silent audio (peak below `floor`) is left alone so line noise is never blown up to speech
    level; the gain is capped for the same reason.
    """
    if not audio.pcm:
        return audio
    samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32)
    peak = float(np.max(np.abs(samples)))
    if peak < floor:
        return audio
    gain = min(max_gain, target_peak * 32767.0 / peak)
    out = np.clip(samples * gain, -32768, 32767).astype("<i2")
    return Audio(out.tobytes(), audio.sample_rate)


def write_tts_sound(path: Path, audio: Audio) -> None:
    """`<name>.wav` at 8 kHz and, for wideband sources, `<name>.wav16` at 16 kHz (Asterisk picks the
    one that suits the channel's codec). The 8 kHz file is written last: its existence means done."""
    if audio.sample_rate >= 16000:
        write_wav(path.with_suffix(".wav16"), resample(audio, 16000))
    write_wav(path, resample(audio, 8000))
