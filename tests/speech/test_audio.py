from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from switchboard.speech import audio as A
from switchboard.telephony.call import Audio

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # reference G.711 implementation (stdlib until 3.13)

ALL_PCM = np.arange(-32768, 32768, dtype="<i2").tobytes()


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return A.from_float(amp * np.sin(2 * np.pi * freq * t), rate)


def dominant_freq(audio: Audio) -> float:
    x = A.to_float(audio)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / audio.sample_rate)[np.argmax(spectrum)])


def test_ulaw_matches_reference_for_every_sample() -> None:
    assert A.pcm16_to_ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)
    codes = bytes(range(256))
    assert A.ulaw_to_pcm16(codes) == audioop.ulaw2lin(codes, 2)


def test_alaw_matches_reference_for_every_sample() -> None:
    assert A.pcm16_to_alaw(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)
    codes = bytes(range(256))
    assert A.alaw_to_pcm16(codes) == audioop.alaw2lin(codes, 2)


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_codec_round_trip_keeps_the_signal(codec: str) -> None:
    clip = tone(440, 0.5, 8000)
    back = A.decode(A.encode(clip, codec), codec)  # type: ignore[arg-type]
    assert len(A.encode(clip, codec)) == len(clip.pcm) // 2  # type: ignore[arg-type]
    x, y = A.to_float(clip), A.to_float(back)
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
    assert snr > 30  # G.711 gives ~38 dB on a loud tone


@pytest.mark.parametrize("src,dst", [(8000, 16000), (16000, 8000), (22050, 8000), (24000, 16000),
                                     (48000, 8000), (8000, 48000), (22050, 16000)])
def test_resample_keeps_duration_and_pitch(src: int, dst: int) -> None:
    clip = tone(300, 1.0, src)
    out = A.resample(clip, dst)
    assert out.sample_rate == dst
    assert abs(out.duration - 1.0) < 0.002
    assert abs(dominant_freq(out) - 300) < 3


def test_resample_same_rate_is_identity() -> None:
    clip = tone(300, 0.1, 8000)
    assert A.resample(clip, 8000).pcm == clip.pcm


def test_levels_and_normalize() -> None:
    clip = tone(1000, 1.0, 16000, amp=0.5)
    assert A.rms(clip) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert A.peak(clip) == pytest.approx(0.5, rel=0.01)
    quiet = A.gain(clip, -30)
    assert A.dbfs(A.rms(quiet)) == pytest.approx(A.dbfs(A.rms(clip)) - 30, abs=0.2)
    loud = A.normalize(quiet, target_dbfs=-20)
    assert A.dbfs(A.rms(loud)) == pytest.approx(-20, abs=0.2)
    capped = A.normalize(quiet, target_dbfs=0, peak_limit=0.9)  # would clip: peak-limited instead
    assert A.peak(capped) == pytest.approx(0.9, abs=0.01)
    assert A.normalize(A.silence(1, 8000)).pcm == A.silence(1, 8000).pcm
    assert A.duration(clip) == pytest.approx(1.0)


def test_noise_at_requested_snr_is_deterministic() -> None:
    clip = tone(500, 2.0, 8000, amp=0.3)
    noisy = A.add_noise(clip, 10, seed=7)
    assert noisy.pcm == A.add_noise(clip, 10, seed=7).pcm
    x, y = A.to_float(clip), A.to_float(noisy)
    measured = 10 * np.log10(np.sum(x**2) / np.sum((y - x) ** 2))
    assert measured == pytest.approx(10, abs=0.5)


def test_wav_round_trip(tmp_path: Path) -> None:
    clip = tone(700, 0.3, 22050)
    path = A.write_wav(tmp_path / "sub" / "a.wav", clip)
    back = A.read_wav(path)
    assert back.sample_rate == 22050 and back.pcm == clip.pcm


def test_read_g711_and_stereo_wav() -> None:
    clip = tone(400, 0.2, 8000)
    ulaw = A.encode(clip, "ulaw")
    fmt = (7).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little") \
        + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" \
        + len(ulaw).to_bytes(4, "little") + ulaw
    wav = b"RIFF" + len(body).to_bytes(4, "little") + body
    assert A.read_wav_bytes(wav).pcm == A.decode(ulaw, "ulaw").pcm

    import io
    import wave
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.repeat(A.to_int16(clip), 2).astype("<i2").tobytes())
    mono = A.read_wav_bytes(buf.getvalue())
    assert mono.pcm == clip.pcm


def test_phone_line_round_trip(speech_clip: Audio) -> None:
    line = A.to_phone_line(speech_clip)
    assert len(line) == pytest.approx(speech_clip.duration * 8000, abs=2)  # one byte per sample
    back = A.from_phone_line(line)
    assert back.sample_rate == 8000
    assert back.duration == pytest.approx(speech_clip.duration, abs=0.001)
    assert A.rms(back) == pytest.approx(A.rms(A.resample(speech_clip, 8000)), rel=0.05)
    noisy = A.from_phone_line(A.to_phone_line(speech_clip, snr_db=5, seed=1))
    assert A.rms(noisy) > A.rms(back)
    alaw = A.from_phone_line(A.to_phone_line(speech_clip, codec="alaw"), codec="alaw")
    assert A.rms(alaw) == pytest.approx(A.rms(back), rel=0.05)


def test_frames_split_and_pad() -> None:
    clip = A.silence(0.05, 8000)  # 400 samples
    chunks = list(A.frames(clip, ms=20))  # 160 samples each
    assert [len(c) for c in chunks] == [320, 320, 320]
    assert b"".join(chunks)[: len(clip.pcm)] == clip.pcm


def test_through_phone_line_equals_encode_decode(speech_clip: Audio) -> None:
    heard = A.through_phone_line(speech_clip, snr_db=20, seed=4)
    assert heard.pcm == A.from_phone_line(A.to_phone_line(speech_clip, snr_db=20, seed=4)).pcm
    assert heard.sample_rate == 8000
