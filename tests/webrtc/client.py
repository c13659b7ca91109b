"""A browser stand-in in Python: a real WebRTC peer (aiortc: ICE, DTLS, SRTP, Opus, SCTP) that does
what the /call page does — offers audio and a `switchboard` data channel, plays a caller's audio
in real time, records what the agent sends back and every event on the channel.

Chromium drives the page in the end-to-end tests; this peer drives the transport where a test needs
exact control (when speech ends, cutting the network without a goodbye, many calls at once) and the
latency benchmark. Its receiver hands each agent packet to the decoder as it arrives (the server's
`PacketBuffer`), so `received` times arrival at the page, not aiortc's 80 ms prefetch; a real page
adds its own playout buffer (Chromium's NetEq) on top, as a phone adds one after Twilio or Asterisk.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections import deque
from typing import Any

import av
import httpx
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from switchboard.telephony.webrtc.jitter import release_packets_at_once

RATE = 48000
FRAME = 960  # 20 ms at 48 kHz
LOUD = 0.01
SOUND = 0.001  # -60 dBFS: any agent audio at all (the agent's track idles on digital silence)


class CallerTrack(MediaStreamTrack):
    """The caller's microphone: queued PCM (48 kHz mono) played in real time, silence otherwise."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[bytes] = deque()
        self._start: float | None = None
        self._pts = 0
        self.speech_started_at: float | None = None  # monotonic time the first frame of an utterance was sent
        self.speech_ended_at: float | None = None  # monotonic time the last queued frame was sent (its start)
        self.muted = False  # True: send nothing at all (a dead network, as seen from the server)

    def say(self, pcm48k: bytes) -> None:
        self.speech_started_at = None
        self.speech_ended_at = None
        size = FRAME * 2
        pcm48k += b"\x00" * (-len(pcm48k) % size)
        for i in range(0, len(pcm48k), size):
            self._queue.append(pcm48k[i:i + size])

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        while self.muted:
            await asyncio.sleep(0.02)
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self._pts / RATE
            if due > now:
                await asyncio.sleep(due - now)
        if self._queue:
            pcm = self._queue.popleft()
            if self.speech_started_at is None:
                self.speech_started_at = time.monotonic()
            if not self._queue:
                self.speech_ended_at = time.monotonic()
        else:
            pcm = b"\x00" * (FRAME * 2)
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(pcm)
        frame.pts = self._pts
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME
        return frame


class BrowserPeer:
    """One call from the "browser": `await peer.call(base_url, token)` then talk and listen."""

    def __init__(self, on_frame: Any = None) -> None:
        self.on_frame = on_frame  # optional callback(monotonic time, RMS) per 20 ms received
        self.pc = RTCPeerConnection()
        self.mic = CallerTrack()
        self.pc.addTrack(self.mic)
        release_packets_at_once(self.pc.getTransceivers()[0].receiver)
        self.channel = self.pc.createDataChannel("switchboard")
        self.events: list[dict[str, Any]] = []
        self.event = asyncio.Event()
        self.call_id: str | None = None
        self.received: list[tuple[float, float]] = []  # (monotonic time, RMS 0..1) per 20 ms received
        self.first_loud_at: float | None = None
        self._reader: asyncio.Task[None] | None = None
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str) -> None:
        self.events.append(json.loads(message))
        self.event.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = frame.to_ndarray().astype(np.float32) / 32768.0
            rms = float(np.sqrt(np.mean(samples * samples)))
            now = time.monotonic()
            self.received.append((now, rms))
            if self.on_frame is not None:
                self.on_frame(now, rms)
            if rms > LOUD and self.first_loud_at is None:
                self.first_loud_at = now

    async def offer(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription

    async def call(self, http: httpx.AsyncClient, token: str) -> dict[str, Any]:
        offer = await self.offer()
        resp = await http.post("/api/v1/webrtc/offer", json={"token": token, "sdp": offer.sdp, "type": offer.type})
        resp.raise_for_status()
        answer = resp.json()
        self.call_id = answer["call_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        return answer

    async def wait_open(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.channel.readyState != "open":
            if time.monotonic() > deadline:
                raise TimeoutError("the data channel did not open")
            await asyncio.sleep(0.02)

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def wait_event(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if predicate(ev):
                    return ev
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event in {timeout} s; got {self.events}")
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), remaining)
            except TimeoutError:
                pass

    def loud_seconds(self, since: float = 0.0) -> float:
        return sum(0.02 for t, rms in self.received if t >= since and rms > LOUD)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


def pcm48k(samples_16bit: np.ndarray, rate: int) -> bytes:
    """Mono int16 samples at `rate` -> 48 kHz PCM16 for `CallerTrack.say`."""
    import soxr

    out = soxr.resample(samples_16bit.astype(np.float32) / 32768.0, rate, RATE)
    return (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes()
