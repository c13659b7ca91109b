"""Checks that every result a flow can record exists: built in, or declared under the scenario's
`results:` (each error names the file, line and column of the step that sets it)."""

from __future__ import annotations

from typing import Any

from switchboard.engine import results
from switchboard.flows.loader import FlowError, LoadedYaml


def check_results(doc: LoadedYaml, steps: dict[str, Any], spec: Any, errors: list[FlowError]) -> None:
    declared = set(spec.results or {})
    builtin = ", ".join(results.FIXED_RESULTS)
    for step in steps.values():
        used = getattr(step, "results_set", None)
        for sub, result in used() if callable(used) else []:
            if result in declared or results.is_valid_result(result):
                continue
            errors.append(doc.error((*step._validation_path, *sub, "__value__"), "unknown-result",
                                    f"step {step.step!r} sets result {result!r}, which is neither built in "
                                    "nor declared under scenario.results",
                                    f"declare it: `results: {{{result}: {{display_name: ..., panel_status: "
                                    f"..., final: true}}}}` or use a built-in ({builtin}, failed:<reason>)"))
