"""`WebRTCPort`: the voice layer's `AudioPort` over one browser peer connection.

Inbound, one task per call reads the caller's decoded track (`CallerAudio`) and pushes each 20 ms
frame into the session's sink; when the track ends (the browser closed the connection) or the
browser goes quiet for longer than the media timeout, the port reports the hang-up once. Outbound,
`send`/`mark`/`clear` go straight to the `AgentTrack` aiortc pulls from.

The peer connection itself belongs to the backend: it closes it once the page has been told how
the call ended (the session closing the port only stops the audio).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from aiortc import MediaStreamTrack

from switchboard.telephony.webrtc.media import AgentTrack, CallerAudio
from switchboard.voice.port import AudioPort

log = logging.getLogger(__name__)

DTMF_KEYS = frozenset("0123456789*#ABCD")


class WebRTCPort(AudioPort):
    def __init__(self, sample_rate: int, *, media_timeout: float = 8.0) -> None:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"WEBRTC_SAMPLE_RATE must be 8000 or 16000 (the VAD's rates), not {sample_rate}")
        self.sample_rate = sample_rate
        self.media_timeout = media_timeout
        self.track = AgentTrack(sample_rate, on_played=self._played)
        self.caller: CallerAudio | None = None
        self.hangup_cause: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.frames_in = 0

    def _played(self, token: int) -> None:
        self.sink.on_played(token)

    # --- inbound ----------------------------------------------------------------------------------
    def receive(self, track: MediaStreamTrack) -> None:
        """The caller's audio track arrived: start reading it (once; a second track is ignored)."""
        if self.caller is not None or self._closed:
            return
        self.caller = CallerAudio(track, self.sample_rate)
        self._spawn(self._pump(self.caller))
        self._spawn(self._watch(self.caller))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pump(self, caller: CallerAudio) -> None:
        async for frame in caller.frames():
            self.frames_in += 1
            self.sink.on_frame(frame)
        self.hangup("connection_lost")

    async def _watch(self, caller: CallerAudio) -> None:
        """A browser sends audio packets all the time (silence too): none for `media_timeout`
        means the tab, the network or the machine is gone, well before ICE consent would expire."""
        started = time.monotonic()
        while self.hangup_cause is None:
            last = caller.last_frame_at or started
            remaining = last + self.media_timeout - time.monotonic()
            if remaining <= 0:
                log.info("webrtc: no caller audio for %.1f s: connection lost", self.media_timeout)
                self.hangup("connection_lost")
                return
            await asyncio.sleep(min(remaining + 0.05, 1.0))

    def dtmf(self, digit: str) -> bool:
        """A key pressed on the page's keypad; False for anything that is not a DTMF key."""
        if len(digit) != 1 or digit not in DTMF_KEYS or self.hangup_cause is not None:
            return False
        self.sink.on_dtmf(digit)
        return True

    def hangup(self, cause: str) -> None:
        """The caller is gone (or hung up); reported to the sink once."""
        if self.hangup_cause is not None:
            return
        self.hangup_cause = cause
        self.track.clear()
        self.sink.on_hangup(cause)

    # --- outbound ---------------------------------------------------------------------------------
    def send(self, pcm: bytes) -> None:
        if not self._closed:
            self.track.send(pcm)

    def mark(self, token: int) -> None:
        if self._closed:
            self.played_now(token)
        else:
            self.track.mark(token)

    def clear(self) -> None:
        self.track.clear()

    async def close(self) -> None:
        """Stop the audio both ways and the reading tasks; idempotent. (The backend closes the
        peer connection right after, once the page has the call's result.)"""
        if self._closed:
            return
        self._closed = True
        self.track.stop()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
