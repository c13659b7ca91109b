"""`switchboard run` (the demo campaign on the virtual clock) serves the console: it prints the URL
and a one-time login, the live page updates over SSE while the campaign runs, Pause stops new
calls and Resume restarts them, a viewer sees masked numbers and cannot pause, and the console
keeps serving after the campaign until Ctrl-C."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import PASSWORD, ROOT, console_settings, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]


class Output:
    """The demo's stdout, collected by a thread so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not printed within {timeout}s:\n{self.text[-3000:]}")


def eventually(check: Any, timeout: float, what: str) -> None:
    """Poll from Python (the console's CSP allows no evaluated script, so no wait_for_function)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def outbound_calls(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute("select count(*) from calls where direction='outbound' and line is not null "
                                "and callback_id is null").fetchone()[0])  # call backs are extra calls


def test_the_demo_serves_the_console_while_the_campaign_runs(browser: Any, tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "250", "DATA_DIR": str(settings.data_dir),
           "LOGS_DIR": str(settings.logs_dir), "SCENARIOS_DIR": str(settings.scenarios_dir),
           "PANEL_PORT": str(settings.panel_port), "MAX_ATTEMPTS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "run", "--contacts", "14", "--text"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    admin = browser.new_context(viewport={"width": 1400, "height": 900})
    viewer = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        base = out.wait_for(r"console: (http://127\.0\.0\.1:\d+)", 120).group(1)
        link = out.wait_for(r"(http://127\.0\.0\.1:\d+/login/once/[A-Za-z0-9_-]+)", 10).group(1)
        page = admin.new_page()
        page.set_default_timeout(30_000)
        page.goto(link)
        shot(page, "login_once")
        page.click("#use-link")
        page.wait_for_url(f"{base}/account?first=1")
        shot(page, "account_first")
        page.fill("#password-form input[name=password]", PASSWORD)
        page.fill("#password-form input[name=again]", PASSWORD)
        page.click("#password-form button[type=submit]")
        page.wait_for_url(f"{base}/live")

        # The live page follows the campaign over SSE: calls appear with their step, and finish.
        eventually(lambda: int(page.get_attribute("#live-panel", "data-updates") or 0) >= 2, 60,
                   "two updates pushed over SSE")
        page.wait_for_selector("#live-calls tr[data-call]", timeout=120_000)
        shot(page, "live_campaign")
        row = page.inner_text("#live-calls tbody")
        assert "agrad_marketing" in row or "salehi_language" in row
        eventually(lambda: int(page.inner_text("#ended-total")) >= 2, 120, "two calls ended")

        # Pause: no new calls start; the page says who paused and why.
        # What the supervisor types survives the live pushes that re-render the panel meanwhile.
        page.fill("input[name=reason]", "checking the script")
        pushed = int(page.get_attribute("#live-panel", "data-updates") or 0)
        eventually(lambda: int(page.get_attribute("#live-panel", "data-updates") or 0) > pushed, 120,
                   "a push while typing")
        assert page.input_value("input[name=reason]") == "checking the script"
        page.click("#pause")
        assert "Dialing paused" in page.inner_text(".flash.ok")
        page.wait_for_selector("#dialer[data-state=paused]")
        assert page.inner_text("#pause-reason") == "paused by admin: checking the script"
        db = settings.data_dir / "switchboard.db"
        eventually(lambda: page.locator("#live-calls tr[data-call]").count() == 0, 120,
                   "calls in progress finish")
        held = outbound_calls(db)
        time.sleep(4)
        assert outbound_calls(db) == held  # nothing dialed while paused
        shot(page, "live_paused")

        # A viewer (created meanwhile with the CLI) sees the state but cannot pause.
        created = subprocess.run([sys.executable, "-m", "switchboard.cli", "users", "create", "vic", "--role",
                                  "viewer", "--password-stdin"], input=PASSWORD + "\n", cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert created.returncode == 0, created.stdout + created.stderr
        vpage = viewer.new_page()
        vpage.set_default_timeout(30_000)
        sign_in(vpage, base, "vic")
        assert vpage.get_attribute("#dialer", "data-state") == "paused"
        assert vpage.locator("#pause, #resume").count() == 0
        recent = vpage.inner_text("#live-recent")
        assert re.search(r"\+989\*\*\*\d{4}", recent) and not re.search(r"\+98912\d{7}", recent)
        csrf = vpage.get_attribute("meta[name=csrf-token]", "content")
        refused = vpage.request.post(f"{base}/live/resume", form={"csrf_token": csrf or ""})
        assert refused.status == 403
        shot(vpage, "live_as_viewer")

        # Resume: the campaign runs to its end, and the page says so.
        page.click("#resume")
        assert "Dialing resumed" in page.inner_text(".flash.ok")
        page.wait_for_selector("#dialer[data-state=finished]", timeout=300_000)
        out.wait_for(r"the console keeps serving at", 60)
        assert outbound_calls(db) == 14  # MAX_ATTEMPTS=1: one call per contact
        page.goto(f"{base}/calls")
        first = page.locator("#calls tr[data-call] a").first
        first.click()
        page.wait_for_selector("#timeline li")
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200  # still serving
        assert proc.poll() is None
    finally:
        admin.close()
        viewer.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, out.text[-3000:]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/healthz", timeout=3)
