"""Turn a scenario file into a `Scenario`, reporting every problem at once with file, line, column,
the rule broken and how to fix it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from switchboard.flows.loader import (
    FlowError,
    LoadedYaml,
    PathKey,
    Position,
    YamlSyntaxError,
    load_yaml_text,
    read_text_limited,
)
from switchboard.flows.results import check_results
from switchboard.flows.schema import Flow, Scenario, ScenarioFile, version_of
from switchboard.flows.steptypes import StepModel, get_step_type, step_types

log = logging.getLogger(__name__)

ENTRY_TYPE = "entry"


@dataclass(slots=True)
class FileResult:
    file: str
    scenario: Scenario | None
    errors: list[FlowError] = field(default_factory=list)


def _pydantic_errors(doc: LoadedYaml, base: PathKey, exc: ValidationError) -> list[FlowError]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = (*base, *loc)
        kind = err["type"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        if kind == "extra_forbidden":
            out.append(doc.error(path, "unknown-field", f"unknown field {loc[-1]!r}",
                                 "remove it or check its spelling against `switchboard schema`"))
        elif kind == "missing":
            out.append(doc.error(path[:-1], "missing-field", f"required field {where!r} is missing",
                                 f"add `{loc[-1]}:`"))
        else:
            value_path = (*path, "__value__") if (*path, "__value__") in doc.positions else path
            out.append(doc.error(value_path, "invalid-value", f"{where}: {err['msg']}",
                                 "correct the value"))
    return out


class _BrokenStep:
    """Stands in for a step that failed to parse, so its name and jumps still count and one typo
    does not cascade into unknown-target / unreachable errors elsewhere."""

    terminal = True
    type = "(invalid)"
    next = None

    def __init__(self, raw: dict[str, Any], path: PathKey) -> None:
        self.step = str(raw.get("step"))
        self._raw = raw
        self._validation_path = path

    def targets(self) -> list[tuple[PathKey, str]]:
        out: list[tuple[PathKey, str]] = []
        for key, value in self._raw.items():
            if isinstance(value, str) and (key in ("next", "target", "default", "else") or key.startswith("on_")):
                out.append(((key,), value))
            elif key == "routes" and isinstance(value, dict):
                out.extend(((key, k), v) for k, v in value.items() if isinstance(v, str))
            elif key == "cases" and isinstance(value, list):
                out.extend(((key, i, "then"), c["then"]) for i, c in enumerate(value)
                           if isinstance(c, dict) and isinstance(c.get("then"), str))
        return out

    def prompts_used(self) -> list[tuple[PathKey, str]]:
        return []

    def intents_routed(self) -> list[tuple[PathKey, str]]:
        return []

    def breaks_loops(self) -> bool:
        return True


def _parse_steps(doc: LoadedYaml, flow_key: str, raw: list[dict[str, Any]],
                 errors: list[FlowError]) -> dict[str, StepModel]:
    base: PathKey = ("scenario", flow_key)
    steps: dict[str, StepModel] = {}
    known = ", ".join(sorted(step_types()))
    for i, item in enumerate(raw):
        path = (*base, i)
        if not isinstance(item, dict):
            errors.append(doc.error(path, "invalid-step", "a step must be a mapping",
                                    "write it as {step: name, type: ..., next: ...}"))
            continue
        type_name = item.get("type")
        model = get_step_type(type_name) if isinstance(type_name, str) else None
        if model is None:
            errors.append(doc.error((*path, "type", "__value__") if "type" in item else path,
                                    "unknown-step-type", f"unknown step type {type_name!r}",
                                    f"use one of: {known}"))
            if isinstance(item.get("step"), str) and item["step"] not in steps:
                steps[item["step"]] = _BrokenStep(item, path)  # type: ignore[assignment]
            continue
        try:
            step = model.model_validate(item)
        except ValidationError as exc:
            errors.extend(_pydantic_errors(doc, path, exc))
            if isinstance(item.get("step"), str) and item["step"] not in steps:
                steps[item["step"]] = _BrokenStep(item, path)  # type: ignore[assignment]
            continue
        if step.step in steps:
            errors.append(doc.error((*path, "step", "__value__"), "duplicate-step",
                                    f"step name {step.step!r} is used twice in {flow_key}",
                                    "give every step a unique name"))
            continue
        steps[step.step] = step
        step._validation_path = path
    return steps


def _check_flow(doc: LoadedYaml, flow_key: str, steps: dict[str, StepModel], spec: Any,
                errors: list[FlowError]) -> str | None:
    base: PathKey = ("scenario", flow_key)
    entries = [s for s in steps.values() if s.type == ENTRY_TYPE]
    if not entries:
        errors.append(doc.error(base, "missing-entry", f"{flow_key} has no step of type 'entry'",
                                "add `- {step: start, type: entry, next: <first step>}`"))
    elif len(entries) > 1:
        second = entries[1]
        errors.append(doc.error(second._validation_path, "multiple-entries",
                                f"{flow_key} has more than one entry step", "keep exactly one"))
    for step in steps.values():
        path = step._validation_path
        for sub, target in step.targets():
            if target not in steps:
                suggestion = _closest(target, list(steps))
                errors.append(doc.error((*path, *sub, "__value__"), "unknown-target",
                                        f"step {step.step!r} jumps to {target!r}, which does not exist",
                                        f"did you mean {suggestion!r}?" if suggestion
                                        else "add that step or correct the name"))
        if not step.terminal and step.next is None and not step.targets():
            errors.append(doc.error(path, "no-next", f"step {step.step!r} ({step.type}) has no next step",
                                    "add `next:` or end the flow with a hangup step"))
        for sub, prompt in step.prompts_used():
            if prompt not in spec.prompts and ":" not in prompt:
                errors.append(doc.error((*path, *sub, "__value__"), "unknown-prompt",
                                        f"prompt {prompt!r} is not defined in scenario.prompts",
                                        f"add `{prompt}: \"sound:custom/{prompt}\"` under prompts"))
        categories = set(spec.llm.intent_categories)
        for sub, intent in step.intents_routed():
            if intent not in categories:
                errors.append(doc.error((*path, *sub), "unknown-intent",
                                        f"route for intent {intent!r}, which is not in llm.intent_categories",
                                        f"add {intent!r} to intent_categories or remove the route"))
    if not entries:
        return None
    entry = entries[0].step
    # Reachability from the entry step.
    seen: set[str] = set()
    stack = [entry]
    while stack:
        name = stack.pop()
        if name in seen or name not in steps:
            continue
        seen.add(name)
        stack.extend(t for _, t in steps[name].targets())
    for name, step in steps.items():
        if name not in seen:
            errors.append(doc.error(step._validation_path, "unreachable-step",
                                    f"step {name!r} can never be reached from {entry!r}",
                                    "jump to it from another step or delete it"))
    for cycle in _unbounded_cycles(steps):
        first = steps[cycle[0]]
        errors.append(doc.error(first._validation_path, "unbounded-loop",
                                "loop " + " -> ".join([*cycle, cycle[0]]) + " has no check_retry_limit",
                                "put a check_retry_limit step on the loop"))
    return entry


def _unbounded_cycles(steps: dict[str, StepModel]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative: a 10,000-step chain must not recurse
    10,000 deep) that loop and contain no loop-breaking step."""
    graph = {n: [t for _, t in s.targets() if t in steps] for n, s in steps.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            else:  # back from graph[v][i - 1]
                low[v] = min(low[v], low[graph[v][i - 1]])
            descended = False
            edges = graph[v]
            while i < len(edges):
                w = edges[i]
                i += 1
                if w not in index:
                    work.append((v, i))
                    work.append((w, 0))
                    descended = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if descended:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                loops = len(comp) > 1 or v in graph[v]
                if loops and not any(steps[n].breaks_loops() for n in comp):
                    members = set(comp)
                    out.append([n for n in steps if n in members])
    return out


def _closest(name: str, options: list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return match[0] if match else None


MAX_ERRORS = 200  # per file: a generated file with 10,000 mistakes is reported, not printed whole


def parse_scenario_text(text: str, file: str) -> FileResult:
    """Every problem of one scenario file at once. Never raises on any text: an unexpected failure
    is reported as an `internal-error` of that file (and logged with its traceback)."""
    try:
        result = _parse_scenario_text(text, file)
    except Exception as exc:  # the last net: the fuzz tests assert it is never reached
        log.exception("validating %s failed unexpectedly", file)
        return FileResult(file, None, [FlowError(file, 1, 1, "internal-error",
                                                 f"the file could not be checked ({type(exc).__name__})",
                                                 "report this file to the Switchboard developers")])
    if len(result.errors) > MAX_ERRORS:
        extra = len(result.errors) - MAX_ERRORS
        last = result.errors[MAX_ERRORS - 1]
        result.errors = result.errors[:MAX_ERRORS]
        result.errors.append(FlowError(file, last.line, last.column, "too-many-errors",
                                       f"... and {extra} more errors", "fix the ones above first"))
    return result


def _parse_scenario_text(text: str, file: str) -> FileResult:
    try:
        doc, errors = load_yaml_text(text, file)
    except YamlSyntaxError as exc:
        return FileResult(file, None, [exc.error])
    if not isinstance(doc.data, dict) or "scenario" not in doc.data:
        errors.append(doc.error((), "missing-scenario", "the file must have a top-level `scenario:` mapping",
                                "start the file with `scenario:`"))
        return FileResult(file, None, errors)
    try:
        parsed = ScenarioFile.model_validate(doc.data)
    except ValidationError as exc:
        errors.extend(_pydantic_errors(doc, (), exc))
        # Still check the steps so every error of the file is reported at once.
        raw = doc.data.get("scenario") if isinstance(doc.data, dict) else None
        if isinstance(raw, dict):
            for key in ("flow", "inbound_flow"):
                if isinstance(raw.get(key), list):
                    _parse_steps(doc, key, raw[key], errors)
        return FileResult(file, None, errors)
    spec = parsed.scenario
    flow_steps = _parse_steps(doc, "flow", spec.flow, errors)
    flow_entry = _check_flow(doc, "flow", flow_steps, spec, errors)
    check_results(doc, flow_steps, spec, errors)
    inbound: Flow | None = None
    if spec.inbound_flow is not None:
        in_steps = _parse_steps(doc, "inbound_flow", spec.inbound_flow, errors)
        in_entry = _check_flow(doc, "inbound_flow", in_steps, spec, errors)
        check_results(doc, in_steps, spec, errors)
        if in_entry:
            inbound = Flow(in_steps, in_entry)
    for key, ref in (("disclosure_prompt", spec.disclosure_prompt),):
        if ref and ref not in spec.prompts:
            errors.append(doc.error(("scenario", key, "__value__"), "unknown-prompt",
                                    f"{key} {ref!r} is not defined in scenario.prompts",
                                    f"add `{ref}:` under prompts"))
    if spec.opt_out_intent and spec.opt_out_intent not in spec.llm.intent_categories:
        errors.append(doc.error(("scenario", "opt_out_intent", "__value__"), "unknown-intent",
                                f"opt_out_intent {spec.opt_out_intent!r} is not in llm.intent_categories",
                                "add it to intent_categories"))
    errors.sort(key=lambda e: (e.line, e.column))
    if errors or flow_entry is None:
        return FileResult(file, None, errors)
    scenario = Scenario(spec=spec, flow=Flow(flow_steps, flow_entry), inbound_flow=inbound,
                        source=file, version=version_of(text))
    scenario._extra["name_position"] = doc.where(("scenario", "name", "__value__"))
    return FileResult(file, scenario, [])


def parse_scenario_file(path: Path) -> FileResult:
    """Never raises: an unreadable, oversized or malformed file is a `FileResult` with errors, so one
    bad file can neither stop a server from starting nor hide the reports of the others."""
    try:
        text = read_text_limited(path)
    except YamlSyntaxError as exc:
        return FileResult(str(path), None, [exc.error])
    return parse_scenario_text(text, str(path))


def scenario_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and p.is_file())


def validate_directory(directory: Path) -> list[FileResult]:
    """Validate every scenario file, plus cross-file rules (duplicate scenario names)."""
    results = [parse_scenario_file(p) for p in scenario_files(directory)]
    first_seen: dict[str, str] = {}
    for res in results:
        if res.scenario is None:
            continue
        name = res.scenario.name
        if name in first_seen:
            pos = res.scenario._extra.get("name_position") or Position(1, 1)
            res.errors.append(FlowError(res.file, pos.line, pos.column, "duplicate-scenario",
                                        f"scenario name {name!r} is already used by {first_seen[name]}",
                                        "give each scenario a unique name"))
            res.scenario = None
        else:
            first_seen[name] = res.file
    return results
