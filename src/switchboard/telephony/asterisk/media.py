"""The audio of a call through an ARI externalMedia channel in its bridge, as an `AudioPort`.

Caller frames come from the channel's RTP (`RtpEndpoint`), keys and the hang-up from the call's
signalling (`AriCall`'s public listeners); agent frames go back as RTP the moment the voice layer
hands them over (it paces them). RTP cannot tell when the far end has played a frame, so a mark is
reached as it is sent (the voice layer also waits out its own playout schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from switchboard.telephony.asterisk.rtp import RtpEndpoint
from switchboard.telephony.call import HangupSignal
from switchboard.voice.port import AudioPort, AudioSink


class MediaSignals(Protocol):
    """What the port needs from the call's signalling (`AriCall` provides it)."""

    hangup_signal: HangupSignal

    def add_dtmf_listener(self, listener: Callable[[str], None]) -> Callable[[], None]: ...

    async def drop_leg(self, channel_id: str) -> None: ...


class AriMediaPort(AudioPort):
    def __init__(self, call: MediaSignals, channel_id: str, endpoint: RtpEndpoint) -> None:
        self.call = call
        self.channel_id = channel_id
        self.endpoint = endpoint
        self.sample_rate = endpoint.fmt.sample_rate
        self._unsubscribe: list[Callable[[], None]] = []
        self._closed = False

    def attach(self, sink: AudioSink) -> None:
        super().attach(sink)
        self.endpoint.on_frame = sink.on_frame
        self._unsubscribe.append(self.call.add_dtmf_listener(sink.on_dtmf))
        self._unsubscribe.append(self.call.hangup_signal.subscribe(sink.on_hangup))

    def send(self, pcm: bytes) -> None:
        self.endpoint.send(pcm)

    def mark(self, token: int) -> None:
        self.endpoint.end_talkspurt()  # the session marks the end of each playback
        self.played_now(token)

    def clear(self) -> None:
        pass  # nothing is queued here: frames leave as they are due

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.endpoint.on_frame = lambda pcm: None
        self.endpoint.close()
        await self.call.drop_leg(self.channel_id)
