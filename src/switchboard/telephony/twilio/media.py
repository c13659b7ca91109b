"""Twilio Media Streams as an `AudioPort`: a carrier is only its wire format.

The bidirectional stream that `<Connect><Stream url="wss://…/twilio/media">` opens speaks JSON text
messages, exactly as Twilio documents them (Media Streams — WebSocket Messages):

from Twilio
    ``connected`` ``{"event": "connected", "protocol": "Call", "version": "1.0.0"}``;
    ``start`` ``{"event": "start", "sequenceNumber": "1", "streamSid": "MZ…", "start": {"accountSid",
    "streamSid", "callSid", "tracks": ["inbound"], "customParameters": {…}, "mediaFormat":
    {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}``;
    ``media`` ``{"event": "media", "sequenceNumber", "streamSid", "media": {"track": "inbound",
    "chunk": "1", "timestamp": "5", "payload": <base64 μ-law, 8 kHz mono, no header>}}``;
    ``dtmf`` ``{"event": "dtmf", "streamSid", "sequenceNumber", "dtmf": {"track": "inbound_track",
    "digit": "1"}}``;
    ``mark`` ``{"event": "mark", "sequenceNumber", "streamSid", "mark": {"name": …}}`` — sent when
    the audio queued before our mark of that name has been played, or dropped by a ``clear``;
    ``stop`` ``{"event": "stop", "sequenceNumber", "streamSid", "stop": {"accountSid", "callSid"}}``.
to Twilio
    ``media`` ``{"event": "media", "streamSid", "media": {"payload": <base64 μ-law>}}``,
    ``mark`` ``{"event": "mark", "streamSid", "mark": {"name": …}}``,
    ``clear`` ``{"event": "clear", "streamSid"}`` (drop the audio Twilio still buffers).

The port runs over any pair "send a text message / receive a text message" (`TextLink`), which is
exactly Starlette's `WebSocket` (`send_text` / `receive_text`), so the twilio backend mounts it on the
panel's FastAPI app, and the benchmark runs it on the same server. Writes never wait a task per
message (`EagerSender`). Everything else — the call, its token, signalling — is the backend's.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.speech.audio import pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.voice.port import AudioPort, EagerSender, FrameAssembler

log = logging.getLogger(__name__)

TWILIO_RATE = 8000
MULAW = "audio/x-mulaw"
MAX_MESSAGE = 64 * 1024  # a 20 ms media message is ~300 bytes; anything this large is not Twilio


class TextLink(Protocol):
    """A message channel: Starlette's `WebSocket` fits as it is."""

    async def send_text(self, data: str) -> None: ...

    async def receive_text(self) -> str: ...

    async def close(self, code: int = 1000) -> None: ...


class MediaStreamError(Exception):
    """The peer broke the Media Streams protocol (the message says how)."""


@dataclass(frozen=True, slots=True)
class StreamStart:
    """What Twilio's `start` message tells about the stream and its call."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...] = ("inbound",)
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = MULAW
    sample_rate: int = TWILIO_RATE
    channels: int = 1


def parse_start(message: dict[str, Any]) -> StreamStart:
    """The `start` message as a `StreamStart`; `MediaStreamError` naming what is wrong."""
    start = message.get("start")
    if not isinstance(start, dict):
        raise MediaStreamError("start message without a 'start' object")
    fmt = start.get("mediaFormat") or {}
    params = start.get("customParameters") or {}
    if not isinstance(fmt, dict) or not isinstance(params, dict):
        raise MediaStreamError("start message: mediaFormat and customParameters must be objects")
    sid = start.get("streamSid") or message.get("streamSid")
    call_sid = start.get("callSid")
    if not isinstance(sid, str) or not sid or not isinstance(call_sid, str) or not call_sid:
        raise MediaStreamError("start message without streamSid or callSid")
    info = StreamStart(stream_sid=sid, call_sid=call_sid, account_sid=str(start.get("accountSid") or ""),
                       tracks=tuple(str(t) for t in start.get("tracks") or ("inbound",)),
                       custom_parameters={str(k): str(v) for k, v in params.items()},
                       encoding=str(fmt.get("encoding") or MULAW), sample_rate=int(fmt.get("sampleRate") or TWILIO_RATE),
                       channels=int(fmt.get("channels") or 1))
    if info.encoding != MULAW or info.sample_rate != TWILIO_RATE or info.channels != 1:
        raise MediaStreamError(f"unsupported media format {info.encoding} {info.sample_rate} Hz x{info.channels} "
                               f"(Media Streams carry {MULAW} at 8000 Hz mono)")
    return info


_MEDIA_EVENT = '"event":"media"'
_PAYLOAD = '"payload":"'


def _media_payload(text: str) -> str | None:
    """The base64 payload of a compact inbound `media` message, found without parsing the JSON;
    None for anything else (which then goes through `json.loads`)."""
    if _MEDIA_EVENT not in text or '"track":"outbound' in text:
        return None
    start = text.find(_PAYLOAD)
    if start < 0 or text.find(_PAYLOAD, start + 1) >= 0:
        return None
    start += len(_PAYLOAD)
    end = text.find('"', start)
    if end < 0 or "\\" in text[start:end]:
        return None
    return text[start:end]


class TwilioMediaPort(AudioPort):
    """One Media Stream as an `AudioPort` (8 kHz). `await handshake()` reads `connected` + `start`;
    `await run()` then reads until `stop` or the socket closes, reporting to the attached sink."""

    sample_rate = TWILIO_RATE

    def __init__(self, link: TextLink) -> None:
        self.link = link
        self.start: StreamStart | None = None
        self._sender = EagerSender(link.send_text)
        self._assembler = FrameAssembler(TWILIO_RATE)
        self._closed = False
        self._ended = False
        self._head = ""  # '{"event":"media","streamSid":"MZ…","media":{"payload":"'
        self.received = 0
        self.sent = 0

    # --- reading ----------------------------------------------------------------------------------

    async def handshake(self) -> StreamStart:
        """Read up to the `start` message (skipping `connected`); `MediaStreamError` otherwise."""
        while True:
            message = self._parse(await self.link.receive_text())
            event = message.get("event")
            if event == "connected":
                continue
            if event != "start":
                raise MediaStreamError(f"expected 'start', got {event!r}")
            self.start = parse_start(message)
            self._head = '{"event":"media","streamSid":' + json.dumps(self.start.stream_sid) + ',"media":{"payload":"'
            return self.start

    async def run(self) -> None:
        """Deliver the stream to the sink until `stop` or the socket closes (then `on_hangup`)."""
        if self.start is None:
            await self.handshake()
        cause = "normal"
        try:
            while not self._closed:
                try:
                    text = await self.link.receive_text()
                except Exception:  # the socket went away (a disconnect, or our own close)
                    break
                if self._dispatch(text):
                    break
        finally:
            self._ended = True
            if not self._closed:
                self.sink.on_hangup(cause)

    def _parse(self, text: str) -> dict[str, Any]:
        if len(text) > MAX_MESSAGE:
            raise MediaStreamError(f"message of {len(text)} characters (at most {MAX_MESSAGE})")
        try:
            message = json.loads(text)
        except ValueError as exc:
            raise MediaStreamError(f"not JSON: {exc}") from None
        if not isinstance(message, dict):
            raise MediaStreamError("message is not a JSON object")
        return message

    def _dispatch(self, text: str) -> bool:
        """Handle one message; True when the stream is over."""
        payload = _media_payload(text)
        if payload is not None:  # 50 a second per call: no JSON parse for the common case
            self._media(payload)
            return False
        try:
            message = self._parse(text)
        except MediaStreamError as exc:
            log.warning("twilio stream %s: ignoring a bad message: %s", self.stream_sid, exc)
            return False
        event = message.get("event")
        if event == "media":
            media = message.get("media")
            if not isinstance(media, dict) or media.get("track", "inbound") not in ("inbound", "inbound_track"):
                return False
            payload = media.get("payload")
            self._media(payload if isinstance(payload, str) else "")
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            try:
                token = int(name)
            except (TypeError, ValueError):
                return False  # not one of ours
            self.sink.on_played(token)
        elif event == "dtmf":
            digit = (message.get("dtmf") or {}).get("digit")
            if isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
                self.sink.on_dtmf(digit)
        elif event == "stop":
            return True
        return False

    def _media(self, payload: str) -> None:
        try:
            pcm = ulaw_to_pcm16(binascii.a2b_base64(payload, strict_mode=True))
        except (binascii.Error, ValueError):
            log.warning("twilio stream %s: media payload is not base64", self.stream_sid)
            return
        self.received += 1
        if len(pcm) == 320:
            self.sink.on_frame(pcm)
        else:
            for frame in self._assembler.push(pcm):
                self.sink.on_frame(frame)

    # --- writing (AudioPort) ----------------------------------------------------------------------

    @property
    def stream_sid(self) -> str:
        return self.start.stream_sid if self.start is not None else "?"

    def send(self, pcm: bytes) -> None:
        if self._closed or self._ended:
            return
        payload = base64.b64encode(pcm16_to_ulaw(pcm)).decode("ascii")
        self._sender.send(self._head + payload + '"}}')
        self.sent += 1

    def mark(self, token: int) -> None:
        if self._closed or self._ended:
            self.played_now(token)
            return
        self._sender.send('{"event":"mark","streamSid":' + json.dumps(self.stream_sid)
                          + ',"mark":{"name":"' + str(token) + '"}}')

    def clear(self) -> None:
        if not (self._closed or self._ended):
            self._sender.send('{"event":"clear","streamSid":' + json.dumps(self.stream_sid) + "}")

    async def close(self) -> None:
        """Close the socket: on a `<Connect><Stream>` Twilio then goes on with the TwiML after it
        (none: the call ends)."""
        if self._closed:
            return
        self._closed = True
        await self._sender.drain()
        try:
            await self.link.close()
        except Exception:  # already closed by the peer
            pass


__all__ = ["MediaStreamError", "StreamStart", "TextLink", "TwilioMediaPort", "parse_start"]
