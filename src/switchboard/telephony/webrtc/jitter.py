"""The caller's Opus packets go to the decoder as they arrive, not four packets later.

aiortc's `RTCRtpReceiver` puts every audio packet through a `JitterBuffer(capacity=16, prefetch=4)`
built for video: a frame leaves only once four later frames have arrived, so the caller's audio
reaches the voice layer 80 ms late — and the end of their speech with it, which every turn waits
for. An Opus packet is a whole 20 ms frame and the voice layer needs no playout schedule (the VAD
counts audio, not wall time; a lost packet may simply be skipped, see `voice.port`), so
`PacketBuffer` hands each packet over at once, in order: a duplicate or one older than the last
released (reordered on the way) is dropped rather than waited for.

aiortc offers no setting for this, so `release_packets_at_once` replaces the receiver's buffer
(a private attribute); if an aiortc release renames it, the default buffer stays and a warning
says so — calls still work, only 80 ms slower.
"""

from __future__ import annotations

import logging

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

MAX_MISORDER = 100  # further back than this is a new sequence (the sender restarted), not a late packet
_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"


class PacketBuffer:
    """`JitterBuffer`'s interface for single-packet audio frames: each one out as it comes in."""

    capacity = 16

    def __init__(self) -> None:
        self._last: int | None = None  # sequence number of the last packet handed over
        self.dropped = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last is not None:
            behind = (self._last - seq) & 0xFFFF  # 0: duplicate; 1..: older than the last one out
            if behind < MAX_MISORDER:
                self.dropped += 1
                return False, None
        self._last = seq
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def release_packets_at_once(receiver: RTCRtpReceiver) -> bool:
    """Give an audio receiver a `PacketBuffer`; False (and the default buffer) if aiortc changed."""
    if not isinstance(getattr(receiver, _ATTRIBUTE, None), JitterBuffer):
        log.warning("webrtc: aiortc's receiver has no jitter buffer where expected; caller audio keeps "
                    "its 80 ms prefetch")
        return False
    setattr(receiver, _ATTRIBUTE, PacketBuffer())
    return True
