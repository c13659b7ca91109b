"""A campaign driven by an external panel: a second Switchboard process (`switchboard panel`)
serves the dialer contract over HTTP; `switchboard run` dials its contacts and reports back."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dialer_runs_an_external_panels_campaign(tmp_path: Path) -> None:
    panel_dir, dialer_dir = tmp_path / "panel", tmp_path / "dialer"
    port = free_port()
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200", "BUILTIN_PANEL_TOKEN": "s3cret"}
    csv = tmp_path / "contacts.csv"
    csv.write_text("phone,name\n" + "".join(f"0912000{i:04d},C{i}\n" for i in range(12)) + "12,bad\n")
    panel_env = {**base, "DATA_DIR": str(panel_dir), "LOGS_DIR": str(panel_dir / "logs"),
                 "PANEL_PORT": str(port), "MAX_ATTEMPTS": "1"}
    imported = subprocess.run([sys.executable, "-m", "switchboard.cli", "contacts", "import", str(csv)],
                              cwd=ROOT, env=panel_env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "12 imported, 1 rejected" in imported.stdout
    panel = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "panel"], cwd=ROOT, env=panel_env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        unauthorised = httpx.get(f"http://127.0.0.1:{port}/api/dialer/next-batch?size=1", timeout=5)
        assert unauthorised.status_code == 401
        dialer_env = {**base, "DATA_DIR": str(dialer_dir), "LOGS_DIR": str(dialer_dir / "logs"),
                      "PANEL_BASE_URL": f"http://127.0.0.1:{port}", "PANEL_API_TOKEN": "s3cret",
                      "MAX_ATTEMPTS": "1"}
        run = subprocess.run([sys.executable, "-m", "switchboard.cli", "run", "--text", "--no-console"], cwd=ROOT,
                             env=dialer_env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        panel.terminate()
        panel.wait(timeout=30)
    db = sqlite3.connect(panel_dir / "switchboard.db")
    rows = db.execute("select status, last_result from contacts").fetchall()
    assert len(rows) == 12
    assert all(status == "done" and result for status, result in rows), rows  # one attempt each (MAX_ATTEMPTS=1)
    receipts = db.execute("select count(*) from panel_receipts").fetchone()[0]
    assert receipts == 12  # each result applied once
    local = sqlite3.connect(dialer_dir / "switchboard.db")
    assert dict(local.execute("select status, count(*) from results_outbox group by status").fetchall()) == {
        "delivered": 12}
