"""`switchboard run` with TELEPHONY_BACKEND=asterisk: the production path (dialer, built-in panel over
HTTP, metrics) as a real process, placing calls through the ARI double and stopping gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import httpx

from tests.asterisk.double import AriDouble, assert_no_leaks, until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def results(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("select phone_e164, result from calls where result is not null").fetchall()
        except sqlite3.OperationalError:
            return {}
    return dict(rows)


async def test_switchboard_run_places_calls_over_ari_and_stops_gracefully(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    async with AriDouble(scale=0.05, sounds_dir=str(sounds)) as ari:
        ari.sim.missing_sound_seconds = 1.0  # prompts the double lacks play as 1 s of silence
        ari.sim.route("09120000011", "customer-busy")
        ari.sim.route("09120000012", "customer-hangup")  # answers, hangs up during the greeting
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "TELEPHONY_BACKEND": "asterisk", "ARI_BASE_URL": ari.base_url, "ARI_WS_URL": ari.ws_url,
            "ARI_USERNAME": ari.username, "ARI_PASSWORD": ari.password, "ARI_APP_NAME": "switchboard",
            "OUTBOUND_NUMBERS": "02150001000", "DIAL_STRING_TEMPLATE": "PJSIP/{customer}@{trunk}",
            "STATIC_CONTACTS": "09120000011,09120000012", "MAX_ATTEMPTS": "1",
            "CALLING_HOURS_START": "00:00", "CALLING_HOURS_END": "23:59",
            "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"),
            "RECORDINGS_DIR": str(tmp_path / "recordings"), "AST_SOUND_DIR": str(sounds),
            "TTS_CACHE_DIR": str(tmp_path / "tts"), "MODELS_DIR": str(tmp_path / "models"),
            "PANEL_PORT": str(port), "BUILTIN_PANEL_TOKEN": "tok", "ARI_STREAMING": "false",
            "BUILTIN_PANEL_TOKEN_SCOPES": "dialer,read",  # this test's token also reads the state
        }
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "run", cwd=ROOT,
                                                    env=env, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        db = tmp_path / "data" / "switchboard.db"
        try:
            await until(lambda: len(results(db)) == 2 or proc.returncode is not None, 120)
            assert proc.returncode is None, "switchboard run exited early"
            assert results(db) == {"+989120000011": "missed", "+989120000012": "hangup"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                state = (await http.get("/api/v1/dialer", headers={"Authorization": "Bearer tok"})).json()
                assert state["contacts"] == {"done": 2}
                metrics = (await http.get("/metrics", headers={"Authorization": "Bearer tok"})).text
                assert 'switchboard_calls_total{direction="outbound"' in metrics
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()[-3000:]
        assert "stopping" in out.decode()
        await assert_no_leaks(ari)
