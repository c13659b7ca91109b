"""Telephony backends by name (`TELEPHONY_BACKEND`), as `speech.registry` does for providers.

Each entry is a factory from `BackendDeps` (what the composition root built once) to a
`TelephonyBackend`, plus what the composition root must know about it without comparing names:
whether it is the simulated network (the quick-start demo runs on it, on a virtual clock) and what
it must do before the first call. Adding a backend is one module plus one entry here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from switchboard.flows.registry import ScenarioRegistry
    from switchboard.settings import Settings
    from switchboard.speech.service import SpeechService
    from switchboard.telephony.backend import TelephonyBackend
    from switchboard.voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)


class BackendStartError(Exception):
    """A backend cannot start (a clear message for the operator, e.g. prompt folder permissions)."""


@dataclass(slots=True)
class BackendDeps:
    """Everything a backend factory may use; built once in `app.py`."""

    settings: Settings
    speech: SpeechService | None = None
    voice: VoiceRuntime | None = None
    scenarios: ScenarioRegistry | None = None
    demo: list[Any] = field(default_factory=list)  # the demo's generated contacts (simulator only)


BackendFactory = Callable[[BackendDeps], "TelephonyBackend"]
Prepare = Callable[[BackendDeps], Awaitable[None]]
Configure = Callable[["Settings"], "Settings"]
Routes = Callable[[Any], "APIRouter"]


@dataclass(frozen=True, slots=True)
class BackendSpec:
    factory: BackendFactory
    simulated: bool = False  # the simulated phone network: `switchboard run` plays the demo campaign
    prepare: Prepare | None = None  # start-up work before the first call (raises BackendStartError)
    # Checks the backend's settings before anything is built and returns them with what the backend
    # implies filled in (Twilio: its numbers are the outbound lines); raises BackendStartError.
    configure: Configure | None = None
    # The routes the backend serves on the panel's server (Twilio's webhooks and media WebSocket):
    # one public URL fronts everything; they authenticate on their own, not with the panel's token.
    routes: Routes | None = None


# --- the built-in backends ---------------------------------------------------------------------------

def _sim(deps: BackendDeps) -> TelephonyBackend:
    from switchboard.telephony.sim.backend import SimBackend

    return SimBackend.from_deps(deps)


def _asterisk(deps: BackendDeps) -> TelephonyBackend:
    from switchboard.telephony.asterisk.backend import AsteriskBackend

    speech = deps.speech

    async def synthesize(text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
        if speech is None:
            raise RuntimeError("the Asterisk backend speaks text through TTS: build it with speech")
        return await speech.synthesize(text, language=language, voice=voice)

    # converse steps stream over externalMedia on the shared voice layer: VAD endpointing, TTS sent
    # as it is synthesized, barge-in.
    return AsteriskBackend.from_settings(deps.settings, synthesize=synthesize, voice=deps.voice)


async def _asterisk_prompts(deps: BackendDeps) -> None:
    """PROMPTS_SYNC_ON_START: build and sync the prompt files, render the scenarios' `tts:` prompts."""
    settings = deps.settings
    if not settings.prompts_sync_on_start:
        return
    from switchboard.telephony.asterisk.prompts import PromptPermissionError, prepare_prompts

    speech = deps.speech
    synthesize = None
    if speech is not None:
        async def synthesize(text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
            return await speech.synthesize(text, language=language, voice=voice)
    try:
        await prepare_prompts(settings, synthesize=synthesize,
                              scenarios=deps.scenarios.all() if deps.scenarios is not None else ())
    except PromptPermissionError as exc:
        raise BackendStartError(str(exc)) from exc


def _twilio(deps: BackendDeps) -> TelephonyBackend:
    from switchboard.telephony.twilio.backend import TwilioBackend

    return TwilioBackend.from_deps(deps)


def _twilio_configure(settings: Settings) -> Settings:
    from switchboard.telephony.twilio.backend import configure

    return configure(settings)


async def _twilio_prompts(deps: BackendDeps) -> None:
    from switchboard.telephony.twilio.backend import build_stream_prompts

    await build_stream_prompts(deps.settings)


def _twilio_routes(backend: Any) -> APIRouter:
    return backend.router()


BACKENDS: dict[str, BackendSpec] = {
    "sim": BackendSpec(_sim, simulated=True),
    "asterisk": BackendSpec(_asterisk, prepare=_asterisk_prompts),
    "twilio": BackendSpec(_twilio, prepare=_twilio_prompts, configure=_twilio_configure, routes=_twilio_routes),
}


def register_backend(name: str, spec: BackendSpec) -> None:
    BACKENDS[name.lower()] = spec


def backend_spec(name: str) -> BackendSpec:
    spec = BACKENDS.get(name.lower())
    if spec is None:
        raise ValueError(f"TELEPHONY_BACKEND={name!r} is not available; choose one of {', '.join(sorted(BACKENDS))}")
    return spec


def build_backend(name: str, deps: BackendDeps) -> TelephonyBackend:
    return backend_spec(name).factory(deps)


__all__ = ["BACKENDS", "BackendDeps", "BackendSpec", "BackendStartError", "backend_spec", "build_backend",
           "register_backend"]
