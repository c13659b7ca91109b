"""`switchboard users` and `switchboard tokens` as a person types them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.console.conftest import ROOT, console_settings, serve_console


def sb(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(settings.data_dir.parent), "COLUMNS": "200",
           "DATA_DIR": str(settings.data_dir), "PANEL_PORT": str(settings.panel_port)}
    return subprocess.run([sys.executable, "-m", "switchboard.cli", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_users_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    made = sb(settings, "users", "create", "ann", "--role", "admin", "--password-stdin", stdin="long-enough-pw\n")
    assert made.returncode == 0 and "created ann (admin)" in made.stdout, made.stderr
    short = sb(settings, "users", "create", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    dup = sb(settings, "users", "create", "ann", "--password-stdin", stdin="long-enough-pw\n")
    assert dup.returncode == 1 and "exists" in dup.stderr
    bad_role = sb(settings, "users", "create", "carl", "--role", "root", "--link")
    assert bad_role.returncode == 1 and "role must be one of" in bad_role.stderr
    linked = sb(settings, "users", "create", "vic", "--role", "viewer", "--link")
    link = re.search(r"(http://127\.0\.0\.1:\d+/login/once/\S+)", linked.stdout)
    assert linked.returncode == 0 and link
    listed = sb(settings, "users", "list").stdout
    assert re.search(r"ann\s+│\s+admin\s+│\s+yes\s+│\s+set", listed) and re.search(r"vic\s+│\s+viewer", listed)
    token = sb(settings, "tokens", "create", "crm", "--scope", "read", "--scope", "write")
    secret = token.stdout.strip().splitlines()[-1]
    assert token.returncode == 0 and secret.startswith("sbt_")
    assert sb(settings, "tokens", "create", "x", "--scope", "root").returncode == 1
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        assert served.thread.login_url is None  # users exist: no first-start link
        assert http.get("/api/v1/scenarios", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert "Sign in as <strong>vic</strong>" in http.get(link.group(1).removeprefix(served.base)).text
        assert sb(settings, "tokens", "revoke", "crm").returncode == 0
        assert http.get("/api/v1/scenarios", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "crm" in sb(settings, "tokens", "list").stdout
    assert sb(settings, "tokens", "revoke", "nope").returncode == 1
