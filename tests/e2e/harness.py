"""Helpers for the end-to-end dialer tests: Settings pointed at tmp_path, the real node from
`app.build_node` over a `SimBackend`, contact seeding, an auditing limiter wrapper and an
independent recount of every limit from the calls table."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select

from switchboard import app as sbapp
from switchboard.dialer.audit import LimitAudit
from switchboard.dialer.lines import Busy, Grant, LineLimiter, LineLoad, OutboundLine, ScenarioLimit
from switchboard.engine.operators import Operator
from switchboard.phones import normalize
from switchboard.settings import Settings
from switchboard.store import NewContact, Store
from switchboard.store.models import CallRecord, Contact, OutboxItem, PanelReceipt
from switchboard.telephony.sim.backend import SimBackend
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerScript

ROOT = Path(__file__).resolve().parents[2]
E2E_SCENARIOS = Path(__file__).resolve().parent / "scenarios"
OPERATORS = ["09121110001", "09121110002", "09121110003"]


def scenarios_dir(tmp_path: Path, *repo_scenarios: str) -> Path:
    """A scenarios folder holding only the named scenarios of the repository (and/or e2e_quick)."""
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    for name in repo_scenarios:
        source = E2E_SCENARIOS / f"{name}.yaml"
        if not source.exists():
            source = ROOT / "scenarios" / f"{name}.yaml"
        shutil.copy(source, folder / source.name)
    return folder


def e2e_settings(tmp_path: Path, *scenarios: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        _env_file=None,
        data_dir=tmp_path / "data",
        logs_dir=tmp_path / "logs",
        recordings_dir=tmp_path / "recordings",
        scenarios_dir=scenarios_dir(tmp_path, *(scenarios or ("agrad_marketing",))),
        company="e2e",
        sim_audio=False,
        panel_timezone="+0000",
        calling_hours_start="00:00",
        calling_hours_end="23:59",
        inbound_agents=",".join(OPERATORS),
        outbound_agents=",".join(OPERATORS),
        metrics_enabled=False,
    )
    values.update(overrides)
    return Settings(**values)


def line(number: str, concurrent: int, per_minute: int, per_day: int) -> OutboundLine:
    from switchboard.dialer.lines import LineLimits

    return OutboundLine(id=number, phone_number=number, display_name=number,
                        limits=LineLimits(concurrent, per_minute, per_day))


# --- auditing limiter ---------------------------------------------------------------------------
class AuditedLimiter:
    """Wraps the real limiter and feeds every grant/release to a `LimitAudit` (starts recorded
    right after a grant, ends right before the release, inbound waits while they wait)."""

    def __init__(self, inner: LineLimiter, audit: LimitAudit) -> None:
        self.inner = inner
        self.audit = audit
        self._open: dict[str, tuple[OutboundLine, ScenarioLimit | None]] = {}
        self.grants: list[Grant] = []

    async def acquire_outbound(self, lines: Sequence[OutboundLine],
                               scenario: ScenarioLimit | None = None) -> Grant | Busy:
        result = await self.inner.acquire_outbound(lines, scenario)
        if isinstance(result, Grant):
            limited = scenario if scenario is not None and scenario.limited else None
            self.audit.start(result.line, result.at.timestamp(), direction="outbound", scenario=limited)
            self._open[result.token] = (result.line, limited)
            self.grants.append(result)
        return result

    async def acquire_inbound(self, line: OutboundLine, timeout: float | None = None) -> Grant | None:
        self.audit.inbound_waiting(line, +1)
        try:
            grant = await self.inner.acquire_inbound(line, timeout)
        finally:
            self.audit.inbound_waiting(line, -1)
        if grant is not None:
            self.audit.start(line, grant.at.timestamp(), direction="inbound")
            self._open[grant.token] = (line, None)
            self.grants.append(grant)
        return grant

    async def release(self, grant: Grant) -> None:
        held = self._open.pop(grant.token, None)
        if held is not None:
            self.audit.end(held[0], scenario=held[1])
        await self.inner.release(grant)

    async def refund(self, grant: Grant) -> None:
        held = self._open.pop(grant.token, None)
        if held is not None and grant.direction == "outbound":
            self.audit.cancel(held[0], grant.at.timestamp(), scenario=held[1])
        elif held is not None:
            self.audit.end(held[0], scenario=held[1])
        await self.inner.refund(grant)

    async def wait_for_release(self, timeout: float | None) -> None:
        await self.inner.wait_for_release(timeout)

    async def load(self, line: OutboundLine) -> LineLoad:
        return await self.inner.load(line)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- the node -----------------------------------------------------------------------------------
@dataclass
class Harness:
    node: Any  # app.Node
    backend: SimBackend
    audit: LimitAudit | None = None
    limiter: AuditedLimiter | None = None
    ended: list[Any] = field(default_factory=list)  # CallContext of every call, in end order

    @property
    def store(self) -> Store:
        return self.node.store

    @property
    def dialer(self) -> Any:
        return self.node.dialer


ScriptFn = Callable[[str, dict[str, str]], CallerScript]


@contextlib.asynccontextmanager
async def running_node(
    settings: Settings,
    *,
    script: ScriptFn | None = None,
    scripts: dict[str, CallerScript] | None = None,
    lines: list[OutboundLine] | None = None,
    inbound_callers: list[tuple[float, CallerScript, str]] | None = None,
    audit_rate: float | None = None,
    network: SimNetwork | None = None,
    start: bool = True,
) -> AsyncIterator[Harness]:
    """The real node (`app.build_node`) over a SimBackend on the running (virtual) loop; the
    deliverer and the dialer started; closed (graceful stop, outbox flushed) on exit."""
    backend = SimBackend(network=network or SimNetwork(origination_timeout=float(settings.origination_timeout)),
                         scripts=dict(scripts or {}),
                         inbound_callers=list(inbound_callers or []))
    if script is not None:
        backend.default_script = script
    node = await sbapp.build_node(settings, virtual_clock=True, backend=backend)
    harness = Harness(node, backend)
    if lines is not None:
        node.dialer.lines = list(lines)
    if audit_rate is not None:
        from switchboard.dialer.lines import parse_timezone

        harness.audit = LimitAudit(originations_per_second=audit_rate, tz=parse_timezone(settings.panel_timezone))
        harness.limiter = AuditedLimiter(node.dialer.limiter, harness.audit)
        node.dialer.limiter = harness.limiter
    operators = [Operator(n, str(i)) for i, n in enumerate(OPERATORS, 1)]
    node.engine.services.operators.set_roster(None, "inbound", operators)
    node.engine.services.operators.set_roster(None, "outbound", operators)
    node.dialer.on_call_end = harness.ended.append
    # Fewer idle polls through simulated nights (each costs real time); submitting a result still
    # wakes the deliverer at once.
    node.dialer.max_poll = 900.0
    node.deliverer.poll_interval = 900.0
    try:
        if start:
            await node.deliverer.start()
            await node.dialer.start()
        yield harness
    finally:
        await node.close()


async def seed(store: Store, settings: Settings, phones: Iterable[str], *, timezone: str | None = None,
               campaign: str | None = None, due: datetime | None = None,
               attributes: dict[str, Any] | None = None) -> list[int]:
    """Add contacts to the built-in panel's store; returns their ids in order."""
    campaign_id = None
    if campaign is not None:
        campaign_id = (await store.campaigns.get_or_create(campaign, company=settings.company)).id
    rows = []
    for phone in phones:
        number = normalize(phone, settings.default_region)
        rows.append(await store.contacts.add(NewContact(
            phone=phone, phone_e164=number.e164, phone_national=number.national, timezone=timezone,
            company=settings.company, campaign_id=campaign_id, next_attempt_at=due,
            attributes=dict(attributes or {}))))
    return [r.id for r in rows]


def iran_phones(count: int, start: int = 0) -> list[str]:
    return [f"0912{3000000 + start + i:07d}" for i in range(count)]


async def all_calls(store: Store) -> list[CallRecord]:
    async with store.sessions() as s:
        return list((await s.scalars(select(CallRecord).order_by(CallRecord.originated_at, CallRecord.id))).all())


async def all_contacts(store: Store) -> list[Contact]:
    async with store.sessions() as s:
        return list((await s.scalars(select(Contact).order_by(Contact.id))).all())


async def all_outbox(store: Store) -> list[OutboxItem]:
    async with store.sessions() as s:
        return list((await s.scalars(select(OutboxItem).order_by(OutboxItem.id))).all())


async def all_receipts(store: Store) -> list[PanelReceipt]:
    async with store.sessions() as s:
        return list((await s.scalars(select(PanelReceipt))).all())


def dialed(calls: Iterable[CallRecord]) -> list[CallRecord]:
    """Outbound calls that were really originated (not refusals/rejections recorded without a line)."""
    return [c for c in calls if c.direction == "outbound" and c.line is not None]


def recount(calls: Iterable[CallRecord], lines: Sequence[OutboundLine], *, rate: float,
            tz: tzinfo = UTC, unfinished_end: datetime | None = None, tolerance: float = 1e-6) -> LimitAudit:
    """Replay the calls table (originated_at .. ended_at per line) through a fresh `LimitAudit`:
    a second, independent count of concurrency (inbound included), per-minute, per-day and the
    global originations-per-second. A call that never ended counts as active until `unfinished_end`."""
    by_number = {ln.phone_number: ln for ln in lines}
    audit = LimitAudit(originations_per_second=rate, tz=tz, tolerance=tolerance)
    events: list[tuple[float, int, str, OutboundLine]] = []
    for c in calls:
        if c.line is None or c.originated_at is None or (c.result or "") == "failed:line_busy":
            continue
        ln = by_number[c.line]
        end = c.ended_at or unfinished_end
        events.append((c.originated_at.timestamp(), 1, c.direction, ln))
        if end is not None:
            events.append((end.timestamp(), 0, c.direction, ln))
    for t, kind, direction, ln in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 1:
            audit.start(ln, t, direction=direction)
        else:
            audit.end(ln)
    return audit
