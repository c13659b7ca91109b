"""The panel a running node serves: the dialer's live state, an admin resuming dialing after the
failure threshold paused it, and the brain's strategy API behind the same token."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from switchboard.app import build_node
from switchboard.panel.server import create_panel_app
from switchboard.settings import Settings
from tests.panel.conftest import make_token


async def test_admin_resume_and_status_and_strategies(tmp_path: Path, serve_app) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs",  # type: ignore[call-arg]
                        fail_alert_threshold=2, builtin_panel_token="tok", outbound_numbers="02191000001")
    node = await build_node(settings)
    brain = node.engine.services.extras["brain"]
    app = create_panel_app(node.store, settings, list_scenarios=node.registry.get_names, dialer=node.dialer,
                           routers=[brain.router()])
    try:
        await node.dialer.start()
        await node.dialer._provider_failed("trunk", "congestion")
        await node.dialer._provider_failed("trunk", "congestion")
        assert node.dialer.health.paused
        # BUILTIN_PANEL_TOKEN ("tok") serves the dialer contract only; a supervisor's machine token
        # (read, control, write) reads the state, resumes dialing and posts strategies.
        auth = {"Authorization": f"Bearer {await make_token(node.store, settings, 'read', 'control', 'write')}"}
        async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
            state = (await http.get("/api/v1/dialer", headers=auth)).json()
            assert state["failure_pause"] == "trunk" and state["active_calls"] == 0
            assert (await http.post("/api/v1/dialer/resume")).status_code == 401
            dialer_token = {"Authorization": "Bearer tok"}
            assert (await http.post("/api/v1/dialer/resume", headers=dialer_token)).status_code == 403
            assert (await http.post("/api/v1/dialer/resume", headers=auth)).json() == {"paused": False}
            assert not node.dialer.health.paused
            assert (await http.get("/api/v1/dialer", headers=auth)).json()["failure_pause"] is None
            alerts = (await http.get("/api/v1/alerts", headers=auth)).json()
            assert any("paused" in str(a) for a in alerts)  # the panel was told when dialing paused

            root = Path(__file__).resolve().parents[2]
            payload = yaml.safe_load((root / "strategies/spring_promo.yaml").read_text())["strategy"]
            assert (await http.post("/api/v1/strategies", json=payload)).status_code == 401
            created = await http.post("/api/v1/strategies", json=payload, headers=auth)
            assert created.status_code == 201, created.text
            listed = (await http.get("/api/v1/strategies", headers=auth)).json()
            assert any(s["id"] == created.json()["id"] for s in listed)
    finally:
        await node.close()
