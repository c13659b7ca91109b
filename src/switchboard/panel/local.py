"""`LocalPanel`: the panel contract served from the local database. The built-in HTTP panel
(`server.py`) is a thin layer over it, and a standalone dialer can use it in-process with the same
methods as `PanelClient` (next_batch, register_*, report_result, send_alert)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

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
from switchboard.settings import Settings
from switchboard.store import LineSpec, ReportedResult, RetryDecision, RetryPolicy, Store
from switchboard.store.models import Operator, OutboundLine
from switchboard.store.models import ScenarioRegistration as ScenarioRow
from switchboard.store.reports import ApplyOutcome

log = logging.getLogger(__name__)

PAUSED_KEY = "panel.paused.{company}"
MAX_GROUP = 200  # report-result applications committed together at most


class _GroupCommit:
    """report-result applications queued while a transaction runs are committed together in the
    next one (one commit for the group): concurrent reports cost a few statements in all, not a
    few each. A group refused as a whole (a key another process took meanwhile) is applied one
    by one, so each report gets its own answer."""

    def __init__(self, store: Store, default_max_attempts: int) -> None:
        self.store = store
        self.default_max_attempts = default_max_attempts
        self._pending: list[tuple[str, ReportedResult, RetryPolicy, asyncio.Future[ApplyOutcome]]] = []
        self._task: asyncio.Task[None] | None = None

    async def apply(self, key: str, report: ReportedResult, policy: RetryPolicy) -> ApplyOutcome:
        future: asyncio.Future[ApplyOutcome] = asyncio.get_running_loop().create_future()
        self._pending.append((key, report, policy, future))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())
        return await asyncio.shield(future)  # a client that goes away does not undo its report

    async def _drain(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                outcomes = await self.store.reports.apply_many([(k, r, p) for k, r, p, _ in group],
                                                               default_max_attempts=self.default_max_attempts)
            except IntegrityError:
                for key, report, policy, future in group:
                    try:
                        out = await self.store.reports.apply(key, report, policy=policy,
                                                             default_max_attempts=self.default_max_attempts)
                    except Exception as exc:  # noqa: BLE001 - this report's answer is the error
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(out)
                continue
            except Exception as exc:  # noqa: BLE001 - every report of the group gets the error
                for *_, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), out in zip(group, outcomes):
                if not future.done():
                    future.set_result(out)


def report_hash(report: ReportResultRequest) -> str:
    """sha256 of a report's canonical JSON: what an idempotency key promises not to change."""
    import hashlib
    import json

    canonical = json.dumps(report.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
        self._reports = _GroupCommit(store, settings.max_attempts)
        self.lease_owner = lease_owner
        self.lease_seconds = lease_seconds
        self.roster_ttl = roster_ttl
        self._roster_cache: dict[str, tuple[float, dict[str, list[Any]]]] = {}
        self._roster_json: dict[str, tuple[float, str]] = {}
        self._paused: dict[str, tuple[float, bool]] = {}

    # --- pause switch (admin) -------------------------------------------------------------------

    async def is_paused(self, company: str | None = None) -> bool:
        """The admin switch, re-read at most every `roster_ttl` seconds (next-batch is polled often;
        a switch flipped in another process shows within that time)."""
        company = company or self.company
        cached = self._paused.get(company)
        if cached is not None and clock.monotonic() - cached[0] < self.roster_ttl:
            return cached[1]
        paused = bool(await self.store.kv.get(PAUSED_KEY.format(company=company), False))
        self._paused[company] = (clock.monotonic(), paused)
        return paused

    async def set_paused(self, paused: bool, company: str | None = None) -> None:
        company = company or self.company
        await self.store.kv.set(PAUSED_KEY.format(company=company), paused)
        self._paused[company] = (clock.monotonic(), paused)

    # --- the contract ---------------------------------------------------------------------------

    async def next_batch_response(
        self, size: int, company: str | None = None, *, owner: str | None = None
    ) -> NextBatchResponse:
        company = company or self.company
        paused = await self.is_paused(company)
        numbers: list[NumberItem] = []
        batch_id: int | None = None
        if not paused and size > 0:
            batch_id, leased = await self.store.contacts.lease_numbers(
                owner or self.lease_owner, size, company=company, lease_seconds=self.lease_seconds
            )
            numbers = [NumberItem(id=i, phone_number=p) for i, p in leased]
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
        self._roster_json.clear()

    async def next_batch_body(self, size: int, company: str | None = None, *, owner: str | None = None) -> bytes:
        """The next-batch answer as JSON bytes, built directly (the HTTP route's hot path: the
        same document as `next_batch_response`, without building and re-validating a model of
        each number)."""
        company = company or self.company
        paused = await self.is_paused(company)
        batch_id: int | None = None
        leased: list[tuple[int, str]] = []
        if not paused and size > 0:
            batch_id, leased = await self.store.contacts.lease_numbers(
                owner or self.lease_owner, size, company=company, lease_seconds=self.lease_seconds)
        cached = self._roster_json.get(company)
        if cached is None or clock.monotonic() - cached[0] >= self.roster_ttl:
            roster = await self._roster(company)
            fragment = json.dumps({k: [item.model_dump(mode="json") for item in v] for k, v in roster.items()},
                                  ensure_ascii=False)[1:-1]
            cached = (clock.monotonic(), fragment)
            self._roster_json[company] = cached
        numbers = ",".join(f'{{"id":{i},"phone_number":{json.dumps(p)}}}' for i, p in leased)
        return (f'{{"call_allowed":{"false" if paused else "true"},"batch":{{"batch_id":'
                f'{"null" if batch_id is None else batch_id},"numbers":[{numbers}]}},{cached[1]},'
                f'"timezone":{json.dumps(self.settings.panel_timezone)},'
                f'"server_time":"{clock.now().isoformat().replace("+00:00", "Z")}"}}').encode()

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
        """Apply once per key; the same key with a different body is a conflict (`outcome.conflict`)."""
        number_id: int | None = None
        if report.number_id is not None:
            try:
                number_id = int(report.number_id)
            except (TypeError, ValueError):
                number_id = None
            if number_id is not None and not 1 <= number_id < 2**63:  # not a row id (a 64-bit column)
                number_id = None
        return await self._reports.apply(
            idempotency_key,
            ReportedResult(
                company=report.company,
                status=report.outcome or report.status,
                number_id=number_id,
                reason=report.reason,
                attempted_at=report.attempted_at,
                phone_raw=report.phone_number,
                region=self.settings.default_region,
                body_hash=report_hash(report),
            ),
            self._policy(await self._scenario_name(report, report.company), report.callback_id is not None),
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
