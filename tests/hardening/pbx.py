"""Faults for the ARI double (tests/asterisk/double): an ASGI layer in front of it that answers what a
PBX answers while it is down or restarting, a log of every origination with whether our event
stream was connected at that moment, and a full node (`app.build_node`: dialer, built-in panel,
store, outbox) dialing through the real `AsteriskBackend` to the double."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard import app as sbapp
from switchboard.engine.operators import Operator
from switchboard.settings import Settings
from switchboard.store import NewContact
from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.call import Audio
from tests.asterisk.double import AriDouble

APP = "switchboard"
OPERATORS = ["1001", "1002"]
HERE = Path(__file__).resolve().parent
HTML_503 = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body><h1>Service "
            b"Unavailable</h1><p>The server is temporarily unable to service your request." + b" " * 4000 +
            b"</p><hr><address>Asterisk</address></body></html>")


@dataclass
class Fault:
    status: int
    body: bytes
    content_type: str


@dataclass
class PbxFaults:
    """ASGI middleware in front of the double: while `down` holds a `Fault` every REST request gets
    it; `only` limits a fault to (method, path prefix) pairs."""

    app: Any
    down: Fault | None = None
    only: set[tuple[str, str]] = field(default_factory=set)
    answered: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        fault = self.down
        if scope["type"] == "http" and fault is not None and (
                not self.only or any(scope["method"] == m and scope["path"].startswith(p) for m, p in self.only)):
            self.answered += 1
            await send({"type": "http.response.start", "status": fault.status,
                        "headers": [(b"content-type", fault.content_type.encode()),
                                    (b"content-length", str(len(fault.body)).encode())]})
            await send({"type": "http.response.body", "body": fault.body})
            return
        await self.app(scope, receive, send)


def html_503() -> Fault:
    return Fault(503, HTML_503, "text/html")


def allocation_failed() -> Fault:
    return Fault(500, b'{"error": "Allocation failed"}', "application/json")


async def start_double(tmp_path: Path, scale: float = 0.05) -> tuple[AriDouble, PbxFaults, list[tuple[str, bool]]]:
    """The double with a fault layer; the list records, per origination, the dialer's call id and
    whether an event stream of our application was connected when Asterisk received it."""
    sounds = tmp_path / "sounds"
    sounds.mkdir(exist_ok=True)
    ari = AriDouble(scale=scale, sounds_dir=str(sounds))
    ari.sim.missing_sound_seconds = 1.0
    faults = PbxFaults(ari.app)
    ari.app = faults  # type: ignore[assignment]
    for number in OPERATORS:
        ari.sim.route(number, "operator-answer")
    stream_up: list[tuple[str, bool]] = []
    original = ari.sim.originate

    async def originate(params: dict[str, str], body: Any, channel_id: str | None = None) -> Any:
        if params.get("appArgs", "").startswith("outbound"):
            call_id = str(((body or {}).get("variables") or {}).get("SWITCHBOARD_CALL_ID", ""))
            stream_up.append((call_id, ari.ws_connected(APP)))
        return await original(params, body, channel_id=channel_id)

    ari.sim.originate = originate  # type: ignore[method-assign]
    await ari.start()
    return ari, faults, stream_up


async def silence(_text: str, _language: str | None, _voice: str | None) -> Audio:
    return Audio(pcm=b"\x00\x00" * 4000, sample_rate=8000)  # 0.5 s


def node_settings(tmp_path: Path, ari: AriDouble, **overrides: Any) -> Settings:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir(exist_ok=True)
    shutil.copy(HERE / "data" / "every_step.yaml", scenarios / "every_step.yaml")
    values: dict[str, Any] = dict(
        _env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs",
        recordings_dir=tmp_path / "recordings", scenarios_dir=scenarios, telephony_backend="asterisk",
        ari_base_url=ari.base_url, ari_ws_url=ari.ws_url, ari_username=ari.username, ari_password=ari.password,
        ari_app_name=APP, ari_streaming=False, ast_sound_dir=str(ari.sim.sounds_dir), outbound_trunk="trunk",
        operator_trunk="operators", outbound_numbers="02150001000", dial_string_template="PJSIP/{customer}@{trunk}",
        calling_hours_start="00:00", calling_hours_end="23:59", panel_timezone="+0000", max_attempts=3,
        retry_delay_seconds=1, daily_attempts_per_contact=10, origination_timeout=30, operator_timeout=6,
        max_concurrent_calls=20, max_originations_per_second=50, fail_alert_threshold=1000, metrics_enabled=False,
        inbound_agents=",".join(OPERATORS), outbound_agents=",".join(OPERATORS), company="pbx")
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def node_over_ari(tmp_path: Path, ari: AriDouble, **overrides: Any) -> AsyncIterator[sbapp.Node]:
    settings = node_settings(tmp_path, ari, **overrides)
    backend = AsteriskBackend.from_settings(settings, synthesize=silence)
    backend.stream.backoff_initial = 0.05
    backend.stream.backoff_max = 0.2
    node = await sbapp.build_node(settings, backend=backend)
    node.engine.services.operators.set_roster(None, "outbound", [Operator(n) for n in OPERATORS])
    try:
        yield node
    finally:
        await node.close()


async def seed(node: sbapp.Node, numbers: list[str]) -> None:
    from switchboard.phones import normalize

    camp = await node.store.campaigns.get_or_create("faults", company=node.settings.company)
    fresh = []
    for n in numbers:
        p = normalize(n, "IR")
        fresh.append(NewContact(phone=n, phone_e164=p.e164, phone_national=p.national, name="Sara",
                                company=node.settings.company, campaign_id=camp.id))
    await node.store.contacts.add_many(fresh)
