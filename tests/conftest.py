"""Shared test fixtures. Areas keep their own fixtures in tests/<area>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def scenarios_dir() -> Path:
    return ROOT / "scenarios"
