"""A Twilio call's media stream as a streamed leg: the voice layer (`VoiceSession` turn-taking,
`StreamingCall`) on a `TwilioMediaPort`, built from the process's one `VoiceRuntime` (one batched
VAD, one pacer, the prompt files, the TTS stream). One leg per stream; a call that comes back from
a `<Dial>` nobody answered gets a new one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.telephony.call import TransferResult
from switchboard.telephony.twilio.call import LegFactory, TwilioCall
from switchboard.telephony.twilio.media import TwilioMediaPort
from switchboard.voice.call import StreamingCall

if TYPE_CHECKING:
    from switchboard.voice.runtime import VoiceRuntime


class _Control:
    """The leg's signalling is the Twilio call's (REST and webhooks), which outlives any one stream."""

    def __init__(self, call: TwilioCall) -> None:
        self.call = call

    async def answer(self) -> None:
        return None

    async def hangup(self, cause: str) -> None:
        await self.call.hangup(cause)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float) -> TransferResult:
        return await self.call.transfer(operator_number, caller_id=caller_id, timeout=timeout)

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        return await self.call.wait_for_hangup(timeout)


@dataclass
class MediaLeg:
    call: StreamingCall
    port: TwilioMediaPort

    async def run(self) -> None:
        await self.port.run()

    async def close(self) -> None:
        await self.call.session.close("stream_closed")


def voice_leg_factory(voice: VoiceRuntime) -> LegFactory:
    """Legs on the shared voice runtime: nothing heavy is built per call or per stream."""

    async def make(port: TwilioMediaPort, call: TwilioCall) -> MediaLeg:
        streaming = voice.call(port, _Control(call), call_id=call.call_id, direction=call.direction,
                               remote_number=call.remote_number, line_number=call.line_number)
        return MediaLeg(streaming, port)

    return make  # type: ignore[return-value]
