"""A Twilio call's media stream as a streamed leg: the voice layer (`VoiceSession` turn-taking,
`StreamingCall`) on a `TwilioMediaPort`. One per stream; a call that comes back from a `<Dial>`
nobody answered gets a new one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.telephony.call import TransferResult
from switchboard.telephony.twilio.call import LegFactory, TwilioCall
from switchboard.telephony.twilio.media import TwilioMediaPort
from switchboard.voice.call import StreamingCall

if TYPE_CHECKING:
    from switchboard.settings import Settings
    from switchboard.speech.service import SpeechService


class _Control:
    """The leg's signalling is the Twilio call's (REST); transfers never reach a leg."""

    def __init__(self, call: TwilioCall) -> None:
        self.call = call

    async def answer(self) -> None:
        return None

    async def hangup(self, cause: str) -> None:
        await self.call.hangup(cause)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float) -> TransferResult:
        return await self.call.transfer(operator_number, caller_id=caller_id, timeout=timeout)


@dataclass
class MediaLeg:
    call: StreamingCall
    port: TwilioMediaPort

    async def run(self) -> None:
        await self.port.run()

    async def close(self) -> None:
        await self.call.session.close("stream_closed")


def voice_leg_factory(settings: Settings, speech: SpeechService) -> LegFactory:
    """Legs that share the process's VAD batch, pacer, prompt library and recordings keeper."""
    from switchboard.speech.vad.batch import SileroBatch
    from switchboard.speech.vad.endpointer import EndpointSettings
    from switchboard.voice.pacing import Pacer
    from switchboard.voice.prompts import PromptLibrary
    from switchboard.voice.recordings import RecordingKeeper
    from switchboard.voice.session import VoiceSession

    vad = SileroBatch(settings=EndpointSettings(min_speech=settings.vad_min_speech, end_silence=settings.vad_end_silence))
    pacer = Pacer()
    prompts = PromptLibrary(settings.prompts_wav_dir)
    recordings = RecordingKeeper(settings.recordings_dir)

    def stream_speech(text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
        return speech.stream(text, language=language, voice=voice)

    async def make(port: TwilioMediaPort, call: TwilioCall) -> MediaLeg:
        session = VoiceSession(port, vad=vad.open(port.sample_rate), pacer=pacer, prompts=prompts,
                               speech=stream_speech)
        streaming = StreamingCall(session, _Control(call), call_id=call.call_id, direction=call.direction,
                                  remote_number=call.remote_number, line_number=call.line_number,
                                  recordings=recordings)
        return MediaLeg(streaming, port)

    return make  # type: ignore[return-value]
