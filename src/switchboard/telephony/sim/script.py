"""Caller scripts: how a simulated contact behaves (answer or not, what they say, when they hang up)
and how simulated operators behave."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnswerAfter(_Strict):
    after_seconds: float = Field(ge=0)


class Reply(_Strict):
    """One turn of the caller: say something, stay silent, press keys, or hang up."""

    say: str | None = None
    silence: bool = False
    dtmf: str | None = None
    hangup: bool = False
    delay: float = Field(0.3, ge=0, description="seconds before the caller starts speaking")
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
    replies: list[Reply] = Field(default_factory=list)
    hangup_after: float | None = Field(None, gt=0, description="seconds after answer")
    talk_seconds: float = Field(20, gt=0, description="time spent with an operator before hanging up")
    language: str | None = Field(None, description="language the caller speaks (audio mode)")
    voice: str | None = None
    noise_snr_db: float | None = Field(None, description="add noise at this SNR (audio mode)")

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
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "caller" not in data:
        data = {"caller": data}
    return CallerFile.model_validate(data)
