"""The step-type registry: each step type is a pydantic model (its YAML fields) with a `run` method.

Step modules live in `switchboard.engine.steps` (one module per type) and register themselves with
`@register_step`. The flow language only knows this base class, so adding a step type never edits
the loader, the validator or the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from switchboard.engine.runtime import StepRuntime

STEP_PLUGIN_PACKAGES = ["switchboard.engine.steps"]

_REGISTRY: dict[str, type["StepModel"]] = {}


class StepModel(BaseModel):
    """Fields every step has. Subclasses add their own and set `type_name`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type_name: ClassVar[str] = ""
    # Field names holding a single step name, and those holding a {key: step} mapping.
    target_fields: ClassVar[tuple[str, ...]] = ("next",)
    # True when the step ends the call (no `next` required).
    terminal: ClassVar[bool] = False

    step: str
    type: str
    next: str | None = None
    hangup_result: str | None = None  # result if the caller hangs up from this step on

    _validation_path: tuple[str | int, ...] = PrivateAttr(default=())

    def targets(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(path within the step, target step name) for every jump this step can make."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for name in self.target_fields:
            value = getattr(self, name, None)
            if isinstance(value, str):
                out.append(((name,), value))
            elif isinstance(value, dict):
                out.extend(((name, key), target) for key, target in value.items() if isinstance(target, str))
        return out

    def prompts_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return []

    def intents_routed(self) -> list[tuple[tuple[str | int, ...], str]]:
        return []

    def results_set(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(path within the step, result) for every result this step may record; `validate`
        checks each against the built-in results and the scenario's declared `results`."""
        return [(("hangup_result",), self.hangup_result)] if self.hangup_result else []

    def breaks_loops(self) -> bool:
        """A cycle through a step that returns True here is bounded (e.g. check_retry_limit)."""
        return False

    async def run(self, rt: "StepRuntime") -> str | None:
        """Do the step; return the next step's name, or None to end the flow."""
        raise TypeError(f"step type {self.type_name!r} has no run()")


def register_step(cls: type[StepModel]) -> type[StepModel]:
    if not cls.type_name:
        raise TypeError(f"{cls.__name__} needs a type_name")
    _REGISTRY[cls.type_name] = cls
    return cls


def load_plugins() -> None:
    for package in STEP_PLUGIN_PACKAGES:
        importlib.import_module(package)


def step_types() -> dict[str, type[StepModel]]:
    load_plugins()
    return dict(_REGISTRY)


def get_step_type(name: str) -> type[StepModel] | None:
    load_plugins()
    return _REGISTRY.get(name)


def step_json_schemas() -> list[dict[str, Any]]:
    return [model.model_json_schema() for _, model in sorted(step_types().items())]
