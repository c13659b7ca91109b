"""The dialer: pulls contact batches from the panel, checks compliance, takes a line within every
limit, originates through the telephony backend, runs the scenario on the engine, and writes the
result to the outbox (committed first, delivered after). Inbound calls take priority on their line.

One code path whether the panel is external (`PanelClient`) or built in (`LocalPanel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from switchboard import clock
from switchboard.dialer.abandon import AbandonEvent, AbandonTracker
from switchboard.dialer.backend_gate import BackendGate
from switchboard.dialer.compliance import Compliance, ContactState, Never, NotBefore
from switchboard.dialer.dialstring import DialStringTemplate
from switchboard.dialer.health import DialerHealth
from switchboard.dialer.interrupted import report_interrupted
from switchboard.dialer.lines import LineLimiter, LineLimits, OutboundLine, ScenarioLimit
from switchboard.dialer.selection import acquire_line
from switchboard.engine import results
from switchboard.engine.context import CallContext, TimelineEntry
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator
from switchboard.observability import metrics
from switchboard.observability.logging import CALL_ID
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
from switchboard.store import CallData, EventData, Store
from switchboard.telephony.backend import TelephonyBackend
from switchboard.telephony.call import Call, DialOutcome
from switchboard.telephony.faults import BackendUnavailable

log = logging.getLogger(__name__)

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
    results: dict[str, int] = field(default_factory=dict)

    def count(self, result: str) -> None:
        self.results[result] = self.results.get(result, 0) + 1


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
    poll_interval: float = 5.0
    max_poll: float = 60.0  # the longest idle wait between polls of the panel
    on_call_end: Any = None  # optional callback(CallContext) for progress displays
    on_timeline: Any = None  # optional callback(CallContext, TimelineEntry) for live views (the /call page)
    live: Any = None  # optional observability.live.LiveBoard: calls in progress for the console
    stats: DialerStats = field(default_factory=DialerStats)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _calls: set[asyncio.Task[None]] = field(default_factory=set)
    _call_ended: asyncio.Event = field(default_factory=asyncio.Event)
    _abandoned_at: dict[str, datetime] = field(default_factory=dict)
    gate: BackendGate | None = None  # waits while the PBX is unavailable (dialer/backend_gate.py)

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
        await self.panel.register_scenarios([(s.name, s.spec.display_name or s.name) for s in self.registry.all()])
        if self.lines:
            await self.panel.register_outbound_lines([(line.phone_number, line.display_name or line.phone_number)
                                                      for line in self.lines])
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

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop --------------------------------------------------------------------------------
    async def run(self, *, until_idle: bool = False) -> DialerStats:
        """Dial until stopped; with `until_idle`, return once the panel has nothing left to dial
        and every call has ended (demo campaigns, tests)."""
        idle_polls = 0
        while not self._stop.is_set():
            if self.health.paused:
                log.warning("dialing paused: %s", self.health.cause)
                metrics.DIALER_PAUSED.set(1)
                await self._until(self.health.wait_running())
                metrics.DIALER_PAUSED.set(1 if self.health.paused else 0)
                continue
            try:
                batch = await self.panel.next_batch(self.settings.batch_size)
            except Exception as exc:  # the store or the panel failing must not end the dialer
                await self._survive(exc, "fetching the next batch")
                continue
            if batch.error:
                log.warning("panel gave no usable batch: %s", batch.error)
            self._apply_roster(batch)
            for rejected in batch.rejected:
                await self._report_rejected(rejected)
            if not batch.call_allowed or not batch.numbers:
                # An unusable answer (panel down) is not "nothing left to dial".
                if until_idle and not self._calls and not batch.error and await self._nothing_left():
                    break
                idle_polls += 1
                await self._idle(await self._idle_seconds(idle_polls))
                continue
            idle_polls = 0
            for number in batch.numbers:
                if self._stop.is_set():
                    await self._give_back(number, None)
                    continue
                try:
                    await self._dial(number)
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
        return counts.get("pending", 0) == 0 and counts.get("leased", 0) == 0

    async def _idle_seconds(self, idle_polls: int) -> float:
        """How long to wait for work: until the built-in panel's next contact is due, else a poll
        interval that grows while the panel stays empty."""
        poll = min(self.poll_interval * idle_polls, self.max_poll)
        if not isinstance(self.panel, LocalPanel):
            return poll
        due = await self.store.contacts.next_due_at(self.settings.company)
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
        if batch.error:
            return
        names = [s.name for s in batch.active_scenarios]
        report = self.registry.set_enabled(names)
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

    async def _dial(self, number: BatchNumber) -> None:
        profile = await self._profile(number)
        contact = {"id": number.id, "phone": number.e164, "name": profile.get("name", ""),
                   "attributes": profile.get("attributes", {})}
        scenario = self.registry.next_scenario(contact)
        if scenario is None:
            log.warning("no active scenario accepts contact %s; giving it back", number.id)
            await self._give_back(number, clock.now() + timedelta(seconds=self.settings.retry_delay_seconds))
            return
        checked_at = clock.now()
        if not await self._compliant(number, scenario, profile, checked_at):
            return
        await self._until(self.health.wait_running())
        if self.gate is not None:
            await self._until(self.gate.wait())  # no origination while the PBX cannot take calls
        if self._stop.is_set() or not self.lines:
            if not self.lines:
                log.error("no outbound lines: set OUTBOUND_NUMBERS or register lines in the panel")
            await self._give_back(number, None)
            return
        limits = scenario.spec.rate_limits
        scenario_limit = ScenarioLimit(scenario.name, limits.per_minute, limits.concurrent) if limits else None
        grant = await acquire_line(self.limiter, self.lines, scenario_limit, stop=self._stop)
        if grant is None:  # stopping
            await self._give_back(number, None)
            return
        if grant.at > checked_at:
            # Waiting for a line can take long (a line's day limit waits for midnight): what was
            # compliant then (calling hours, DNC, a pause) may not be now. Check again; a slot
            # taken in vain is handed back unused.
            if self.health.paused or not await self._compliant(number, scenario, profile, grant.at):
                await self.limiter.release(grant)
                if self.health.paused:
                    await self._give_back(number, None)
                return
        task = asyncio.create_task(self._outbound_call(number, contact, scenario, grant))
        self._calls.add(task)
        task.add_done_callback(self._call_done)

    async def _compliant(self, number: BatchNumber, scenario: Scenario, profile: dict[str, Any],
                         at: datetime) -> bool:
        """Compliance for this contact at `at`; when it says later or never, the contact is given
        back (with the time it may be called) or reported as refused, and False is returned."""
        state = await self._contact_state(number, profile.get("timezone"))
        decision = await self.compliance.check(state, at)
        if isinstance(decision, NotBefore):
            self.stats.deferred += 1
            await self._give_back(number, decision.at)
            return False
        if isinstance(decision, Never) and isinstance(self.panel, LocalPanel) and self._settled(state):
            # The built-in panel offered a contact whose final result is already recorded here but
            # not yet applied to it (still in the outbox, e.g. after a crash): that result settles
            # the contact. A refusal report on top would count a second attempt (and `failed:*`
            # is retried), so just hand it back for later; applying the result makes it done.
            self.stats.refused += 1
            await self._give_back(number, at + timedelta(seconds=self.settings.retry_delay_seconds))
            return False
        if isinstance(decision, Never):
            self.stats.refused += 1
            await self._report_refused(number, scenario, decision.reason)
            return False
        return True

    def _settled(self, state: ContactState) -> bool:
        """True when the contact's last recorded result is final (never retried)."""
        if state.last_result is None:
            return False
        known, delay = self.compliance.policy.retry_delay(state.last_result)
        return not known or delay is None

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._call_ended.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    async def _contact_state(self, number: BatchNumber, timezone: str | None = None) -> ContactState:
        now = clock.now()
        recent = await self.store.calls.list(direction="outbound", phone_e164=number.e164,
                                             since=now - timedelta(days=2), limit=100)
        attempts = await self.store.calls.outbound_attempts_since(number.e164, datetime(1970, 1, 1,
                                                                                        tzinfo=now.tzinfo))
        last = await self.store.calls.last_outbound(number.e164)
        return ContactState(
            phone=number.e164, timezone=timezone or number.timezone, attempts=attempts,
            last_result=last.result if last is not None else None,
            last_attempt_at=last.originated_at if last is not None else None,
            recent_attempts=[c.originated_at for c in recent.items if c.originated_at is not None],
            last_abandoned_at=self._abandoned_at.get(number.e164))

    async def _give_back(self, number: BatchNumber, not_before: datetime | None) -> None:
        """Hand a leased contact back without an attempt (calling hours, stopping). The built-in
        panel re-offers it at `not_before`; an external panel re-sends it in a later batch."""
        contact_id = _row_id(number.id)
        if contact_id is None:
            return
        await self.store.contacts.release(contact_id, next_attempt_at=not_before)

    async def _outbound_call(self, number: BatchNumber, contact: dict[str, Any], scenario: Scenario,
                             grant: Any) -> None:
        call_id = f"out-{uuid.uuid4().hex[:12]}"
        CALL_ID.set(call_id)  # this task's log lines carry the call id
        line: OutboundLine = grant.line
        attempted_at = grant.at
        data = CallData(id=call_id, direction="outbound", phone=number.phone_number, phone_e164=number.e164,
                        company=self.settings.company, scenario=scenario.name, number_id=str(number.id),
                        line=line.phone_number, line_id=line.id, originated_at=attempted_at,
                        attributes={"node": node_id()})  # whose call it is, should this process die
        ctx: CallContext | None = None
        try:
            # written before dialing: a crash leaves a trace (a busy database is waited for)
            await record_patiently(lambda: self.store.calls.start(data), what=f"start of call {call_id}")
            if self.live is not None:
                self.live.dialing(call_id, direction="outbound", phone=number.e164, scenario=scenario.name,
                                  line=line.phone_number)
            self.stats.originated += 1
            metrics.ORIGINATIONS.labels(line.phone_number).inc()
            metrics.ACTIVE_CALLS.labels("outbound").inc()
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
                await self._give_back(number, None)
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
                    ctx.set_result(results.MISSED, dialed.reason or dialed.outcome.value)
            else:
                await self.health.record_success("trunk")
                self.stats.answered += 1
                ctx = await self._run_flow(dialed.call, scenario, contact, campaign=scenario.name, record_id=call_id)
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
        await self._submit(ctx, data, number=number, attempted_at=attempted_at, line=line)

    async def _run_flow(self, call: Call, scenario: Scenario, contact: dict[str, Any], *,
                        campaign: str, record_id: str | None = None) -> CallContext:
        ctx = self.engine.new_context(call, scenario, contact)
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
                self.live.event(record_id or c.call_id, entry)

        ctx.listener = watch
        try:
            await self.engine.run(call, scenario, ctx)
        finally:
            self.abandon.call_ended(ctx.call_id)
        return ctx

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
                                               record_id=data.id)
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
                      attempted_at: datetime, line: OutboundLine | None) -> None:
        result = ctx.result or results.UNKNOWN
        self.stats.count(result)
        if self.live is not None:
            self.live.ended(data.id, result)
        metrics.CALLS.labels(ctx.direction, ctx.scenario, metrics.result_label(result)).inc()
        if ctx.direction == "outbound":
            metrics.ABANDON_RATE.labels(ctx.scenario).set(self.abandon.rate(ctx.scenario))
        if ctx.ended_at is not None and ctx.steps_visited:
            metrics.CALL_SECONDS.labels(ctx.direction).inc(max(0.0, (ctx.ended_at - ctx.started_at).total_seconds()))
        data.result = result
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
                           "persona": ctx.variables.get("persona"), "call_ref": ctx.call_id,
                           "recordings": ctx.recordings}
        report = ReportResultRequest(
            company=self.settings.company, number_id=number.id if number else None,
            phone_number=number.phone_number if number else data.phone, status=result,
            reason=ctx.reason or None, attempted_at=attempted_at, agent_id=data.operator_id,
            agent_phone=ctx.agent, user_message=data.user_message, scenario_id=ctx.scenario,
            outbound_line_id=line.id if line else None)
        events = [EventData(datetime.fromisoformat(e.wall), e.event,
                            {"step": e.step, "type": e.type, "at": e.at, **e.detail}) for e in ctx.timeline]
        await self.outbox.submit(data, report, events)
        if self.on_call_end is not None:
            self.on_call_end(ctx)

    async def _report_rejected(self, rejected: RejectedNumber) -> None:
        """A number the panel sent that is not a valid phone number: rejected with the reason and
        never dialed; the rest of the batch goes on."""
        self.stats.rejected_numbers += 1
        call_id = f"rej-{uuid.uuid4().hex[:12]}"
        now = clock.now()
        data = CallData(id=call_id, direction="outbound", phone=rejected.phone_number or "",
                        company=self.settings.company, number_id=str(rejected.id) if rejected.id is not None
                        else None, originated_at=now, ended_at=now, result=results.failed("invalid_number"),
                        reason=rejected.reason)
        report = ReportResultRequest(company=self.settings.company, number_id=rejected.id,
                                     phone_number=rejected.phone_number or "", status=data.result or "",
                                     reason=rejected.reason, attempted_at=now)
        await self.outbox.submit(data, report, [])

    async def _report_refused(self, number: BatchNumber, scenario: Scenario, reason: str) -> None:
        """Compliance says never (do-not-call, attempts exhausted): reported, not dialed."""
        now = clock.now()
        status = results.failed("do_not_call") if "do-not-call" in reason else results.failed("compliance")
        data = CallData(id=f"ref-{uuid.uuid4().hex[:12]}", direction="outbound", phone=number.phone_number,
                        phone_e164=number.e164, company=self.settings.company, scenario=scenario.name,
                        number_id=str(number.id), originated_at=now, ended_at=now, result=status, reason=reason)
        report = ReportResultRequest(company=self.settings.company, number_id=number.id,
                                     phone_number=number.phone_number, status=status, reason=reason,
                                     attempted_at=now)
        self.stats.count(status)
        await self.outbox.submit(data, report, [])

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

    def _dialable(self, number: BatchNumber) -> str:
        """The customer's number as the trunk dials it nationally (`09121234567` in Iran)."""
        parsed = try_normalize(number.e164, self.settings.default_region)
        return parsed.national_dialing if parsed is not None else number.e164

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

