"""Twilio's side of a Media Stream, over a real WebSocket: what Twilio sends and how it plays.

`TwilioMediaCaller` connects to our `WS …/twilio/media` like Twilio does and speaks the documented
messages (`connected`, `start` with `customParameters`, `media` every 20 ms on an absolute schedule,
`dtmf`, `stop`). It plays the agent's `media` the way Twilio does: into a playout buffer at 8 kHz,
echoing each `mark` when the audio queued before it has played, and on `clear` dropping what is
still buffered and echoing the marks that were in it. It records when each agent frame arrived
and when it would have been played, so tests and the benchmark see what a caller would hear.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from switchboard.speech.audio import pcm16_to_ulaw, ulaw_to_pcm16

FRAME = 0.02


@dataclass
class Heard:
    arrived: float  # loop time the agent's frame arrived
    pcm: bytes


@dataclass
class TwilioMediaCaller:
    url: str
    call_sid: str = "CA00000000000000000000000000000001"
    stream_sid: str = "MZ00000000000000000000000000000001"
    account_sid: str = "AC00000000000000000000000000000001"
    parameters: dict[str, str] = field(default_factory=dict)
    heard: list[Heard] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    marks_sent_back: list[str] = field(default_factory=list)
    ws: object = None
    _seq: int = 0
    _chunk: int = 0
    _t0: float = 0.0
    _buffer: deque = field(default_factory=deque)  # frames (and ("mark", name)) not played yet
    _playing_until: float = 0.0
    _player: asyncio.Task | None = None
    _reader: asyncio.Task | None = None
    closed_by_server: asyncio.Event = field(default_factory=asyncio.Event)
    on_agent_frame: object = None  # called with the arrival time of each agent frame (benchmarks)

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def connect(self) -> None:
        import websockets

        self.ws = await websockets.connect(self.url, max_size=2 ** 20, compression=None)
        self._t0 = asyncio.get_running_loop().time()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({
            "event": "start", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
            "start": {"accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
                      "tracks": ["inbound"], "customParameters": dict(self.parameters),
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        self._reader = asyncio.ensure_future(self._read())
        self._player = asyncio.ensure_future(self._play())

    async def _send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))  # type: ignore[attr-defined]

    async def send_frame(self, pcm: bytes) -> None:
        """One 20 ms frame of the caller's voice (PCM16 8 kHz) as a `media` message."""
        self._chunk += 1
        ms = int((asyncio.get_running_loop().time() - self._t0) * 1000)
        await self._send({"event": "media", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                          "media": {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(ms),
                                    "payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode()}})

    async def speak(self, pcm: bytes, *, start: float | None = None) -> None:
        """Send `pcm` (8 kHz) as 20 ms frames on an absolute real-time schedule."""
        loop = asyncio.get_running_loop()
        t0 = loop.time() if start is None else start
        size = 320
        for n, i in enumerate(range(0, len(pcm), size)):
            frame = pcm[i:i + size]
            frame += b"\x00" * (size - len(frame))
            await asyncio.sleep(max(0.0, t0 + n * FRAME - loop.time()))
            await self.send_frame(frame)

    async def silence(self, seconds: float) -> None:
        await self.speak(b"\x00\x00" * int(8000 * seconds))

    async def press(self, digit: str) -> None:
        await self._send({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._next_seq(),
                          "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        """The caller hangs up: Twilio sends `stop` and closes the socket."""
        await self._send({"event": "stop", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                          "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
        await self.close()

    async def close(self) -> None:
        for task in (self._reader, self._player):
            if task is not None:
                task.cancel()
        if self.ws is not None:
            await self.ws.close()  # type: ignore[attr-defined]

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for text in self.ws:  # type: ignore[attr-defined]
                message = json.loads(text)
                event = message["event"]
                assert message["streamSid"] == self.stream_sid, message
                if event == "media":
                    pcm = ulaw_to_pcm16(base64.b64decode(message["media"]["payload"]))
                    self.heard.append(Heard(loop.time(), pcm))
                    if callable(self.on_agent_frame):
                        self.on_agent_frame(loop.time())
                    self._buffer.append(pcm)
                elif event == "mark":
                    self._buffer.append(("mark", message["mark"]["name"]))
                elif event == "clear":
                    self.clears.append(loop.time())
                    marks = [item[1] for item in self._buffer if isinstance(item, tuple)]
                    self._buffer.clear()
                    for name in marks:  # Twilio echoes the marks a clear dropped
                        await self._echo(name)
                else:
                    raise AssertionError(f"unexpected message from the server: {message}")
        except Exception:
            pass
        finally:
            self.closed_by_server.set()

    async def _echo(self, name: str) -> None:
        self.marks_sent_back.append(name)
        await self._send({"event": "mark", "sequenceNumber": self._next_seq(), "streamSid": self.stream_sid,
                          "mark": {"name": name}})

    async def _play(self) -> None:
        """Twilio's playout: one buffered frame per 20 ms; a mark is echoed when reached."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            if not self._buffer:
                await asyncio.sleep(0.005)
                due = loop.time()
                continue
            item = self._buffer.popleft()
            if isinstance(item, tuple):
                await self._echo(item[1])
                continue
            due += FRAME
            await asyncio.sleep(max(0.0, due - loop.time()))

    def agent_audio(self) -> bytes:
        return b"".join(h.pcm for h in self.heard)


def loud_frames(pcm: bytes, threshold: float = 500.0) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    return np.sqrt((frames ** 2).mean(axis=1)) > threshold


def now() -> float:
    return time.perf_counter()
