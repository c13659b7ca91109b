"""Prometheus metrics after a demo campaign: what a dashboard would show."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest
from rich.console import Console

from switchboard.app import run_main
from switchboard.observability.metrics import REGISTRY
from switchboard.settings import Settings


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_campaign_metrics(tmp_path: Path) -> None:
    before = generate_latest(REGISTRY).decode()
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs",  # type: ignore[call-arg]
                        max_attempts=1)
    assert run_main(settings, Console(file=open(tmp_path / "out.txt", "w")), contacts=15, audio=False) == 0
    after = generate_latest(REGISTRY).decode()
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "switchboard.db") as db:  # call backs booked on the way
        callbacks = db.execute("select count(*) from calls where callback_id is not null and line is not null").fetchone()[0]
    finished = sample(after, "switchboard_calls_total") - sample(before, "switchboard_calls_total")
    assert finished == 15 + callbacks  # one attempt per contact, plus each call back made
    originated = sample(after, "switchboard_originations_total") - sample(before, "switchboard_originations_total")
    assert originated == 15 + callbacks
    assert sample(after, "switchboard_active_calls", direction="outbound") == 0
    assert sample(after, "switchboard_calls_total", result="missed") >= 1
