"""A loopback double of Twilio: the REST API's Calls resource, the phone network behind it, the
signed webhooks it sends and the Media Streams client it runs — each in Twilio's documented wire
format, so the backend under test cannot tell it from Twilio.

* REST: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (create) and `.../Calls/{Sid}.json`
  (update: `Twiml`, `Url`, `Status=completed|canceled`), HTTP Basic auth with the account SID and
  auth token, JSON call resources, Twilio's error bodies (`code`, `message`, `more_info`, `status`).
* Webhooks: form-encoded POSTs signed with `X-Twilio-Signature` (HMAC-SHA1 of the URL and sorted
  parameters, computed with the SDK's `RequestValidator`); the voice URL gets the call's parameters
  (and `AnsweredBy` with `MachineDetection`), the status callback gets the subscribed progress
  events and always the final status, `<Dial>` reports to its `action` and `<Number statusCallback>`.
* TwiML: `<Connect><Stream>` (with `<Parameter>`s), `<Dial callerId timeout action><Number>`,
  `<Hangup>`, `<Reject>`, `<Pause>`. Anything else is recorded as an error for the test to see.
* Media Streams: `MediaClient` connects to the `<Stream url>`, sends `connected`, `start`, then a
  `media` message every 20 ms on an absolute schedule (the caller's μ-law audio, or line silence),
  `dtmf`, `stop`; it plays the agent's `media` out in real time, answers `mark` when playback gets
  there, and drops what is queued on `clear` (returning outstanding marks at once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from switchboard.speech import audio as A

FRAME = 160  # bytes of μ-law in 20 ms at 8 kHz
ULAW_SILENCE = b"\xff" * FRAME


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


# --- the callee / operator behaviour a test scripts -------------------------------------------------
@dataclass
class Callee:
    """How the number a call goes to behaves: `answer` = human | busy | no-answer | failed | machine
    | fax; `after` seconds of ringing first; `script` runs the caller's side once media flows."""

    answer: str = "human"
    after: float = 0.2
    script: Callable[[DoubleCall], Awaitable[None]] | None = None


@dataclass
class Operator:
    """An operator's phone for `<Dial>`: answers (after `after` s) or not (`busy`, `no-answer`);
    when answered, hangs up after `talk` seconds (None: stays until the customer hangs up)."""

    answer: str = "human"
    after: float = 0.3
    talk: float | None = None


# --- one call -----------------------------------------------------------------------------------------
@dataclass(eq=False)
class DoubleCall:
    double: TwilioDouble
    sid: str
    direction: str  # inbound | outbound-api
    from_: str
    to: str
    url: str = ""
    status_callback: str = ""
    status_events: list[str] = field(default_factory=list)
    timeout: int = 60
    machine_detection: str = ""
    status: str = "queued"
    answered_by: str | None = None
    twiml_log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    streams: list[MediaClient] = field(default_factory=list)
    dials: list[dict[str, Any]] = field(default_factory=list)
    status_log: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    media_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _sequence: int = 0
    _interrupt: asyncio.Event = field(default_factory=asyncio.Event)  # an update replaces the TwiML
    _pending_twiml: str | None = None
    _task: asyncio.Task[None] | None = None
    script_task: asyncio.Task[None] | None = None  # the caller's side (a test's script), when one runs
    started_at: float = field(default_factory=time.monotonic)

    @property
    def media(self) -> MediaClient:
        return self.streams[-1]

    def params(self, **extra: str) -> dict[str, str]:
        """The parameters Twilio sends with every request about this call."""
        base = {"AccountSid": self.double.account_sid, "ApiVersion": "2010-04-01", "CallSid": self.sid,
                "CallStatus": self.status, "Called": self.to, "Caller": self.from_, "Direction": self.direction,
                "From": self.from_, "To": self.to, "CalledCountry": "US", "CallerCountry": "US",
                "FromCountry": "US", "ToCountry": "US"}
        base.update(extra)
        return base

    async def hangup(self) -> None:
        """The far end hangs up."""
        await self.double.end_call(self, "completed")

    async def wait_ended(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)

    async def wait_media(self, timeout: float = 20.0, count: int = 1) -> MediaClient:
        deadline = time.monotonic() + timeout
        while len(self.streams) < count or not self.streams[-1].started.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no media stream #{count} for call {self.sid} (TwiML: {self.twiml_log})")
            await asyncio.sleep(0.02)
        return self.streams[-1]


# --- the Media Streams client ------------------------------------------------------------------------
class MediaClient:
    """Twilio's side of one bidirectional Media Stream, in real time."""

    def __init__(self, call: DoubleCall, url: str, parameters: dict[str, str]) -> None:
        self.call = call
        self.url = url
        self.parameters = parameters
        self.stream_sid = sid("MZ")
        self.started = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._ws: Any = None
        self._seq = 0
        self._chunk = 0
        self._mouth = bytearray()  # caller audio (μ-law) still to send
        self._playout = bytearray()  # agent audio (μ-law) not yet played
        self._played_total = 0  # bytes of agent audio played since the stream began
        self._received_total = 0
        self._marks: list[tuple[int, str]] = []  # (byte position in the agent stream, name)
        self.marks_returned: list[str] = []
        self.clears: list[float] = []  # seconds since stream start of each `clear`
        self.received: list[dict[str, Any]] = []  # every message from the server (media payloads elided)
        self.heard = bytearray()  # agent audio as played (μ-law), silence where nothing played
        self.agent_ticks: list[tuple[float, bool]] = []  # (t, agent audio played in this 20 ms)
        self.t0 = 0.0
        self.stopped = False
        self._task: asyncio.Task[None] | None = None
        self._said: asyncio.Event = asyncio.Event()
        self._said.set()
        self.protocol_errors: list[str] = []

    # --- the caller's actions ---
    def say(self, pcm8k: A.Audio) -> asyncio.Event:
        """Queue the caller's speech (8 kHz PCM16); the returned event is set once it was all sent."""
        self._mouth.extend(A.pcm16_to_ulaw(pcm8k.pcm))
        self._said = asyncio.Event()
        return self._said

    async def say_and_wait(self, pcm8k: A.Audio) -> None:
        await self.say(pcm8k).wait()

    async def press(self, digit: str) -> None:
        await self._send({"event": "dtmf", "streamSid": self.stream_sid,
                          "dtmf": {"track": "inbound_track", "digit": digit}})

    def now(self) -> float:
        return time.monotonic() - self.t0

    def agent_speaking(self, window: float = 0.1) -> bool:
        n = max(1, round(window / 0.02))
        return any(speaking for _, speaking in self.agent_ticks[-n:])

    async def wait_agent_spoke(self, *, min_audio: float = 0.3, silence: float = 0.7, timeout: float = 60.0) -> None:
        """Wait until the agent has talked (at least `min_audio` s since the last call) and then
        stayed quiet for `silence` s — when a person would answer."""
        deadline = time.monotonic() + timeout
        start = len(self.agent_ticks)
        need = round(silence / 0.02)
        while time.monotonic() < deadline:
            ticks = self.agent_ticks[start:]
            spoken = sum(1 for _, s in ticks if s)
            if spoken * 0.02 >= min_audio and len(ticks) >= need and not any(s for _, s in ticks[-need:]):
                return
            if self.closed.is_set():
                raise ConnectionError("stream closed while waiting for the agent")
            await asyncio.sleep(0.02)
        raise TimeoutError(f"agent did not speak and pause within {timeout} s")

    async def wait_agent_audio(self, *, timeout: float = 30.0) -> float:
        """Wait for the agent's audio to start playing; returns the stream time it did."""
        deadline = time.monotonic() + timeout
        start = len(self.agent_ticks)
        while time.monotonic() < deadline:
            for t, speaking in self.agent_ticks[start:]:
                if speaking:
                    return t
            await asyncio.sleep(0.01)
        raise TimeoutError("no agent audio")

    def played_seconds(self) -> float:
        """Agent audio Twilio played out on this stream (speech and the pauses in it)."""
        return self._played_total / 8000

    def agent_audio_seconds(self) -> float:
        return sum(1 for _, s in self.agent_ticks if s) * 0.02

    # --- wire ---
    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self.stopped:
            return
        self._seq += 1
        message = {**message, "sequenceNumber": str(self._seq)}
        if message["event"] == "connected":
            message.pop("sequenceNumber")
        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed:
            pass

    async def run(self) -> None:
        try:
            async with ws_connect(self.url, open_timeout=10, max_size=2**20) as ws:
                self._ws = ws
                await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
                await self._send({"event": "start", "streamSid": self.stream_sid, "start": {
                    "streamSid": self.stream_sid, "accountSid": self.call.double.account_sid,
                    "callSid": self.call.sid, "tracks": ["inbound"], "customParameters": self.parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
                self.t0 = time.monotonic()
                self.started.set()
                self.call.media_ready.set()
                reader = asyncio.ensure_future(self._read(ws))
                try:
                    await self._tick_loop(reader)
                finally:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                self.close_code = ws.close_code
        except (OSError, ConnectionClosed) as exc:
            self.protocol_errors.append(f"connect: {exc}")
        finally:
            self.closed.set()
            self._said.set()

    async def stop(self) -> None:
        """Twilio ends the stream (call over, or the TwiML moved on): `stop`, then close."""
        if self.stopped:
            return
        await self._send({"event": "stop", "streamSid": self.stream_sid, "stop": {
            "accountSid": self.call.double.account_sid, "callSid": self.call.sid}})
        self.stopped = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def _tick_loop(self, reader: asyncio.Task[None]) -> None:
        """Every 20 ms on an absolute schedule: send the caller's next frame, play the agent's next."""
        n = 0
        while not self.stopped and not reader.done():
            n += 1
            due = self.t0 + n * 0.02
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = bytes(self._mouth[:FRAME])
            if chunk:
                del self._mouth[:FRAME]
                chunk = chunk.ljust(FRAME, b"\xff")
                if not self._mouth:
                    self._said.set()
            else:
                chunk = ULAW_SILENCE
            self._chunk += 1
            await self._send({"event": "media", "streamSid": self.stream_sid, "media": {
                "track": "inbound", "chunk": str(self._chunk), "timestamp": str(round((due - self.t0) * 1000)),
                "payload": base64.b64encode(chunk).decode()}})
            played = bytes(self._playout[:FRAME])
            del self._playout[:FRAME]
            self._played_total += len(played)
            self.heard.extend(played.ljust(FRAME, b"\xff"))
            self.agent_ticks.append((due - self.t0, bool(played) and _loud(played)))
            await self._return_marks()

    async def _return_marks(self, everything: bool = False) -> None:
        while self._marks and (everything or self._marks[0][0] <= self._played_total):
            _, name = self._marks.pop(0)
            self.marks_returned.append(name)
            await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _read(self, ws: Any) -> None:
        try:
            async for text in ws:
                message = json.loads(text)
                event = message.get("event")
                if message.get("streamSid") != self.stream_sid:
                    self.protocol_errors.append(f"{event} with streamSid {message.get('streamSid')!r}")
                if event == "media":
                    payload = base64.b64decode(message["media"]["payload"])
                    self._playout.extend(payload)
                    self._received_total += len(payload)
                    self.received.append({"event": "media", "bytes": len(payload)})
                elif event == "mark":
                    name = message["mark"]["name"]
                    self.received.append(message)
                    self._marks.append((self._received_total, name))
                elif event == "clear":
                    self.received.append(message)
                    self.clears.append(self.now())
                    self._played_total += 0
                    self._playout.clear()
                    self._received_total = self._played_total
                    await self._return_marks(everything=True)
                else:
                    self.received.append(message)
                    self.protocol_errors.append(f"unknown event {event!r}")
        except ConnectionClosed:
            pass


def _loud(ulaw: bytes) -> bool:
    pcm = np.frombuffer(A.ulaw_to_pcm16(ulaw), dtype=np.int16)
    return bool(pcm.size) and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 200.0


# --- the double -----------------------------------------------------------------------------------------
class TwilioDouble:
    def __init__(self, *, account_sid: str, auth_token: str, numbers: list[str],
                 reach: Callable[[str], str] = lambda url: url, inbound_status_callback: str = "") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = numbers
        self.reach = reach  # public URL -> the URL this process can reach (a reverse proxy's job)
        self.inbound_status_callback = inbound_status_callback
        self.validator = RequestValidator(auth_token)
        self.calls: dict[str, DoubleCall] = {}
        self.callees: dict[str, Callee] = {}
        self.operators: dict[str, Operator] = {}
        self.default_callee = Callee()
        self.redirect_before_answer = False  # a call update's TwiML takes effect before the REST answer
        self.webhook_log: list[tuple[str, int]] = []  # (url, status) of every webhook sent
        self.rest_log: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, form)
        self.new_call = asyncio.Condition()
        self.app = self._build_app()
        self.http = httpx.AsyncClient(timeout=15.0)
        self.server: uvicorn.Server | None = None
        self.base_url = ""
        self._serve: asyncio.Task[None] | None = None

    # --- lifecycle ---
    async def start(self, port: int = 0) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self._serve = asyncio.ensure_future(self.server.serve(sockets=[sock]))
        while not self.server.started:
            await asyncio.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        for call in list(self.calls.values()):
            for stream in call.streams:
                await stream.stop()
            if call._task is not None:
                call._task.cancel()
        tasks = [c._task for c in self.calls.values() if c._task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.server is not None:
            self.server.should_exit = True
            if self._serve is not None:
                await asyncio.wait_for(self._serve, 10)
        await self.http.aclose()

    # --- webhooks out ---
    def sign(self, url: str, params: dict[str, str]) -> str:
        return self.validator.compute_signature(url, params)

    async def webhook(self, call: DoubleCall, url: str, params: dict[str, str], *,
                      signature: str | None = None) -> httpx.Response:
        """POST a signed webhook as Twilio does; `signature` overrides it (tests of bad signatures)."""
        headers = {"X-Twilio-Signature": self.sign(url, params) if signature is None else signature,
                   "User-Agent": "TwilioProxy/1.1"}
        if signature == "":
            headers.pop("X-Twilio-Signature")
        response = await self.http.post(self.reach(url), data=params, headers=headers)
        self.webhook_log.append((url, response.status_code))
        return response

    async def _status(self, call: DoubleCall, event: str) -> None:
        """A status callback: progress events only when subscribed; the final status always."""
        if not call.status_callback:
            return
        final = event == "completed"
        if not final and event not in call.status_events:
            return
        call._sequence += 1
        extra = {"CallbackSource": "call-progress-events", "SequenceNumber": str(call._sequence - 1),
                 "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())}
        if final:
            extra["CallDuration"] = str(round(time.monotonic() - call.started_at))
            extra["Duration"] = str(max(1, round((time.monotonic() - call.started_at) / 60)))
        if call.status in ("busy", "no-answer", "failed"):
            extra["SipResponseCode"] = {"busy": "486", "no-answer": "487", "failed": "404"}[call.status]
        if call.answered_by:
            extra["AnsweredBy"] = call.answered_by
        call.status_log.append(call.status)
        try:
            await self.webhook(call, call.status_callback, call.params(**extra))
        except httpx.HTTPError as exc:
            call.errors.append(f"status callback: {exc}")

    # --- the phone network ---
    async def incoming_call(self, from_: str, to: str, voice_url: str, *, signature: str | None = None,
                            script: Callable[[DoubleCall], Awaitable[None]] | None = None) -> DoubleCall:
        """Someone dials one of the account's numbers: Twilio asks the number's voice URL."""
        call = DoubleCall(self, sid("CA"), "inbound", from_, to, url=voice_url,
                          status_callback=self.inbound_status_callback, status="ringing")
        self.calls[call.sid] = call
        call._task = asyncio.ensure_future(self._run_inbound(call, signature, script))
        return call

    async def _run_inbound(self, call: DoubleCall, signature: str | None,
                           script: Callable[[DoubleCall], Awaitable[None]] | None) -> None:
        response = await self.webhook(call, call.url, call.params(), signature=signature)
        if response.status_code != 200:
            call.errors.append(f"voice webhook answered {response.status_code}")
            call.status = "failed"
            call.ended.set()
            return
        await self._execute(call, response.text, script)

    async def wait_call(self, to: str | None = None, timeout: float = 30.0) -> DoubleCall:
        """The next outbound call the backend placed (to `to`)."""
        seen = {c.sid for c in self.calls.values()}

        def found() -> DoubleCall | None:
            return next((c for c in self.calls.values() if c.direction == "outbound-api" and c.sid not in seen
                         and (to is None or c.to == to)), None)

        async with self.new_call:
            await asyncio.wait_for(self.new_call.wait_for(found), timeout)
        result = found()
        assert result is not None
        return result

    async def _run_outbound(self, call: DoubleCall) -> None:
        callee = self.callees.get(call.to, self.default_callee)
        call.status = "initiated"
        await self._status(call, "initiated")
        call.status = "ringing"
        await self._status(call, "ringing")
        await asyncio.sleep(min(callee.after, call.timeout))
        if call.status == "canceled":
            return
        if callee.answer in ("busy", "no-answer", "failed") or callee.after > call.timeout:
            call.status = "no-answer" if callee.after > call.timeout else callee.answer
            await self._finish(call)
            return
        call.status = "in-progress"
        extra: dict[str, str] = {}
        if call.machine_detection:
            call.answered_by = {"machine": "machine_start", "fax": "fax"}.get(callee.answer, "human")
            extra = {"AnsweredBy": call.answered_by, "MachineDetectionDuration": "1800"}
        await self._status(call, "answered")
        response = await self.webhook(call, call.url, call.params(**extra))
        if response.status_code != 200:
            call.errors.append(f"voice webhook answered {response.status_code}")
            call.status = "failed"
            await self._finish(call)
            return
        await self._execute(call, response.text, callee.script)

    async def _finish(self, call: DoubleCall) -> None:
        if call.ended.is_set():
            return
        for stream in call.streams:
            await stream.stop()
        await self._status(call, "completed")
        call.ended.set()

    async def end_call(self, call: DoubleCall, status: str) -> None:
        if call.ended.is_set():
            return
        call.status = status
        call._interrupt.set()
        await self._finish(call)

    # --- TwiML ---
    async def _execute(self, call: DoubleCall, document: str,
                       script: Callable[[DoubleCall], Awaitable[None]] | None = None) -> None:
        script_task = None
        while document is not None and not call.ended.is_set():
            call.twiml_log.append(document)
            call._interrupt.clear()
            try:
                root = ET.fromstring(document)
            except ET.ParseError as exc:
                call.errors.append(f"TwiML does not parse: {exc}")
                break
            if root.tag != "Response":
                call.errors.append(f"TwiML root is {root.tag}")
                break
            next_document: str | None = None
            for verb in root:
                if call.ended.is_set():
                    return
                if verb.tag in ("Connect", "Dial", "Pause") and call.status == "ringing":
                    call.status = "in-progress"  # an inbound call is answered by the TwiML that serves it
                if verb.tag == "Connect":
                    stream = verb.find("Stream")
                    if stream is None or not stream.get("url", "").startswith(("wss://", "ws://")):
                        call.errors.append("<Connect> without a <Stream url=wss://...>")
                        break
                    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
                    media = MediaClient(call, self.reach(stream.get("url", "")), params)
                    call.streams.append(media)
                    runner = asyncio.ensure_future(media.run())
                    if script is not None and script_task is None:
                        script_task = call.script_task = asyncio.ensure_future(self._script(call, script))
                    interrupted = asyncio.ensure_future(call._interrupt.wait())
                    await asyncio.wait({runner, interrupted}, return_when=asyncio.FIRST_COMPLETED)
                    interrupted.cancel()
                    if call._interrupt.is_set() and not call.ended.is_set():
                        await media.stop()  # the TwiML moved on: the stream stops
                        await runner
                        next_document = call._pending_twiml
                        call._pending_twiml = None
                        break
                    await media.stop()
                    await runner
                    if not call.ended.is_set():
                        # our side closed the stream: <Connect> ends and so does the TwiML
                        await self.end_call(call, "completed")
                    return
                elif verb.tag == "Dial":
                    next_document = await self._dial(call, verb)
                    break
                elif verb.tag == "Hangup":
                    await self.end_call(call, "completed")
                    return
                elif verb.tag == "Reject":
                    call.status = "busy" if verb.get("reason") == "busy" else "no-answer"
                    call.ended.set()
                    return
                elif verb.tag == "Pause":
                    await asyncio.sleep(float(verb.get("length", "1")))
                else:
                    call.errors.append(f"unsupported TwiML verb <{verb.tag}>")
            else:
                if call._pending_twiml is None:
                    await self.end_call(call, "completed")  # TwiML ran out: Twilio hangs up
                    return
            if next_document is None and call._pending_twiml is not None:
                next_document, call._pending_twiml = call._pending_twiml, None
            document = next_document  # type: ignore[assignment]
        if script_task is not None and call.ended.is_set():
            # A script may still note what it saw once the call ended: a moment, then it goes.
            done, _ = await asyncio.wait({script_task}, timeout=5)
            if not done:
                script_task.cancel()

    async def _script(self, call: DoubleCall, script: Callable[[DoubleCall], Awaitable[None]]) -> None:
        try:
            await call.wait_media()
            await script(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the test reads call.errors
            call.errors.append(f"caller script: {type(exc).__name__}: {exc}")

    async def _dial(self, call: DoubleCall, verb: ET.Element) -> str | None:
        """`<Dial><Number>`: ring the operator; answered -> bridged until someone hangs up."""
        number = verb.find("Number")
        if number is None or not (number.text or "").strip():
            call.errors.append("<Dial> without <Number>")
            return None
        operator_number = number.text.strip()  # type: ignore[union-attr]
        timeout = int(verb.get("timeout", "30"))
        action = verb.get("action", "")
        operator = self.operators.get(operator_number, Operator(answer="no-answer"))
        child = sid("CA")
        record = {"number": operator_number, "callerId": verb.get("callerId"), "timeout": timeout,
                  "action": action, "child": child, "status": "ringing"}
        call.dials.append(record)
        started = time.monotonic()
        ring = asyncio.ensure_future(asyncio.sleep(min(operator.after, timeout)))
        interrupted = asyncio.ensure_future(call._interrupt.wait())
        await asyncio.wait({ring, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        interrupted.cancel()
        if call.ended.is_set():
            record["status"] = "canceled"
            return None
        answered = operator.answer == "human" and operator.after <= timeout
        if not answered:
            status = operator.answer if operator.answer in ("busy", "failed") else "no-answer"
            record["status"] = status
            return await self._dial_action(call, action, status, child, None)
        record["status"] = "answered"
        status_url = number.get("statusCallback", "")
        events = (number.get("statusCallbackEvent") or "").split()
        if status_url and "answered" in events:
            await self.webhook(call, status_url, {
                "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": child,
                "ParentCallSid": call.sid, "CallStatus": "in-progress", "Direction": "outbound-dial",
                "From": verb.get("callerId") or call.from_, "To": operator_number, "Called": operator_number,
                "Caller": verb.get("callerId") or call.from_, "CallbackSource": "call-progress-events",
                "SequenceNumber": "0", "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())})
        talk = asyncio.ensure_future(asyncio.sleep(operator.talk if operator.talk is not None else 3600))
        interrupted = asyncio.ensure_future(call._interrupt.wait())
        await asyncio.wait({talk, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        talk.cancel()
        interrupted.cancel()
        if call.ended.is_set():
            record["status"] = "completed"
            return None
        record["status"] = "completed"
        return await self._dial_action(call, action, "completed", child, round(time.monotonic() - started))

    async def _dial_action(self, call: DoubleCall, action: str, status: str, child: str,
                           duration: int | None) -> str | None:
        if not action:
            return None
        extra = {"DialCallStatus": status, "DialCallSid": child, "DialBridged": str(status == "completed").lower()}
        if duration is not None:
            extra["DialCallDuration"] = str(duration)
        response = await self.webhook(call, action, call.params(**extra))
        if response.status_code != 200:
            call.errors.append(f"<Dial> action answered {response.status_code}")
            return None
        return response.text

    # --- REST API ---
    def _build_app(self) -> FastAPI:
        app = FastAPI()

        def authorized(request: Request, account: str) -> bool:
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return user == self.account_sid == account and password == self.auth_token

        @app.post("/2010-04-01/Accounts/{account}/Calls.json")
        async def create(account: str, request: Request) -> JSONResponse:
            if not authorized(request, account):
                return _error(401, 20003, "Authenticate")
            form = await request.form()
            self.rest_log.append(("POST", request.url.path, {k: form.getlist(k) for k in form}))
            to, from_ = form.get("To", ""), form.get("From", "")
            if not to:
                return _error(400, 21201, "No 'To' number is specified")
            if not from_:
                return _error(400, 21213, "No 'From' number is specified")
            if from_ not in self.numbers:
                return _error(400, 21210, f"The source phone number provided, {from_}, is not yet verified "
                                          "for your account.")
            if not form.get("Url") and not form.get("Twiml"):
                return _error(400, 21205, "Url parameter is required.")
            call = DoubleCall(self, sid("CA"), "outbound-api", str(from_), str(to), url=str(form.get("Url", "")),
                              status_callback=str(form.get("StatusCallback", "")),
                              status_events=[str(e) for e in form.getlist("StatusCallbackEvent")],
                              timeout=int(form.get("Timeout", "60")),
                              machine_detection=str(form.get("MachineDetection", "")))
            self.calls[call.sid] = call
            call._task = asyncio.ensure_future(self._run_outbound(call))
            async with self.new_call:
                self.new_call.notify_all()
            return JSONResponse(self._resource(call), status_code=201)

        @app.post("/2010-04-01/Accounts/{account}/Calls/{call_sid}.json")
        async def update(account: str, call_sid: str, request: Request) -> JSONResponse:
            if not authorized(request, account):
                return _error(401, 20003, "Authenticate")
            form = await request.form()
            self.rest_log.append(("POST", request.url.path, {k: form.getlist(k) for k in form}))
            call = self.calls.get(call_sid)
            if call is None:
                return _error(404, 20404, f"The requested resource /2010-04-01/Accounts/{account}/Calls/"
                                          f"{call_sid}.json was not found")
            status = form.get("Status")
            if status in ("completed", "canceled"):
                if status == "canceled" and call.status in ("queued", "initiated", "ringing"):
                    call.status = "canceled"
                    call._interrupt.set()
                    await self._finish(call)
                elif call.status == "in-progress":
                    await self.end_call(call, "completed")
                return JSONResponse(self._resource(call))
            document = form.get("Twiml")
            if document:
                if call.status != "in-progress" or call.ended.is_set():
                    return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
                call._pending_twiml = str(document)
                call._interrupt.set()
                if self.redirect_before_answer and call.streams:
                    # Twilio may act on the redirect (stop the stream) before its answer arrives.
                    await asyncio.wait_for(call.streams[-1].closed.wait(), 10)
            return JSONResponse(self._resource(call))

        return app

    def _resource(self, call: DoubleCall) -> dict[str, Any]:
        return {"sid": call.sid, "account_sid": self.account_sid, "to": call.to, "from": call.from_,
                "status": call.status, "direction": call.direction, "api_version": "2010-04-01",
                "date_created": None, "date_updated": None, "start_time": None, "end_time": None,
                "duration": None, "price": None, "price_unit": "USD", "answered_by": call.answered_by,
                "caller_name": None, "forwarded_from": None, "group_sid": None, "parent_call_sid": None,
                "phone_number_sid": None, "queue_time": "0", "trunk_sid": None, "annotation": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
                "subresource_uris": {}}
