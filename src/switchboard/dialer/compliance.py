"""May this contact be called now? Checked before every origination.

The rules, in order: the do-not-call list and final results say `Never`; max attempts says
`Never`; the retry delay for the last result, the lock-out after an abandoned call and the
per-contact daily cap push the earliest time forward; then the calling-hours window, in the
contact's own local time (its IANA zone, else the panel's offset), moves that time into the next
allowed window. DST is handled by zoneinfo: "09:00 local" is a different UTC instant either side of
a transition.

`evaluate` is pure (it takes `now` and the DNC answer); `Compliance.check` adds the async DNC
lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo

from switchboard.dialer.lines import parse_timezone
from switchboard.engine.results import ResultCatalog
from switchboard.settings import Settings
from switchboard.store.reports import RETRY_RESULTS as STORE_RETRY_RESULTS

# Results the dialer knows how to schedule. Anything not listed (and not `failed:*`) is final:
# the contact was reached and the flow decided (connected_to_operator, inbound_call, completed...).
# One classification of results for the dialer and the built-in panel (store.reports), so a contact
# the panel re-offers is never refused by the dialer.
RETRY_RESULTS = tuple(sorted(STORE_RETRY_RESULTS | {"unreachable", "congestion", "failed"}))
NEVER_RESULTS = ("not_interested", "do_not_call", "opted_out", "invalid_number")


@dataclass(frozen=True, slots=True)
class Allowed:
    pass


@dataclass(frozen=True, slots=True)
class NotBefore:
    at: datetime  # aware UTC
    reason: str


@dataclass(frozen=True, slots=True)
class Never:
    reason: str


Decision = Allowed | NotBefore | Never
ALLOWED = Allowed()


@dataclass(frozen=True, slots=True)
class ContactState:
    """What compliance needs to know about a contact; the store fills it from the contact row."""

    phone: str
    timezone: str | None = None  # IANA name; None -> the policy's default offset
    attempts: int = 0
    last_result: str | None = None
    last_attempt_at: datetime | None = None
    recent_attempts: Sequence[datetime] = ()  # attempt times of at least the last ~2 days (daily cap)
    last_abandoned_at: datetime | None = None
    last_scenario: str | None = None  # the scenario that recorded last_result (its declarations count)


def _parse_hhmm(value: str) -> time:
    hours, _, minutes = value.strip().partition(":")
    return time(int(hours), int(minutes or 0))


@dataclass(frozen=True, slots=True)
class CompliancePolicy:
    """Per-campaign rules. With a `results` catalog (production), each result's declared meaning
    decides: final, or retried after its delay. Without one, `retry_delays` maps a result to its
    delay (None = never retry) and `failed:<reason>` results use the `failed` entry."""

    window_start: time = time(9, 0)
    window_end: time = time(21, 0)
    default_timezone: str = "+0330"
    max_attempts: int = 3
    retry_delays: Mapping[str, timedelta | None] = field(
        default_factory=lambda: {
            **{name: timedelta(minutes=30) for name in RETRY_RESULTS},
            **{name: None for name in NEVER_RESULTS},
        }
    )
    abandon_lockout: timedelta = timedelta(hours=1)
    daily_cap: int = 2
    results: ResultCatalog | None = None

    def __post_init__(self) -> None:
        if self.window_start == self.window_end:
            raise ValueError("calling-hours window is empty: start equals end")
        parse_timezone(self.default_timezone)  # fail at start-up on a bad panel offset

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> CompliancePolicy:
        """From `CALLING_HOURS_START/END`, `PANEL_TIMEZONE`, `MAX_ATTEMPTS`, `RETRY_DELAY_SECONDS`,
        `ABANDON_LOCKOUT_SECONDS`, `DAILY_ATTEMPTS_PER_CONTACT`."""
        delay = timedelta(seconds=settings.retry_delay_seconds)
        values: dict[str, object] = {
            "window_start": _parse_hhmm(settings.calling_hours_start),
            "window_end": _parse_hhmm(settings.calling_hours_end),
            "default_timezone": settings.panel_timezone,
            "max_attempts": settings.max_attempts,
            "retry_delays": {
                **{name: delay for name in RETRY_RESULTS},
                **{name: None for name in NEVER_RESULTS},
            },
            "abandon_lockout": timedelta(seconds=settings.abandon_lockout_seconds),
            "daily_cap": settings.daily_attempts_per_contact,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def retry_delay(self, result: str, scenario: str | None = None) -> tuple[bool, timedelta | None]:
        """(known, delay): known=False means the result is final (the contact is done)."""
        if self.results is not None:
            seconds = self.results.retry_delay(result, scenario)
            return True, None if seconds is None else timedelta(seconds=seconds)
        if result in self.retry_delays:
            return True, self.retry_delays[result]
        if result.startswith("failed:") and "failed" in self.retry_delays:
            return True, self.retry_delays["failed"]
        return False, None


def contact_tz(contact: ContactState, policy: CompliancePolicy) -> tzinfo:
    default = parse_timezone(policy.default_timezone)
    return parse_timezone(contact.timezone, default) if contact.timezone else default


def in_window(local: time, start: time, end: time) -> bool:
    if start < end:
        return start <= local < end
    return local >= start or local < end  # a window across midnight, e.g. 22:00-06:00


def next_window_start(at: datetime, tz: tzinfo, start: time, end: time) -> datetime:
    """`at` if it is inside the window, else the next opening, as an aware UTC datetime."""
    local = at.astimezone(tz)
    if in_window(local.timetz().replace(tzinfo=None), start, end):
        return at.astimezone(UTC)
    day = local.date()
    if local.time() >= start:  # past today's opening (and outside): open tomorrow
        day += timedelta(days=1)
    opening = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
    # An opening inside a DST gap maps to the first real instant after it; never step backwards.
    return max(opening, at.astimezone(UTC))


def _next_local_midnight(at: datetime, tz: tzinfo) -> datetime:
    local = at.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def evaluate(contact: ContactState, now: datetime, policy: CompliancePolicy, *, on_dnc: bool) -> Decision:
    """The decision for `contact` at `now` (aware). Pure: same inputs, same answer."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if on_dnc:
        return Never("on the do-not-call list")
    result = contact.last_result
    earliest = now.astimezone(UTC)
    reasons: list[str] = []
    if result is not None:
        known, delay = policy.retry_delay(result, contact.last_scenario)
        if not known:
            return Never(f"last result {result!r} is final")
        if delay is None:
            return Never(f"last result {result!r} is never retried")
        if contact.last_attempt_at is not None and contact.last_attempt_at + delay > earliest:
            earliest = (contact.last_attempt_at + delay).astimezone(UTC)
            reasons.append(f"retry delay after {result}")
    if contact.attempts >= policy.max_attempts:
        return Never(f"max attempts ({policy.max_attempts}) reached")
    if contact.last_abandoned_at is not None:
        until = contact.last_abandoned_at + policy.abandon_lockout
        if until > earliest:
            earliest = until.astimezone(UTC)
            reasons.append("lock-out after an abandoned call")

    tz = contact_tz(contact, policy)
    for _ in range(3):  # daily cap and window can push each other to the next day at most twice
        moved = False
        if policy.daily_cap > 0:
            local_day = earliest.astimezone(tz).date()
            today = sum(1 for t in contact.recent_attempts if t.astimezone(tz).date() == local_day)
            if today >= policy.daily_cap:
                earliest = _next_local_midnight(earliest, tz)
                reasons.append(f"daily cap ({policy.daily_cap}) reached")
                moved = True
        opening = next_window_start(earliest, tz, policy.window_start, policy.window_end)
        if opening != earliest:
            earliest = opening
            reasons.append("outside calling hours")
            moved = True
        if not moved:
            break

    if earliest <= now:
        return ALLOWED
    return NotBefore(at=earliest, reason="; ".join(dict.fromkeys(reasons)))


DncLookup = Callable[[str], Awaitable[bool]]


class Compliance:
    """`evaluate` plus the do-not-call lookup (an injected async callable: the store's DNC list)."""

    def __init__(self, policy: CompliancePolicy, is_dnc: DncLookup) -> None:
        self.policy = policy
        self.is_dnc = is_dnc

    async def check(
        self, contact: ContactState, now: datetime, policy: CompliancePolicy | None = None
    ) -> Decision:
        on_dnc = await self.is_dnc(contact.phone)
        return evaluate(contact, now, policy or self.policy, on_dnc=on_dnc)
