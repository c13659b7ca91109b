"""The external panel contract as the dialer lives it: the panel's own scenario ids in every
report, next-batch `timezone` as the zone of contacts without one, a warning when the panel's
clock drifts, roster updates reaching transfers, an inbound call on a scenario without an inbound
flow going straight to the panel's inbound agent, and `rate_limits.per_day` enforced."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from switchboard.clock import run_virtual
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, OperatorScript, Reply

from tests.e2e.fake_panel import FakeExternalPanel, FakePanelSink
from tests.e2e.harness import all_calls, dialed, e2e_settings, iran_phones, line, running_node, seed

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 10:30 in Tehran, 02:00 in New York


def yes(number: str, variables: dict[str, str]) -> CallerScript:
    return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2), replies=[Reply(say="yes")],
                        talk_seconds=30)


def attach(h, panel: FakeExternalPanel) -> None:  # type: ignore[no-untyped-def]
    """Dial the fake external panel's numbers and deliver results to it."""
    h.dialer.panel = panel
    h.node.deliverer.sink = FakePanelSink(panel)


def test_reports_carry_the_panels_scenario_id_and_roster_updates_reach_transfers(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, "agrad_marketing", calling_hours_start="09:00", calling_hours_end="21:00",
                            outbound_agents="", inbound_agents="")
    first_agent, second_agent = "09127770001", "09127770002"
    network = SimNetwork()
    network.add_operators([OperatorScript(phone=first_agent), OperatorScript(phone=second_agent)])
    panel = FakeExternalPanel(numbers=[(101, "09123000001"), (102, "09123000002")], per_batch=1,
                              scenarios=[{"id": 41, "name": "agrad_marketing"}],
                              outbound_agents=[{"id": 7, "phone_number": first_agent}])
    caplog.set_level(logging.INFO)

    async def campaign() -> None:
        async with running_node(settings, script=yes, network=network, start=False,
                                lines=[line("02191000001", 1, 30, 1000)]) as h:
            attach(h, panel)
            h.node.engine.services.operators.set_roster(None, "outbound", [])  # only the panel's roster

            def swap(ctx) -> None:  # type: ignore[no-untyped-def]
                h.ended.append(ctx)
                panel.outbound_agents = [{"id": 8, "phone_number": second_agent}]  # the panel's roster changes

            h.dialer.on_call_end = swap
            await h.node.deliverer.start()
            await h.dialer.start()
            await h.dialer.run(until_idle=True)

    run_virtual(campaign(), start=START, real_grace=0.005)
    assert [r["agent_phone"] for r in panel.reports] == [first_agent, second_agent]  # the roster changed
    assert [r["agent_id"] for r in panel.reports] == ["7", "8"]
    for report in panel.reports:
        assert report["scenario_id"] == 41  # the panel's id from active_scenarios, not the name
        assert report["status"] == "connected_to_operator" and "outcome" not in report
        assert set(report) >= {"company", "number_id", "phone_number", "status", "reason", "attempted_at",
                               "agent_id", "agent_phone", "user_message", "scenario_id", "outbound_line_id"}
    assert [r["number_id"] for r in panel.reports] == [101, 102]
    assert [s[0] for s in panel.registered_scenarios] == ["agrad_marketing"]
    assert "Roster updated: 0 inbound agents, 1 outbound agents" in caplog.text
    assert "Active scenarios updated: agrad_marketing" in caplog.text


def test_inbound_call_on_a_scenario_without_inbound_flow_goes_straight_to_the_panels_inbound_agent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, "agrad_marketing", outbound_agents="", inbound_agents="")
    agent = "09127770009"
    network = SimNetwork()
    network.add_operators([OperatorScript(phone=agent, answer=AnswerAfter(after_seconds=3))])
    caller = CallerScript(phone="09351234567", talk_seconds=40)
    panel = FakeExternalPanel(numbers=[], scenarios=[{"id": 41, "name": "agrad_marketing"}],
                              inbound_agents=[{"id": 12, "phone_number": agent}])

    async def campaign() -> None:
        async with running_node(settings, network=network, start=False,
                                inbound_callers=[(30.0, caller, "02191000001")],
                                lines=[line("02191000001", 2, 30, 1000)]) as h:
            attach(h, panel)
            h.node.engine.services.operators.set_roster(None, "inbound", [])
            await h.node.deliverer.start()
            await h.dialer.start()
            run = __import__("asyncio").create_task(h.dialer.run())
            while not panel.reports:
                await __import__("asyncio").sleep(5)
            await h.dialer.stop()
            await run
            [call] = [c for c in await all_calls(h.store) if c.direction == "inbound"]
        assert (call.scenario, call.result, call.operator) == ("direct_to_operator", "inbound_call", agent)

    run_virtual(campaign(), start=START, real_grace=0.005)
    [report] = panel.reports
    assert (report["status"], report["number_id"], report["agent_phone"], report["agent_id"]) == (
        "inbound_call", None, agent, "12")
    assert report["phone_number"] == "09351234567"


def test_next_batch_timezone_is_the_zone_of_contacts_without_one_and_clock_skew_is_warned(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """The panel says its contacts live at -05:00. Russian mobile numbers say nothing about their
    zone (Russia spans eleven): at 07:00 UTC (02:00 at -05:00) they are not dialed, at 14:00 UTC
    (09:00) they are. An Iranian number keeps its own zone (10:30 in Tehran: dialed at once). The
    panel's clock runs 15 minutes ahead: warned about, not on every poll."""
    settings = e2e_settings(tmp_path, "e2e_quick", calling_hours_start="09:00", calling_hours_end="21:00")
    panel = FakeExternalPanel(numbers=[(201, "+79161234567"), (202, "+79261234567"), (203, "09123000003")],
                              timezone="-0500",
                              scenarios=[{"id": "s-9", "name": "e2e_quick"}], clock_offset=timedelta(minutes=15),
                              lease=timedelta(minutes=30))
    caplog.set_level(logging.INFO)

    async def campaign() -> None:
        async with running_node(settings, script=yes, start=False, lines=[line("02191000001", 2, 30, 1000)]) as h:
            attach(h, panel)
            await h.node.deliverer.start()
            await h.dialer.start()
            run = __import__("asyncio").create_task(h.dialer.run())
            while len(panel.done) < 3:
                await __import__("asyncio").sleep(60)
            await h.dialer.stop()
            await run
            calls = {c.phone_e164: c for c in dialed(await all_calls(h.store))}
        assert len(calls) == 3
        for phone in ("+79161234567", "+79261234567"):
            at = calls[phone].originated_at
            assert datetime(2026, 3, 2, 14, 0, tzinfo=UTC) <= at < datetime(2026, 3, 2, 14, 31, tzinfo=UTC), at
        assert calls["+989123000003"].originated_at < START + timedelta(minutes=5)

    run_virtual(campaign(), start=START, real_grace=0.005)
    assert {r["scenario_id"] for r in panel.reports} == {"s-9"}
    skew = [r for r in caplog.records if "panel clock is +900 s ahead" in r.getMessage()]
    assert 1 <= len(skew) <= 8, len(skew)  # at most hourly over the 7 hours waited, not once per poll


def test_scenario_rate_limit_per_day_is_enforced(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`rate_limits: {per_day: 2}`: two calls of the scenario today, the rest tomorrow."""
    settings = e2e_settings(tmp_path, "e2e_quick", calling_hours_start="09:00", calling_hours_end="21:00",
                            panel_timezone="+0330")
    path = settings.scenarios_dir / "e2e_quick.yaml"
    path.write_text(path.read_text().replace('display_name: "E2E quick call"',
                                             'display_name: "E2E quick call"\n  rate_limits: {per_day: 2}'))

    async def campaign() -> None:
        async with running_node(settings, script=yes, lines=[line("02191000001", 4, 30, 1000)]) as h:
            await seed(h.store, settings, iran_phones(5))
            await h.dialer.run(until_idle=True)
            calls = dialed(await all_calls(h.store))
        by_day: dict[str, int] = {}
        for c in calls:
            local = (c.originated_at + timedelta(hours=3, minutes=30)).date().isoformat()
            by_day[local] = by_day.get(local, 0) + 1
        assert len(calls) == 5 and sorted(by_day.values()) == [1, 2, 2], by_day
        assert list(by_day.values())[0] == 2

    run_virtual(campaign(), start=START, real_grace=0.005)
