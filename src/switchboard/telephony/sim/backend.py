"""The simulator as a telephony backend: numbers map to caller scripts (unknown numbers get a
default script), and a scripted stream of inbound callers can ring our lines."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from switchboard.telephony.backend import DialResult, InboundHandler
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerScript

if TYPE_CHECKING:
    from switchboard.settings import Settings
    from switchboard.speech.service import SpeechService
    from switchboard.telephony.registry import BackendDeps
    from switchboard.telephony.sim.voice import CallerVoices
    from switchboard.voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)


@dataclass
class SimBackend:
    network: SimNetwork
    scripts: dict[str, CallerScript] = field(default_factory=dict)
    # Script for a number with no script of its own; gets the originate variables (the scenario).
    default_script: Callable[[str, dict[str, str]], CallerScript] = \
        lambda number, variables: CallerScript(phone=number)
    inbound_callers: list[tuple[float, CallerScript, str]] = field(default_factory=list)  # (at, script, line)
    name: str = "sim"
    dialed: list[dict[str, str]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def from_deps(cls, deps: BackendDeps) -> SimBackend:
        """The demo's network: demo contacts behave as generated; any other number (imported
        contacts, an external panel's batch) gets a behaviour derived from the number, so runs are
        repeatable. Audio mode when the voice layer was built (SIM_AUDIO)."""
        from switchboard.demo import demo_contact_for
        from switchboard.phones import try_normalize

        settings = deps.settings
        network = build_network(settings, speech=deps.speech, voice=deps.voice)
        people = {}
        for p in deps.demo:
            parsed = try_normalize(p.phone, settings.default_region)
            people[parsed.e164 if parsed else p.phone] = p
        registry = deps.scenarios

        def script(number: str, variables: dict[str, str]) -> CallerScript:
            person = people.get(number) or demo_contact_for(number)
            scenario = registry.get(variables.get("SWITCHBOARD_SCENARIO", "")) if registry else None
            language = (scenario.spec.stt.language or scenario.spec.language) if scenario else None
            return person.script(language)

        return cls(network=network, default_script=script)

    def script_for(self, number: str, variables: dict[str, str] | None = None) -> CallerScript:
        script = self.scripts.get(number)
        if script is None:
            script = self.default_script(number, variables or {})
        return script if script.phone == number else script.model_copy(update={"phone": number})

    async def start(self, on_inbound: InboundHandler) -> None:
        for at, script, line in self.inbound_callers:
            task = asyncio.create_task(self._ring_later(at, script, line, on_inbound))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ring_later(self, at: float, script: CallerScript, line: str, on_inbound: InboundHandler) -> None:
        await asyncio.sleep(at)
        await on_inbound(self.network.inbound(script, line=line))

    async def originate(self, *, number: str, dial_string: str, line_number: str, caller_id: str,
                        timeout: float, variables: dict[str, str] | None = None) -> DialResult:
        self.dialed.append({"number": number, "dial_string": dial_string, "line": line_number,
                            "caller_id": caller_id})
        outcome, call = await self.network.dial(self.script_for(number, variables), line=line_number,
                                                timeout=timeout)
        return DialResult(outcome, call, outcome.value)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def build_caller_voices(speech: SpeechService) -> CallerVoices:
    """English callers speak with Piper (Whisper and Moonshine hear it well); others with the
    configured TTS."""
    from switchboard.speech.tts.piper import PiperTTS
    from switchboard.telephony.sim.voice import CallerVoices

    return CallerVoices(voices={"en": PiperTTS(), "*": speech.tts})


def build_network(settings: Settings, *, speech: SpeechService | None = None,
                  voice: VoiceRuntime | None = None) -> SimNetwork:
    """Text mode without speech; audio mode (callers speak, the voice layer listens) with both."""
    audio = speech is not None and voice is not None
    return SimNetwork(origination_timeout=float(settings.origination_timeout), voice=voice if audio else None,
                      caller_voices=build_caller_voices(speech) if audio and speech is not None else None)
