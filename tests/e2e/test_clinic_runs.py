"""The clinic reminder, a scenario with its own results, under `switchboard run` as a real process:
over the simulator (the quick start's demo on the virtual clock) and over Asterisk (the ARI double,
callers speaking through Piper -> the PBX recording -> Whisper), plus `switchboard call` placing one
more call through the running node's API."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.asterisk.double import AriDouble, assert_no_leaks, until

ROOT = Path(__file__).resolve().parents[2]
DECLARED = {"appointment_confirmed": "connected_to_operator", "appointment_cancelled": "not_interested",
            "desk_unavailable": "disconnected", "no_response": "unknown"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_clinic(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "clinic_reminder.yaml").write_text((ROOT / "scenarios" / "clinic_reminder.yaml").read_text())
    return folder


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "200",
           "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"),
           "RECORDINGS_DIR": str(tmp_path / "recordings"), "TTS_CACHE_DIR": str(tmp_path / "tts"),
           "SCENARIOS_DIR": str(only_clinic(tmp_path)), "METRICS_ENABLED": "false",
           "MODELS_DIR": os.environ.get("MODELS_DIR", str(ROOT / ".cache" / "models"))}
    env.update(extra)
    return env


def rows(db: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def test_clinic_reminder_under_switchboard_run_over_the_simulator(tmp_path: Path) -> None:
    env = env_for(tmp_path, DAILY_ATTEMPTS_PER_CONTACT="5")
    proc = subprocess.run([sys.executable, "-m", "switchboard.cli", "run", "--no-console", "--text", "--contacts", "12"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    db = tmp_path / "data" / "switchboard.db"
    calls = rows(db, "select result, panel_status, number_id, originated_at from calls where line is not null")
    results = {r for r, *_ in calls}
    assert results & {"appointment_confirmed", "appointment_cancelled"}, results
    assert results <= set(DECLARED) | {"missed", "hangup", "connected_to_operator"}, results
    for result, status, *_ in calls:
        assert status == DECLARED.get(result, result), (result, status)
    # the built-in panel recorded the clinic's own names and finished every contact
    contacts = rows(db, "select status, last_result from contacts")
    assert len(contacts) == 12 and all(s == "done" for s, _ in contacts), contacts
    # outcomes reached the panel: status as declared, the result itself as outcome
    sent = rows(db, "select payload from results_outbox where status = 'delivered'")
    assert len(sent) == len(calls) and any('"outcome": "appointment_' in p for (p,) in sent)
    for line in ("appointment_confirmed", "appointment_cancelled"):
        if line in results:
            assert line in proc.stdout


@pytest.mark.models
async def test_clinic_reminder_under_switchboard_run_over_asterisk(tmp_path: Path) -> None:
    from tests.asterisk.test_flows_over_ari import CONTEXTS, Customer, said

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    async with AriDouble(scale=0.05, sounds_dir=str(sounds)) as ari:
        ari.sim.missing_sound_seconds = 1.0
        ari.sim.add_context("customer-listens", CONTEXTS["customer-listens"])
        for number in ("09120000011", "09120000012", "09120000014"):
            ari.sim.route(number, "customer-listens")
        ari.sim.route("09120000013", "customer-busy")
        ari.sim.route("1001", "operator-busy")  # the front desk is busy
        customer = Customer(ari, [await said("Yes, sure. I will be there."), await said("No, thank you.")])
        port = free_port()
        env = env_for(tmp_path, TELEPHONY_BACKEND="asterisk", ARI_BASE_URL=ari.base_url, ARI_WS_URL=ari.ws_url,
                      ARI_USERNAME=ari.username, ARI_PASSWORD=ari.password, ARI_APP_NAME="switchboard",
                      OUTBOUND_NUMBERS="02150001000", DIAL_STRING_TEMPLATE="PJSIP/{customer}@{trunk}",
                      STATIC_CONTACTS="09120000011,09120000012,09120000013", MAX_ATTEMPTS="1",
                      MAX_CONCURRENT_CALLS="1", OUTBOUND_AGENTS="1001", OPERATOR_TIMEOUT="10",
                      CALLING_HOURS_START="00:00", CALLING_HOURS_END="23:59", AST_SOUND_DIR=str(sounds),
                      PANEL_PORT=str(port), BUILTIN_PANEL_TOKEN="tok", ARI_STREAMING="false", STT_LANGUAGE="en",
                      BUILTIN_PANEL_TOKEN_SCOPES="dialer,read,write")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "run", cwd=ROOT,
                                                    env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        db = tmp_path / "data" / "switchboard.db"

        def results() -> dict[str, tuple[str, str]]:
            return {p: (r, s) for p, r, s in rows(db, "select phone_e164, result, panel_status from calls "
                                                      "where result is not null")}

        try:
            await until(lambda: len(results()) == 3 or proc.returncode is not None, 240)
            assert proc.returncode is None, "switchboard run exited early"
            assert results() == {"+989120000011": ("appointment_confirmed", "connected_to_operator"),
                                 "+989120000012": ("appointment_cancelled", "not_interested"),
                                 "+989120000013": ("missed", "missed")}, customer.spoken
            # one more, now, through the running node (the command line posts to its API)
            customer.replies.append(await said("I want to change it to another time."))
            called = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "switchboard.cli", "call", "09120000014", "--scenario", "clinic_reminder",
                "--name", "Sara", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(called.communicate(), 60)
            assert called.returncode == 0, out.decode()
            assert "call out-" in out.decode() and "clinic_reminder to +989120000014" in out.decode()
            await until(lambda: "+989120000014" in results(), 120)
            assert results()["+989120000014"] == ("desk_unavailable", "disconnected")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                         headers={"Authorization": "Bearer tok"}) as http:
                report = (await http.get("/api/v1/reports/results")).json()
                mine = {r["result"]: r for r in report["by_result"]}
                assert mine["appointment_confirmed"]["success"] and mine["appointment_confirmed"]["display_name"] == \
                    "Appointment confirmed"
                assert report["calls"] == 4 and report["success"] == 1
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()[-3000:]
        await assert_no_leaks(ari)
    log = (tmp_path / "logs" / "app.log").read_text()
    assert "Loaded scenario clinic_reminder" in log and "result=appointment_confirmed" in log
