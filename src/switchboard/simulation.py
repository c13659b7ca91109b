"""Run scripted calls through the engine on the simulated network: one call (`simulate`), or a
directory of flow tests (`run_flow_tests`). Used by the CLI, the tests and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.engine import results
from switchboard.engine.context import CallContext
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.schema import Scenario
from switchboard.telephony.call import DialOutcome
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerFile, CallerScript, OperatorScript

DEFAULT_OPERATORS = [OperatorScript(phone="09121111111", id="op-1"), OperatorScript(phone="09122222222", id="op-2")]


def outcome_from_dial(outcome: DialOutcome) -> tuple[str, str]:
    """The result of an outbound attempt that never reached the flow."""
    if outcome in (DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.UNREACHABLE):
        return results.MISSED, outcome.value
    return results.failed(outcome.value), outcome.value


def prepare_operators(engine: FlowEngine, network: SimNetwork, scenario: Scenario,
                      operators: list[OperatorScript]) -> None:
    ops = operators or DEFAULT_OPERATORS
    network.add_operators(ops)
    pool = engine.services.operators
    roster = [Operator(o.phone, o.id) for o in ops]
    spec_ops = scenario.spec.operators
    for agent_type in ("inbound", "outbound"):
        numbers = getattr(spec_ops, agent_type)
        if numbers:
            pool.set_roster(scenario.name, agent_type, [Operator(n) for n in numbers])  # type: ignore[arg-type]
        elif not pool.roster(scenario.name, agent_type):  # type: ignore[arg-type]
            pool.set_roster(scenario.name, agent_type, roster)  # type: ignore[arg-type]


async def simulate(engine: FlowEngine, network: SimNetwork, scenario: Scenario, caller: CallerFile, *,
                   inbound: bool = False) -> CallContext:
    """Run one call of `scenario` with the scripted caller; returns the finished call context."""
    prepare_operators(engine, network, scenario, caller.operators)
    script = caller.caller
    contact = {"name": script.name, "phone": script.phone, "attributes": script.attributes}
    if inbound:
        call = network.inbound(script, line="02100000000")
        ctx = engine.new_context(call, scenario, contact)
        await engine.run(call, scenario, ctx)
        return ctx
    outcome, call = await network.dial(script, line="02100000000")
    if call is None:
        ctx = CallContext(call_id=f"sim-missed-{network.originated}", scenario=scenario.name,
                          remote_number=script.phone, contact=contact)
        result, reason = outcome_from_dial(outcome)
        ctx.log("dial", outcome=outcome.value)
        ctx.set_result(result, reason)
        return ctx
    ctx = engine.new_context(call, scenario, contact)
    await engine.run(call, scenario, ctx)
    return ctx


def summary(ctx: CallContext) -> dict[str, Any]:
    return {
        "result": ctx.result, "reason": ctx.reason, "scenario": ctx.scenario, "direction": ctx.direction,
        "steps": ctx.steps_visited, "transcripts": [t["text"] for t in ctx.transcripts],
        "intent": ctx.intent, "intent_path": ctx.intent_path, "agent": ctx.agent,
        "variables": ctx.variables, "timeline": ctx.to_dict()["timeline"],
    }


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """A pydantic error in one line per problem (`replies.0.delay: Input should be ...`), without
    echoing the (possibly huge) input back."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --- flow tests as data ---------------------------------------------------------------------------
class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    result: str
    steps: list[str] | None = None
    intent: str | None = None
    agent: str | None = None
    transcripts: list[str] | None = None
    played: list[str] | None = None


class FlowTest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str
    description: str = ""
    inbound: bool = False
    caller: CallerScript
    operators: list[OperatorScript] = Field(default_factory=list)
    expect: Expectation


@dataclass
class FlowTestResult:
    file: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def check_expectation(expect: Expectation, ctx: CallContext, played: list[str] | None) -> list[str]:
    problems = []
    if ctx.result != expect.result:
        problems.append(f"result {ctx.result!r} != expected {expect.result!r}")
    if expect.steps is not None and ctx.steps_visited != expect.steps:
        problems.append(f"steps {ctx.steps_visited} != expected {expect.steps}")
    if expect.intent is not None and ctx.intent != expect.intent:
        problems.append(f"intent {ctx.intent!r} != expected {expect.intent!r}")
    if expect.agent is not None and ctx.agent != expect.agent:
        problems.append(f"agent {ctx.agent!r} != expected {expect.agent!r}")
    got_texts = [t["text"] for t in ctx.transcripts]
    if expect.transcripts is not None and got_texts != expect.transcripts:
        problems.append(f"transcripts {got_texts} != expected {expect.transcripts}")
    if expect.played is not None and played is not None and played != expect.played:
        problems.append(f"played {played} != expected {expect.played}")
    return problems


async def run_flow_test(path: Path, registry: ScenarioRegistry, make_engine: Any,
                        make_network: Any) -> FlowTestResult:
    from switchboard.flows.loader import YamlSyntaxError, read_text_limited, safe_load

    try:
        test = FlowTest.model_validate(safe_load(read_text_limited(path), str(path)))
    except YamlSyntaxError as exc:
        return FlowTestResult(str(path), False, [f"invalid flow test: {exc.error}"])
    except ValidationError as exc:
        return FlowTestResult(str(path), False, [f"invalid flow test: {describe_errors(exc)}"])
    scenario = registry.get(test.scenario)
    if scenario is None:
        return FlowTestResult(str(path), False, [f"unknown scenario {test.scenario!r}"])
    engine: FlowEngine = make_engine()
    network: SimNetwork = make_network()
    network.keep_calls = True
    ctx = await simulate(engine, network, scenario, CallerFile(caller=test.caller, operators=test.operators),
                         inbound=test.inbound)
    played = network.calls[-1].played if network.calls else []
    problems = check_expectation(test.expect, ctx, played)
    return FlowTestResult(str(path), not problems, problems, summary(ctx))
