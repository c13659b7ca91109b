"""What a browser may call: a scenario's inbound flow, or one AI persona directly.

Scenarios are the active ones with an `inbound_flow` (what an inbound phone call could reach). A
persona is wrapped in a small built-in scenario, `persona.<name>`: converse with that persona; a
request for a human goes to an inbound operator as it would on the phone (a browser call cannot be
bridged to a phone, so it ends up in the scenario's "all our colleagues are busy" branch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from switchboard.flows.schema import Scenario
from switchboard.flows.validate import parse_scenario_text
from switchboard.telephony.webrtc.tokens import CallScope, ScopeKind

PERSONA_SCENARIO = """\
scenario:
  name: persona.{name}
  display_name: {display}
  language: {language}
  flow: &flow
    - {{step: start, type: entry, next: talk}}
    - {{step: talk, type: converse, persona: {name}, max_turns: 30, max_seconds: {seconds},
       on_end: done, on_handoff: transfer, on_timeout: wrap_up, on_failure: failed}}
    - {{step: transfer, type: transfer_to_operator, agent_type: inbound, on_success: with_operator,
       on_failure: sorry}}
    - {{step: with_operator, type: wait}}
    - {{step: sorry, type: say, text: "All our colleagues are busy. We will call you back soon.", next: done}}
    - {{step: wrap_up, type: say, text: "Thank you for calling. Goodbye.", next: done}}
    - {{step: failed, type: set_result, result: "failed:conversation", next: done}}
    - {{step: done, type: hangup, result: inbound_call}}
  inbound_flow: *flow
"""


@dataclass(frozen=True, slots=True)
class Target:
    kind: ScopeKind
    name: str
    display_name: str
    language: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "name": self.name, "display_name": self.display_name, "language": self.language}


@dataclass(frozen=True, slots=True)
class PersonaInfo:
    name: str
    display_name: str
    language: str


@lru_cache(maxsize=64)
def persona_scenario(name: str, display_name: str, language: str, max_seconds: int = 1800) -> Scenario:
    """The built-in scenario that talks to one persona (cached: one per persona)."""
    text = PERSONA_SCENARIO.format(name=name, display=_yaml_str(display_name or name), language=language,
                                   seconds=max_seconds)
    parsed = parse_scenario_text(text, f"<persona {name}>")
    if parsed.scenario is None:
        raise ValueError(f"persona {name!r} cannot be called: {'; '.join(map(str, parsed.errors))}")
    return parsed.scenario


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class CallTargets:
    """The scenarios and personas on offer, and which of them anyone may call without signing in."""

    def __init__(self, scenarios: Callable[[], Iterable[Scenario]], personas: Callable[[], Iterable[PersonaInfo]],
                 *, public: Iterable[str] = (), max_seconds: float = 1800) -> None:
        self._scenarios = scenarios
        self._personas = personas
        self.public = frozenset(public)
        self.max_seconds = int(max_seconds)

    def all(self) -> list[Target]:
        out = [Target("scenario", s.name, s.spec.display_name or s.name, s.spec.language)
               for s in self._scenarios() if s.has_inbound]
        out += [Target("persona", p.name, p.display_name or p.name, p.language) for p in self._personas()]
        return out

    def is_public(self, kind: ScopeKind, name: str) -> bool:
        return name in self.public or f"{kind}:{name}" in self.public

    def visible(self, *, signed_in: bool) -> list[Target]:
        return [t for t in self.all() if signed_in or self.is_public(t.kind, t.name)]

    def find(self, kind: ScopeKind, name: str) -> Target | None:
        return next((t for t in self.all() if t.kind == kind and t.name == name), None)

    @staticmethod
    def first_persona(scenario: Scenario) -> str | None:
        """The persona a scenario's inbound flow talks with first (the avatar's first face)."""
        flow = scenario.flow_for("inbound")
        for step in flow.steps.values():
            persona = getattr(step, "persona", None)
            if step.type == "converse" and isinstance(persona, str):
                return persona
        return None

    def scenario_for(self, scope: CallScope) -> Scenario | None:
        """The scenario a call with this scope runs (None when it is no longer on offer)."""
        if scope.kind == "scenario":
            return next((s for s in self._scenarios() if s.name == scope.name and s.has_inbound), None)
        persona = next((p for p in self._personas() if p.name == scope.name), None)
        if persona is None:
            return None
        return persona_scenario(persona.name, persona.display_name, scope.language or persona.language,
                                self.max_seconds)
