"""What is happening right now: calls in progress, the dialer's state, lines and operators.

The dialer feeds a `LiveBoard` through a few hooks (a call dialing, each timeline entry, a call
ending) on its own event loop; the console reads immutable snapshots from any thread (the demo
serves the console from a real-time thread while the campaign runs on the virtual clock). Every
access goes through one lock, and snapshots are copies, so readers never see a half-updated call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time as dtime
from typing import Any

REFRESH_AFTER = 0.5  # seconds (real time) a reader tolerates before asking the node for fresh state


@dataclass(frozen=True, slots=True)
class LiveCall:
    call_id: str  # the call's id in the store (its call page)
    direction: str
    phone: str
    scenario: str
    line: str | None
    started_at: datetime  # on the node's clock
    state: str = "dialing"  # dialing | talking | operator | ended
    answered_at: datetime | None = None
    step: str | None = None
    step_type: str | None = None
    persona: str | None = None
    operator: str | None = None
    last_speaker: str | None = None
    last_text: str = ""
    intent: str | None = None
    result: str | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    version: int
    now: datetime  # the node's clock (virtual in the demo)
    calls: tuple[LiveCall, ...]
    recent: tuple[LiveCall, ...]  # calls that ended lately, newest first
    state: dict[str, Any] = field(default_factory=dict)  # dialer, lines, operators (see `dialer_probe`)
    attached: bool = False  # a dialer feeds this board
    finished: bool = False  # ... and has finished its campaign (the demo's end)
    ended_total: int = 0
    results: dict[str, int] = field(default_factory=dict)


class LiveBoard:
    def __init__(self, *, keep_recent: int = 25) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, LiveCall] = {}
        self._recent: deque[LiveCall] = deque(maxlen=keep_recent)
        self._state: dict[str, Any] = {}
        self._version = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probe: Callable[[], dict[str, Any]] | None = None
        self._refreshed = 0.0
        self._refresh_pending = False
        self._finished = False
        self._frozen_now: datetime | None = None
        self._ended_total = 0
        self._results: dict[str, int] = {}

    # --- the node's side (called on the dialer's event loop) ---------------------------------
    def attach(self, probe: Callable[[], dict[str, Any]], loop: asyncio.AbstractEventLoop | None = None) -> None:
        """`probe()` returns the dialer/lines/operators state; it runs on the node's loop only."""
        self._loop = loop or asyncio.get_running_loop()
        self._probe = probe
        with self._lock:
            self._finished = False
            self._frozen_now = None
        self.refresh()

    def detach(self, *, finished: bool = True) -> None:
        """The dialer is gone (the demo campaign ended): readers see the last state as final."""
        self.refresh()
        with self._lock:
            self._finished = finished
            self._frozen_now = self._node_now()  # the node's clock stops with it (virtual in the demo)
            self._probe = None
            self._loop = None
            self._version += 1

    def dialing(self, call_id: str, *, direction: str, phone: str, scenario: str, line: str | None) -> None:
        call = LiveCall(call_id, direction, phone, scenario, line, self._node_now(),
                        state="dialing" if direction == "outbound" else "talking")
        with self._lock:
            self._calls[call_id] = call
            self._version += 1
        self.refresh()

    def event(self, call_id: str, entry: Any) -> None:
        """A timeline entry (`engine.context.TimelineEntry`) of a call in progress."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return
            changes: dict[str, Any] = {}
            if call.state == "dialing":
                changes.update(state="talking", answered_at=self._node_now())
            kind, detail = entry.event, entry.detail
            if kind == "step":
                changes.update(step=entry.step, step_type=entry.type)
            elif kind == "turn":
                changes.update(persona=detail.get("persona") or call.persona, last_speaker=detail.get("speaker"),
                               last_text=str(detail.get("text", ""))[:300])
            elif kind == "transcript":
                changes.update(last_speaker="caller", last_text=str(detail.get("text", ""))[:300])
            elif kind == "said":
                changes.update(last_speaker="agent", last_text=str(detail.get("text", ""))[:300])
            elif kind == "intent":
                changes.update(intent=detail.get("intent"))
            elif kind == "operator_ringing":
                changes.update(state="operator", operator=detail.get("operator"))
            elif kind == "operator_answered":
                changes.update(state="operator", operator=detail.get("operator"))
            elif kind == "result":
                changes.update(result=detail.get("result"))
            if changes:
                self._calls[call_id] = replace(call, **changes)
                self._version += 1
        if kind in ("operator_ringing", "operator_answered", "operator_failed", "call_ended"):
            self.refresh()

    def ended(self, call_id: str, result: str) -> None:
        with self._lock:
            call = self._calls.pop(call_id, None)
            self._ended_total += 1
            self._results[result] = self._results.get(result, 0) + 1
            if call is not None:
                self._recent.appendleft(replace(call, state="ended", result=result, ended_at=self._node_now()))
            self._version += 1
        self.refresh()

    def refresh(self) -> None:
        """Re-read the dialer's state through the probe (node loop only)."""
        probe = self._probe
        state: dict[str, Any] | None = None
        if probe is not None:
            try:
                state = probe()
            except Exception:  # a probe must never break a call
                state = None
        with self._lock:
            self._refresh_pending = False
            self._refreshed = time.monotonic()
            if state is not None and state != self._state:
                self._state = state
                self._version += 1

    # --- readers (any thread) ----------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> LiveSnapshot:
        self._request_refresh()
        with self._lock:
            return LiveSnapshot(self._version, self._node_now(),
                                tuple(sorted(self._calls.values(), key=lambda c: c.started_at)),
                                tuple(self._recent), dict(self._state), self._probe is not None, self._finished,
                                self._ended_total, dict(self._results))

    def _request_refresh(self) -> None:
        """State that changes without a call event (a failure pause, calling hours) is refreshed
        when readers look: ask the node's loop for a probe, at most every REFRESH_AFTER seconds."""
        loop = self._loop
        with self._lock:
            if loop is None or self._refresh_pending or time.monotonic() - self._refreshed < REFRESH_AFTER:
                return
            self._refresh_pending = True
        try:
            loop.call_soon_threadsafe(self.refresh)
        except RuntimeError:  # the loop closed
            with self._lock:
                self._refresh_pending = False

    def _node_now(self) -> datetime:
        if self._frozen_now is not None:
            return self._frozen_now
        loop = self._loop
        epoch = getattr(loop, "virtual_epoch", None) if loop is not None else None
        if epoch is not None:
            return datetime.fromtimestamp(epoch + loop.time(), UTC)  # type: ignore[union-attr]
        return datetime.now(UTC)


def within_hours(now: datetime, start: dtime, end: dtime, tz: Any) -> bool:
    local = now.astimezone(tz).time()
    return start <= local < end if start < end else (local >= start or local < end)


def dialer_probe(dialer: Any, *, now: Callable[[], datetime]) -> Callable[[], dict[str, Any]]:
    """The probe for a `Dialer`: running / paused and why / outside calling hours, its lines with
    their limits and calls in progress, and every operator with their state. Runs on the dialer's
    loop (it reads the dialer's plain attributes)."""
    from switchboard.dialer.lines import parse_timezone

    def probe() -> dict[str, Any]:
        status = dialer.status()
        policy = dialer.compliance.policy
        tz = parse_timezone(policy.default_timezone)
        inside = within_hours(now(), policy.window_start, policy.window_end, tz)
        pause = status.get("pause") or status.get("failure_pause")
        state = "paused" if dialer.health.paused else ("outside_hours" if not inside else "running")
        if dialer.stopping:
            state = "stopping"
        pool = dialer.engine.services.operators
        serves: dict[str, list[str]] = {}
        for direction, roster in (("outbound", pool.default_outbound), ("inbound", pool.default_inbound)):
            for op in roster:
                if direction not in serves.setdefault(op.number, []):
                    serves[op.number].append(direction)
        operators = [{"number": number, "direction": ", ".join(directions), "busy": pool.is_busy(number)}
                     for number, directions in serves.items()]
        return {
            "state": state,
            "pause_reason": pause if dialer.health.paused else None,
            "calling_hours": f"{policy.window_start:%H:%M}-{policy.window_end:%H:%M} ({policy.default_timezone})",
            "active_calls": status.get("active_calls", 0),
            "abandon": status.get("abandon", {}),
            "lines": [{"number": line.phone_number, "name": line.display_name or line.phone_number,
                       "max_concurrent": line.limits.max_concurrent, "per_minute": line.limits.per_minute,
                       "per_day": line.limits.per_day} for line in dialer.lines],
            "operators": operators,
            "stats": {"originated": dialer.stats.originated, "answered": dialer.stats.answered,
                      "deferred": dialer.stats.deferred, "refused": dialer.stats.refused},
        }

    return probe


__all__ = ["LiveBoard", "LiveCall", "LiveSnapshot", "dialer_probe", "within_hours"]
