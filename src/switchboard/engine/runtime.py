"""What a running step sees: the call, its context, the scenario and the services, plus the few
helpers several steps share (capturing a reply, resolving prompts, filling templates)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from switchboard.engine.context import CallContext
from switchboard.engine.services import EngineServices
from switchboard.flows.schema import Flow, Scenario
from switchboard.speech.base import EmptyAudio, ProviderFailure
from switchboard.telephony.call import Call


class CaptureEmpty(Exception):
    """The caller said nothing usable."""


class CaptureFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")
MAX_FILLED = 4000  # characters a filled template may reach (TTS text, reasons)


def fill_template(text: str, values: dict[str, Any]) -> str:
    """`{name}` and `{a.b}` (into nested mappings) replaced by their values; `{{`/`}}` are braces.

    Deliberately not `str.format`: contact attributes and caller words flow into these values, and
    format specs (`{x:>999999999}`) or attribute access (`{x.__class__}`) must not be reachable from
    a template. Anything that is not a known placeholder stays as written."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        value: Any = values
        for part in match.group(1).split("."):
            if not isinstance(value, dict) or part not in value:
                return token
            value = value[part]
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(one, text)[:MAX_FILLED]


@dataclass(slots=True)
class StepRuntime:
    call: Call
    ctx: CallContext
    scenario: Scenario
    flow: Flow
    services: EngineServices

    def prompt_ref(self, name: str) -> str:
        """A prompt name from `scenario.prompts`, or a literal reference such as `sound:custom/x`."""
        return self.scenario.spec.prompts.get(name, name)

    def fill(self, text: str) -> str:
        return fill_template(text, self.ctx.template_values())

    @property
    def language(self) -> str | None:
        spec = self.scenario.spec
        return spec.stt.language or spec.language or self.services.default_language

    async def capture(self, *, max_duration: float | None = None, max_silence: float | None = None,
                      terminate_on: str = "", step: str | None = None) -> str:
        """Listen for one reply and return its transcript (raises CaptureEmpty / CaptureFailed)."""
        stt = self.scenario.spec.stt
        recording = await self.call.record(max_duration=max_duration or stt.max_duration,
                                           max_silence=max_silence or stt.max_silence,
                                           terminate_on=terminate_on)
        if recording.path:
            self.ctx.recordings.append(recording.path)
        if recording.dtmf:
            self.ctx.variables["dtmf"] = recording.dtmf
        if recording.text is not None:
            text, confidence, latency, language = recording.text, recording.confidence, 0.0, recording.language
        elif recording.audio is not None and recording.audio.pcm:
            if self.services.transcriber is None:
                raise CaptureFailed("no_stt_configured")
            try:
                name = f"{self.ctx.call_id}-{step or 'capture'}-{len(self.ctx.transcripts)}"
                tr = await self.services.transcriber.transcribe(recording.audio, language=self.language,
                                                               hotwords=stt.hotwords, name=name)
            except EmptyAudio:
                raise CaptureEmpty() from None
            except ProviderFailure as exc:
                if self.services.on_provider_failure:
                    await self.services.on_provider_failure(exc.provider, exc.reason)
                raise CaptureFailed(f"stt_{exc.reason}") from exc
            if self.services.on_provider_success:
                await self.services.on_provider_success()
            text, confidence, latency, language = tr.text, tr.confidence, tr.latency, tr.language
        else:
            text, confidence, latency, language = "", None, 0.0, None
        if not text.strip() and not recording.dtmf:
            self.ctx.log("capture_empty", step=step)
            raise CaptureEmpty()
        entry: dict[str, Any] = {"step": step, "text": text.strip(), "at": self.ctx.elapsed()}
        if confidence is not None:
            entry["confidence"] = confidence
        if language:
            entry["language"] = language
        if latency:
            entry["stt_latency"] = round(latency, 3)
        self.ctx.transcripts.append(entry)
        self.ctx.log("transcript", step=step, text=entry["text"])
        return entry["text"]
