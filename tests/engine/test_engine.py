"""The engine on the simulated network (text mode, virtual clock)."""

from __future__ import annotations

import textwrap

from switchboard.clock import run_virtual
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator
from switchboard.engine.services import EngineServices
from switchboard.flows.schema import Scenario
from switchboard.flows.validate import parse_scenario_text
from switchboard.simulation import simulate
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerFile, CallerScript, OperatorScript, Reply


def scenario(flow: str, extra: str = "") -> Scenario:
    text = textwrap.dedent("""\
        scenario:
          name: t
          prompts: {hello: "sound:custom/hello"}
          llm: {intent_categories: ["yes", "no", "unknown"], fallback_tokens: {yes: ["yes"], no: ["no"]}}
        """) + textwrap.indent(textwrap.dedent(extra), "  ") + "  flow:\n" + textwrap.indent(
        textwrap.dedent(flow), "    ")
    res = parse_scenario_text(text, "t.yaml")
    assert res.scenario is not None, [str(e) for e in res.errors]
    return res.scenario


def run(sc: Scenario, caller: CallerScript, engine: FlowEngine | None = None,
        operators: list[OperatorScript] | None = None, inbound: bool = False):  # type: ignore[no-untyped-def]
    engine = engine or FlowEngine()
    network = SimNetwork(keep_calls=True)

    async def go():  # type: ignore[no-untyped-def]
        ctx = await simulate(engine, network, sc, CallerFile(caller=caller, operators=operators or []),
                             inbound=inbound)
        return ctx, network

    return run_virtual(go())


def test_say_fills_contact_variables_and_set_branch_goto() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: setv}
        - {step: setv, type: set, values: {offer: "gold {city}"}, next: decide}
        - {step: decide, type: branch, cases: [{if: "contact.city == 'Tehran' and vars.offer", then: greet}], else: bye}
        - {step: greet, type: say, text: "Hi {name}, the {offer} plan", next: jump}
        - {step: jump, type: goto, target: bye}
        - {step: bye, type: hangup, result: not_interested}
        """)
    ctx, net = run(sc, CallerScript(name="Sara", attributes={"city": "Tehran"}))
    assert net.calls[0].spoken == ["Hi Sara, the gold Tehran plan"]
    assert ctx.steps_visited == ["start", "setv", "decide", "greet", "jump", "bye"]
    assert ctx.result == "not_interested"
    ctx, net = run(sc, CallerScript(name="Ali", attributes={"city": "Shiraz"}))
    assert net.calls[0].spoken == [] and ctx.steps_visited[-1] == "bye"


def test_hangup_during_any_step_ends_the_flow_with_hangup() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: hello}
        - {step: hello, type: play_prompt, prompt: hello, next: listen}
        - {step: listen, type: record, next: end}
        - {step: end, type: hangup, result: unknown}
        """)
    ctx, net = run(sc, CallerScript(hangup_after=3.0, replies=[Reply(say="yes", delay=5)]))
    assert ctx.result == "hangup"
    assert ctx.steps_visited == ["start", "hello", "listen"]
    assert net.calls[0].hung_up_by == "caller"
    assert any(e.event == "hangup" for e in ctx.timeline)


def test_step_limit_stops_a_runaway_flow() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: a}
        - {step: a, type: check_retry_limit, max: 100000, next: b, on_exceeded: end}
        - {step: b, type: goto, target: a}
        - {step: end, type: hangup}
        """)
    engine = FlowEngine(EngineServices(max_steps=50))
    ctx, _ = run(sc, CallerScript(), engine=engine)
    assert ctx.result == "failed:step_limit"
    assert len(ctx.steps_visited) == 50


def test_a_crashing_step_fails_one_call_not_the_engine() -> None:
    class Boom:
        async def classify(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("model exploded")

    sc = scenario("""\
        - {step: start, type: entry, next: listen}
        - {step: listen, type: record, next: classify}
        - {step: classify, type: classify_intent, next: route, on_failure: failed}
        - {step: route, type: route_by_intent, routes: {yes: end, no: end, unknown: end}}
        - {step: failed, type: hangup, result: "failed:classifier"}
        - {step: end, type: hangup, result: unknown}
        """)
    engine = FlowEngine(EngineServices(intents=Boom()))  # type: ignore[arg-type]
    ctx, net = run(sc, CallerScript(replies=[Reply(say="yes")]), engine=engine)
    assert ctx.result == "failed:classifier"
    assert net.calls[0].hung_up


def test_operator_is_busy_for_the_whole_call_and_released_after() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: op}
        - {step: op, type: transfer_to_operator, on_success: talk, on_failure: nobody}
        - {step: talk, type: wait}
        - {step: nobody, type: hangup, result: disconnected}
        """)
    engine = FlowEngine()
    network = SimNetwork(keep_calls=True)
    ops = [OperatorScript(phone="0911")]

    async def two_calls():  # type: ignore[no-untyped-def]
        import asyncio

        first = asyncio.create_task(simulate(engine, network, sc, CallerFile(
            caller=CallerScript(phone="0912000001", talk_seconds=60), operators=ops)))
        await asyncio.sleep(10)
        assert engine.services.operators.is_busy("0911")
        second = await simulate(engine, network, sc, CallerFile(caller=CallerScript(phone="0912000002"),
                                                                operators=ops))
        first_ctx = await first
        return first_ctx, second

    first, second = run_virtual(two_calls())
    assert first.result == "connected_to_operator" and first.agent == "0911"
    assert second.result == "disconnected" and "busy" in second.reason
    assert not engine.services.operators.is_busy("0911")


def test_operator_leg_shows_the_customer_number() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: op}
        - {step: op, type: transfer_to_operator, on_success: talk, on_failure: talk}
        - {step: talk, type: wait}
        """)
    ctx, net = run(sc, CallerScript(phone="09129998877"), operators=[OperatorScript(phone="0911")])
    assert net.calls[0].transfers[0]["caller_id"] == "09129998877"
    assert ctx.operator_answered_at is not None and ctx.operator_requested_at is not None


def test_scenario_roster_overrides_the_default() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: op}
        - {step: op, type: transfer_to_operator, on_success: talk, on_failure: talk}
        - {step: talk, type: wait}
        """, extra="operators: {outbound: ['0915']}\n")
    engine = FlowEngine()
    engine.services.operators.set_roster(None, "outbound", [Operator("0911")])
    ctx, net = run(sc, CallerScript(), engine=engine, operators=[OperatorScript(phone="0915")])
    assert ctx.agent == "0915"


def test_disclosure_plays_before_the_flow_on_outbound_calls() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: hello}
        - {step: hello, type: play_prompt, prompt: hello, next: end}
        - {step: end, type: hangup}
        """, extra='disclosure_prompt: hello\n')
    _, net = run(sc, CallerScript())
    assert net.calls[0].played == ["sound:custom/hello", "sound:custom/hello"]


def test_opt_out_intent_adds_to_dnc() -> None:
    added: list[tuple[str, str]] = []

    async def add(phone: str, reason: str) -> None:
        added.append((phone, reason))

    sc = scenario("""\
        - {step: start, type: entry, next: listen}
        - {step: listen, type: record, next: classify}
        - {step: classify, type: classify_intent, next: end}
        - {step: end, type: hangup, result: not_interested}
        """, extra="opt_out_intent: 'no'\n")
    ctx, _ = run(sc, CallerScript(phone="0912555", replies=[Reply(say="no no")]),
                 engine=FlowEngine(EngineServices(add_to_dnc=add)))
    assert added and added[0][0] == "0912555"
    assert ctx.intent == "no" and ctx.intent_path == "fallback"


def test_timeline_has_timestamps_in_order_on_the_virtual_clock() -> None:
    sc = scenario("""\
        - {step: start, type: entry, next: hello}
        - {step: hello, type: play_prompt, prompt: hello, next: wait}
        - {step: wait, type: wait, seconds: 600, next: end}
        - {step: end, type: hangup, result: unknown}
        """)
    ctx, _ = run(sc, CallerScript(hangup_after=7200))
    stamps = [e.at for e in ctx.timeline]
    assert stamps == sorted(stamps)
    assert stamps[-1] >= 602  # ten virtual minutes passed in no real time
    assert ctx.ended_at is not None and (ctx.ended_at - ctx.started_at).total_seconds() >= 600
