from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchboard.speech import audio as A
from switchboard.speech.base import EmptyAudio
from switchboard.speech.empty import check_not_empty, empty_reason, is_empty
from switchboard.speech.enhance import Enhancer, denoise, enhance
from switchboard.telephony.call import Audio


def noise(seconds: float, rate: int, level: float, seed: int = 0) -> Audio:
    return A.from_float(np.random.default_rng(seed).normal(0, level, int(seconds * rate)), rate)


@pytest.mark.parametrize("audio,fragment", [
    (None, "no audio"),
    (Audio(b"", 8000), "no audio"),
    (Audio(b"\x10\x20" * 399, 8000), "bytes"),  # 798 bytes
    (Audio(b"\x00\x40" * 400, 16000), "s <"),  # 800 bytes = 0.025 s at 16 kHz
    (A.silence(1.0, 8000), "RMS"),
])
def test_empty_rules(audio: Audio | None, fragment: str) -> None:
    reason = empty_reason(audio)
    assert reason is not None and fragment in reason
    with pytest.raises(EmptyAudio):
        check_not_empty(audio)


def test_quiet_line_hiss_is_empty_but_soft_speech_is_not(speech_clip: Audio) -> None:
    assert is_empty(noise(1.0, 8000, 0.0005))  # RMS 0.0005 < 0.001
    soft = A.gain(A.resample(speech_clip, 8000), -30)
    assert A.rms(soft) > 0.001
    assert check_not_empty(soft) is soft


def test_boundaries() -> None:
    # exactly 0.1 s at 8 kHz = 1600 bytes, loud enough: not empty
    assert not is_empty(A.from_float(np.full(800, 0.1), 8000))
    # 0.099 s: too short even though > 800 bytes
    assert is_empty(A.from_float(np.full(792, 0.1), 8000))


def test_denoise_lowers_noise_and_keeps_speech(speech_clip: Audio) -> None:
    clean = A.concat([A.silence(0.5, 16000), A.resample(speech_clip, 16000), A.silence(0.5, 16000)])
    noisy = A.add_noise(clean, 15, seed=3)
    out = denoise(noisy)
    assert out.duration == pytest.approx(noisy.duration)
    lead = slice(0, 7000)  # the leading silence: only noise
    before = np.sqrt(np.mean(A.to_float(noisy)[lead] ** 2))
    after = np.sqrt(np.mean(A.to_float(out)[lead] ** 2))
    assert after < before * 0.6
    speech = slice(9000, 9000 + int(speech_clip.duration * 16000) - 2000)
    x, y = A.to_float(clean)[speech], A.to_float(out)[speech]
    corr = float(np.corrcoef(x, y)[0, 1])
    assert corr > 0.9


def test_enhance_normalises_quiet_audio(speech_clip: Audio) -> None:
    quiet = A.gain(A.resample(speech_clip, 8000), -25)
    out = enhance(quiet, target_dbfs=-20)
    assert A.dbfs(A.rms(out)) == pytest.approx(-20, abs=1.0)


async def test_enhancer_keeps_original_and_enhanced(tmp_path: Path, speech_clip: Audio) -> None:
    clip = A.gain(A.resample(speech_clip, 8000), -20)
    result = await Enhancer(tmp_path).process(clip, "call/42 step 1")
    assert result.original_path == tmp_path / "call_42_step_1.wav"
    assert result.enhanced_path == tmp_path / "enhanced" / "call_42_step_1.wav"
    assert A.read_wav(result.original_path).pcm == clip.pcm
    assert A.read_wav(result.enhanced_path).pcm == result.audio.pcm
    assert A.rms(result.audio) > A.rms(clip) * 2
    anonymous = await Enhancer(tmp_path).process(clip)
    assert anonymous.original_path is None
