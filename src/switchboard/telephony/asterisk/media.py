"""The streaming side of a call: caller audio in and agent audio out through an ARI externalMedia
channel that sits in the call's bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from switchboard.telephony.asterisk.rtp import RtpEndpoint

if TYPE_CHECKING:
    from switchboard.telephony.asterisk.session import AriCall


class MediaStream:
    """Bidirectional audio of a call through an externalMedia channel in its bridge."""

    def __init__(self, call: AriCall, channel_id: str, endpoint: RtpEndpoint) -> None:
        self.call = call
        self.channel_id = channel_id
        self.endpoint = endpoint
        self.sample_rate = endpoint.fmt.sample_rate

    def frames(self) -> AsyncIterator[bytes]:
        """Caller audio as PCM16 frames of 20 ms at `sample_rate`."""
        return self.endpoint.frames()

    def send(self, pcm: bytes) -> None:
        """Queue agent audio (PCM16 at `sample_rate`); it goes out paced at 20 ms per packet."""
        self.endpoint.send(pcm)

    def clear(self) -> int:
        """Barge-in: drop agent audio not yet sent."""
        return self.endpoint.clear()

    async def drain(self) -> None:
        await self.endpoint.drain()

    async def close(self) -> None:
        self.endpoint.close()
        await self.call._drop_leg(self.channel_id)
