"""The few WAV/PCM helpers the ARI backend needs (kept here so the backend does not depend on the
speech package's internals): read Asterisk's recordings, write prompts Asterisk can play, and undo
the roughly half amplitude that ARI recordings come out with."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from switchboard.telephony.call import Audio


def read_wav(data: bytes) -> Audio:
    """PCM16 WAV bytes -> mono Audio (multi-channel files are averaged)."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit WAV, got {8 * wav.getsampwidth()}-bit")
        frames = wav.readframes(wav.getnframes())
        channels = wav.getnchannels()
        rate = wav.getframerate()
    if channels > 1:
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).mean(axis=1)
        frames = samples.astype("<i2").tobytes()
    return Audio(pcm=frames, sample_rate=rate)


def wav_bytes(audio: Audio) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.pcm)
    return buf.getvalue()


def write_wav(path: Path, audio: Audio) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(wav_bytes(audio))
    tmp.replace(path)  # Asterisk must never see a half-written file
    return path


def resample(audio: Audio, rate: int) -> Audio:
    if audio.sample_rate == rate or not audio.pcm:
        return Audio(audio.pcm, rate if not audio.pcm else audio.sample_rate)
    import soxr

    samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32) / 32768.0
    out = soxr.resample(samples, audio.sample_rate, rate)
    return Audio(np.clip(out * 32768.0, -32768, 32767).astype("<i2").tobytes(), rate)


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
