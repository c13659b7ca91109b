"""The dialer: pulls contact batches from the panel, checks compliance, takes a line within every
limit, originates through the telephony backend, runs the scenario on the engine, and writes the
result to the outbox (committed first, delivered after). Inbound calls take priority on their line.

One code path whether the panel is external (`PanelClient`) or built in (`LocalPanel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from switchboard import clock
from switchboard.dialer.abandon import AbandonEvent, AbandonTracker
from switchboard.dialer.backend_gate import BackendGate
from switchboard.dialer.compliance import Compliance, ContactState, Never, NotBefore
from switchboard.dialer.dialstring import DialStringTemplate, dialable
from switchboard.dialer.health import DialerHealth
from switchboard.dialer.interrupted import report_interrupted
from switchboard.dialer.lines import LineLimiter, LineLimits, OutboundLine, ScenarioLimit
from switchboard.dialer.selection import acquire_line
from switchboard.engine import results
from switchboard.engine.context import CallContext, TimelineEntry
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator
from switchboard.engine.results import ResultCatalog
from switchboard.observability import metrics
from switchboard.observability.logging import CALL_ID, mask_phone
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.schema import Scenario
from switchboard.flows.validate import parse_scenario_text
from switchboard.panel.local import LocalPanel
from switchboard.panel.contract import BatchNumber, NextBatch, RejectedNumber, ReportResultRequest
from switchboard.panel.outbox import ResultsOutbox, record_patiently
from switchboard.panel.port import Panel
from switchboard.phones import try_normalize
from switchboard.process import node_id
from switchboard.settings import Settings
from switchboard.store import CallbackOutcome, CallData, EventData, Store
from switchboard.store.models import Callback
from switchboard.telephony.backend import TelephonyBackend
from switchboard.telephony.call import Call, DialOutcome
from switchboard.telephony.faults import BackendUnavailable

log = logging.getLogger(__name__)
calls_log = logging.getLogger("switchboard.calls")  # one INFO line per placed call and per result
ENDED_KEPT = 10_000  # contacts whose call here ended, remembered to spot offers that predate the end
SKEW_WARNING_SECONDS = 60.0
CALLBACK_CHECK_SECONDS = 5.0  # while working through a batch, look for due call backs this often  # the panel's server_time this far from ours is worth a warning

# Inbound calls whose scenario has no inbound flow (or when no scenario takes inbound calls) go
# straight to an inbound operator.
DIRECT_TO_OPERATOR = parse_scenario_text("""\
scenario:
  name: direct_to_operator
  flow:
    - {step: start, type: entry, next: connect}
    - {step: connect, type: transfer_to_operator, agent_type: inbound, on_success: talk, on_failure: nobody}
    - {step: talk, type: wait}
    - {step: nobody, type: hangup, result: disconnected, reason: "no inbound operator answered"}
""", "<built-in>").scenario

TRUNK_FAILURES = (DialOutcome.FAILED, DialOutcome.CONGESTION)


def _row_id(value: object) -> int | None:
    """A panel's number id as a local contacts row id, or None (an external panel's id may be any
    text or number; one beyond 64 bits must not reach the database)."""
    try:
        row_id = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return row_id if 1 <= row_id < 2**63 else None


@dataclass
class DialerStats:
    originated: int = 0
    answered: int = 0
    inbound: int = 0
    deferred: int = 0
    refused: int = 0
    rejected_numbers: int = 0
    callbacks: int = 0
    results: dict[str, int] = field(default_factory=dict)

    def count(self, result: str) -> None:
        self.results[result] = self.results.get(result, 0) + 1


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """A call `call_now` placed: follow it by `call_id` (GET /api/v1/calls/{id}, `switchboard calls`)."""

    call_id: str
    scenario: str
    phone: str
    line: str


class CallRefused(Exception):
    """`call_now` cannot place the call; `status` is the HTTP status that says why."""

    def __init__(self, reason: str, status: int = 409, not_before: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.not_before = not_before


_PERSONA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


@dataclass
class Dialer:
    settings: Settings
    panel: Panel
    store: Store
    outbox: ResultsOutbox
    registry: ScenarioRegistry
    engine: FlowEngine
    backend: TelephonyBackend
    limiter: LineLimiter
    compliance: Compliance
    health: DialerHealth
    abandon: AbandonTracker
    template: DialStringTemplate
    lines: list[OutboundLine]
    results: ResultCatalog | None = None  # what each result means (final / retry, panel status)
    lease_owner: str = "dialer"  # call backs are leased under this name (one per process)
    poll_interval: float = 5.0
    max_poll: float = 60.0  # the longest idle wait between polls of the panel
    on_call_end: Any = None  # optional callback(CallContext) for progress displays
    on_timeline: Any = None  # optional callback(CallContext, TimelineEntry) for live views (the /call page)
    live: Any = None  # optional observability.live.LiveBoard: calls in progress for the console
    stats: DialerStats = field(default_factory=DialerStats)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _calls: set[asyncio.Task[None]] = field(default_factory=set)
    _calling: set[str] = field(default_factory=set)  # contacts with a dial or call in progress here
    _ended_here: dict[str, float] = field(default_factory=dict)  # contact -> when its call here ended (monotonic)
    _call_ended: asyncio.Event = field(default_factory=asyncio.Event)
    _abandoned_at: dict[str, datetime] = field(default_factory=dict)
    gate: BackendGate | None = None  # waits while the PBX is unavailable (dialer/backend_gate.py)
    _scenario_ids: dict[str, Any] = field(default_factory=dict)  # name -> the panel's scenario id
    _panel_tz: str | None = None  # next-batch `timezone`: the zone of contacts without their own
    _active_seen: list[str] | None = None
    _roster_seen: tuple[Any, ...] | None = None
    _skew_warned: tuple[float, float] | None = None  # (skew, when) of the last clock-skew warning
    _allowed: bool = True  # the panel's last call_allowed
    _callbacks_checked: float = float("-inf")
    _personas: dict[str, Scenario] = field(default_factory=dict)
    _catalog_of: Any = None  # the registry load the results catalog was built from

    def __post_init__(self) -> None:
        if self.results is None:
            self.results = ResultCatalog(self.registry.all(), default_retry=self.settings.retry_delay_seconds)
        self._catalog_of = self.registry.last_report

    @property
    def catalog(self) -> ResultCatalog:
        assert self.results is not None
        return self.results

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.gate = self.gate or BackendGate(self.backend, self.panel, self.store)
        self.abandon.on_abandon = self._on_abandon
        services = self.engine.services
        services.add_to_dnc = self._add_to_dnc
        services.on_provider_failure = self._provider_failed
        previous_success = services.on_provider_success

        async def provider_ok() -> None:
            if previous_success is not None:
                await previous_success()

        services.on_provider_success = provider_ok
        scenarios = self.registry.all()
        for s in scenarios:
            log.info("Loaded scenario %s from %s (%d outbound steps, %d inbound steps)", s.name, s.source,
                     len(s.flow.steps), len(s.inbound_flow.steps) if s.inbound_flow else 0)
            target = s.spec.callbacks.scenario
            if target and self.registry.get(target) is None:
                log.warning("scenario %s books call backs on scenario %s, which is not loaded: they will run "
                            "%s", s.name, target, s.name)
        registered = await self.panel.register_scenarios([(s.name, s.spec.display_name or s.name)
                                                          for s in scenarios])
        if registered.delivered:
            log.info("Registered %d scenarios with panel", len(scenarios))
        if self.lines:
            out = await self.panel.register_outbound_lines([(line.phone_number, line.display_name or line.phone_number)
                                                            for line in self.lines])
            if out.delivered:
                log.info("Registered %d outbound lines with panel: %s", len(self.lines),
                         ", ".join(line.phone_number for line in self.lines))
        await self._seed_day_counts()
        await report_interrupted(self.store, self.outbox, self.settings.company)  # calls a crash cut off
        await self.backend.start(self.handle_inbound)

    async def _seed_day_counts(self) -> None:
        """An in-process limiter starts at zero: carry today's originations per line over a restart
        so the per-day limit still holds (Redis keeps its own counters)."""
        seed = getattr(self.limiter, "seed_day_count", None)
        tz = getattr(self.limiter, "tz", None)
        if seed is None or tz is None:
            return
        local = clock.now().astimezone(tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for line in self.lines:
            count = await self.store.calls.outbound_on_line_since(line.phone_number, midnight)
            if count:
                seed(line, count)

    async def stop(self, *, timeout: float | None = None) -> None:
        """Graceful stop: no new originations; calls in progress finish; results are flushed."""
        self._stop.set()
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=timeout)
        await self.backend.stop()

    async def wait_calls(self) -> None:
        """Until every call in progress has ended (and its result is recorded)."""
        while self._calls:
            await asyncio.wait(set(self._calls))

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop --------------------------------------------------------------------------------
    async def run(self, *, until_idle: bool = False) -> DialerStats:
        """Dial until stopped; with `until_idle`, return once the panel has nothing left to dial,
        no call back is open and every call has ended (demo campaigns, tests)."""
        idle_polls = 0
        while not self._stop.is_set():
            if self.health.paused:
                log.warning("dialing paused: %s", self.health.cause)
                metrics.DIALER_PAUSED.set(1)
                await self._until(self.health.wait_running())
                metrics.DIALER_PAUSED.set(1 if self.health.paused else 0)
                continue
            offered_at = clock.monotonic()
            try:
                batch = await self.panel.next_batch(self.settings.batch_size)
            except Exception as exc:  # the store or the panel failing must not end the dialer
                await self._survive(exc, "fetching the next batch")
                continue
            if batch.error:
                log.warning("panel gave no usable batch: %s", batch.error)
            else:
                self._allowed = batch.call_allowed
            self._apply_roster(batch)
            for rejected in batch.rejected:
                await self._report_rejected(rejected)
            dialed_callbacks = await self._dial_due_callbacks() if self._allowed else 0
            if not batch.call_allowed or not batch.numbers:
                # An unusable answer (panel down) is not "nothing left to dial".
                if until_idle and not self._calls and not batch.error and not dialed_callbacks \
                        and await self._nothing_left():
                    break
                idle_polls = 0 if dialed_callbacks else idle_polls + 1
                await self._idle(await self._idle_seconds(max(idle_polls, 1)))
                continue
            idle_polls = 0
            for number in batch.numbers:
                if self._stop.is_set():
                    await self._give_back(number, None)
                    continue
                if self._allowed and clock.monotonic() - self._callbacks_checked >= CALLBACK_CHECK_SECONDS:
                    try:
                        await self._dial_due_callbacks()  # a call back due meanwhile goes before the rest
                    except Exception as exc:  # a busy database must not end dialing
                        await self._survive(exc, "dialing due call backs")
                try:
                    await self._dial(number, offered_at=offered_at)
                except Exception as exc:  # one contact failing (a busy database) must not end dialing
                    await self._survive(exc, f"dialing contact {number.id}")
                    with contextlib.suppress(Exception):  # back to the panel once the store answers again
                        await record_patiently(lambda n=number: self._give_back(n, None),  # type: ignore[misc]
                                               what=f"release of contact {number.id}", patience=120)
        if until_idle and self._calls:
            await asyncio.wait(set(self._calls))
        return self.stats

    async def _survive(self, exc: Exception, doing: str) -> None:
        """Log, wait a moment and go on: the contact stays leased and comes back when its lease ends."""
        log.error("dialer: %s failed: %s: %s; going on", doing, type(exc).__name__, str(exc)[:300])
        await self._until(asyncio.sleep(1.0))

    async def _nothing_left(self) -> bool:
        counts = await self.store.contacts.counts_by_status(self.settings.company)
        if counts.get("pending", 0) or counts.get("leased", 0):
            return False
        return await self.store.callbacks.open_count(self.settings.company) == 0

    async def _idle_seconds(self, idle_polls: int) -> float:
        """How long to wait for work: until the next contact or call back is due, else a poll
        interval that grows while the panel stays empty."""
        poll = min(self.poll_interval * idle_polls, self.max_poll)
        company = self.settings.company
        dues = [await self.store.callbacks.next_due_at(company)]
        if isinstance(self.panel, LocalPanel):
            dues.append(await self.store.contacts.next_due_at(company))
        due = min((d for d in dues if d is not None), default=None)
        if due is None:
            return poll
        # Never longer than the poll interval: contacts imported (or settled by a late result)
        # while we sleep must not wait for a due time hours away (e.g. tomorrow's calling hours).
        return max(1.0, min((due - clock.now()).total_seconds(), max(poll, 1.0)))

    async def _idle(self, seconds: float) -> None:
        """Sleep until the poll interval passes, a call ends or the dialer stops."""
        self._call_ended.clear()
        await self._until(self._call_ended.wait(), timeout=seconds)

    async def _until(self, awaitable: Any, timeout: float | None = None) -> None:
        waiter = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, stopper):
                if not task.done():
                    task.cancel()

    def _apply_roster(self, batch: NextBatch) -> None:
        """Scenarios, agents, lines, time zone and clock from a next-batch answer."""
        if batch.error:
            return
        if self.registry.last_report is not self._catalog_of:  # scenarios reloaded (the console)
            self._catalog_of = self.registry.last_report
            self.catalog.update([*self.registry.all(), *self._personas.values()])
        self._scenario_ids = {s.name: s.id for s in batch.active_scenarios if s.id is not None}
        names = sorted(s.name for s in batch.active_scenarios)
        report = self.registry.set_enabled(names)
        if names != self._active_seen:
            self._active_seen = names
            log.info("Active scenarios updated: %s", ", ".join(report.active) or "none")
            if report.unknown:
                log.warning("panel activated scenarios this node does not have: %s", ", ".join(report.unknown))
        pool = self.engine.services.operators
        if batch.inbound_agents:
            pool.set_roster(None, "inbound", [Operator(a.phone_number, str(a.id)) for a in batch.inbound_agents])
        if batch.outbound_agents:
            pool.set_roster(None, "outbound", [Operator(a.phone_number, str(a.id)) for a in batch.outbound_agents])
        if batch.outbound_lines:
            known = {line.phone_number: line for line in self.lines}
            limits = self.lines[0].limits if self.lines else LineLimits(
                self.settings.max_concurrent_calls, self.settings.max_calls_per_minute,
                self.settings.max_calls_per_day)
            self.lines = [known.get(ref.phone_number) or OutboundLine(str(ref.id), ref.phone_number, limits=limits)
                          for ref in batch.outbound_lines]
        roster = (tuple(a.phone_number for a in batch.inbound_agents),
                  tuple(a.phone_number for a in batch.outbound_agents),
                  tuple(line.phone_number for line in batch.outbound_lines))
        if roster != self._roster_seen and any(roster):
            self._roster_seen = roster
            log.info("Roster updated: %d inbound agents, %d outbound agents, %d outbound lines",
                     len(roster[0]), len(roster[1]), len(roster[2]))
        self._panel_tz = batch.timezone
        self._check_clock(batch.server_time)

    def _check_clock(self, server_time: datetime | None) -> None:
        """Warn (not on every poll) when the panel's clock and ours disagree: calling hours are
        decided on ours."""
        if server_time is None:
            return
        now = clock.now()
        skew = (server_time - now).total_seconds()
        if abs(skew) < SKEW_WARNING_SECONDS:
            self._skew_warned = None
            return
        last = self._skew_warned
        if last is not None and abs(last[0] - skew) < SKEW_WARNING_SECONDS and now.timestamp() - last[1] < 3600:
            return
        self._skew_warned = (skew, now.timestamp())
        log.warning("panel clock is %+.0f s %s ours (server_time %s): calling hours are checked on this "
                    "machine's clock; check NTP on both", skew, "ahead of" if skew > 0 else "behind",
                    server_time.isoformat(timespec="seconds"))

    # --- call backs ------------------------------------------------------------------------------
    async def _dial_due_callbacks(self) -> int:
        """Dial the call backs that are due, highest priority first (before the batch's contacts)."""
        self._callbacks_checked = clock.monotonic()
        if self._stop.is_set() or self.health.paused:
            return 0
        rows = await self.store.callbacks.lease_due(self.lease_owner, self.settings.batch_size,
                                                    company=self.settings.company)
        for row in rows:
            if self._stop.is_set():
                await self.store.callbacks.release(row.id)
                continue
            self.stats.callbacks += 1
            await self._dial(self._callback_number(row), callback=row)
        return len(rows)

    def _callback_number(self, row: Callback) -> BatchNumber:
        parsed = try_normalize(row.phone_e164, self.settings.default_region)
        return BatchNumber(row.number_id, row.phone, row.phone_e164,  # type: ignore[arg-type]
                           parsed.national if parsed else row.phone_e164, parsed.timezone if parsed else None)

    # --- one contact -----------------------------------------------------------------------------
    async def _profile(self, number: BatchNumber) -> dict[str, Any]:
        """Name, attributes and time zone of a contact the local store knows (the built-in panel's
        contacts); its own time zone beats the one guessed from the number's region."""
        contact_id = _row_id(number.id)
        if contact_id is None:
            return {}
        row = await self.store.contacts.get(contact_id)
        if row is None or row.phone_e164 != number.e164:
            return {}
        return {"name": row.name or "", "attributes": dict(row.attributes or {}), "timezone": row.timezone}

    async def _dial(self, number: BatchNumber, callback: Callback | None = None, *,
                    offered_at: float | None = None) -> None:
        """Dial one leased contact (or call back), unless this process is calling it or has just.

        A lease can run out while the contact's call is still waiting for a line or in progress
        (a short lease, a long call); the panel then offers it again, in a batch fetched before that
        call's result was recorded. Dialing it would call the person twice: it is given back for a
        minute instead, by when the first call's result is recorded and decides what happens next."""
        key = None if callback is not None or number.id is None else str(number.id)
        if key is not None:
            ended = self._ended_here.get(key)
            stale = ended is not None and offered_at is not None and offered_at <= ended
            if key in self._calling or stale:
                self.stats.deferred += 1
                log.info("contact %s offered again while %s; given back", number.id,
                         "being called here" if key in self._calling else "its call here was ending")
                await self._give_back(number, clock.now() + timedelta(seconds=60))
                return
            self._calling.add(key)
        task = None
        try:
            task = await self._dial_now(number, callback)
        finally:
            if key is not None:
                if task is None:
                    self._calling.discard(key)
                else:
                    task.add_done_callback(lambda _: self._call_left(key))

    def _call_left(self, key: str) -> None:
        self._calling.discard(key)
        self._ended_here.pop(key, None)
        self._ended_here[key] = clock.monotonic()
        if len(self._ended_here) > ENDED_KEPT:  # the oldest first (insertion order)
            for old in list(self._ended_here)[: len(self._ended_here) - ENDED_KEPT]:
                del self._ended_here[old]

    async def _dial_now(self, number: BatchNumber, callback: Callback | None) -> asyncio.Task[None] | None:
        """`_dial`'s work: the call task started, or None when the contact was given back."""
        profile = await self._profile(number)
        contact = {"id": number.id, "phone": number.e164, "name": profile.get("name", "") or
                   (callback.name if callback is not None else "") or "", "attributes": profile.get("attributes", {})}
        if callback is not None:
            contact["callback_id"] = callback.id
        scenario = self.registry.get(callback.scenario) if callback is not None and callback.scenario else None
        scenario = scenario or self.registry.next_scenario(contact)
        if scenario is None:
            log.warning("no active scenario accepts contact %s; giving it back", number.id)
            await self._give_back(number, clock.now() + timedelta(seconds=self.settings.retry_delay_seconds),
                                  callback)
            return None
        calls_log.info("Assigned scenario %s to %s %s (%s)", scenario.name,
                       "call back" if callback is not None else "contact",
                       f"CB-{callback.id}" if callback is not None else number.id, self._mask(number.e164))
        checked_at = clock.now()
        if not await self._compliant(number, scenario, profile, checked_at, callback):
            return None
        await self._until(self.health.wait_running())
        if self.gate is not None:
            await self._until(self.gate.wait())  # no origination while the PBX cannot take calls
        if self._stop.is_set() or not self.lines:
            if not self.lines:
                log.error("no outbound lines: set OUTBOUND_NUMBERS or register lines in the panel")
            await self._give_back(number, None, callback)
            return None
        grant = await acquire_line(self.limiter, self.lines, self._scenario_limit(scenario), stop=self._stop)
        if grant is None:  # stopping
            await self._give_back(number, None, callback)
            return None
        if grant.at > checked_at:
            # Waiting for a line can take long (a line's day limit waits for midnight): what was
            # compliant then (calling hours, DNC, a pause) may not be now. Check again; a slot
            # taken in vain is handed back unused (refunded: it counts toward no limit).
            if self.health.paused or not await self._compliant(number, scenario, profile, grant.at, callback):
                await self.limiter.refund(grant)
                if self.health.paused:
                    await self._give_back(number, None, callback)
                return None
        task = asyncio.create_task(self._outbound_call(number, contact, scenario, grant, callback=callback))
        self._calls.add(task)
        task.add_done_callback(self._call_done)
        return task

    @staticmethod
    def _scenario_limit(scenario: Scenario) -> ScenarioLimit | None:
        limits = scenario.spec.rate_limits
        if limits is None:
            return None
        return ScenarioLimit(scenario.name, limits.per_minute, limits.concurrent, limits.per_day)

    async def _compliant(self, number: BatchNumber, scenario: Scenario, profile: dict[str, Any],
                         at: datetime, callback: Callback | None = None) -> bool:
        """Compliance for this contact at `at`; when it says later or never, the contact is given
        back (with the time it may be called) or reported as refused, and False is returned."""
        state, unsettled = await self._contact_state(number, profile.get("timezone"), callback)
        if unsettled:
            # This contact's last result is final and recorded here but has not reached the panel
            # yet (still in the outbox, e.g. after a crash or during a panel outage): the panel
            # offered it before knowing. Do not call or report it again; it settles once delivered.
            self.stats.deferred += 1
            if self.outbox.deliverer is not None:
                self.outbox.deliverer.wake()
            await self._give_back(number, at + timedelta(seconds=60), callback)
            return False
        policy = None
        if callback is not None:
            policy = dataclasses.replace(self.compliance.policy, max_attempts=callback.max_attempts)
        decision = await self.compliance.check(state, at, policy)
        if isinstance(decision, NotBefore):
            self.stats.deferred += 1
            log.debug("contact %s deferred to %s: %s", number.id, decision.at.isoformat(), decision.reason)
            await self._give_back(number, decision.at, callback)
            return False
        if isinstance(decision, Never):
            self.stats.refused += 1
            await self._report_refused(number, scenario, decision.reason, callback)
            return False
        return True

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._call_ended.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    async def _contact_state(self, number: BatchNumber, timezone: str | None = None,
                             callback: Callback | None = None) -> tuple[ContactState, bool]:
        """(state, unsettled). The state is this contact's own history (the panel's contact id: a
        contact imported again is a new contact) plus this person's recent calls (daily cap);
        `unsettled` is True while this contact's final result still waits in the outbox."""
        now = clock.now()
        number_id = None if number.id is None else str(number.id)
        history = await self.store.calls.history(company=self.settings.company, number_id=number_id,
                                                 phone_e164=number.e164, since=now - timedelta(days=2))
        # The contact's own zone, else its number's when that is unambiguous, else the zone the panel
        # gives its contacts (next-batch `timezone`), else PANEL_TIMEZONE (the policy's default).
        zone = timezone or number.timezone or self._panel_tz
        common = dict(phone=number.e164, timezone=zone, recent_attempts=history.recent_attempts,
                      last_abandoned_at=self._abandoned_at.get(number.e164))
        if callback is not None:
            # A call back has its own attempts; its due time already holds any retry delay, and the
            # caller was told to expect it: the lock-out after an abandoned call does not apply.
            common["last_abandoned_at"] = None
            return ContactState(attempts=callback.attempts, **common), False  # type: ignore[arg-type]
        last = history.last_result
        if last is not None and self.catalog.retry_delay(last, history.last_scenario) is None:
            if not history.last_delivered:
                return ContactState(attempts=history.attempts, **common), True  # type: ignore[arg-type]
            # The panel knows this final result and offers the contact again (re-opened by an
            # admin, or its own retry rules): that is its call. Attempts still count.
            last = None
        return ContactState(attempts=history.attempts, last_result=last, last_attempt_at=history.last_attempt_at,
                            last_scenario=history.last_scenario, **common), False  # type: ignore[arg-type]

    async def _give_back(self, number: BatchNumber, not_before: datetime | None,
                         callback: Callback | None = None) -> None:
        """Hand a leased contact (or call back) back without an attempt (calling hours, stopping).
        The built-in panel re-offers it at `not_before`; an external panel re-sends it in a later
        batch (its ids are not ours: nothing to release here)."""
        if callback is not None:
            await self.store.callbacks.release(callback.id, due_at=not_before)
            return
        contact_id = _row_id(number.id)
        if contact_id is None or not isinstance(self.panel, LocalPanel):
            return
        await self.store.contacts.release(contact_id, next_attempt_at=not_before)

    async def _outbound_call(self, number: BatchNumber, contact: dict[str, Any], scenario: Scenario,
                             grant: Any, *, callback: Callback | None = None, call_id: str | None = None,
                             written: asyncio.Future[None] | None = None) -> None:
        call_id = call_id or f"out-{uuid.uuid4().hex[:12]}"
        CALL_ID.set(call_id)  # this task's log lines carry the call id
        line: OutboundLine = grant.line
        attempted_at = grant.at
        data = CallData(id=call_id, direction="outbound", phone=number.phone_number, phone_e164=number.e164,
                        company=self.settings.company, scenario=scenario.name,
                        number_id=None if number.id is None else str(number.id),
                        line=line.phone_number, line_id=line.id, originated_at=attempted_at,
                        callback_id=callback.id if callback is not None else None,
                        attributes={"node": node_id()})  # whose call it is, should this process die
        ctx: CallContext | None = None
        try:
            try:
                # written before dialing: a crash leaves a trace (a busy database is waited for)
                await record_patiently(lambda: self.store.calls.start(data), what=f"start of call {call_id}")
            except BaseException as exc:
                if written is not None and not written.done():
                    written.set_exception(exc)
                raise
            if written is not None and not written.done():
                written.set_result(None)
            if self.live is not None:
                self.live.dialing(call_id, direction="outbound", phone=number.e164, scenario=scenario.name,
                                  line=line.phone_number)
            self.stats.originated += 1
            metrics.ORIGINATIONS.labels(line.phone_number).inc()
            metrics.ACTIVE_CALLS.labels("outbound").inc()
            calls_log.info("Placing call %s: scenario=%s line=%s to=%s%s", call_id, scenario.name,
                           line.phone_number, self._mask(number.e164),
                           f" (call back CB-{callback.id})" if callback is not None else "")
            dial_string = self.template.render(line_number=line.phone_number, customer=self._dialable(number),
                                               trunk=self.settings.outbound_trunk)
            try:
                dialed = await self.backend.originate(number=number.e164, dial_string=dial_string,
                                                      line_number=line.phone_number, caller_id=line.phone_number,
                                                      timeout=float(self.settings.origination_timeout),
                                                      variables={"SWITCHBOARD_CALL_ID": call_id,
                                                                 "SWITCHBOARD_SCENARIO": scenario.name})
            except BackendUnavailable as exc:  # nothing was attempted: the contact is given back
                self.stats.originated -= 1
                if self.gate is not None:
                    await self.gate.not_attempted(call_id, exc)
                await self._give_back(number, None, callback)
                return
            if self.gate is not None:
                await self.gate.placed()
            if dialed.call is None:
                ctx = CallContext(call_id=call_id, scenario=scenario.name, remote_number=number.e164,
                                  line_number=line.phone_number, contact=contact)
                ctx.log("dial", outcome=dialed.outcome.value, reason=dialed.reason)
                if dialed.outcome in TRUNK_FAILURES:
                    await self._provider_failed("trunk", dialed.reason or dialed.outcome.value)
                    ctx.set_result(results.failed(dialed.outcome.value), dialed.reason)
                else:
                    await self.health.record_success("trunk")
                    ctx.set_result(results.MISSED, dialed.reason or dialed.outcome.value.replace("_", " "))
            else:
                await self.health.record_success("trunk")
                self.stats.answered += 1
                ctx = await self._run_flow(dialed.call, scenario, contact, campaign=scenario.name, call_id=call_id)
        except Exception as exc:  # a broken call must never stop the dialer
            log.exception("outbound call %s failed", call_id)
            if ctx is None:
                ctx = CallContext(call_id=call_id, scenario=scenario.name, remote_number=number.e164,
                                  line_number=line.phone_number, contact=contact)
            if ctx.result is None:
                ctx.set_result(results.failed("internal_error"), type(exc).__name__)
        finally:
            metrics.ACTIVE_CALLS.labels("outbound").dec()
            await self.limiter.release(grant)
        await self._submit(ctx, data, number=number, attempted_at=attempted_at, line=line, callback=callback)

    async def _run_flow(self, call: Call, scenario: Scenario, contact: dict[str, Any], *,
                        campaign: str, call_id: str) -> CallContext:
        ctx = self.engine.new_context(call, scenario, contact)
        # One id for the call everywhere (calls table, logs, tickets and call backs it creates);
        # the backend's own id (ARI channel, sim call) is kept beside it.
        ctx.variables["backend_call_id"] = ctx.call_id
        ctx.call_id = call_id
        if call.direction == "outbound":
            self.abandon.answered(campaign)

        def watch(c: CallContext, entry: TimelineEntry) -> None:
            if self.on_timeline is not None:
                self.on_timeline(c, entry)
            if entry.event == "operator_ringing":
                self.abandon.operator_requested(c.call_id, campaign, c.remote_number)
            elif entry.event == "operator_answered":
                self.abandon.operator_connected(c.call_id)
            if self.live is not None:
                self.live.event(c.call_id, entry)  # the dialer's call id (see above)

        ctx.listener = watch
        try:
            await self.engine.run(call, scenario, ctx)
        finally:
            self.abandon.call_ended(ctx.call_id)
        return ctx

    # --- call this number now --------------------------------------------------------------------
    async def call_now(self, phone: str, *, scenario: str | None = None, persona: str | None = None,
                       name: str | None = None, attributes: dict[str, Any] | None = None,
                       wait: float = 10.0) -> PlacedCall:
        """Place one call at once (POST /api/v1/calls, `switchboard call`): the same compliance
        (do-not-call, calling hours, caps) and line limits as campaign calls; raises `CallRefused`
        saying why not. Returns once the call is recorded; the call itself runs on."""
        parsed = try_normalize(phone, self.settings.default_region)
        if parsed is None:
            raise CallRefused(f"{phone!r} is not a valid phone number", 422)
        contact = {"id": None, "phone": parsed.e164, "name": name or "", "attributes": dict(attributes or {})}
        if scenario:
            chosen = self.registry.get(scenario)
            if chosen is None:
                raise CallRefused(f"unknown scenario {scenario!r}; loaded: {', '.join(self.registry.get_names())}",
                                  404)
        elif persona:
            chosen = self._persona_scenario(persona)
        else:
            chosen = self.registry.next_scenario(contact)
            if chosen is None:
                raise CallRefused("no active scenario accepts this contact; name one", 409)
        number = BatchNumber(None, phone, parsed.e164, parsed.national, parsed.timezone)  # type: ignore[arg-type]
        state, _ = await self._contact_state(number)
        decision = await self.compliance.check(state, clock.now())
        if isinstance(decision, NotBefore):
            raise CallRefused(f"may not be called before {decision.at.isoformat(timespec='minutes')}: "
                              f"{decision.reason}", 409, decision.at)
        if isinstance(decision, Never):
            raise CallRefused(decision.reason, 409)
        if self.health.paused:
            raise CallRefused(f"dialing is paused: {self.health.cause}", 503)
        if self._stop.is_set():
            raise CallRefused("the dialer is stopping", 503)
        if not self.lines:
            raise CallRefused("no outbound lines: set OUTBOUND_NUMBERS or register lines in the panel", 503)
        grant = await acquire_line(self.limiter, self.lines, self._scenario_limit(chosen), stop=self._stop,
                                   max_wait=wait)
        if grant is None:
            raise CallRefused(f"no line could take a call within {wait:.0f} s (line limits); try again", 503)
        call_id = f"out-{uuid.uuid4().hex[:12]}"
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._outbound_call(number, contact, chosen, grant, call_id=call_id,
                                                       written=written))
        self._calls.add(task)
        task.add_done_callback(self._call_done)
        await written
        return PlacedCall(call_id, chosen.name, parsed.e164, grant.line.phone_number)

    def _persona_scenario(self, persona: str) -> Scenario:
        """A one-step scenario handing the call to an AI persona (calls placed by persona)."""
        if not _PERSONA_NAME.match(persona):
            raise CallRefused(f"{persona!r} is not a persona name", 422)
        conversation = self.engine.services.extras.get("conversation")
        personas = getattr(conversation, "personas", None)
        if personas is not None and persona not in personas:
            raise CallRefused(f"unknown persona {persona!r}", 404)
        if persona not in self._personas:
            parsed = parse_scenario_text(PERSONA_SCENARIO.format(persona=persona), f"<persona {persona}>")
            assert parsed.scenario is not None, parsed.errors
            self._personas[persona] = parsed.scenario
            self.catalog.update([*self.registry.all(), *self._personas.values()])
        return self._personas[persona]

    # --- inbound ---------------------------------------------------------------------------------
    async def handle_inbound(self, call: Call, scenario: Scenario | None = None, *, on_line: bool = True) -> None:
        """An inbound call: it takes a slot on its line first (blocking new outbound calls there),
        then runs the inbound flow of `scenario`, by default the next inbound scenario. A call that
        comes in on no phone line (a browser call: `on_line=False`) takes no line slot."""
        line = None
        if on_line:
            line = next((ln for ln in self.lines if ln.phone_number == call.line_number), None) or \
                (self.lines[0] if self.lines else None)
        grant = await self.limiter.acquire_inbound(line, timeout=self.settings.operator_timeout) if line else None
        scenario = scenario or self.registry.next_inbound_scenario() or DIRECT_TO_OPERATOR
        assert scenario is not None
        attempted_at = clock.now()
        data = CallData(id=f"in-{uuid.uuid4().hex[:12]}", direction="inbound", phone=call.remote_number,
                        company=self.settings.company, scenario=scenario.name,
                        line=line.phone_number if line else call.line_number, line_id=line.id if line else None,
                        originated_at=attempted_at, attributes={"node": node_id()})
        CALL_ID.set(data.id)
        calls_log.info("Inbound call %s on line %s from %s: scenario=%s", data.id, data.line,
                       self._mask(call.remote_number), scenario.name)
        normalized = try_normalize(call.remote_number, self.settings.default_region)
        data.phone_e164 = normalized.e164 if normalized else None
        self.stats.inbound += 1
        ctx: CallContext | None = None
        try:
            if line is not None and grant is None:
                ctx = self.engine.new_context(call, scenario)
                ctx.set_result(results.failed("line_busy"), "no free slot on the line")
                await call.hangup("busy")
            else:
                await self.store.calls.start(data)
                if self.live is not None:
                    self.live.dialing(data.id, direction="inbound", phone=call.remote_number, scenario=scenario.name,
                                      line=data.line)
                metrics.ACTIVE_CALLS.labels("inbound").inc()
                try:
                    ctx = await self._run_flow(call, scenario, {"phone": call.remote_number}, campaign="inbound",
                                               call_id=data.id)
                finally:
                    metrics.ACTIVE_CALLS.labels("inbound").dec()
        except Exception as exc:
            log.exception("inbound call failed")
            ctx = ctx or self.engine.new_context(call, scenario)
            if ctx.result is None:
                ctx.set_result(results.failed("internal_error"), type(exc).__name__)
        finally:
            if grant is not None:
                await self.limiter.release(grant)
        await self._submit(ctx, data, number=None, attempted_at=attempted_at, line=line)

    # --- results ---------------------------------------------------------------------------------
    async def _submit(self, ctx: CallContext, data: CallData, *, number: BatchNumber | None,
                      attempted_at: datetime, line: OutboundLine | None, callback: Callback | None = None) -> None:
        result = ctx.result or results.UNKNOWN
        meaning = self.catalog.get(result, ctx.scenario)
        self.stats.count(result)
        if self.live is not None:
            self.live.ended(data.id, result)
        metrics.CALLS.labels(ctx.direction, ctx.scenario, metrics.result_label(result)).inc()
        if ctx.direction == "outbound":
            metrics.ABANDON_RATE.labels(ctx.scenario).set(self.abandon.rate(ctx.scenario))
        if ctx.ended_at is not None and ctx.steps_visited:
            metrics.CALL_SECONDS.labels(ctx.direction).inc(max(0.0, (ctx.ended_at - ctx.started_at).total_seconds()))
        data.result = result
        data.panel_status = meaning.panel_status
        data.reason = ctx.reason or None
        data.intent = ctx.intent
        data.operator = ctx.agent
        data.operator_id = str(ctx.variables.get("operator_id") or "") or None
        data.answered_at = ctx.answered_at if ctx.steps_visited else None
        data.ended_at = ctx.ended_at or clock.now()
        data.transcripts = [{"role": "caller", **t} for t in ctx.transcripts]
        data.user_message = ctx.transcripts[0]["text"] if ctx.transcripts else None
        data.recording_path = ctx.recordings[-1] if ctx.recordings else None
        data.attributes = {"steps": ctx.steps_visited, "intent_path": ctx.intent_path, "usage": ctx.usage,
                           "persona": ctx.variables.get("persona"),
                           "call_ref": ctx.variables.get("backend_call_id", ctx.call_id),
                           "recordings": ctx.recordings}
        for key in ("callback_id", "callback_at"):
            if ctx.variables.get(key):
                data.attributes[key] = ctx.variables[key]
        report = ReportResultRequest(
            company=self.settings.company, number_id=number.id if number else None,
            phone_number=number.phone_number if number else data.phone, status=meaning.panel_status,
            outcome=result if result != meaning.panel_status else None,
            reason=ctx.reason or None, attempted_at=attempted_at, agent_id=data.operator_id,
            agent_phone=ctx.agent, user_message=data.user_message, scenario_id=self._scenario_ids.get(ctx.scenario),
            outbound_line_id=line.id if line else None, callback_id=callback.id if callback is not None else None)
        events = [EventData(datetime.fromisoformat(e.wall), e.event,
                            {"step": e.step, "type": e.type, "at": e.at, **e.detail}) for e in ctx.timeline]
        await self.outbox.submit(data, report, events,
                                 callback=self._callback_outcome(callback, result, ctx.scenario,
                                                                 ctx.variables.get("callback_at")))
        seconds = max(0.0, (data.ended_at - (data.answered_at or attempted_at)).total_seconds()) \
            if data.answered_at else 0.0
        calls_log.info("Call %s ended: result=%s why=%s duration=%.0fs scenario=%s line=%s to=%s", data.id,
                       result, ctx.reason or meaning.display_name, seconds, ctx.scenario,
                       line.phone_number if line else "-", self._mask(ctx.remote_number or data.phone))
        if self.on_call_end is not None:
            self.on_call_end(ctx)

    def _callback_outcome(self, callback: Callback | None, result: str, scenario: str | None,
                          rebooked_at: str | None = None) -> CallbackOutcome | None:
        """A call back is done after a final result or its last allowed attempt, else it is due
        again: after the result's retry delay, or when the call booked it again ("all busy again")
        at that time."""
        if callback is None:
            return None
        if callback.attempts + 1 >= callback.max_attempts:
            return CallbackOutcome(callback.id, result, None)
        if rebooked_at:
            return CallbackOutcome(callback.id, result, datetime.fromisoformat(rebooked_at))
        delay = self.catalog.retry_delay(result, scenario)
        if delay is None:
            return CallbackOutcome(callback.id, result, None)
        return CallbackOutcome(callback.id, result, clock.now() + timedelta(seconds=delay))

    async def _report_rejected(self, rejected: RejectedNumber) -> None:
        """A number the panel sent that is not a valid phone number: rejected with the reason and
        never dialed; the rest of the batch goes on."""
        self.stats.rejected_numbers += 1
        call_id = f"rej-{uuid.uuid4().hex[:12]}"
        now = clock.now()
        status = results.failed("invalid_number")
        data = CallData(id=call_id, direction="outbound", phone=rejected.phone_number or "",
                        company=self.settings.company, number_id=str(rejected.id) if rejected.id is not None
                        else None, originated_at=now, ended_at=now, result=status, panel_status=status,
                        reason=rejected.reason)
        report = ReportResultRequest(company=self.settings.company, number_id=rejected.id,
                                     phone_number=rejected.phone_number or "", status=status,
                                     reason=rejected.reason, attempted_at=now)
        calls_log.info("Rejected number %s from the panel: %s", rejected.id, rejected.reason)
        await self.outbox.submit(data, report, [])

    async def _report_refused(self, number: BatchNumber, scenario: Scenario, reason: str,
                              callback: Callback | None = None) -> None:
        """Compliance says never (do-not-call, attempts exhausted): reported, not dialed."""
        now = clock.now()
        status = results.failed("do_not_call") if "do-not-call" in reason else results.failed("compliance")
        data = CallData(id=f"ref-{uuid.uuid4().hex[:12]}", direction="outbound", phone=number.phone_number,
                        phone_e164=number.e164, company=self.settings.company, scenario=scenario.name,
                        number_id=None if number.id is None else str(number.id), originated_at=now, ended_at=now,
                        result=status, panel_status=status, reason=reason,
                        callback_id=callback.id if callback is not None else None)
        report = ReportResultRequest(company=self.settings.company, number_id=number.id,
                                     phone_number=number.phone_number, status=status, reason=reason,
                                     attempted_at=now, callback_id=callback.id if callback is not None else None)
        self.stats.count(status)
        calls_log.info("Not calling %s %s: %s", "call back" if callback is not None else "contact",
                       f"CB-{callback.id}" if callback is not None else number.id, reason)
        await self.outbox.submit(data, report, [], callback=None if callback is None
                                 else CallbackOutcome(callback.id, status, None))

    # --- control from the panel ------------------------------------------------------------------
    async def pause(self, by: str = "admin", reason: str = "") -> None:
        """Stop originating new calls (calls in progress finish) until `resume`."""
        await self.health.pause(f"paused by {by}" + (f": {reason}" if reason else ""))
        metrics.DIALER_PAUSED.set(1)
        if self.live is not None:
            self.live.refresh()

    async def resume(self, by: str = "admin") -> None:
        """An admin resumes dialing after a pause (theirs, or the failure threshold's)."""
        await self.health.resume(by=by)
        metrics.DIALER_PAUSED.set(0)
        if self.live is not None:
            self.live.refresh()

    def status(self) -> dict[str, Any]:
        """Live state for the panel: failure pause, calls in progress, abandon rate per campaign."""
        abandon = {}
        for campaign in self.abandon.campaigns():
            stats = self.abandon.stats(campaign)
            abandon[campaign] = {"answered": stats.answered, "abandoned": stats.abandoned,
                                 "rate": round(stats.rate, 4)}
        return {"failure_pause": self.health.cause if self.health.paused else None,
                "telephony_pause": self.gate.reason if self.gate is not None and self.gate.paused else None,
                "active_calls": len(self._calls), "abandon": abandon,
                "lines": [line.phone_number for line in self.lines]}

    def _mask(self, phone: str) -> str:
        return mask_phone(phone) if self.settings.log_mask_phones else phone

    def _dialable(self, number: BatchNumber) -> str:
        return dialable(number.e164, self.settings.default_region)

    async def _provider_failed(self, kind: str, reason: str) -> None:
        """A provider (STT, LLM, trunk) failed: counts toward the failure threshold."""
        metrics.PROVIDER_FAILURES.labels(kind).inc()
        await self.health.record_failure(kind, reason)
        metrics.DIALER_PAUSED.set(1 if self.health.paused else 0)

    async def _add_to_dnc(self, phone: str, reason: str) -> None:
        normalized = try_normalize(phone, self.settings.default_region)
        if normalized is not None:
            await self.store.dnc.add(normalized.e164, reason=reason, source="flow")

    def _on_abandon(self, event: AbandonEvent) -> None:
        normalized = try_normalize(event.contact_id or "", self.settings.default_region)
        if normalized is not None:
            self._abandoned_at[normalized.e164] = clock.now()


# Calls placed by persona (POST /api/v1/calls with a persona, the sales start_call path).
PERSONA_SCENARIO = """\
scenario:
  name: persona_{persona}
  display_name: "AI agent: {persona}"
  results:
    conversation_ended: {{display_name: "Talked with the AI agent", panel_status: unknown, final: true,
                          contacted: true}}
  flow:
    - {{step: start, type: entry, next: talk}}
    - {{step: talk, type: converse, persona: {persona}, on_end: done, on_handoff: transfer, on_timeout: done,
       on_failure: failed}}
    - {{step: transfer, type: transfer_to_operator, agent_type: outbound, on_success: with_operator,
       on_failure: call_back}}
    - {{step: with_operator, type: wait}}
    - {{step: call_back, type: schedule_callback, reason: "asked for a person; none free", next: bye}}
    - {{step: failed, type: set_result, result: "failed:conversation", next: bye}}
    - {{step: done, type: set_result, result: conversation_ended, next: bye}}
    - {{step: bye, type: hangup}}
"""
