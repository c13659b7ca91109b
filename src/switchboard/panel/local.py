"""`LocalPanel`: the panel contract served from the local database. The built-in HTTP panel
(`server.py`) is a thin layer over it, and a standalone dialer can use it in-process with the same
methods as `PanelClient` (next_batch, register_*, report_result, send_alert)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from datetime import datetime, timedelta

from switchboard import clock
from switchboard.engine.results import ResultCatalog
from switchboard.panel.client import DeliveryOutcome
from switchboard.panel.contract import (
    AgentRef,
    BatchOut,
    LineRef,
    NextBatch,
    NextBatchResponse,
    NumberItem,
    OutboundLineRegistration,
    ReportResultRequest,
    ScenarioRef,
    ScenarioRegistration,
    parse_next_batch,
)
from switchboard.phones import try_normalize
from switchboard.settings import Settings
from switchboard.store import LineSpec, ReportedResult, RetryDecision, RetryPolicy, Store
from switchboard.store.models import Operator, OutboundLine
from switchboard.store.models import ScenarioRegistration as ScenarioRow
from switchboard.store.reports import ApplyOutcome

log = logging.getLogger(__name__)

PAUSED_KEY = "panel.paused.{company}"


class LocalPanel:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        retry_policy: RetryPolicy | None = None,
        results: ResultCatalog | None = None,
        lease_owner: str = "builtin-panel",
        lease_seconds: float = 1800.0,
        roster_ttl: float = 1.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.company = settings.company
        # What each reported result means (built in, or declared by a scenario): final, or due
        # again after its delay. An explicit `retry_policy` (tests) replaces it.
        self.results = results or ResultCatalog(default_retry=settings.retry_delay_seconds)
        self.retry_policy = retry_policy
        self.lease_owner = lease_owner
        self.lease_seconds = lease_seconds
        self.roster_ttl = roster_ttl
        self._roster_cache: dict[str, tuple[float, dict[str, list[Any]]]] = {}

    # --- pause switch (admin) -------------------------------------------------------------------

    async def is_paused(self, company: str | None = None) -> bool:
        return bool(await self.store.kv.get(PAUSED_KEY.format(company=company or self.company), False))

    async def set_paused(self, paused: bool, company: str | None = None) -> None:
        await self.store.kv.set(PAUSED_KEY.format(company=company or self.company), paused)

    # --- the contract ---------------------------------------------------------------------------

    async def next_batch_response(
        self, size: int, company: str | None = None, *, owner: str | None = None
    ) -> NextBatchResponse:
        company = company or self.company
        paused = await self.is_paused(company)
        numbers: list[NumberItem] = []
        batch_id: int | None = None
        if not paused and size > 0:
            batch_id, contacts = await self.store.contacts.lease_batch(
                owner or self.lease_owner, size, company=company, lease_seconds=self.lease_seconds
            )
            numbers = [NumberItem(id=c.id, phone_number=c.phone_e164) for c in contacts]
        roster = await self._roster(company)
        return NextBatchResponse(
            call_allowed=not paused,
            batch=BatchOut(batch_id=batch_id, numbers=numbers),
            timezone=self.settings.panel_timezone,
            server_time=clock.now(),
            **roster,
        )

    async def _roster(self, company: str) -> dict[str, list[Any]]:
        """Scenarios, agents and lines, read in one session and reused for `roster_ttl` seconds
        (the dialer polls next-batch often; rosters change rarely)."""
        cached = self._roster_cache.get(company)
        if cached is not None and clock.monotonic() - cached[0] < self.roster_ttl:
            return cached[1]
        async with self.store.sessions() as s:
            scenarios = (
                await s.scalars(
                    select(ScenarioRow)
                    .where(ScenarioRow.company == company, ScenarioRow.active)
                    .order_by(ScenarioRow.id)
                )
            ).all()
            operators = (
                await s.scalars(
                    select(Operator).where(Operator.company == company, Operator.active).order_by(Operator.id)
                )
            ).all()
            lines = (
                await s.scalars(
                    select(OutboundLine)
                    .where(OutboundLine.company == company, OutboundLine.active)
                    .order_by(OutboundLine.id)
                )
            ).all()
        roster: dict[str, list[Any]] = dict(
            active_scenarios=[ScenarioRef(id=x.id, name=x.name) for x in scenarios],
            inbound_agents=[
                AgentRef(id=o.id, phone_number=o.phone_number) for o in operators if o.direction == "inbound"
            ],
            outbound_agents=[
                AgentRef(id=o.id, phone_number=o.phone_number) for o in operators if o.direction == "outbound"
            ],
            outbound_lines=[LineRef(id=x.id, phone_number=x.phone_number) for x in lines],
        )
        self._roster_cache[company] = (clock.monotonic(), roster)
        return roster

    def invalidate_roster(self) -> None:
        self._roster_cache.clear()

    async def next_batch(self, size: int) -> NextBatch:
        resp = await self.next_batch_response(size)
        return parse_next_batch(resp.model_dump(mode="json"), self.settings.default_region)

    async def register_scenarios(
        self, scenarios: Sequence[ScenarioRegistration | tuple[str, str]], company: str | None = None
    ) -> DeliveryOutcome:
        pairs = [
            (s.name, s.display_name) if isinstance(s, ScenarioRegistration) else (s[0], s[1])
            for s in scenarios
        ]
        await self.store.scenarios.register(pairs, company=company or self.company)
        self.invalidate_roster()
        return DeliveryOutcome(True, 200)

    async def register_outbound_lines(
        self, lines: Sequence[OutboundLineRegistration | tuple[str, str]], company: str | None = None
    ) -> DeliveryOutcome:
        specs = [
            LineSpec(line.phone_number, line.display_name)
            if isinstance(line, OutboundLineRegistration)
            else LineSpec(line[0], line[1])
            for line in lines
        ]
        await self.store.lines.upsert_many(specs, company=company or self.company)
        self.invalidate_roster()
        return DeliveryOutcome(True, 200)

    def _policy(self, scenario: str | None, callback: bool) -> RetryPolicy:
        if self.retry_policy is not None and not callback:
            return self.retry_policy
        results = self.results

        def decide(result: str, attempts: int, max_attempts: int, at: datetime) -> RetryDecision:
            # A call back's own retries are the dialer's (the call back row): the contact stays done.
            delay = results.retry_delay(result, scenario)
            if callback or delay is None or attempts >= max_attempts:
                return RetryDecision(final=True)
            return RetryDecision(final=False, next_attempt_at=at + timedelta(seconds=delay))

        return decide

    async def _scenario_name(self, report: ReportResultRequest, company: str) -> str | None:
        """The scenario a report concerns: its `scenario` field (older bodies), else the name of the
        panel's scenario id."""
        if report.scenario:
            return report.scenario
        if report.scenario_id is None:
            return None
        roster = await self._roster(company)
        return next((s.name for s in roster["active_scenarios"] if str(s.id) == str(report.scenario_id)), None)

    async def apply_report(self, report: ReportResultRequest, idempotency_key: str) -> ApplyOutcome:
        number_id: int | None = None
        if report.number_id is not None:
            try:
                number_id = int(report.number_id)
            except (TypeError, ValueError):
                number_id = None
        phone = try_normalize(report.phone_number, self.settings.default_region)
        return await self.store.reports.apply(
            idempotency_key,
            ReportedResult(
                company=report.company,
                status=report.outcome or report.status,
                number_id=number_id,
                phone_e164=phone.e164 if phone else None,
                reason=report.reason,
                attempted_at=report.attempted_at,
            ),
            policy=self._policy(await self._scenario_name(report, report.company), report.callback_id is not None),
            default_max_attempts=self.settings.max_attempts,
        )

    async def report_result(
        self, report: ReportResultRequest, *, idempotency_key: str, retries: int | None = None
    ) -> DeliveryOutcome:
        outcome = await self.apply_report(report, idempotency_key)
        return DeliveryOutcome(True, 200, duplicate=outcome.duplicate)

    async def send_alert(
        self, kind: str, message: str, details: dict[str, Any] | None = None, company: str | None = None
    ) -> DeliveryOutcome:
        await self.store.alerts.add(kind, message, company=company or self.company, details=details)
        log.warning("dialer alert [%s]: %s", kind, message)
        return DeliveryOutcome(True, 200)
