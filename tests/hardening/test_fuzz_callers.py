"""Hypothesis fuzzing of caller scripts (the simulator's contacts) and flow-test files.

For any caller file: loading it either gives a clear error or a script; every script that loads runs
against every shipped scenario on the simulator (virtual clock, text mode) to a result — never a
traceback, never `failed:internal_error`, never a hang.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from switchboard.cli import app as cli
from switchboard.clock import run_virtual
from switchboard.engine import results
from switchboard.engine.engine import FlowEngine
from switchboard.engine.services import EngineServices
from switchboard.flows.loader import YamlSyntaxError
from switchboard.flows.registry import ScenarioRegistry
from switchboard.simulation import simulate
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import load_caller_file
from tests.hardening.test_yaml_safety import HOSTILE
from tests.hardening.util import fuzz

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ScenarioRegistry(ROOT / "scenarios").all()

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                    st.sampled_from([0, 0.01, 1, 3, 30, 1e9, 1e308, -1]))
TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["yes", "no", "بله حتما", "نه", "operator", "", "1#"]))
ANY = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, st.lists(st.integers(), max_size=2))

REPLY = st.dictionaries(
    st.sampled_from(["say", "silence", "dtmf", "hangup", "delay", "barge_in", "language", "junk"]),
    st.one_of(TEXT, st.booleans(), NUMBERS, ANY), min_size=1, max_size=3)
CALLER = st.fixed_dictionaries({}, optional={
    "phone": st.one_of(st.sampled_from(["09123456789", "+15551234567", "0", ""]), TEXT),
    "name": TEXT,
    "attributes": st.dictionaries(st.text(max_size=8), ANY, max_size=3),
    "answer": st.one_of(st.booleans(), st.sampled_from(["no_answer", "busy", "unreachable", "congestion", "failed",
                                                        "maybe"]),
                        st.fixed_dictionaries({"after_seconds": NUMBERS})),
    "replies": st.lists(REPLY, max_size=5),
    "hangup_after": NUMBERS,
    "talk_seconds": NUMBERS,
    "language": st.sampled_from(["en", "fa", "xx", None]),
    "noise_snr_db": NUMBERS,
})
OPERATORS = st.lists(st.fixed_dictionaries({"phone": TEXT}, optional={
    "id": st.one_of(TEXT, st.integers()), "answer": st.one_of(st.booleans(), st.just("busy"),
                                                              st.fixed_dictionaries({"after_seconds": NUMBERS}))}),
    max_size=3)


def _finite(data: Any) -> bool:
    return not any(isinstance(v, float) and not math.isfinite(v) for v in _walk(data))


def _walk(data: Any) -> Any:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield item


@fuzz(150)
@given(CALLER, OPERATORS, st.booleans())
def test_any_caller_script_loads_with_a_clear_error_or_runs_to_a_result(tmp_path_factory: pytest.TempPathFactory,
                                                                        caller: dict[str, Any],
                                                                        operators: list[dict[str, Any]],
                                                                        inbound: bool) -> None:
    path = tmp_path_factory.mktemp("caller") / "caller.yaml"
    path.write_text(yaml.safe_dump({"caller": caller, "operators": operators}, allow_unicode=True), "utf-8")
    try:
        script = load_caller_file(path)
    except (ValidationError, YamlSyntaxError) as exc:
        assert str(exc)
        event("refused with a clear error")
        return
    event("loaded and ran")
    assert _finite(script.model_dump(exclude={"caller": {"attributes"}})), "a non-finite number was accepted"

    async def run_all() -> list[str]:
        out = []
        for scenario in SCENARIOS:
            engine = FlowEngine(EngineServices(max_steps=200))
            # a day of virtual time is far more than any scripted call may take
            ctx = await asyncio.wait_for(simulate(engine, SimNetwork(), scenario, script, inbound=inbound), 86_400)
            out.append(ctx.result or "")
        return out

    for outcome in run_virtual(run_all()):
        assert outcome and outcome != results.failed("internal_error")


@pytest.mark.parametrize("name", ["billion_laughs", "merge_key", "nul_byte", "complex_key_flow", "deep_flow_nesting"])
def test_a_hostile_caller_file_is_one_line_from_the_cli(tmp_path: Path, name: str) -> None:
    caller = tmp_path / "caller.yaml"
    caller.write_text(HOSTILE[name][0], "utf-8")
    out = CliRunner().invoke(cli, ["simulate", str(ROOT / "scenarios" / "salehi_language.yaml"),
                                   "--caller", str(caller)])
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    assert f"[{HOSTILE[name][1]}]" in out.output


def test_a_hostile_flow_test_file_fails_that_test_only(tmp_path: Path) -> None:
    tests = tmp_path / "flowtests"
    tests.mkdir()
    (tests / "a_bomb.yaml").write_text(HOSTILE["billion_laughs"][0], "utf-8")
    (tests / "b_good.yaml").write_text((ROOT / "flowtests" / "salehi_no.yaml").read_text("utf-8"), "utf-8")
    out = CliRunner().invoke(cli, ["test-flows", str(tests), "--scenarios", str(ROOT / "scenarios")])
    assert "Traceback" not in out.output
    assert "FAIL" in out.output and "too-large" in out.output
    assert "1 passed, 1 failed" in out.output
