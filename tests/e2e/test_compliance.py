"""Compliance end to end through the real dialer loop: calling hours across zones and DST,
retries by result, the do-not-call list and an opt-out that lands there."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from switchboard.clock import run_virtual
from switchboard.phones import normalize
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

from tests.e2e.harness import all_calls, all_contacts, dialed, e2e_settings, iran_phones, line, running_node, seed

NEW_YORK = ZoneInfo("America/New_York")
TEHRAN = ZoneInfo("Asia/Tehran")


def no_thanks(number: str, variables: dict[str, str]) -> CallerScript:
    return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2), replies=[Reply(say="no thanks")])


def test_calling_hours_follow_each_contacts_zone_across_dst(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Sunday 2026-03-08 10:00 UTC: New York switched to EDT at 07:00 UTC, so it is 06:00 there
    (night) and 13:30 in Tehran. Tehran numbers are dialed at once; New York numbers exactly when
    09:00 EDT (13:00 UTC, not 14:00 as EST would say) comes; a contact whose own zone is
    America/Los_Angeles (09:00 PDT = 16:00 UTC) waits for its zone, not its number's."""
    start = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
    settings = e2e_settings(tmp_path, calling_hours_start="09:00", calling_hours_end="21:00",
                            default_region="IR", panel_timezone="+0330")
    ny = ["+12127365000", "+12127365001", "+12127365002", "+12127365003"]
    tehran = iran_phones(4)

    async def campaign() -> None:
        async with running_node(settings, script=no_thanks, lines=[line("02191000001", 2, 30, 1000)]) as h:
            await seed(h.store, settings, ny + tehran)
            la_id = (await seed(h.store, settings, ["09124440000"], timezone="America/Los_Angeles"))[0]
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
            contacts = await all_contacts(h.store)
        first: dict[str, datetime] = {}
        for c in calls:
            first.setdefault(c.phone_e164, c.originated_at)
        assert set(first) == {normalize(p, "IR").e164 for p in ny + tehran + ["09124440000"]}
        for phone in tehran:
            at = first[normalize(phone, "IR").e164]
            assert at < start + timedelta(minutes=5), at
        opening = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
        for phone in ny:
            at = first[phone]
            assert opening <= at < opening + timedelta(minutes=5), at
            assert at.astimezone(NEW_YORK).time() >= time(9)
        la = first[normalize("09124440000", "IR").e164]
        assert datetime(2026, 3, 8, 16, 0, tzinfo=UTC) <= la < datetime(2026, 3, 8, 16, 5, tzinfo=UTC), la
        assert all(c.status == "done" for c in contacts)
        assert any(c.id == la_id and c.attempts == 1 for c in contacts)

    run_virtual(campaign(), start=start, real_grace=0.005)


def test_missed_and_busy_retried_after_the_delay_up_to_max_attempts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # 13:30 in Tehran
    settings = e2e_settings(tmp_path, calling_hours_start="09:00", calling_hours_end="21:00",
                            max_attempts=3, retry_delay_seconds=600, daily_attempts_per_contact=5)
    no_answer, busy, refuses, later = (normalize(p, "IR").e164 for p in iran_phones(4))
    tries: Counter[str] = Counter()

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        tries[number] += 1
        if number == no_answer:
            return CallerScript(phone=number, answer="no_answer")
        if number == busy or (number == later and tries[number] == 1):
            return CallerScript(phone=number, answer="busy")
        return no_thanks(number, variables)

    async def campaign() -> None:
        async with running_node(settings, script=script, lines=[line("02191000001", 4, 30, 1000)]) as h:
            await seed(h.store, settings, iran_phones(4))
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
            contacts = {c.phone_e164: c for c in await all_contacts(h.store)}
        by_phone: dict[str, list] = defaultdict(list)
        for c in calls:
            by_phone[c.phone_e164].append(c)
        assert [len(by_phone[p]) for p in (no_answer, busy, refuses, later)] == [3, 3, 1, 2]
        for phone in (no_answer, busy, later):
            times = [c.originated_at for c in by_phone[phone]]
            gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
            assert all(600 <= g < 600 + 120 for g in gaps), (phone, gaps)
        assert {c.result for c in by_phone[no_answer]} == {"missed"}
        assert [c.result for c in by_phone[later]] == ["missed", "not_interested"]
        assert by_phone[refuses][0].result == "not_interested"
        for phone, attempts in ((no_answer, 3), (busy, 3), (refuses, 1), (later, 2)):
            assert contacts[phone].status == "done" and contacts[phone].attempts == attempts

    run_virtual(campaign(), start=start, real_grace=0.005)


def test_retries_respect_the_per_contact_daily_cap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two attempts a day at most: the third try of a number that never answers waits for the
    next day's calling hours (09:00 Tehran = 05:30 UTC)."""
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    settings = e2e_settings(tmp_path, calling_hours_start="09:00", calling_hours_end="21:00",
                            max_attempts=3, retry_delay_seconds=600, daily_attempts_per_contact=2)

    async def campaign() -> None:
        async with running_node(settings, script=lambda n, v: CallerScript(phone=n, answer="busy"),
                                lines=[line("02191000001", 2, 30, 1000)]) as h:
            await seed(h.store, settings, iran_phones(1))
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
        times = [c.originated_at for c in calls]
        assert len(times) == 3
        assert times[0].date() == times[1].date() == start.date()
        assert times[2] == datetime(2026, 3, 3, 5, 30, tzinfo=UTC)

    run_virtual(campaign(), start=start, real_grace=0.005)


def test_dnc_never_dialed_and_opt_out_lands_on_the_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A number on the DNC list is never dialed. A caller who asks agrad_marketing not to be called
    again ends on the list (store.dnc) and their second contact row (another campaign, due an
    hour later) is never dialed."""
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    settings = e2e_settings(tmp_path, "agrad_marketing")
    blocked, opt_out, normal = iran_phones(3)
    opt_out_e164 = normalize(opt_out, "IR").e164

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        if number == opt_out_e164:
            return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2),
                                replies=[Reply(say="please don't call me again")])
        return no_thanks(number, variables)

    async def campaign() -> None:
        async with running_node(settings, script=script, lines=[line("02191000001", 2, 30, 1000)]) as h:
            await seed(h.store, settings, [blocked, opt_out, normal], campaign="spring")
            await seed(h.store, settings, [opt_out, blocked], campaign="summer", due=start + timedelta(hours=1))
            # (Added after the contacts: a pending contact whose number is already on the list when
            # it is imported is never leased but stays "pending", so run(until_idle) never ends.)
            await h.store.dnc.add(normalize(blocked, "IR").e164, reason="asked by letter", source="test")
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
            entry = await h.store.dnc.get(opt_out_e164)
            contacts = await all_contacts(h.store)
        numbers = Counter(c.phone_e164 for c in calls)
        assert normalize(blocked, "IR").e164 not in numbers
        assert numbers[opt_out_e164] == 1 and numbers[normalize(normal, "IR").e164] == 1
        assert entry is not None and entry.source == "flow"
        opted = next(c for c in calls if c.phone_e164 == opt_out_e164)
        assert opted.result == "not_interested" and opted.scenario == "agrad_marketing"
        assert sorted(c.status for c in contacts if c.phone_e164 == opt_out_e164) == ["dnc", "done"]

    run_virtual(campaign(), start=start, real_grace=0.005)
