"""Hypothesis fuzzing of the scenario loader and validator, and of the engine on whatever validates.

Properties, for any text:
* `parse_scenario_text` returns (never raises), and never needs its last-resort `internal-error` net;
* every error names the file, a line inside the file and a rule;
* a scenario that validates runs on the simulator to a result, never `failed:internal_error`.

The inputs are arbitrary text, the shipped scenarios mutated (characters, lines, hostile YAML
snippets spliced in), and random documents differentially checked against PyYAML.
Budgets are fixed and derandomized (same examples every CI run); FUZZ_SCALE=50 for a long hunt.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from switchboard.clock import run_virtual
from switchboard.engine import results
from switchboard.engine.engine import FlowEngine
from switchboard.engine.services import EngineServices
from switchboard.flows.loader import YamlSyntaxError, load_yaml_text
from switchboard.flows.validate import FileResult, parse_scenario_text
from switchboard.simulation import simulate
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerFile, CallerScript, Reply
from tests.hardening.util import fuzz

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [p.read_text("utf-8") for p in sorted((ROOT / "scenarios").glob("*.yaml"))]
SNIPPETS = [
    "&a", "*a", "<<: *a", "? [x]\n: y", "{a: 1}: b", "!!python/object:os.system", "!x", "\x00", "\\0",
    '"\\ud800"', "[" * 80, "]" * 80, "{" * 80, "---\n", "...\n", "%YAML 1.1\n", "- ", ": ", "\t", "#", "|",
    ">", "'", '"', "~", "null", "9" * 30, "1e999", ".nan", "-.inf", "0x1F", "0o17", "2024-01-01",
    "yes", "no", "on", "\u202e", "\ufeff", "\r", "\n  - {step: x, type: hangup}\n",
    "type: transfer_to_operator", "type: classify_intent", "next: start", "target: start",
    "seconds: 1e308", "max_steps: 99999999999999999999", "weight: 1e308", "weight: .inf",
]



def check_report(text: str, result: FileResult) -> None:
    lines = text.count("\n") + 2
    assert result.scenario is not None or result.errors, "neither a scenario nor an error"
    for error in result.errors:
        assert error.rule != "internal-error", f"validator crashed on:\n{text[:2000]!r}"
        assert error.file == "fuzz.yaml"
        assert 1 <= error.line <= lines, f"{error} outside the file ({lines} lines)"
        assert error.column >= 1 and error.message
    if result.scenario is not None:
        assert result.errors == []


def run_call(result: FileResult) -> None:
    """Run a validated scenario once outbound and once inbound on the simulator (text mode)."""
    scenario = result.scenario
    assert scenario is not None
    caller = CallerFile(caller=CallerScript(replies=[Reply(say="yes"), Reply(dtmf="1"), Reply(silence=True),
                                                     Reply(say="no")], hangup_after=120))

    async def one(inbound: bool) -> str:
        engine = FlowEngine(EngineServices(max_steps=200))
        ctx = await asyncio.wait_for(simulate(engine, SimNetwork(), scenario, caller, inbound=inbound), 86_400)
        return ctx.result or ""

    for inbound in (False, True) if scenario.has_inbound else (False,):
        outcome = run_virtual(one(inbound))
        assert outcome and outcome != results.failed("internal_error"), f"engine crashed: {outcome}"


@fuzz(300)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_any_text_gives_a_report(text: str) -> None:
    result = parse_scenario_text(text, "fuzz.yaml")
    check_report(text, result)
    assert (result.scenario is None) == bool(result.errors), result.errors  # a scenario, or why not


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SHIPPED))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "dup_line", "drop_line", "swap_lines", "char"]))
        lines = text.split("\n")
        if op == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(SNIPPETS)) + text[at:]
        elif op == "delete":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif op == "char":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.characters(codec="utf-8")) + text[at:]
        else:
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(j, lines[i])
            elif op == "drop_line":
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@fuzz(200)
@given(mutated())
def test_mutated_scenarios_give_a_report_and_run_when_valid(text: str) -> None:
    result = parse_scenario_text(text, "fuzz.yaml")
    check_report(text, result)
    assert (result.scenario is None) == bool(result.errors), result.errors  # a scenario, or why not
    if result.scenario is not None:
        run_call(result)


# --- generated flows: every step type, its own fields, random jumps and values --------------------------
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                   st.text(max_size=20), st.lists(st.integers(), max_size=2))
FIELDS = ["next", "prompt", "text", "routes", "max", "result", "seconds", "values", "cases", "else", "target",
          "agent_type", "timeout", "persona", "input", "variable"]


JUMPS = {"next", "target", "default", "else_", "on_empty", "on_failure", "on_success", "on_exceeded", "on_end",
         "on_handoff", "on_timeout"}


def _field_values(names: list[str], here: int, annotation: str, rnd: Any) -> st.SearchStrategy[Any]:
    """Mostly well-typed values for a step field (so flows validate and run), sometimes anything."""
    forward = names[here + 1] if here + 1 < len(names) else "end"
    # Hypothesis explores rather than samples uniformly; `rnd` (seeded by it) keeps most values sane.
    jumps = st.sampled_from([*names, "end", "start"]) if rnd.random() < 0.2 else st.just(forward)
    if annotation == "next":
        typed: st.SearchStrategy[Any] = jumps
    elif "dict[str, str]" in annotation:
        typed = st.dictionaries(st.sampled_from(["yes", "no", "unknown"]), jumps, max_size=3)
    elif "Case" in annotation:
        typed = st.lists(st.fixed_dictionaries({"when": st.sampled_from(["vars.x == 1", "contact.name == 'a'",
                                                                          "dtmf == '1'", "1 <", "x.__class__"]),
                                                "then": jumps}), max_size=3)
    elif "dict[str, typing.Any]" in annotation:
        typed = st.dictionaries(st.sampled_from(["x", "y", "name"]), VALUES, max_size=3)
    elif "bool" in annotation:
        typed = st.booleans()
    elif "int" in annotation:
        typed = st.one_of(st.integers(-2, 5), st.integers(-(2**70), 2**70))
    elif "float" in annotation:
        typed = st.one_of(st.just(0.5), st.floats(-1, 1e308))
    elif "Literal" in annotation:
        typed = st.sampled_from(["inbound", "outbound", "sideways"])
    elif annotation.startswith("<class 'str'>") or "str" in annotation:
        words = st.sampled_from(["hello", "yes", "tts:hi {name}", "Hi {name:>99999999}", "{x.__class__.__init__}",
                                 "sales", "failed:x", "busy", "connected_to_operator", "1"])
        typed = st.one_of(words, words, st.text(max_size=12))
    else:
        typed = VALUES
    return VALUES if rnd.random() < 0.03 else typed


@st.composite
def generated_flow(draw: st.DrawFn) -> str:
    from switchboard.flows.steptypes import step_types

    types = {n: m for n, m in step_types().items() if n not in ("entry", "converse")}
    rnd = random.Random(draw(st.integers(0, 2**32)))  # a real PRNG: hypothesis favours edge values
    n = draw(st.integers(1, 8))
    names = [f"s{i}" for i in range(n)]
    steps: list[dict[str, Any]] = [{"step": "start", "type": "entry", "next": "s0"}]
    for i, name in enumerate(names):
        kind = draw(st.sampled_from(sorted(types)))
        model = types[kind]
        step: dict[str, Any] = {"step": name, "type": kind}
        for key, info in model.model_fields.items():
            if key in ("step", "type", "hangup_result"):
                continue
            if info.is_required() or key == "next" or rnd.random() < 0.3:
                kind_of = "next" if key in JUMPS else str(info.annotation)
                step["else" if key == "else_" else key] = draw(_field_values(names, i, kind_of, rnd))
        if rnd.random() < 0.03:
            step[draw(st.sampled_from(FIELDS))] = draw(VALUES)
        steps.append(step)
    steps.append({"step": "end", "type": "hangup"})
    doc = {"scenario": {"name": "gen", "prompts": {"hello": "sound:custom/hello", "yes": "tts:yes {name}"},
                        "llm": {"intent_categories": ["yes", "no", "unknown"],
                                "fallback_tokens": {"yes": ["yes"], "no": ["no"]}},
                        "flow": steps}}
    if draw(st.booleans()):
        doc["scenario"]["inbound_flow"] = steps
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


VALID = {"scenarios": 0, "calls": 0}


@fuzz(300)
@given(generated_flow())
def test_generated_flows_give_a_report_and_run_when_valid(text: str) -> None:
    result = parse_scenario_text(text, "fuzz.yaml")
    check_report(text, result)
    assert (result.scenario is None) == bool(result.errors), result.errors  # a scenario, or why not
    if result.scenario is not None:
        VALID["scenarios"] += 1
        run_call(result)


# --- the loader against PyYAML -----------------------------------------------------------------------
PLAIN = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64),
              st.floats(allow_nan=False), st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30)),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                                                       min_size=1, max_size=10), children, max_size=5)),
    max_leaves=40,
)


@fuzz(300)
@given(PLAIN, st.booleans(), st.booleans())
def test_loader_reads_plain_documents_as_pyyaml_does(data: Any, flow_style: bool, shared: bool) -> None:
    doc = {"a": data, "b": data} if shared else data  # shared: PyYAML writes an anchor and an alias
    text = yaml.safe_dump(doc, default_flow_style=flow_style, allow_unicode=True)
    try:
        loaded, errors = load_yaml_text(text, "fuzz.yaml")
    except YamlSyntaxError as exc:  # only the documented limits may refuse a plain document
        assert exc.error.rule in ("too-deep", "too-large", "too-long", "invalid-value"), str(exc)
        return
    assert errors == []
    assert loaded.data == yaml.safe_load(text)
