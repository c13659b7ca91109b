"""Twilio Media Streams as an `AudioPort`: the wire format only, over a text send/receive pair.

In: `media` (base64 μ-law, 8 kHz, 20 ms) -> `sink.on_frame` as PCM16, `dtmf` -> `on_dtmf`, `mark`
(Twilio played everything before it) -> `on_played`, `stop` or a closed socket -> `on_hangup`.
Out: `send` -> `media`, `mark` -> `mark` (named by the token), `clear` -> `clear`. Sends never
block: messages go to one writer task in order. Twilio buffers what we send and plays it in real
time, so the session's pacing keeps that buffer short and `clear` empties it on a barge-in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from switchboard.speech.audio import pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.voice.port import AudioPort

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024
DTMF_KEYS = frozenset("0123456789*#ABCD")


class TwilioMediaPort(AudioPort):
    sample_rate = 8000

    def __init__(self, send_text: Callable[[str], Awaitable[None]], stream_sid: str) -> None:
        self.send_text = send_text
        self.stream_sid = stream_sid
        self._out: asyncio.Queue[str | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._marks: set[int] = set()
        self._closed = False
        self._gone = False
        self.frames_in = 0
        self.bad_messages = 0

    # --- in -------------------------------------------------------------------------------------
    async def run(self, receive_text: Callable[[], Awaitable[str]]) -> None:
        """Read the stream until Twilio stops it or the socket closes; reports go to the sink."""
        cause = "socket_closed"
        try:
            while not self._closed:
                text = await receive_text()
                if len(text) > MAX_MESSAGE:
                    self.bad_messages += 1
                    continue
                try:
                    message = json.loads(text)
                    event = message["event"]
                except (ValueError, KeyError, TypeError):
                    self.bad_messages += 1
                    continue
                if event == "media":
                    media = message.get("media") or {}
                    if media.get("track", "inbound") not in ("inbound", "inbound_track"):
                        continue
                    try:
                        payload = base64.b64decode(media["payload"], validate=True)
                    except (KeyError, ValueError, TypeError):
                        self.bad_messages += 1
                        continue
                    if payload:
                        self.frames_in += 1
                        self.sink.on_frame(ulaw_to_pcm16(payload))
                elif event == "dtmf":
                    digit = str((message.get("dtmf") or {}).get("digit", ""))
                    if digit in DTMF_KEYS and len(digit) == 1:
                        self.sink.on_dtmf(digit)
                elif event == "mark":
                    name = str((message.get("mark") or {}).get("name", ""))
                    if name.isdigit() and int(name) in self._marks:
                        self._marks.discard(int(name))
                        self.sink.on_played(int(name))
                elif event == "stop":
                    cause = "stream_stopped"
                    return
        except Exception as exc:  # the socket went away (disconnect, reset)
            log.debug("media stream %s ended: %s", self.stream_sid, type(exc).__name__)
        finally:
            self._gone = True
            self.sink.on_hangup(cause)

    # --- out ------------------------------------------------------------------------------------
    def _put(self, message: dict[str, object]) -> None:
        if self._closed or self._gone:
            return
        message["streamSid"] = self.stream_sid
        self._out.put_nowait(json.dumps(message))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while True:
            text = await self._out.get()
            if text is None:
                return
            try:
                await self.send_text(text)
            except Exception:
                self._gone = True
                return

    def send(self, pcm: bytes) -> None:
        if pcm:
            self._put({"event": "media", "media": {"payload": base64.b64encode(pcm16_to_ulaw(pcm)).decode()}})

    def mark(self, token: int) -> None:
        if self._closed or self._gone:
            self.played_now(token)
            return
        self._marks.add(token)
        self._put({"event": "mark", "mark": {"name": str(token)}})

    def clear(self) -> None:
        # Drop what is still queued here, then ask Twilio to drop its buffer.
        while not self._out.empty():
            self._out.get_nowait()
        self._put({"event": "clear"})
        for token in sorted(self._marks):
            self.sink.on_played(token)
        self._marks.clear()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._out.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, 1.0)
            self._writer.cancel()
