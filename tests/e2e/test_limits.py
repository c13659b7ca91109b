"""Limits never exceeded, end to end: the real dialer loop (built-in panel, SQLite, outbox) dials a
few hundred simulated contacts over several lines with mixed limits on the virtual clock, with
inbound callers ringing the same lines. Checked twice, independently: an auditing wrapper around
the limiter (every grant and release) and a recount from the calls table."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from switchboard.clock import run_virtual
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

from tests.e2e.harness import all_calls, all_contacts, dialed, e2e_settings, iran_phones, line, recount, \
    running_node, seed

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 at the panel's +0000
TEHRAN = ZoneInfo("Asia/Tehran")


def test_limits_hold_over_a_multi_day_campaign_with_inbound_traffic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, max_originations_per_second=2.0, calling_hours_start="09:00",
                            calling_hours_end="21:00", retry_delay_seconds=900, batch_size=40)
    lines = [line("02191000001", 3, 8, 30), line("02191000002", 2, 6, 25),
             line("02191000003", 4, 12, 25), line("02191000004", 1, 3, 10)]  # 90 calls a day in all
    rng = random.Random(4)
    kinds = {}

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        kind = kinds.setdefault(number, rng.choices(["no", "busy", "no_answer"], [85, 8, 7])[0])
        if kind != "no":
            return CallerScript(phone=number, answer=kind)  # type: ignore[arg-type]
        return CallerScript(phone=number, answer=AnswerAfter(after_seconds=rng.uniform(1, 6)),
                            replies=[Reply(say="no thanks")])

    inbound = [(float(at), CallerScript(phone=f"0935{i:07d}", talk_seconds=40), ln.phone_number)
               for i, (at, ln) in enumerate([(20, lines[0]), (21, lines[0]), (45, lines[3]), (90, lines[1]),
                                              (130, lines[3]), (300, lines[2]), (301, lines[2]),
                                              (302, lines[2])])]
    phones = iran_phones(150)

    async def campaign() -> None:
        async with running_node(settings, script=script, lines=lines, inbound_callers=inbound,
                                audit_rate=2.0) as h:
            await seed(h.store, settings, phones)
            await h.dialer.run(until_idle=True)
            audit = h.audit
            assert h.limiter is not None
            calls = await all_calls(h.store)
            contacts = await all_contacts(h.store)

        assert audit is not None
        assert audit.violations == []
        out = dialed(calls)
        inb = [c for c in calls if c.direction == "inbound"]
        # Every inbound caller got a slot (none refused as line_busy) and counted on its line.
        assert len(inb) == len(inbound) and all(c.result != "failed:line_busy" for c in inb)
        # Every call started on a slot the limiter granted at that instant (a slot granted to a
        # contact who had left calling hours meanwhile is handed back unused).
        granted = {(g.line.phone_number, g.at) for g in h.limiter.grants}
        assert all((c.line, c.originated_at) in granted for c in out + inb)

        table = recount(calls, lines, rate=2.0)
        assert table.violations == []
        # The limits were binding (else "never exceeded" would prove nothing): each line reached its
        # concurrent limit, filled some minute, and the campaign ran into a second day.
        for ln in lines:
            assert audit.max_active[ln.id] == ln.limits.max_concurrent, ln.id
            day1 = [c for c in out if c.line == ln.phone_number and c.originated_at.date() == START.date()]
            assert len(day1) == ln.limits.per_day, ln.id
            starts = sorted(c.originated_at.timestamp() for c in day1)
            assert any(starts[i + ln.limits.per_minute - 1] - starts[i] < 60
                       for i in range(len(starts) - ln.limits.per_minute + 1)), ln.id
        days = Counter(c.originated_at.date() for c in out)
        assert len(days) >= 2
        # Starts on day two wait for calling hours (09:00 in the contacts' zone, Asia/Tehran from
        # their numbers) although the lines' day counters reset at 00:00 (the panel's +0000).
        for c in out:
            local = c.originated_at.astimezone(TEHRAN).time()
            assert time(9) <= local < time(21), c.originated_at
        day2 = min(c.originated_at for c in out if c.originated_at.date() > START.date())
        assert day2.astimezone(TEHRAN).time() == time(9)
        # Every contact reached a final state; each result was applied by the built-in panel.
        assert {c.status for c in contacts} == {"done"}
        per_contact = Counter(c.number_id for c in out)
        assert all(per_contact[str(c.id)] == c.attempts for c in contacts)

    run_virtual(campaign(), start=START, real_grace=0.005)


def test_inbound_waiting_blocks_new_outbound_on_its_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Line full with two long outbound calls; an inbound caller rings it: the next free slot goes
    to the inbound caller, and no outbound call starts on that line while it waits."""
    settings = e2e_settings(tmp_path, max_originations_per_second=5.0)
    busy_line = line("02191000001", 2, 60, 1000)

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        # Long calls: the caller talks for a while before saying no.
        return CallerScript(phone=number, answer=AnswerAfter(after_seconds=1),
                            replies=[Reply(say="no thanks", delay=30)])

    ring_at = 10.0
    inbound = [(ring_at, CallerScript(phone="09350000001", talk_seconds=30), busy_line.phone_number)]

    async def campaign() -> None:
        async with running_node(settings, script=script, lines=[busy_line], inbound_callers=inbound,
                                audit_rate=5.0) as h:
            await seed(h.store, settings, iran_phones(8))
            await h.dialer.run(until_idle=True)
            audit = h.audit
            calls = await all_calls(h.store)

        assert audit is not None and audit.violations == []
        ringing = START + timedelta(seconds=ring_at)
        inbound_call = next(c for c in calls if c.direction == "inbound")
        out = dialed(calls)
        busy_then = [c for c in out if c.originated_at <= ringing < c.ended_at]
        assert len(busy_then) == 2  # the line was full when the inbound caller rang
        assert inbound_call.result != "failed:line_busy"
        assert inbound_call.originated_at > ringing  # it had to wait for a slot ...
        later = [c for c in out if c.originated_at > ringing]
        assert later and min(c.originated_at for c in later) >= inbound_call.originated_at  # ... and got the first
        assert inbound_call.originated_at == min(c.ended_at for c in busy_then)
        assert recount(calls, [busy_line], rate=5.0).violations == []

    run_virtual(campaign(), start=START, real_grace=0.005)
