"""Cleaning a caller's recording before STT: spectral-gating denoise plus loudness normalisation.

Phone audio arrives quiet and hissy; both hurt cloud STT (Vira in particular) more than they hurt
Whisper. The original and the enhanced copy are both kept so a reviewer can hear what the STT heard.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from switchboard.speech.audio import Audio, from_float, normalize, to_float, write_wav


def denoise(audio: Audio, *, reduction_db: float = 12.0, over_subtraction: float = 1.5,
            noise_percentile: float = 15.0) -> Audio:
    """Spectral gating: estimate the noise floor per frequency from the quietest frames and attenuate
    bins near it by up to `reduction_db`. Speech bins well above the floor pass unchanged."""
    x = to_float(audio).astype(np.float64)
    n = 1 << int(np.ceil(np.log2(max(audio.sample_rate, 8000) * 0.032)))  # ~32 ms frames
    hop = n // 2
    if x.size < 4 * n:
        return Audio(audio.pcm, audio.sample_rate)
    x = x - x.mean()
    pad = (-(x.size - n) % hop) + n
    padded = np.concatenate([np.zeros(hop), x, np.zeros(pad)])
    window = np.sqrt(np.hanning(n + 1)[:n])  # sqrt-Hann analysis+synthesis: exact at 50% overlap
    count = 1 + (padded.size - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    spec = np.fft.rfft(padded[idx] * window, axis=1)
    mag = np.abs(spec)
    noise = np.percentile(mag, noise_percentile, axis=0)
    floor = 10.0 ** (-reduction_db / 20.0)
    gains = np.clip(1.0 - over_subtraction * noise[None, :] / np.maximum(mag, 1e-12), floor, 1.0)
    # Smooth gains over time so the gate does not chatter ("musical noise").
    kernel = np.array([0.25, 0.5, 0.25])
    gains = np.apply_along_axis(lambda g: np.convolve(g, kernel, mode="same"), 0, gains)
    frames = np.fft.irfft(spec * gains, n=n, axis=1) * window
    out = np.zeros(padded.size)
    np.add.at(out, idx, frames)
    return from_float(out[hop:hop + x.size], audio.sample_rate)


def enhance(audio: Audio, *, denoise_audio: bool = True, target_dbfs: float = -20.0) -> Audio:
    cleaned = denoise(audio) if denoise_audio else audio
    return normalize(cleaned, target_dbfs=target_dbfs)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class Enhanced:
    audio: Audio
    original_path: Path | None
    enhanced_path: Path | None


class Enhancer:
    """Enhances off the event loop and keeps `recordings_dir/<name>.wav` and
    `recordings_dir/enhanced/<name>.wav` when a name is given."""

    def __init__(self, recordings_dir: Path | None, *, denoise_audio: bool = True,
                 target_dbfs: float = -20.0) -> None:
        self.recordings_dir = recordings_dir
        self.denoise_audio = denoise_audio
        self.target_dbfs = target_dbfs

    def run(self, audio: Audio, name: str | None = None) -> Enhanced:
        out = enhance(audio, denoise_audio=self.denoise_audio, target_dbfs=self.target_dbfs)
        if self.recordings_dir is None or not name:
            return Enhanced(out, None, None)
        stem = _SAFE.sub("_", name).strip("_") or "recording"
        original = write_wav(self.recordings_dir / f"{stem}.wav", audio)
        enhanced = write_wav(self.recordings_dir / "enhanced" / f"{stem}.wav", out)
        return Enhanced(out, original, enhanced)

    async def process(self, audio: Audio, name: str | None = None) -> Enhanced:
        return await asyncio.to_thread(self.run, audio, name)
