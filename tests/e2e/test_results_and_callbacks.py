"""A business's own results and call backs, end to end through the real dialer loop, the results
outbox and the built-in panel: the clinic reminder's declared results (what each reports to the
panel as, final or retried after its own delay), call backs booked when no operator is free and
dialed when due (bounded when operators stay busy), and AI personas' tickets and call backs stored."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from switchboard.clock import run_virtual
from switchboard.phones import normalize
from switchboard.store.models import Callback, Ticket
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, OperatorScript, Reply

from tests.e2e.harness import OPERATORS, all_calls, all_contacts, all_outbox, dialed, e2e_settings, iran_phones
from tests.e2e.harness import line, running_node, seed

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 10:30 in Tehran


def e164(phone: str) -> str:
    return normalize(phone, "IR").e164


def say(number: str, *words: str) -> CallerScript:
    return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2), replies=[Reply(say=w) for w in words],
                        talk_seconds=30)


def test_clinic_results_are_reported_as_declared_and_retried_on_their_own_delays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, "clinic_reminder", calling_hours_start="09:00", calling_hours_end="21:00",
                            panel_timezone="+0330", max_attempts=3, daily_attempts_per_contact=5)
    confirm, cancel, change, silent = (e164(p) for p in iran_phones(4))
    tries: Counter[str] = Counter()

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        tries[number] += 1
        if number == confirm:
            return say(number, "yes I'll be there")
        if number == cancel:
            return say(number, "no, please cancel it")
        if number == change:  # the second time the desk answers
            return say(number, "can I change it to another time")
        return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2), replies=[Reply(silence=True)] * 3)

    network = SimNetwork()
    network.add_operators([OperatorScript(phone=p, answer="busy") for p in OPERATORS])

    async def campaign() -> None:
        async with running_node(settings, script=script, network=network,
                                lines=[line("02191000001", 4, 30, 1000)]) as h:
            def desk_back(ctx) -> None:  # type: ignore[no-untyped-def]
                if ctx.result == "desk_unavailable":
                    network.add_operators([OperatorScript(phone=p, answer=True) for p in OPERATORS])

            h.dialer.on_call_end = lambda ctx: (h.ended.append(ctx), desk_back(ctx))
            await seed(h.store, settings, iran_phones(4))
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
            contacts = {c.phone_e164: c for c in await all_contacts(h.store)}
            outbox = await all_outbox(h.store)

        by_phone: dict[str, list] = {}  # type: ignore[type-arg]
        for c in calls:
            by_phone.setdefault(c.phone_e164, []).append(c)
        assert [c.result for c in by_phone[confirm]] == ["appointment_confirmed"]
        assert [c.result for c in by_phone[cancel]] == ["appointment_cancelled"]
        # desk busy: retried after its declared 2 h, then the desk answers
        first, second = by_phone[change]
        assert (first.result, second.result) == ("desk_unavailable", "connected_to_operator")
        # (retry delays count from the attempt, as for the built-in results)
        assert timedelta(hours=2) <= second.originated_at - first.originated_at < timedelta(hours=2, minutes=5)
        # no reply: retried after its declared 3 h, up to MAX_ATTEMPTS
        silent_calls = by_phone[silent]
        assert [c.result for c in silent_calls] == ["no_response"] * 3
        gaps = [b.originated_at - a.originated_at for a, b in zip(silent_calls, silent_calls[1:])]
        assert all(timedelta(hours=3) <= g < timedelta(hours=3, minutes=5) for g in gaps), gaps
        # each call told the panel the status its result declares, with the result as `outcome`
        sent = {o.call_id: o.payload for o in outbox}
        expected = {"appointment_confirmed": "connected_to_operator", "appointment_cancelled": "not_interested",
                    "desk_unavailable": "disconnected", "no_response": "unknown"}
        for c in calls:
            payload = sent[c.id]
            if c.result in expected:
                assert (payload["status"], payload["outcome"]) == (expected[c.result], c.result)
                assert c.panel_status == expected[c.result]
            else:
                assert payload["status"] == c.result and "outcome" not in payload
            assert payload["scenario_id"] is not None and not isinstance(payload["scenario_id"], str)
        # the built-in panel applied the declared meaning: final ones done, retried ones done after
        # their last attempt, and the contact keeps the business's own result name
        assert {p: (k.status, k.last_result) for p, k in contacts.items()} == {
            confirm: ("done", "appointment_confirmed"), cancel: ("done", "appointment_cancelled"),
            change: ("done", "connected_to_operator"), silent: ("done", "no_response")}

    run_virtual(campaign(), start=START, real_grace=0.005)


def test_no_operator_free_books_a_call_back_that_is_dialed_first_when_due(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """agrad_marketing: "yes", every advisor busy -> callback_scheduled; 20 minutes later the call
    back is dialed, ahead of the queue of fresh contacts that became due at the same time, and
    reaches an advisor."""
    settings = e2e_settings(tmp_path, "agrad_marketing", calling_hours_start="09:00", calling_hours_end="21:00",
                            panel_timezone="+0330", daily_attempts_per_contact=5)
    keen, *later = (e164(p) for p in iran_phones(5))
    network = SimNetwork()
    network.add_operators([OperatorScript(phone=p, answer="busy") for p in OPERATORS])

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        return say(number, "yes" if number == keen else "no thanks")

    async def campaign() -> None:
        async with running_node(settings, script=script, network=network,
                                lines=[line("02191000001", 1, 30, 1000)]) as h:
            def advisors_back(ctx) -> None:  # type: ignore[no-untyped-def]
                h.ended.append(ctx)
                if ctx.result == "callback_scheduled":
                    network.add_operators([OperatorScript(phone=p, answer=True) for p in OPERATORS])

            h.dialer.on_call_end = advisors_back
            await seed(h.store, settings, [iran_phones(1)[0]])
            # four more contacts become due right before the call back does (one line: a queue)
            await seed(h.store, settings, iran_phones(4, start=1), due=START + timedelta(minutes=20))
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
            async with h.store.sessions() as s:
                [cb] = (await s.scalars(select(Callback))).all()
            contacts = {c.phone_e164: c for c in await all_contacts(h.store)}

        order = [(c.phone_e164, c.result) for c in calls]
        assert order[0] == (keen, "callback_scheduled")
        assert order.index((keen, "connected_to_operator")) < len(order) - 1, order  # jumps the queue
        assert {p for p, _ in order} == {keen, *later} and len(order) == 6
        booked = calls[0]
        [called_back] = [c for c in calls if c.callback_id is not None]
        assert called_back.callback_id == cb.id and called_back.scenario == "agrad_marketing"
        assert timedelta(minutes=20) <= called_back.originated_at - booked.ended_at < timedelta(minutes=21)
        assert (cb.status, cb.attempts, cb.last_result, cb.source, cb.call_id) == (
            "done", 1, "connected_to_operator", "flow", booked.id)
        assert cb.reason == "said yes; all advisors busy"
        # the contact: the first call's result is final for the campaign; the call back's result
        # is recorded on it too (the panel was told), and it stays done
        assert (contacts[keen].status, contacts[keen].last_result, contacts[keen].attempts) == (
            "done", "connected_to_operator", 2)

    run_virtual(campaign(), start=START, real_grace=0.005)


def test_call_backs_stop_after_their_attempts_when_operators_stay_busy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Booking again from a call back moves that call back; it never books a new one, so a caller
    whose every call back finds the operators busy is called back at most `max_attempts` times."""
    settings = e2e_settings(tmp_path, "salehi_language", calling_hours_start="00:00", calling_hours_end="23:59",
                            panel_timezone="+0330", daily_attempts_per_contact=10)
    network = SimNetwork()
    network.add_operators([OperatorScript(phone=p, answer="busy") for p in OPERATORS])

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        return say(number, "بله حتما")

    async def campaign() -> None:
        async with running_node(settings, script=script, network=network,
                                lines=[line("02191000001", 1, 30, 1000)]) as h:
            await seed(h.store, settings, iran_phones(1))
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
            async with h.store.sessions() as s:
                rows = (await s.scalars(select(Callback))).all()
        assert len(rows) == 1 and rows[0].status == "done" and rows[0].attempts == 3  # salehi: max_attempts 3
        assert [c.result for c in calls] == ["callback_scheduled"] * 4
        # salehi books call backs 30 minutes out, priority 20
        gaps = [b.originated_at - a.ended_at for a, b in zip(calls, calls[1:])]
        assert all(timedelta(minutes=29) <= g < timedelta(minutes=31) for g in gaps), gaps
        assert rows[0].priority == 20

    run_virtual(campaign(), start=START, real_grace=0.005)


def test_persona_tickets_and_call_backs_are_stored_and_the_call_back_is_dialed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The brain's tools write through the node's FollowUps: a ticket the complaints persona opens
    (scripted mode) lands in the tickets table; a `schedule_callback` tool call ("tomorrow 10:00")
    lands in call backs at 10:00 the next day in the contact's zone, on the scenario of the call,
    and is dialed then."""
    from switchboard.brain.tools import ToolContext

    settings = e2e_settings(tmp_path, "agrad_marketing", calling_hours_start="09:00", calling_hours_end="21:00",
                            panel_timezone="+0330")

    async def campaign() -> None:
        async with running_node(settings, script=lambda n, v: say(n, "yes"),
                                lines=[line("02191000001", 1, 30, 1000)]) as h:
            brain = h.node.engine.services.extras["brain"]
            tools = brain.tools
            # a call the persona is in (the call record exists from its start)
            await seed(h.store, settings, iran_phones(1))
            await h.dialer.run(until_idle=True)
            [first] = dialed(await all_calls(h.store))
            ctx = ToolContext(call_id=first.id, remote_number=first.phone_e164, persona="complaints")
            ticket = await tools.execute("create_ticket", {"subject": "router broken",
                                                           "description": "still not working"}, ctx)
            booked = await tools.execute("schedule_callback", {"when": "tomorrow 10:00", "reason": "wants a tech"},
                                         ctx)
            assert ticket.ok and booked.ok, (ticket.content, booked.content)
            async with h.store.sessions() as s:
                [t] = (await s.scalars(select(Ticket))).all()
                [cb] = (await s.scalars(select(Callback))).all()
            assert (t.subject, t.call_id, t.persona, t.status) == ("router broken", first.id, "complaints", "open")
            assert f'"ticket_id": "T-{t.id}"' in ticket.content and f'"callback_id": "CB-{cb.id}"' in booked.content
            assert cb.due_at == datetime(2026, 3, 3, 6, 30, tzinfo=UTC)  # 10:00 Tehran, next day
            assert (cb.scenario, cb.source, cb.call_id, cb.number_id) == ("agrad_marketing", "persona", first.id,
                                                                          first.number_id)
            await h.dialer.run(until_idle=True)  # sleeps until the call back is due, then dials it
            calls = dialed(await all_calls(h.store))
            assert len(calls) == 2 and calls[1].callback_id == cb.id
            assert calls[1].originated_at >= cb.due_at

    run_virtual(campaign(), start=START, real_grace=0.005)
