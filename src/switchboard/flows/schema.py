"""Pydantic models of a scenario file (the format call centers already write), and the validated
`Scenario` the engine runs."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?"
                       r"\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*$")
MAX_DELAY = 30 * 86400.0


def parse_duration(value: float | int | str) -> float:
    """Seconds from `90`, `"90s"`, `"15m"`, `"2h"`, `"1d"` or `"1h30m"` (at most 30 days)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text such as 15m, 2h, 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m or not any(m.groups()):
            raise ValueError(f"{value!r} is not a duration; write seconds or a text such as 15m, 2h, 1d")
        d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = d * 86400 + h * 3600 + mi * 60 + s
    if not 0 < seconds <= MAX_DELAY:
        raise ValueError(f"duration {value!r} must be more than 0 and at most 30 days")
    return seconds


Duration = float | int | str


class ResultDeclaration(_Strict):
    """A result of the scenario's own business (e.g. appointment_confirmed): how it reads, what it
    reports to the panel as, whether the contact is done or tried again, and how reports count it."""

    display_name: str = Field("", max_length=200)
    panel_status: str = Field(description="what the panel is told: connected_to_operator, not_interested, "
                                          "disconnected, hangup, missed, unknown, inbound_call or "
                                          "failed:<reason>")
    final: bool | None = Field(None, description="true: the contact is done; default: final unless "
                                                 "retry_after is given")
    retry_after: Duration | None = Field(None, description="call again after this long (seconds, or 30m, "
                                                           "2h, 1d)")
    contacted: bool = Field(True, description="the contact was reached (counts in contact rates)")
    success: bool = Field(False, description="counts as a success in reports")

    @field_validator("panel_status")
    @classmethod
    def _status(cls, value: str) -> str:
        from switchboard.engine.results import PANEL_STATUSES

        base = value.split(":", 1)[0]
        if base not in PANEL_STATUSES or (base == "failed" and not value.startswith("failed:")) or \
                (base != "failed" and ":" in value):
            raise ValueError(f"panel_status {value!r} is not a panel status; use one of "
                             + ", ".join(s if s != "failed" else "failed:<reason>" for s in PANEL_STATUSES))
        return value

    @field_validator("retry_after")
    @classmethod
    def _delay(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ResultDeclaration":
        if self.final and self.retry_after is not None:
            raise ValueError("a final result is never retried: remove retry_after or set final: false")
        return self

    def retry_after_seconds(self) -> float | None:
        return None if self.retry_after is None else parse_duration(self.retry_after)


class CallbackPolicy(_Strict):
    """What `schedule_callback` steps of this scenario do unless the step says otherwise."""

    after: Duration = Field("15m", description="how long after the call to call back (seconds, 15m, 2h)")
    scenario: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="scenario the call back runs; default: this one")
    priority: int = Field(10, ge=-100, le=100, description="higher is dialed first (new contacts are 0)")
    max_attempts: int = Field(3, ge=1, le=20, description="tries of one call back before it is given up")

    @field_validator("after")
    @classmethod
    def _after(cls, value: Duration) -> Duration:
        parse_duration(value)
        return value


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
    results: dict[str, ResultDeclaration] = Field(default_factory=dict,
                                                  description="the scenario's own results, by name")
    callbacks: CallbackPolicy = Field(default_factory=CallbackPolicy)
    flow: list[dict[str, Any]]
    inbound_flow: list[dict[str, Any]] | None = None

    @field_validator("results")
    @classmethod
    def _result_names(cls, value: dict[str, ResultDeclaration]) -> dict[str, ResultDeclaration]:
        from switchboard.engine.results import RESULT_NAME

        for name in value:
            if not RESULT_NAME.match(name) or ":" in name:
                raise ValueError(f"result name {name!r}: use lower-case letters, digits and _ "
                                 "(e.g. appointment_confirmed)")
        return value


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
