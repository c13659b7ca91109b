"""A stand-in for the voice layer on the Media Streams wire, for the control-plane tests (signatures,
originate, status callbacks, transfers, AMD): `play`/`speak` send one tone second of μ-law and wait
for Twilio's `mark`; `record` returns the caller's DTMF. Real turn-taking is tested end to end with
the voice layer in test_e2e_speech.py."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np

from switchboard.speech.audio import pcm16_to_ulaw
from switchboard.telephony.call import CallerHangup, PlaybackResult, Recording

TONE = pcm16_to_ulaw((np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16).tobytes())


class WireCall:
    def __init__(self, leg: WireLeg) -> None:
        self.leg = leg
        self.played: list[str] = []

    async def _send_and_wait(self, label: str) -> PlaybackResult:
        if self.leg.gone.is_set():
            raise CallerHangup("stream_stopped")
        self.played.append(label)
        for i in range(0, len(TONE), 160):
            await self.leg.send({"event": "media", "media": {"payload": base64.b64encode(TONE[i:i + 160]).decode()}})
        self.leg.mark_no += 1
        name = f"m{self.leg.mark_no}"
        waiter = asyncio.get_running_loop().create_future()
        self.leg.marks[name] = waiter
        await self.leg.send({"event": "mark", "mark": {"name": name}})
        gone = asyncio.ensure_future(self.leg.gone.wait())
        await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not waiter.done():
            raise CallerHangup("stream_stopped")
        return PlaybackResult(True)

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        return await self._send_and_wait(prompt)

    async def speak(self, text: str, **_: object) -> PlaybackResult:
        return await self._send_and_wait(text)

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        try:
            digit = await asyncio.wait_for(self.leg.digits.get(), max_duration)
        except TimeoutError:
            return Recording(text="")
        return Recording(text="", dtmf=digit)


class WireLeg:
    def __init__(self, socket, start) -> None:  # type: ignore[no-untyped-def]
        self.socket = socket
        self.start = start
        self.call = WireCall(self)
        self.gone = asyncio.Event()
        self.marks: dict[str, asyncio.Future[None]] = {}
        self.mark_no = 0
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.frames = 0
        self.stop_seen = False

    async def send(self, message: dict) -> None:  # type: ignore[type-arg]
        try:
            await self.socket.send_text(json.dumps({**message, "streamSid": self.start.stream_sid}))
        except Exception:
            self.gone.set()

    async def run(self) -> None:
        try:
            while True:
                message = json.loads(await self.socket.receive_text())
                event = message["event"]
                if event == "media":
                    self.frames += 1
                elif event == "mark":
                    future = self.marks.pop(message["mark"]["name"], None)
                    if future is not None and not future.done():
                        future.set_result(None)
                elif event == "dtmf":
                    self.digits.put_nowait(message["dtmf"]["digit"])
                elif event == "stop":
                    self.stop_seen = True
                    return
        except Exception:
            return
        finally:
            self.gone.set()

    async def close(self) -> None:
        self.gone.set()


async def wire_leg_factory(port, call: object) -> WireLeg:  # type: ignore[no-untyped-def]
    return WireLeg(port.link, port.start)
