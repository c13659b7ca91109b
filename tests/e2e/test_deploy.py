"""deploy/: what can be checked without a Docker engine or systemd as PID 1. The compose file
parses and its references hold (services, build context and Dockerfile, env file example); every
path the Dockerfile copies exists; the systemd unit passes `systemd-analyze verify` (on machines
that have it) apart from the not-yet-installed executable."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"engine", "postgres", "redis"}
    engine = services["engine"]
    assert (DEPLOY / engine["build"]["context"] / engine["build"]["dockerfile"]).is_file()
    assert set(engine["depends_on"]) <= set(services)
    assert engine["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert engine["environment"]["REDIS_URL"].startswith("redis://redis:")
    for volume in engine["volumes"]:
        name = volume.split(":")[0]
        assert name in compose["volumes"] or (DEPLOY / name).resolve().exists(), volume
    assert (DEPLOY / "switchboard.env.example").is_file()
    for svc in ("postgres", "redis"):
        assert services[svc]["healthcheck"]["test"]


def test_dockerfile_copies_what_exists_and_runs_the_main_job() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), source
    assert 'ENTRYPOINT ["/opt/switchboard/.venv/bin/switchboard"]' in text and 'CMD ["run"]' in text
    assert "STOPSIGNAL SIGTERM" in text and "/healthz" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies() -> None:
    unit = DEPLOY / "systemd" / "switchboard.service"
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if line.strip() and "is not executable: No such file or directory" not in line]
    assert not problems, problems
    text = unit.read_text()
    assert "ExecStart=/opt/switchboard/.venv/bin/switchboard run" in text and "KillSignal=SIGTERM" in text
