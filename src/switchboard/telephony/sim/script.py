"""Caller scripts: how a simulated contact behaves (answer or not, what they say, when they hang up)
and how simulated operators behave."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    # No inf/nan and bounded durations: a script is data anyone can hand the simulator.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AnswerAfter(_Strict):
    after_seconds: float = Field(ge=0, le=3600)


class Reply(_Strict):
    """One turn of the caller: say something, stay silent, press keys, or hang up."""

    say: str | None = Field(None, max_length=2000)
    silence: bool = False
    dtmf: str | None = Field(None, pattern=r"^[0-9*#A-Da-d]{1,32}$")
    hangup: bool = False
    delay: float = Field(0.3, ge=0, le=600, description="seconds before the caller starts speaking")
    barge_in: bool = Field(False, description="talk over the agent's interruptible speech after `delay` s")
    language: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Reply":
        kinds = sum([self.say is not None, self.silence, self.dtmf is not None, self.hangup])
        if kinds != 1:
            raise ValueError("a reply is exactly one of: say, silence, dtmf, hangup")
        return self


class CallerScript(_Strict):
    phone: str = "09120000000"
    name: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    # congestion / failed: the trunk refuses the origination (what the dialer's failure threshold counts)
    answer: bool | Literal["no_answer", "busy", "unreachable", "congestion", "failed"] | AnswerAfter = True
    replies: list[Reply] = Field(default_factory=list, max_length=200)
    hangup_after: float | None = Field(None, gt=0, le=86400, description="seconds after answer")
    talk_seconds: float = Field(20, gt=0, le=86400, description="time spent with an operator before hanging up")
    language: str | None = Field(None, description="language the caller speaks (audio mode)")
    voice: str | None = None
    noise_snr_db: float | None = Field(None, ge=-20, le=100, description="add noise at this SNR (audio mode)")

    def ring_seconds(self) -> float:
        if isinstance(self.answer, AnswerAfter):
            return self.answer.after_seconds
        return 2.0


class OperatorScript(_Strict):
    phone: str
    id: str | None = None
    answer: bool | Literal["busy"] | AnswerAfter = True

    def answers_after(self) -> float | None:
        if self.answer is True:
            return 2.0
        if isinstance(self.answer, AnswerAfter):
            return self.answer.after_seconds
        return None


class CallerFile(_Strict):
    caller: CallerScript
    operators: list[OperatorScript] = Field(default_factory=list)


def load_caller_file(path: Path) -> CallerFile:
    """Raises `YamlSyntaxError` (unsafe or malformed YAML, with file:line) or `ValidationError`."""
    from switchboard.flows.loader import read_text_limited, safe_load

    data = safe_load(read_text_limited(path), str(path)) or {}
    if not isinstance(data, dict):
        data = {"caller": data}
    if "caller" not in data:
        data = {"caller": data}
    return CallerFile.model_validate(data)
