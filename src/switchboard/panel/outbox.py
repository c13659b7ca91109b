"""Results outbox: every result is committed locally first, then delivered to the panel by a
background `OutboxDeliverer` — nothing lost over any outage, nothing applied twice.

Exactly-once effect = at-least-once delivery + the idempotency key: a result is marked delivered
right after the panel acknowledges it; if the process dies between the acknowledgement and the
mark, the next delivery carries the same `Idempotency-Key` and the panel answers 2xx/409
(already seen), which also counts as delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from switchboard import clock
from switchboard.panel.client import DeliveryOutcome, PanelClient
from switchboard.panel.contract import AlertRequest, ReportResultRequest, describe
from switchboard.panel.local import LocalPanel
from switchboard.process import gone, node_id
from switchboard.settings import Settings
from switchboard.store import CallbackOutcome, CallData, EventData, OutboxEntry, Store
from switchboard.store.models import OutboxItem

log = logging.getLogger(__name__)


class ResultSink(Protocol):
    """Where outbox items go. Must be idempotent per key (deliveries can repeat after a crash)."""

    async def deliver(self, kind: str, payload: dict[str, Any], idempotency_key: str) -> DeliveryOutcome: ...


class PanelSink:
    """Deliver to an external panel over HTTP."""

    def __init__(self, client: PanelClient, *, retries: int = 0) -> None:
        self.client = client
        self.retries = retries  # the deliverer's backoff does the long-term retrying

    async def deliver(self, kind: str, payload: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        try:
            if kind == "alert":
                alert = AlertRequest.model_validate(payload)
                return await self.client.send_alert(alert.kind, alert.message, alert.details)
            report = ReportResultRequest.model_validate(payload)
        except ValidationError as exc:
            return DeliveryOutcome(False, None, f"stored payload invalid: {describe(exc)}", permanent=True)
        return await self.client.report_result(report, idempotency_key=idempotency_key, retries=self.retries)


class LocalSink:
    """No external panel: apply the result to the local contacts (the built-in panel's
    report-result), idempotent by the same key."""

    def __init__(self, local: LocalPanel) -> None:
        self.local = local

    async def deliver(self, kind: str, payload: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        try:
            if kind == "alert":
                alert = AlertRequest.model_validate(payload)
                return await self.local.send_alert(
                    alert.kind, alert.message, alert.details, company=alert.company
                )
            report = ReportResultRequest.model_validate(payload)
        except ValidationError as exc:
            return DeliveryOutcome(False, None, f"stored payload invalid: {describe(exc)}", permanent=True)
        return await self.local.report_result(report, idempotency_key=idempotency_key)


# --- transcripts log ----------------------------------------------------------------------------

POSITIVE_RESULTS = frozenset({"connected_to_operator"})
NEGATIVE_RESULTS = frozenset({"not_interested"})
POSITIVE_INTENTS = frozenset({"yes", "positive", "interested", "accept", "operator"})
NEGATIVE_INTENTS = frozenset({"no", "negative", "not_interested", "reject", "opt_out"})


def polarity(status: str, intent: str | None) -> str | None:
    """'positive' / 'negative' / None for a call's outcome, by result first, then by intent."""
    if status in POSITIVE_RESULTS:
        return "positive"
    if status in NEGATIVE_RESULTS:
        return "negative"
    if intent in POSITIVE_INTENTS:
        return "positive"
    if intent in NEGATIVE_INTENTS:
        return "negative"
    return None


class TranscriptLog:
    """Appends caller transcripts to logs/positive_stt.log and logs/negative_stt.log, one line per
    call: `<iso time>\t<phone>\t<scenario>\t<status>\t<text>` (operators grep these)."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = Path(logs_dir)
        self._lock = asyncio.Lock()

    async def append(self, kind: str, *, phone: str, scenario: str | None, status: str, text: str) -> None:
        line = (
            "\t".join(
                [
                    clock.now().isoformat(timespec="seconds"),
                    phone,
                    scenario or "-",
                    status,
                    " ".join(text.split()),
                ]
            )
            + "\n"
        )
        path = self.logs_dir / f"{kind}_stt.log"
        async with self._lock:
            await asyncio.to_thread(_append, path, line)


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)


def caller_text(call: CallData, report: ReportResultRequest) -> str:
    if report.user_message:
        return report.user_message
    parts = [str(t.get("text", "")) for t in (call.transcripts or []) if t.get("role") in ("caller", "user")]
    return " | ".join(p for p in parts if p)


# --- the outbox ---------------------------------------------------------------------------------


RECORD_PATIENCE = 600.0  # seconds a finished call's result waits for the database to come back


def transient_db_error(exc: BaseException) -> bool:
    """The database is busy or briefly gone (SQLite locked past its busy timeout, PostgreSQL
    restarting, a dropped connection): worth retrying, the data is still good."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError)):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("connection", "database is locked", "shutting down", "starting up",
                                   "cannotconnectnow", "terminat"))


async def record_patiently(write: Any, *, what: str, patience: float = RECORD_PATIENCE) -> Any:
    """Run `write()` (one transaction) until it succeeds; a transient database error is retried with
    backoff for up to `patience` seconds, so a finished call's result is not lost to a busy SQLite or
    a PostgreSQL restart. `write` must be idempotent (the outbox key makes `record` so)."""
    delay, waited = 0.2, 0.0
    while True:
        try:
            return await write()
        except Exception as exc:
            if not transient_db_error(exc) or waited >= patience:
                raise
            log.warning("could not store the %s yet (%s); retrying in %.1f s", what,
                        f"{type(exc).__name__}: {exc}"[:200], delay)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)


class ResultsOutbox:
    """The engine/dialer's entry point: `submit` a finished call and its report."""

    def __init__(self, store: Store, settings: Settings, deliverer: OutboxDeliverer | None = None) -> None:
        self.store = store
        self.deliverer = deliverer
        self.transcripts = TranscriptLog(settings.logs_dir)

    async def submit(
        self,
        call: CallData,
        report: ReportResultRequest,
        events: Sequence[EventData] = (),
        *,
        idempotency_key: str | None = None,
        callback: CallbackOutcome | None = None,
    ) -> str:
        """Commit call + timeline + outbox row (+ the call back it served) in one transaction, log
        the transcript, wake the deliverer. Returns the idempotency key (default: derived from the
        call id, so submitting the same call twice is a no-op).

        The contact's attempt state is NOT touched here: it belongs to the panel, which updates it
        when the report arrives (the built-in panel via `LocalSink`/report-result)."""
        key = idempotency_key or f"call:{call.id}"
        created = await record_patiently(
            lambda: self.store.calls.record(call, events, outbox=OutboxEntry(key, report.model_dump(mode="json")),
                                            callback=callback),
            what=f"result of call {call.id}",
        )
        if created:
            kind = polarity(report.status, call.intent)
            text = caller_text(call, report)
            if kind and text:
                try:
                    await self.transcripts.append(
                        kind,
                        phone=report.phone_number,
                        scenario=call.scenario,
                        status=report.status,
                        text=text,
                    )
                except OSError as exc:
                    log.warning("could not write %s transcript log: %s", kind, exc)
        if self.deliverer is not None:
            self.deliverer.wake()
        return key

    async def submit_alert(self, alert: AlertRequest, *, idempotency_key: str | None = None) -> str:
        key = idempotency_key or f"alert:{uuid.uuid4().hex}"
        await self.store.outbox.add(key, alert.model_dump(mode="json"), kind="alert")
        if self.deliverer is not None:
            self.deliverer.wake()
        return key


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 1.0
    factor: float = 2.0
    max: float = 300.0
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        raw = min(self.max, self.base * self.factor ** max(0, attempts - 1))
        return raw * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else raw


class OutboxDeliverer:
    """Background task draining the outbox into a `ResultSink`. Resumes after a restart (the
    rows are the state); several deliverers can share one PostgreSQL outbox (rows are claimed)."""

    def __init__(
        self,
        store: Store,
        sink: ResultSink,
        *,
        owner: str | None = None,
        batch_size: int = 20,
        backoff: Backoff = Backoff(),
        poll_interval: float = 5.0,
        claim_seconds: float = 15.0,
    ) -> None:
        # Claims are short and renewed while a round works (`_heartbeat`): a deliverer that dies
        # frees its rows within `claim_seconds`, at once for one of this host (see `start`).
        self.store = store
        self.sink = sink
        self.owner = owner or f"{node_id()}-{uuid.uuid4().hex[:8]}"
        self.batch_size = batch_size
        self.backoff = backoff
        self.poll_interval = poll_interval
        self.claim_seconds = claim_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.delivered = 0
        self.failures = 0

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            await self.release_dead_claims()
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox-deliverer")

    async def release_dead_claims(self) -> int:
        """Rows claimed by a deliverer whose process on this host is gone are free again at once."""
        dead = [o for o in await self.store.outbox.claim_owners()
                if o != self.owner and gone(o)]
        released = await self.store.outbox.release_claims(dead)
        if released:
            log.warning("released %d outbox row(s) claimed by stopped deliverer(s) %s", released, ", ".join(dead))
        return released

    async def _heartbeat(self, items: list[OutboxItem], done: set[int]) -> None:
        """Renew the claim on this round's rows until the round ends."""
        while True:
            await asyncio.sleep(max(0.5, self.claim_seconds / 3))
            pending = [i.id for i in items if i.id not in done]
            if not pending:
                return
            try:
                await self.store.outbox.renew_claims(self.owner, pending, claim_seconds=self.claim_seconds)
            except Exception:  # the next beat tries again; an expired claim only risks a replay
                log.warning("could not renew outbox claims", exc_info=True)

    async def _deliver_all(self, items: list[OutboxItem], *, stop_on_failure: bool = False) -> list[bool]:
        done: set[int] = set()
        beat = asyncio.create_task(self._heartbeat(items, done))
        out: list[bool] = []
        try:
            for item in items:
                ok = await self._deliver(item)
                done.add(item.id)
                out.append(ok)
                if stop_on_failure and not ok:
                    break
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        return out

    async def stop(self, *, flush_timeout: float = 5.0) -> bool:
        """Stop the loop after trying to deliver what is due for up to `flush_timeout` seconds.
        Returns True when nothing is left pending (undelivered rows wait for the next start)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            # Let the round in progress finish (a delivery the panel acknowledged must be marked
            # delivered here, not left claimed); cancel only if it hangs.
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=max(flush_timeout, 1.0))
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None
        if flush_timeout > 0:
            return await self.flush(timeout=flush_timeout)
        return await self.store.outbox.pending_count() == 0

    async def flush(self, *, timeout: float = 5.0) -> bool:
        """Deliver everything due now (ignoring backoff) until done or `timeout`."""
        deadline = clock.monotonic() + timeout
        while clock.monotonic() < deadline:
            items = await self.store.outbox.claim_due(
                self.owner, self.batch_size, claim_seconds=self.claim_seconds, ignore_backoff=True
            )
            if not items:
                return await self.store.outbox.pending_count() == 0
            if not any(await self._deliver_all(items)):
                return False  # the sink is down; leave the rest for the next start
        return await self.store.outbox.pending_count() == 0

    async def run_once(self) -> int:
        """Claim and deliver one round of due items; returns how many were delivered."""
        items = await self.store.outbox.claim_due(
            self.owner, self.batch_size, claim_seconds=self.claim_seconds
        )
        return sum(await self._deliver_all(items))

    async def _deliver(self, item: OutboxItem) -> bool:
        try:
            outcome = await self.sink.deliver(item.kind, item.payload, item.idempotency_key)
        except Exception as exc:  # a sink bug must not kill the deliverer
            log.exception("outbox sink raised for %s", item.idempotency_key)
            outcome = DeliveryOutcome(False, None, f"{type(exc).__name__}: {exc}")
        if outcome.delivered:
            await self.store.outbox.mark_delivered(item.id)
            self.delivered += 1
            return True
        self.failures += 1
        attempts = item.attempts + 1
        delay = self.backoff.max if outcome.permanent else self.backoff.delay(attempts)
        level = logging.ERROR if outcome.permanent else logging.WARNING
        log.log(
            level,
            "result %s not delivered (attempt %d, retry in %.0fs): %s",
            item.idempotency_key,
            attempts,
            delay,
            outcome.error,
        )
        await self.store.outbox.mark_retry(
            item.id, outcome.error or "not delivered", clock.now() + timedelta(seconds=delay)
        )
        return False

    async def _sleep_until_due(self) -> None:
        due = await self.store.outbox.next_due_at()
        wait = self.poll_interval
        if due is not None:
            wait = max(0.05, min(wait, (due - clock.now()).total_seconds()))
        if wait > 0:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
        self._wake.clear()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                delivered = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox delivery round failed; retrying")
                delivered = 0
            if delivered < self.batch_size:
                await self._sleep_until_due()


def make_sink(
    settings: Settings, store: Store, *, client: PanelClient | None = None, local: LocalPanel | None = None
) -> ResultSink:
    """PanelSink when PANEL_BASE_URL is set, else LocalSink on the built-in panel."""
    if settings.panel_base_url:
        return PanelSink(client or PanelClient.from_settings(settings))
    return LocalSink(local or LocalPanel(store, settings))
