"""Audio only the ARI backend needs: TTS prompts written in the two WAV formats Asterisk plays, and
the level its recordings need. Everything else (codecs, WAV, resampling) is `speech.audio`."""

from __future__ import annotations

from pathlib import Path

from switchboard.speech.audio import Audio, normalize, resample, write_wav

__all__ = ["normalise_recording", "write_tts_sound"]


def normalise_recording(audio: Audio) -> Audio:
    """ARI recordings come out at about half the source amplitude: peak-normalise them to 0.9, with
    at most 18 dB of gain, leaving near-silence (peak below -54 dBFS) alone."""
    return normalize(audio, target_dbfs=0.0, peak_limit=0.9, max_gain_db=18.0, floor_dbfs=-54.0)


def write_tts_sound(path: Path, audio: Audio) -> None:
    """`<name>.wav` at 8 kHz and, for wideband sources, `<name>.wav16` at 16 kHz (Asterisk picks the
    one that suits the channel's codec). The 8 kHz file is written last: its existence means done."""
    if audio.sample_rate >= 16000:
        write_wav(path.with_suffix(".wav16"), resample(audio, 16000))
    write_wav(path, resample(audio, 8000))
