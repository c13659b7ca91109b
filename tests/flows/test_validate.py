"""The validator: one test per rule, each checking the rule name and the line it points at."""

from __future__ import annotations

import textwrap
from pathlib import Path

from switchboard.flows.validate import parse_scenario_text, validate_directory

BASE = """\
scenario:
  name: demo
  prompts: {hello: "sound:custom/hello", bye: "sound:custom/bye"}
  llm:
    intent_categories: ["yes", "no", "unknown"]
    fallback_tokens: {yes: ["yes"], no: ["no"]}
  flow:
    - {step: start, type: entry, next: hello}
    - {step: hello, type: play_prompt, prompt: hello, next: listen}
    - {step: listen, type: record, next: classify, on_empty: end}
    - {step: classify, type: classify_intent, next: route}
    - {step: route, type: route_by_intent, routes: {yes: end, no: end, unknown: end}}
    - {step: end, type: hangup}
"""


def errors_of(text: str) -> list:
    res = parse_scenario_text(textwrap.dedent(text), "demo.yaml")
    return res.errors


def rules(text: str) -> list[str]:
    return [e.rule for e in errors_of(text)]


def test_base_scenario_is_valid() -> None:
    res = parse_scenario_text(BASE, "demo.yaml")
    assert res.errors == []
    assert res.scenario is not None
    assert res.scenario.flow.entry == "start"
    assert list(res.scenario.flow.steps)[:2] == ["start", "hello"]


def test_unknown_step_type_names_line_and_choices() -> None:
    text = BASE.replace("type: play_prompt", "type: play_promt")
    [err] = errors_of(text)
    assert err.rule == "unknown-step-type"
    assert (err.file, err.line) == ("demo.yaml", 9)
    assert "play_prompt" in err.fix  # says what the valid types are


def test_unknown_field() -> None:
    text = BASE.replace("prompt: hello, next: listen", "prompt: hello, nxt: listen")
    errs = errors_of(text)
    assert "unknown-field" in [e.rule for e in errs]
    unknown = next(e for e in errs if e.rule == "unknown-field")
    assert unknown.line == 9 and "nxt" in unknown.message


def test_unknown_top_level_field() -> None:
    text = BASE.replace("  name: demo\n", "  name: demo\n  colour: red\n")
    [err] = errors_of(text)
    assert err.rule == "unknown-field" and err.line == 3


def test_missing_entry() -> None:
    text = BASE.replace("    - {step: start, type: entry, next: hello}\n", "")
    assert "missing-entry" in rules(text)


def test_target_that_does_not_exist_suggests_the_closest() -> None:
    text = BASE.replace("next: classify, on_empty", "next: clasify, on_empty")
    errs = [e for e in errors_of(text) if e.rule == "unknown-target"]
    assert len(errs) == 1
    assert errs[0].line == 10
    assert "classify" in errs[0].fix


def test_route_target_that_does_not_exist() -> None:
    text = BASE.replace("no: end,", "no: nowhere,")
    errs = [e for e in errors_of(text) if e.rule == "unknown-target"]
    assert errs and errs[0].line == 12 and "nowhere" in errs[0].message


def test_unreachable_step() -> None:
    text = BASE + "    - {step: orphan, type: play_prompt, prompt: bye, next: end}\n"
    [err] = errors_of(text)
    assert err.rule == "unreachable-step" and err.line == 14


def test_prompt_not_defined() -> None:
    text = BASE.replace("prompt: hello, next", "prompt: helo, next")
    [err] = errors_of(text)
    assert err.rule == "unknown-prompt" and err.line == 9


def test_route_for_intent_not_in_categories() -> None:
    text = BASE.replace("unknown: end}", "unknown: end, maybe: end}")
    [err] = errors_of(text)
    assert err.rule == "unknown-intent" and "maybe" in err.message and err.line == 12


def test_loop_without_retry_limit() -> None:
    text = BASE.replace("unknown: end}", "unknown: hello}")
    [err] = errors_of(text)
    assert err.rule == "unbounded-loop"
    assert "hello" in err.message and "check_retry_limit" in err.fix


def test_loop_with_retry_limit_is_accepted() -> None:
    text = BASE.replace("unknown: end}", "unknown: again}") + (
        "    - {step: again, type: check_retry_limit, max: 2, next: hello, on_exceeded: end}\n")
    assert errors_of(text) == []


def test_duplicate_step_names() -> None:
    text = BASE + "    - {step: end, type: hangup}\n"
    [err] = errors_of(text)
    assert err.rule == "duplicate-step" and err.line == 14


def test_duplicate_yaml_keys() -> None:
    text = BASE.replace("prompt: hello, next: listen", "prompt: hello, prompt: bye, next: listen")
    assert "duplicate-key" in rules(text)


def test_yaml_syntax_error_has_position() -> None:
    [err] = errors_of(BASE.replace("{step: end, type: hangup}", "{step: end, type: hangup"))
    assert err.rule == "yaml-syntax" and err.line >= 13


def test_invalid_result_value() -> None:
    text = BASE.replace("{step: end, type: hangup}", "{step: end, type: hangup, result: maybe}")
    [err] = errors_of(text)
    assert err.rule == "unknown-result" and "maybe" in err.message  # neither built in nor declared


def test_all_errors_of_a_file_are_reported_at_once() -> None:
    text = (BASE.replace("type: play_prompt", "type: nope")
            .replace("next: classify, on_empty", "next: missing, on_empty")
            + "    - {step: end, type: hangup}\n")
    found = set(rules(text))
    assert {"unknown-step-type", "unknown-target", "duplicate-step"} <= found
    lines = [e.line for e in errors_of(text)]
    assert lines == sorted(lines)


def test_duplicate_scenario_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(BASE, encoding="utf-8")
    results = validate_directory(tmp_path)
    assert results[0].errors == []
    [err] = results[1].errors
    assert err.rule == "duplicate-scenario" and err.file.endswith("b.yaml") and err.line == 2


def test_error_text_names_file_line_column_and_fix() -> None:
    text = BASE.replace("prompt: hello, next", "prompt: helo, next")
    [err] = errors_of(text)
    rendered = str(err)
    assert rendered.startswith("demo.yaml:9:")
    assert "[unknown-prompt]" in rendered and "fix:" in rendered


def test_shipped_scenarios_are_valid(scenarios_dir: Path) -> None:
    results = validate_directory(scenarios_dir)
    assert len(results) >= 2
    assert all(r.errors == [] for r in results), [str(e) for r in results for e in r.errors]
