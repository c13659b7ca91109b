"""The command line as a user runs it (a real subprocess of the installed `switchboard`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switchboard.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200",
                                                       "HOME": str(cwd)})


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    ok = sb("validate", "scenarios")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "salehi_language" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "scenarios/salehi_language.yaml").read_text(encoding="utf-8")
                   .replace("next: record_response}", "next: record_respons}")
                   .replace("type: classify_intent, next: route,", "type: clasify_intent, next: route,"),
                   encoding="utf-8")
    res = sb("validate", str(tmp_path))
    assert res.returncode == 1
    assert f"{bad}:20:" in res.stdout  # file:line:column of the bad target
    assert "unknown-target" in res.stdout and "unknown-step-type" in res.stdout


def test_schema_is_json_schema_with_every_step_type() -> None:
    res = sb("schema")
    assert res.returncode == 0
    schema = json.loads(res.stdout)
    defs = schema["$defs"]
    for step in ("entry", "play_prompt", "record", "classify_intent", "route_by_intent", "check_retry_limit",
                 "set_result", "transfer_to_operator", "disconnect", "hangup", "wait", "say", "set", "branch",
                 "goto"):
        assert f"step_{step}" in defs, step
    assert defs["step_record"]["additionalProperties"] is False


def test_simulate_json(tmp_path: Path) -> None:
    caller = tmp_path / "caller.yaml"
    caller.write_text('caller: {phone: "09123456789", replies: [{say: "نه ممنون"}]}\n', encoding="utf-8")
    res = sb("simulate", "scenarios/salehi_language.yaml", "--caller", str(caller), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["result"] == "not_interested"
    assert data["scenario"] == "salehi_language"
    assert data["steps"][:3] == ["start", "play_hello", "record_response"]
    assert data["transcripts"] == ["نه ممنون"] and data["intent"] == "no" and data["agent"] is None
    assert {"reason", "timeline"} <= set(data)


def test_simulate_inbound_table() -> None:
    res = sb("simulate", "scenarios/salehi_language.yaml", "--caller", "flowtests/callers/yes.yaml", "--inbound")
    assert res.returncode == 0, res.stderr
    assert "inbound_call" in res.stdout and "connect_agent" in res.stdout


def test_test_flows_passes_shipped_tests_and_fails_a_wrong_expectation(tmp_path: Path) -> None:
    res = sb("test-flows", "flowtests")
    assert res.returncode == 0, res.stdout
    count = len(list((ROOT / "flowtests").glob("*.yaml")))
    assert f"{count} passed, 0 failed" in res.stdout
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((ROOT / "flowtests/salehi_no.yaml").read_text(encoding="utf-8")
                     .replace("result: not_interested", "result: connected_to_operator"), encoding="utf-8")
    res = sb("test-flows", str(tmp_path))
    assert res.returncode == 1
    assert "0 passed, 1 failed" in res.stdout and "not_interested" in res.stdout


def test_run_demo_campaign_text_mode(tmp_path: Path) -> None:
    """The quick start's job: demo contacts in the built-in panel's SQLite store, dialed by the
    dialer over the simulated network until every contact has a final result."""
    import sqlite3

    res = subprocess.run([sys.executable, "-m", "switchboard.cli", "run", "--contacts", "25", "--text",
                          "--no-console"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path),
                              "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs")})
    assert res.returncode == 0, res.stdout + res.stderr
    summary = next(line for line in res.stdout.splitlines() if line.startswith("results:"))
    counts = {k: int(v) for k, v in (item.split("=") for item in summary[len("results: "):].split(", "))}
    assert sum(counts.values()) >= 25  # missed contacts are retried
    assert counts.get("not_interested", 0) >= 1
    db = sqlite3.connect(tmp_path / "data" / "switchboard.db")
    statuses = dict(db.execute("select status, count(*) from contacts group by status").fetchall())
    assert statuses == {"done": 25}
    delivered = dict(db.execute("select status, count(*) from results_outbox group by status").fetchall())
    assert delivered == {"delivered": sum(counts.values())}
    calls = db.execute("select count(*) from calls where result is not null").fetchone()[0]
    assert calls == sum(counts.values())
