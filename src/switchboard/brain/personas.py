"""AI personas: who the agent is on the line, in YAML (`personas/*.yaml`).

A persona carries everything a conversation needs in both modes: the system prompt per language for
the LLM mode, and greeting, FAQ, objection replies and handoff keywords for the scripted mode that
runs when no LLM is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchboard.flows.loader import YamlSyntaxError, read_text_limited, safe_load
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Localized = dict[str, str]  # language code -> text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def pick(texts: Localized, language: str | None, default: str | None = None) -> str:
    """The text in `language`, else the default language, else English, else any."""
    for lang in (language, default, "en"):
        if lang and texts.get(lang):
            return texts[lang]
    return next(iter(texts.values()), "") if texts else ""


class FaqEntry(_Strict):
    questions: list[str] = Field(min_length=1, description="ways callers ask it, any language")
    keywords: list[str] = Field(default_factory=list, description="words that point at this entry")
    answer: Localized


class Objection(_Strict):
    keywords: list[str] = Field(min_length=1)
    reply: Localized


class ScriptedBehaviour(_Strict):
    """What the scripted (no-LLM) mode does with a reply nothing else matched."""

    on_unmatched: str = Field("fallback", pattern="^(fallback|ticket)$",
                              description="fallback: say fallback_reply; ticket: open a ticket with the reply")
    ticket_reply: Localized = Field(default_factory=dict, description="said after the ticket; {ticket_id}")


class Persona(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    display_name: str = ""
    department: str
    languages: list[str] = Field(min_length=1)
    tone: str = ""
    system_prompt: Localized
    greeting: Localized
    announce: Localized = Field(default_factory=dict, description="said when taking over after a handoff")
    goodbye: Localized = Field(default_factory=dict)
    fallback_reply: Localized = Field(default_factory=dict)
    repeat_reply: Localized = Field(default_factory=dict, description="asked when the caller was unclear")
    voice: dict[str, str] = Field(default_factory=dict, description="TTS voice per language")
    tools: list[str] = Field(default_factory=list)
    handoff_targets: list[str] = Field(default_factory=list)
    handoff_tokens: dict[str, list[str]] = Field(default_factory=dict,
                                                 description="scripted mode: target persona or 'operator' -> words")
    end_tokens: list[str] = Field(default_factory=list)
    collect: list[str] = Field(default_factory=list, description="fields to collect: name, phone, email, service")
    faq: list[FaqEntry] = Field(default_factory=list)
    objections: dict[str, Objection] = Field(default_factory=dict)
    scripted: ScriptedBehaviour = Field(default_factory=ScriptedBehaviour)
    version: str = "1"

    @model_validator(mode="after")
    def _check(self) -> Persona:
        missing = [lang for lang in self.languages if lang not in self.system_prompt]
        if missing:
            raise ValueError(f"system_prompt has no text for languages {missing}")
        bad = [t for t in self.handoff_tokens if t != "operator" and t not in self.handoff_targets]
        if bad:
            raise ValueError(f"handoff_tokens name targets not in handoff_targets: {bad}")
        return self

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def speaks(self, language: str | None) -> bool:
        return language in self.languages

    def voice_for(self, language: str | None) -> str | None:
        return self.voice.get(language or self.default_language) or self.voice.get("default")

    def prompt(self, language: str | None) -> str:
        return pick(self.system_prompt, language, self.default_language)


class PersonaError(ValueError):
    """A persona file that does not parse or validate; names the file and the problem."""


def load_persona(path: Path) -> Persona:
    try:
        data: Any = safe_load(read_text_limited(path), str(path))  # limits: aliases, depth, size
    except (OSError, YamlSyntaxError) as exc:
        raise PersonaError(f"{path}: {exc}") from exc
    if isinstance(data, dict) and "persona" in data:
        data = data["persona"]
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PersonaError(f"{path}: {problems}") from exc


class PersonaRegistry:
    """All personas by name; handoff targets are checked to exist."""

    def __init__(self, personas: list[Persona] | None = None) -> None:
        self._by_name: dict[str, Persona] = {}
        for p in personas or []:
            self.add(p)

    @classmethod
    def load_dir(cls, directory: Path) -> PersonaRegistry:
        registry = cls([load_persona(p) for p in sorted(Path(directory).glob("*.y*ml"))])
        registry.check()
        return registry

    def add(self, persona: Persona) -> None:
        self._by_name[persona.name] = persona

    def check(self) -> None:
        for p in self._by_name.values():
            unknown = [t for t in p.handoff_targets if t not in self._by_name]
            if unknown:
                raise PersonaError(f"persona {p.name!r}: unknown handoff targets {unknown}")

    def get(self, name: str) -> Persona:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown persona {name!r}; known: {sorted(self._by_name)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def replace(self, persona: Persona) -> None:
        """Swap in an approved new version (memory.ImprovementJob applies approved proposals here)."""
        self._by_name[persona.name] = persona


__all__ = ["FaqEntry", "Localized", "Objection", "Persona", "PersonaError", "PersonaRegistry",
           "ScriptedBehaviour", "load_persona", "pick"]
