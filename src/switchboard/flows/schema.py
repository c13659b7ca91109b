"""Pydantic models of a scenario file (the format call centers already write), and the validated
`Scenario` the engine runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard.flows.steptypes import StepModel, step_types


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SttConfig(_Strict):
    hotwords: list[str] = Field(default_factory=list)
    max_duration: float = Field(10, gt=0, le=600, description="seconds a single capture may last")
    max_silence: float = Field(2, gt=0, le=60, description="seconds of silence that end a capture")
    language: str | None = Field(None, description="ISO code such as fa, ar, en; empty = detect")
    provider: str | None = None
    model: str | None = None


class TtsConfig(_Strict):
    provider: str | None = None
    voice: str | None = None
    language: str | None = None


class LlmConfig(_Strict):
    prompt_template: str = "Classify the caller's intent.\nUser: {transcript}"
    intent_categories: list[str] = Field(default_factory=lambda: ["unknown"])
    fallback_tokens: dict[str, list[str]] = Field(default_factory=dict)
    examples: dict[str, list[str] | dict[str, list[str]]] = Field(
        default_factory=dict, description="example answers per intent, as a list or per language {fa: [...]}")
    timeout: float | None = Field(None, gt=0, description="seconds before the fallback classifier decides")
    model: str | None = None


class RateLimits(_Strict):
    per_minute: int | None = Field(None, ge=1)
    concurrent: int | None = Field(None, ge=1)
    per_day: int | None = Field(None, ge=1)


class Operators(_Strict):
    inbound: list[str] = Field(default_factory=list)
    outbound: list[str] = Field(default_factory=list)


class ScenarioSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    display_name: str = ""
    description: str = ""
    enabled: bool = True
    language: str | None = None
    weight: float | None = Field(None, gt=0)
    conditions: dict[str, Any] = Field(default_factory=dict,
                                       description="contact attribute -> value or list of accepted values")
    rate_limits: RateLimits | None = None
    prompts: dict[str, str] = Field(default_factory=dict)
    stt: SttConfig = Field(default_factory=SttConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    operators: Operators = Field(default_factory=Operators)
    disclosure_prompt: str | None = Field(None, description="prompt that must play before anything else")
    opt_out_intent: str | None = Field(None, description="callers with this intent go onto the DNC list")
    flow: list[dict[str, Any]]
    inbound_flow: list[dict[str, Any]] | None = None


class ScenarioFile(_Strict):
    scenario: ScenarioSpec


FlowName = Literal["flow", "inbound_flow"]


@dataclass(slots=True)
class Flow:
    """A validated list of steps, addressable by name; `entry` is the first step to run."""

    steps: dict[str, StepModel]
    entry: str


@dataclass(slots=True)
class Scenario:
    spec: ScenarioSpec
    flow: Flow
    inbound_flow: Flow | None
    source: str = ""
    version: str = ""
    _extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def has_inbound(self) -> bool:
        return self.inbound_flow is not None

    def flow_for(self, direction: str) -> Flow:
        if direction == "inbound" and self.inbound_flow is not None:
            return self.inbound_flow
        return self.flow


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def json_schema() -> dict[str, Any]:
    """JSON Schema for editors: the scenario model with each flow item one of the step types."""
    schema = ScenarioFile.model_json_schema()
    step_schemas = []
    defs = schema.setdefault("$defs", {})
    for name, model in sorted(step_types().items()):
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        for def_name, definition in sub.pop("$defs", {}).items():
            defs.setdefault(def_name, definition)
        sub.setdefault("properties", {})["type"] = {"const": name, "type": "string"}
        sub["title"] = f"step: {name}"
        defs[f"step_{name}"] = sub
        step_schemas.append({"$ref": f"#/$defs/step_{name}"})
    spec = defs["ScenarioSpec"]
    spec["properties"]["flow"] = {"type": "array", "items": {"oneOf": step_schemas}}
    spec["properties"]["inbound_flow"] = {
        "anyOf": [{"type": "array", "items": {"oneOf": step_schemas}}, {"type": "null"}]
    }
    schema["title"] = "Switchboard scenario"
    return schema
