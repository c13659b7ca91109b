"""Sales strategies: a pitch, FAQ, objection replies, closing techniques and fallback policies that
shape the sales persona, posted through the API or kept as YAML (`strategies/*.yaml`).

A strategy is applied to a persona's prompt (LLM mode) and to its scripted answers (no-LLM mode).
Fallback policies turn conversation signals (a low-confidence transcript, silence, nothing matched)
into an action such as asking the caller to repeat.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from switchboard.flows.loader import YamlSyntaxError, read_text_limited, safe_load

from switchboard.brain.personas import FaqEntry, Objection, Persona
from switchboard.brain.subagents import SubagentSpec

Trigger = Literal["low_confidence", "silence", "no_match", "objection_repeated"]


class _Model(BaseModel):
    # strict: a strategy's booleans and numbers are what its schema says (`0` is not `false`)
    model_config = ConfigDict(extra="forbid", strict=True)


class StrategyPersona(_Model):
    name: str = Field(min_length=1)
    tone: str = ""
    tone_override: bool | str = Field(False, description="free text: the tone to use instead of the persona's "
                                                         "(true: `tone` replaces it instead of adding to it)")
    description: str = ""
    voice_id: str | None = None
    locale: str = Field("en", description="language (or locale such as fa-IR) the strategy is written in")

    @property
    def language(self) -> str:
        return self.locale.split("-")[0].split("_")[0].lower()

    @property
    def override(self) -> str:
        """The tone that replaces the persona's, or "" when the strategy only adds to it."""
        if isinstance(self.tone_override, str):
            return self.tone_override.strip()
        return self.tone.strip() if self.tone_override else ""


# Words of a tone and what they do to an ElevenLabs voice: stability (low = more expressive and
# variable, high = steady and calm) and similarity_boost (how closely to hold the original voice).
_STEADY = ("calm", "soothing", "professional", "formal", "serious", "reassuring", "patient", "gentle",
           "آرام", "رسمی", "هادئ", "رسمي")
_LIVELY = ("energetic", "enthusiastic", "excited", "playful", "upbeat", "lively", "passionate", "urgent",
           "پرانرژی", "هیجان", "متحمس", "حماسي")


def voice_style(tone: str) -> dict[str, float]:
    """ElevenLabs voice settings for a tone description (0.5 / 0.8 when it says nothing of either)."""
    text = tone.lower()
    steady = sum(w in text for w in _STEADY)
    lively = sum(w in text for w in _LIVELY)
    stability = 0.5 + 0.25 * (steady > lively) - 0.2 * (lively > steady)
    similarity = 0.8 if steady >= lively else 0.7
    return {"stability": round(stability, 2), "similarity_boost": similarity}


class Scripts(_Model):
    greeting: str = ""
    pitch: str = ""
    faqs: dict[str, str] = Field(default_factory=dict, description="question -> answer")
    objections: dict[str, str] = Field(default_factory=dict,
                                       description="objection keywords ('a|b') -> reply")


class FallbackPolicy(_Model):
    trigger: Trigger
    threshold: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _business_triggers(cls, data: Any) -> Any:
        """Triggers as businesses write them: "confidence_below_0.5" is low_confidence at 0.5."""
        if isinstance(data, dict) and isinstance(data.get("trigger"), str):
            m = re.fullmatch(r"\s*confidence_below_(\d+(?:\.\d+)?)\s*", data["trigger"])
            if m:
                value = float(m.group(1))
                threshold = data.get("threshold")
                if threshold is not None and float(threshold) != value:
                    raise ValueError(f"trigger {data['trigger']!r} and threshold {threshold} disagree")
                data = {**data, "trigger": "low_confidence", "threshold": value}
        return data
    action: str = Field(min_length=1, description="ask_to_repeat | transfer_to_operator | end_call | "
                                                  "a fallback_scenarios key")


class Strategy(_Model):
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    goals: list[str] = Field(default_factory=list)
    persona: StrategyPersona
    scripts: Scripts = Field(default_factory=Scripts)
    closing_techniques: list[str] = Field(default_factory=list)
    fallback_scenarios: dict[str, str] = Field(default_factory=dict)
    fallback_policies: list[FallbackPolicy] = Field(default_factory=list)
    subagents: list[SubagentSpec] = Field(default_factory=list, max_length=10)

    @field_validator("subagents")
    @classmethod
    def _unique_subagents(cls, v: list[SubagentSpec]) -> list[SubagentSpec]:
        names = [s.name for s in v]
        if len(names) != len(set(names)):
            raise ValueError(f"subagent names must be unique: {names}")
        return v

    @field_validator("fallback_policies")
    @classmethod
    def _low_confidence_is_a_fraction(cls, v: list[FallbackPolicy]) -> list[FallbackPolicy]:
        for p in v:
            if p.trigger == "low_confidence" and p.threshold > 1:
                raise ValueError("a low_confidence threshold is a confidence between 0 and 1")
        return v

    @property
    def slug(self) -> str:
        return slugify(self.title)

    @property
    def language(self) -> str:
        return self.persona.language

    # --- applying ---------------------------------------------------------------------------
    def prompt_section(self) -> str:
        """Text appended to the sales persona's system prompt."""
        lines = [f"Sales strategy: {self.title}."]
        if self.description:
            lines.append(self.description)
        if self.goals:
            lines.append("Goals: " + "; ".join(self.goals) + ".")
        if self.persona.override:
            lines.append(f"Use ONLY this tone, whatever your usual one: {self.persona.override}.")
        elif self.persona.tone:
            lines.append(f"Also be: {self.persona.tone}.")
        if self.persona.description:
            lines.append(f"You present yourself as {self.persona.name}: {self.persona.description}")
        if self.scripts.pitch:
            lines.append(f"Pitch: {self.scripts.pitch}")
        if self.scripts.faqs:
            lines.append("Answers to common questions:")
            lines.extend(f"- Q: {q} A: {a}" for q, a in self.scripts.faqs.items())
        if self.scripts.objections:
            lines.append("Objection handling:")
            lines.extend(f"- If the caller says {k.replace('|', ' / ')}: {r}" for k, r in self.scripts.objections.items())
        if self.closing_techniques:
            lines.append("Closing techniques: " + "; ".join(self.closing_techniques) + ".")
        if self.subagents:
            lines.append("Colleagues you can ask with the delegate tool (agent, request): "
                         + "; ".join(f"{s.name}" + (f" ({s.init.get('description')})" if s.init.get("description")
                                                    else "") for s in self.subagents) + ".")
        return "\n".join(lines)

    def voice_settings(self) -> dict[str, float]:
        """The voice the tone asks for (ElevenLabs stability / similarity)."""
        return voice_style(self.persona.override or self.persona.tone)

    def apply(self, persona: Persona) -> Persona:
        """A copy of `persona` with this strategy's prompt, greeting, FAQ, objections and voice."""
        lang = self.language
        prompts = {k: f"{v.rstrip()}\n\n{self.prompt_section()}" for k, v in persona.system_prompt.items()}
        update: dict[str, Any] = {"system_prompt": prompts,
                                  "version": f"{persona.version}+{self.slug}"}
        if self.persona.override:
            update["tone"] = self.persona.override
        elif self.persona.tone:
            update["tone"] = f"{persona.tone}; {self.persona.tone}".strip("; ")
        if self.scripts.greeting:
            update["greeting"] = {**persona.greeting, lang: self.scripts.greeting}
        if self.persona.voice_id:
            # The voice id carries the tone's voice settings; the ElevenLabs provider reads them.
            style = "&".join(f"{k}={v}" for k, v in self.voice_settings().items())
            update["voice"] = {**persona.voice, lang: f"{self.persona.voice_id}?{style}"}
        if self.subagents and "delegate" not in persona.tools:
            update["tools"] = [*persona.tools, "delegate"]
        if self.persona.name:
            update["display_name"] = self.persona.name
        faq = [FaqEntry(questions=[q], answer={lang: a}) for q, a in self.scripts.faqs.items()]
        update["faq"] = faq + list(persona.faq)
        objections = {f"strategy_{i}": Objection(keywords=[k.strip() for k in re.split(r"[|,]", key) if k.strip()],
                                                 reply={lang: reply})
                      for i, (key, reply) in enumerate(self.scripts.objections.items())}
        update["objections"] = {**objections, **persona.objections}
        if "ask_to_repeat" in self.fallback_scenarios:
            update["repeat_reply"] = {**persona.repeat_reply, lang: self.fallback_scenarios["ask_to_repeat"]}
        return persona.model_copy(update=update)

    def policy_for(self, trigger: Trigger, value: float) -> FallbackPolicy | None:
        """The first policy the signal fires: confidence below the threshold, or a count at/above it."""
        for p in self.fallback_policies:
            if p.trigger != trigger:
                continue
            if trigger == "low_confidence" and value < p.threshold:
                return p
            if trigger != "low_confidence" and value >= p.threshold:
                return p
        return None


def slugify(title: str) -> str:
    slug = re.sub(r"[^\w]+", "-", title.strip().lower(), flags=re.UNICODE).strip("-")
    return slug or "strategy"


class StrategyError(ValueError):
    pass


def load_strategy(path: Path) -> Strategy:
    try:
        data = safe_load(read_text_limited(Path(path)), str(path))  # limits: aliases, depth, size
    except (OSError, YamlSyntaxError) as exc:
        raise StrategyError(f"{path}: {exc}") from exc
    if isinstance(data, dict) and "strategy" in data:
        data = data["strategy"]
    try:
        return Strategy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise StrategyError(f"{path}: {problems}") from exc


def load_strategies(directory: Path) -> dict[str, Strategy]:
    return {s.slug: s for s in (load_strategy(p) for p in sorted(Path(directory).glob("*.y*ml")))}


__all__ = ["FallbackPolicy", "Scripts", "Strategy", "StrategyError", "StrategyPersona", "Trigger",
           "load_strategies", "load_strategy", "slugify", "voice_style"]
