from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from switchboard.dialer.compliance import (
    Allowed,
    Compliance,
    CompliancePolicy,
    ContactState,
    Never,
    NotBefore,
    evaluate,
)
from switchboard.settings import Settings

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TEHRAN = ZoneInfo("Asia/Tehran")
POLICY = CompliancePolicy()  # 09:00-21:00, +0330 default, 3 attempts, 30 min retries, 1 h lock-out, 2/day


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def decide(contact: ContactState, now: datetime, policy: CompliancePolicy = POLICY, dnc: bool = False):  # type: ignore[no-untyped-def]
    return evaluate(contact, now, policy, on_dnc=dnc)


def not_before(decision: object) -> datetime:
    assert isinstance(decision, NotBefore), decision
    return decision.at


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        # Tehran (+03:30, no DST since 2022): 08:59 local -> 09:00 today; 20:59 ok; 21:00 -> tomorrow 09:00.
        ("Asia/Tehran", utc(2026, 6, 1, 5, 29), utc(2026, 6, 1, 5, 30)),
        ("Asia/Tehran", utc(2026, 6, 1, 17, 29), None),
        ("Asia/Tehran", utc(2026, 6, 1, 17, 30), utc(2026, 6, 2, 5, 30)),
        # Tehran still had DST (+04:30) in 2021: the same local 09:00 is an hour earlier in UTC.
        ("Asia/Tehran", utc(2021, 6, 1, 4, 20), utc(2021, 6, 1, 4, 30)),
        # New York, spring forward on 2026-03-08: 09:00 EST = 14:00 UTC the day before, 09:00 EDT = 13:00 UTC.
        ("America/New_York", utc(2026, 3, 7, 13, 30), utc(2026, 3, 7, 14, 0)),
        ("America/New_York", utc(2026, 3, 8, 13, 30), None),
        ("America/New_York", utc(2026, 3, 8, 12, 59), utc(2026, 3, 8, 13, 0)),
        # New York, fall back on 2026-11-01: 21:30 EDT on Oct 31 -> Nov 1 09:00 EST = 14:00 UTC.
        ("America/New_York", utc(2026, 11, 1, 1, 30), utc(2026, 11, 1, 14, 0)),
        ("America/New_York", utc(2026, 11, 1, 13, 30), utc(2026, 11, 1, 14, 0)),
        # London: BST from 2026-03-29 (09:00 BST = 08:00 UTC), GMT again from 2026-10-25.
        ("Europe/London", utc(2026, 3, 28, 8, 30), utc(2026, 3, 28, 9, 0)),
        ("Europe/London", utc(2026, 3, 29, 8, 30), None),
        ("Europe/London", utc(2026, 10, 24, 8, 30), None),
        ("Europe/London", utc(2026, 10, 25, 8, 30), utc(2026, 10, 25, 9, 0)),
        ("Europe/London", utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 9, 0)),  # 21:00 BST -> next 09:00 GMT
        # No zone on the contact: the panel's +0330.
        (None, utc(2026, 1, 10, 5, 0), utc(2026, 1, 10, 5, 30)),
        # An unknown zone falls back to the panel's offset too.
        ("Mars/Olympus_Mons", utc(2026, 1, 10, 17, 45), utc(2026, 1, 11, 5, 30)),
    ],
)
def test_calling_hours_in_the_contacts_local_time(
    tz: str | None, now: datetime, expected: datetime | None
) -> None:
    decision = decide(ContactState("+1", timezone=tz), now)
    if expected is None:
        assert decision == Allowed()
    else:
        assert not_before(decision) == expected
        assert "outside calling hours" in decision.reason  # type: ignore[union-attr]


def test_window_opening_inside_a_dst_gap_goes_to_the_first_real_instant() -> None:
    night = CompliancePolicy(window_start=time(2, 30), window_end=time(5, 0))
    # 2026-03-08 01:00 EST; 02:30 does not exist that night in New York (clocks jump 02:00 -> 03:00).
    at = not_before(decide(ContactState("+1", timezone="America/New_York"), utc(2026, 3, 8, 6, 0), night))
    assert at == utc(2026, 3, 8, 7, 30)
    assert at.astimezone(NY).strftime("%H:%M %Z") == "03:30 EDT"


def test_a_window_across_midnight() -> None:
    overnight = CompliancePolicy(window_start=time(22, 0), window_end=time(2, 0), default_timezone="+0000")
    contact = ContactState("+1")
    assert decide(contact, utc(2026, 1, 1, 23, 0), overnight) == Allowed()
    assert decide(contact, utc(2026, 1, 2, 1, 59), overnight) == Allowed()
    assert not_before(decide(contact, utc(2026, 1, 2, 2, 0), overnight)) == utc(2026, 1, 2, 22, 0)


NOON_TEHRAN = utc(2026, 6, 1, 8, 30)


@pytest.mark.parametrize("result", ["missed", "busy", "failed:trunk", "failed:stt_balance", "no_answer"])
def test_retryable_results_wait_for_their_delay(result: str) -> None:
    contact = ContactState(
        "+1", attempts=1, last_result=result, last_attempt_at=NOON_TEHRAN - timedelta(minutes=10)
    )
    decision = decide(contact, NOON_TEHRAN)
    assert not_before(decision) == NOON_TEHRAN + timedelta(minutes=20)
    assert decide(contact, NOON_TEHRAN + timedelta(minutes=20)) == Allowed()


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ("not_interested", "never retried"),
        ("connected_to_operator", "final"),
        ("inbound_call", "final"),
        ("completed", "final"),
    ],
)
def test_final_results_are_never_redialed(result: str, why: str) -> None:
    decision = decide(
        ContactState("+1", attempts=1, last_result=result, last_attempt_at=NOON_TEHRAN), NOON_TEHRAN
    )
    assert isinstance(decision, Never) and why in decision.reason


def test_per_result_delays_are_configurable() -> None:
    policy = CompliancePolicy(
        retry_delays={"busy": timedelta(minutes=5), "missed": timedelta(hours=2), "failed": None}
    )
    at = NOON_TEHRAN
    busy = ContactState("+1", attempts=1, last_result="busy", last_attempt_at=at)
    assert not_before(decide(busy, at, policy)) == at + timedelta(minutes=5)
    missed = ContactState("+1", attempts=1, last_result="missed", last_attempt_at=at)
    assert not_before(decide(missed, at, policy)) == at + timedelta(hours=2)
    failed = ContactState("+1", attempts=1, last_result="failed:trunk", last_attempt_at=at)
    assert isinstance(decide(failed, at, policy), Never)


def test_retry_delay_past_closing_moves_to_next_opening() -> None:
    late = utc(2026, 6, 1, 17, 10)  # 20:40 Tehran
    contact = ContactState("+1", timezone="Asia/Tehran", attempts=1, last_result="busy", last_attempt_at=late)
    decision = decide(contact, late)
    assert not_before(decision) == utc(2026, 6, 2, 5, 30)
    assert "retry delay" in decision.reason and "outside calling hours" in decision.reason  # type: ignore[union-attr]


def test_max_attempts() -> None:
    contact = ContactState(
        "+1", attempts=3, last_result="missed", last_attempt_at=NOON_TEHRAN - timedelta(days=1)
    )
    decision = decide(contact, NOON_TEHRAN)
    assert isinstance(decision, Never) and "max attempts" in decision.reason
    assert (
        decide(
            ContactState(
                "+1", attempts=2, last_result="missed", last_attempt_at=NOON_TEHRAN - timedelta(days=1)
            ),
            NOON_TEHRAN,
        )
        == Allowed()
    )


def test_lockout_after_an_abandoned_call() -> None:
    contact = ContactState(
        "+1",
        attempts=1,
        last_result="missed",
        last_attempt_at=NOON_TEHRAN - timedelta(hours=2),
        last_abandoned_at=NOON_TEHRAN - timedelta(minutes=10),
    )
    decision = decide(contact, NOON_TEHRAN)
    assert not_before(decision) == NOON_TEHRAN + timedelta(minutes=50)
    assert "abandoned" in decision.reason  # type: ignore[union-attr]


def test_daily_cap_counts_attempts_on_the_contacts_local_date() -> None:
    # Two attempts on 2026-06-01 Tehran time; the cap is 2 a day.
    attempts = (utc(2026, 6, 1, 6, 0), utc(2026, 6, 1, 7, 0))
    contact = ContactState(
        "+1",
        timezone="Asia/Tehran",
        attempts=2,
        last_result="missed",
        last_attempt_at=attempts[-1],
        recent_attempts=attempts,
    )
    decision = decide(contact, utc(2026, 6, 1, 9, 0))
    assert not_before(decision) == utc(2026, 6, 2, 5, 30)  # tomorrow 09:00 local
    assert "daily cap" in decision.reason  # type: ignore[union-attr]
    # Late evening UTC on 06-01 is already 06-02 in Tehran: a new day, but outside hours.
    assert not_before(decide(contact, utc(2026, 6, 1, 21, 0))) == utc(2026, 6, 2, 5, 30)
    # In New York the same UTC instants fall on 06-01 local too; by 06-02 13:00 UTC the cap has reset.
    ny = ContactState(
        "+1",
        timezone="America/New_York",
        attempts=2,
        last_result="missed",
        last_attempt_at=attempts[-1],
        recent_attempts=attempts,
    )
    assert not_before(decide(ny, utc(2026, 6, 1, 14, 0))) == utc(2026, 6, 2, 13, 0)
    assert decide(ny, utc(2026, 6, 2, 13, 0)) == Allowed()


def test_first_attempt_inside_hours_is_allowed() -> None:
    assert decide(ContactState("+989121234567"), NOON_TEHRAN) == Allowed()


async def test_do_not_call_list_via_injected_lookup() -> None:
    looked_up: list[str] = []

    async def is_dnc(phone: str) -> bool:
        looked_up.append(phone)
        return phone == "+989120000000"

    compliance = Compliance(POLICY, is_dnc)
    blocked = await compliance.check(ContactState("+989120000000"), NOON_TEHRAN)
    assert isinstance(blocked, Never) and "do-not-call" in blocked.reason
    assert await compliance.check(ContactState("+989121111111"), NOON_TEHRAN) == Allowed()
    assert looked_up == ["+989120000000", "+989121111111"]


def test_policy_from_settings_and_validation() -> None:
    settings = Settings(
        calling_hours_start="08:30",
        calling_hours_end="20:00",
        max_attempts=5,
        retry_delay_seconds=600,
        abandon_lockout_seconds=7200,
        daily_attempts_per_contact=1,
        panel_timezone="+0100",
    )
    policy = CompliancePolicy.from_settings(settings)
    assert (policy.window_start, policy.window_end) == (time(8, 30), time(20, 0))
    assert policy.max_attempts == 5 and policy.daily_cap == 1
    assert policy.retry_delay("busy") == (True, timedelta(minutes=10))
    assert policy.retry_delay("failed:llm_quota") == (True, timedelta(minutes=10))
    assert policy.retry_delay("not_interested") == (True, None)
    assert policy.retry_delay("connected_to_operator") == (False, None)
    assert policy.abandon_lockout == timedelta(hours=2)
    assert not_before(evaluate(ContactState("+1"), utc(2026, 1, 1, 7, 0), policy, on_dnc=False)) == utc(
        2026, 1, 1, 7, 30
    )
    with pytest.raises(ValueError):
        CompliancePolicy(default_timezone="nowhere")
    with pytest.raises(ValueError):
        CompliancePolicy(window_start=time(9), window_end=time(9))
    with pytest.raises(ValueError):
        evaluate(ContactState("+1"), datetime(2026, 1, 1, 12), POLICY, on_dnc=False)
