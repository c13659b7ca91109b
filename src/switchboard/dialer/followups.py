"""`FollowUps`: where call backs and tickets go when a flow or an AI persona creates them. They are
stored (tables `callbacks`, `tickets`), listed by the API (/api/v1/callbacks, /api/v1/tickets) and
the call backs are dialed by the dialer when due.

It is the `CallbackScheduler` of the engine's `schedule_callback` step and the ticket / call back
sink of the brain's tools (`create_ticket(dict) -> id`, `schedule_callback(dict) -> id`), so the
brain keeps its own small interface and knows nothing of the store.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from switchboard import clock
from switchboard.dialer.lines import parse_timezone
from switchboard.engine.callbacks import CallbackRequest
from switchboard.phones import try_normalize
from switchboard.settings import Settings
from switchboard.store import NewCallback, Store

log = logging.getLogger(__name__)

_IN = re.compile(r"^in\s+(\d+(?:\.\d+)?)\s*(minutes?|mins?|m|hours?|hrs?|h|days?|d)$")
_AT = re.compile(r"^(?:(today|tomorrow)\s*)?(?:at\s*)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    """A time a caller or a model gave: an ISO date-time (`2026-06-01T10:00`, zone-less = the
    contact's zone), `tomorrow 10:00`, `today 16:30`, `10:00`, `4pm`, `in 2 hours`. None when it is
    none of these (the caller gets the default delay)."""
    raw = " ".join(text.strip().lower().split())
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.upper() if "t" in raw else raw)
    except ValueError:
        parsed = None
    if parsed is not None:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(now.tzinfo)
    m = _IN.match(raw)
    if m:
        return now + timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)[0]])
    m = _AT.match(raw)
    if m and (m.group(1) or m.group(3) or m.group(4)):
        hour, minute = int(m.group(2)), int(m.group(3) or 0)
        if m.group(4) == "pm" and hour < 12:
            hour += 12
        elif m.group(4) == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59:
            return None
        local = now.astimezone(tz)
        day = local.date() + timedelta(days=1 if m.group(1) == "tomorrow" else 0)
        at = datetime.combine(day, time(hour, minute), tzinfo=tz)
        if m.group(1) is None and at <= local:  # "10:00" already past today: tomorrow
            at += timedelta(days=1)
        return at.astimezone(now.tzinfo)
    return None


class FollowUps:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.company = settings.company
        self.region = settings.default_region
        self.tz = parse_timezone(settings.panel_timezone)
        self.default_delay = timedelta(seconds=settings.retry_delay_seconds)
        self.max_attempts = settings.max_attempts

    # --- the engine's CallbackScheduler ----------------------------------------------------------
    async def schedule(self, request: CallbackRequest) -> str:
        if request.rebook is not None:  # the dialer moves this call back when the call ends
            log.info("Call back CB-%d to be tried again at %s: %s", request.rebook,
                     request.due_at.isoformat(timespec="minutes"), request.reason or "-")
            return f"CB-{request.rebook}"
        parsed = try_normalize(request.phone, self.region)
        if parsed is None:
            raise ValueError(f"cannot call back {request.phone!r}: not a phone number")
        row = await self.store.callbacks.add(NewCallback(
            phone=request.phone, phone_e164=parsed.e164, due_at=request.due_at, company=self.company,
            name=request.name, number_id=request.number_id, scenario=request.scenario, priority=request.priority,
            max_attempts=request.max_attempts, reason=request.reason or None, source=request.source,
            call_id=request.call_id, details=dict(request.details)))
        log.info("Call back CB-%d booked for %s (%s) at %s, scenario %s, priority %d: %s", row.id,
                 parsed.e164, request.source, row.due_at.isoformat(timespec="minutes"), row.scenario or "-",
                 row.priority, request.reason or "-")
        return f"CB-{row.id}"

    # --- the brain's tool sinks ------------------------------------------------------------------
    async def schedule_callback(self, request: dict[str, Any]) -> str:
        """`schedule_callback` tool: {when, reason, phone, call_id}. The call back runs the scenario
        of the call that booked it."""
        now = clock.now()
        when = str(request.get("when") or "")
        due = parse_when(when, now, self.tz)
        reason = str(request.get("reason") or "")
        if due is None:
            due = now + self.default_delay
            reason = f"{reason} (asked for {when!r})".strip() if when else reason
        call = await self.store.calls.get(str(request.get("call_id"))) if request.get("call_id") else None
        return await self.schedule(CallbackRequest(
            phone=str(request.get("phone") or (call.phone if call else "")), due_at=max(due, now),
            scenario=call.scenario if call else None, priority=20, reason=reason or "the caller asked",
            call_id=call.id if call else None, number_id=call.number_id if call else None, source="persona",
            max_attempts=self.max_attempts, details={"when": when}))

    async def create_ticket(self, ticket: dict[str, Any]) -> str:
        """`create_ticket` tool: {subject, description, priority, order_number, call_id, phone,
        persona, fields}."""
        row = await self.store.tickets.add(
            company=self.company, subject=str(ticket.get("subject") or "(no subject)"),
            description=str(ticket.get("description") or ""), priority=str(ticket.get("priority") or "normal"),
            call_id=ticket.get("call_id"), phone=ticket.get("phone"), persona=ticket.get("persona"),
            order_number=ticket.get("order_number"), fields=dict(ticket.get("fields") or {}))
        log.info("Ticket T-%d opened by %s: %s", row.id, ticket.get("persona") or "-", row.subject)
        return f"T-{row.id}"
