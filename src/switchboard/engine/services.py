"""What steps may use beyond the call itself. The composition root (`app.py`) fills this in; the
engine only sees these protocols, so a step never knows which provider or store is behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from switchboard.engine.callbacks import CallbackScheduler
from switchboard.engine.operators import OperatorPool
from switchboard.speech.base import Transcript
from switchboard.telephony.call import Audio


class Transcriber(Protocol):
    async def transcribe(self, audio: Audio, *, language: str | None = None,
                         hotwords: list[str] | None = None, name: str | None = None) -> Transcript: ...


@dataclass(slots=True)
class IntentDecision:
    intent: str
    path: str  # llm | fallback | timeout | error
    latency: float = 0.0
    raw: str | None = None


class IntentClassifier(Protocol):
    async def classify(self, transcript: str, *, prompt_template: str, categories: list[str],
                       fallback_tokens: dict[str, list[str]], examples: dict[str, Any] | None = None,
                       timeout: float | None = None, model: str | None = None) -> IntentDecision: ...


class TokenIntentClassifier:
    """The no-LLM classifier: the scenario's fallback tokens, matched as words after normalisation."""

    async def classify(self, transcript: str, *, prompt_template: str, categories: list[str],
                       fallback_tokens: dict[str, list[str]], examples: dict[str, Any] | None = None,
                       timeout: float | None = None, model: str | None = None) -> IntentDecision:
        from switchboard.brain.fallback import classify_by_tokens

        return IntentDecision(classify_by_tokens(transcript, fallback_tokens, categories), "fallback")


@dataclass(slots=True)
class EngineServices:
    operators: OperatorPool = field(default_factory=OperatorPool)
    transcriber: Transcriber | None = None
    intents: IntentClassifier = field(default_factory=TokenIntentClassifier)
    # Extra named services for plug-in steps (e.g. "conversation" for `converse`).
    extras: dict[str, Any] = field(default_factory=dict)
    add_to_dnc: Callable[[str, str], Awaitable[None]] | None = None
    callbacks: CallbackScheduler | None = None  # where schedule_callback steps book call backs
    on_provider_failure: Callable[[str, str], Awaitable[None]] | None = None
    on_provider_success: Callable[[], Awaitable[None]] | None = None
    operator_timeout: float = 30.0
    operator_caller_id: str = ""
    max_steps: int = 200
    step_observer: Callable[[str], None] | None = None  # called as each step starts (benchmarks)
    default_language: str | None = None
