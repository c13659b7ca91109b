"""The quick start run again and again on the same data: `switchboard run` (the demo campaign on the
virtual clock) as a real process, three times on one data directory. Each run must call its
contacts and end; contacts with a final result from an earlier run must never come back forever,
and callers who opted out earlier are not called again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_demo(tmp_path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "200",
        "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"),
        "RECORDINGS_DIR": str(tmp_path / "recordings"), "TTS_CACHE_DIR": str(tmp_path / "tts"),
        "SCENARIOS_DIR": str(ROOT / "scenarios"), "PERSONAS_DIR": str(ROOT / "personas"),
        "STRATEGIES_DIR": str(ROOT / "strategies"), "METRICS_ENABLED": "false",
    }
    if "MODELS_DIR" in os.environ:
        env["MODELS_DIR"] = os.environ["MODELS_DIR"]
    return subprocess.run([sys.executable, "-m", "switchboard.cli", "run", "--no-console", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_demo_runs_three_times_on_the_same_data(tmp_path: Path) -> None:
    db = tmp_path / "data" / "switchboard.db"
    outputs = []
    for run in (1, 2, 3):
        proc = run_demo(tmp_path, "--text", "--contacts", "6", timeout=240)
        outputs.append(proc.stdout)
        assert proc.returncode == 0, f"run {run} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert "where the results are" in proc.stdout, proc.stdout[-2000:]
        campaigns = rows(db, "select id from campaigns order by id")
        assert len(campaigns) == run
        latest = campaigns[-1][0]
        statuses = dict(rows(db, f"select status, count(*) from contacts where campaign_id = {latest} group by status"))
        # Every contact of this run ended: done (a final result or attempts spent) or on the DNC list.
        assert set(statuses) <= {"done", "dnc"} and sum(statuses.values()) == 6, statuses
        dialed_now = rows(db, f"""select count(*) from calls c join contacts k on c.number_id = cast(k.id as text)
                                  where k.campaign_id = {latest} and c.line is not null""")[0][0]
        assert dialed_now >= statuses.get("done", 0), "the run's contacts were not dialed"
        # The contacts' own zone and the progress bar's total are shown.
        assert "UTC+03:30" in proc.stdout and "6/6 contacts done" in proc.stdout, proc.stdout[-2000:]
    # Numbers that asked not to be called are on the DNC list and no later run dialed them again.
    blocked = {p for (p,) in rows(db, "select phone_e164 from do_not_call")}
    for phone in blocked:
        added = rows(db, f"select added_at from do_not_call where phone_e164 = '{phone}'")[0][0]
        later = rows(db, f"""select count(*) from calls where phone_e164 = '{phone}' and line is not null
                             and originated_at > '{added}'""")[0][0]
        assert later == 0, f"{phone} was called after opting out"
    # Each run continues the story on a later day instead of rewinding the clock.
    starts = [line for out in outputs for line in out.splitlines() if line.startswith("demo campaign:")]
    assert len(starts) == 3 and len({s.split("starts ")[1][:3] for s in starts}) == 3, starts
    # The log file has the per-call lines an operator follows.
    log = (tmp_path / "logs" / "app.log").read_text(encoding="utf-8")
    assert "Placing call out-" in log and "ended: result=" in log and f"Registered {len(list((ROOT / 'scenarios').glob('*.yaml')))} scenarios with panel" in log
    assert "+98912300000" not in log, "phone numbers must be masked in the log file"


@pytest.mark.models
def test_demo_with_audio_runs_twice(tmp_path: Path) -> None:
    """The default demo (callers speak: TTS -> phone line -> VAD -> Whisper), twice on one data
    directory."""
    for run in (1, 2):
        proc = run_demo(tmp_path, "--contacts", "3", timeout=600)
        assert proc.returncode == 0, f"run {run} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert "3/3 contacts done" in proc.stdout, proc.stdout[-2000:]
