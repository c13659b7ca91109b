"""Per-call state: variables, counters, transcripts, intent, result, operator, and the timeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable

from switchboard import clock


@dataclass(slots=True)
class TimelineEntry:
    at: float  # seconds since the call context was created
    wall: str  # ISO-8601 UTC
    event: str  # step | hangup | result | transcript | intent | operator | error | ...
    step: str | None = None
    type: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CallContext:
    call_id: str
    scenario: str
    direction: str = "outbound"
    remote_number: str = ""
    line_number: str | None = None
    scenario_version: str = ""
    contact: dict[str, Any] = field(default_factory=dict)  # id, name, attributes, campaign...
    variables: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    intent: str | None = None
    intent_path: str | None = None
    result: str | None = None
    reason: str = ""
    hangup_result: str | None = None  # what a hang-up from here on means (e.g. disconnected)
    agent: str | None = None  # operator number that took the call
    steps_visited: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    started_at: datetime = field(default_factory=clock.now)
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    operator_requested_at: float | None = None
    operator_answered_at: float | None = None
    recordings: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)  # tokens etc.
    listener: Callable[["CallContext", TimelineEntry], None] | None = None  # sees every timeline entry
    _t0: float = field(default_factory=clock.monotonic)

    def elapsed(self) -> float:
        return round(clock.monotonic() - self._t0, 3)

    def log(self, event: str, step: str | None = None, type: str | None = None, **detail: Any) -> None:
        entry = TimelineEntry(self.elapsed(), clock.now().isoformat(), event, step, type, detail)
        self.timeline.append(entry)
        if self.listener is not None:
            self.listener(self, entry)

    def last_transcript(self) -> str:
        return str(self.transcripts[-1]["text"]) if self.transcripts else ""

    def set_result(self, result: str, reason: str = "") -> None:
        self.result = result
        if reason:
            self.reason = reason
        self.log("result", result=result, reason=reason)

    def template_values(self) -> dict[str, Any]:
        """Values `{name}` placeholders may use in `say` text and templates."""
        values: dict[str, Any] = {}
        values.update(self.contact.get("attributes", {}) or {})
        values.update({k: v for k, v in self.contact.items() if k != "attributes"})
        values.update(self.variables)
        values.update(intent=self.intent or "", transcript=self.last_transcript(),
                      phone=self.remote_number, scenario=self.scenario)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "scenario": self.scenario,
            "scenario_version": self.scenario_version,
            "direction": self.direction,
            "remote_number": self.remote_number,
            "line_number": self.line_number,
            "contact": self.contact,
            "result": self.result,
            "reason": self.reason,
            "intent": self.intent,
            "intent_path": self.intent_path,
            "agent": self.agent,
            "variables": self.variables,
            "counters": self.counters,
            "transcripts": self.transcripts,
            "steps": self.steps_visited,
            "started_at": self.started_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "usage": self.usage,
            "timeline": [asdict(e) for e in self.timeline],
        }
