"""A programmable simulation of Asterisk 22 as ARI sees it.

Channels, Local ;1/;2 pairs, PJSIP-like single channels, bridges, playbacks, live and stored
recordings, snoop and externalMedia channels. The far side of every call runs a dialplan context
(`far-side-dialplan.conf`, the one the real captures ran), so a call to `Local/s@customer-busy` or to a
PJSIP number routed to `customer-busy` behaves like the capture: same events, same order, same
causes. Time runs `scale` times faster than real time (virtual seconds * scale = real seconds).

Event order rules copied from the traces: events are sent on the WebSocket before the REST response
that caused them (originate, addChannel, play, record); a channel in a bridge cannot be recorded
(201 then RecordingFailed); `;2` carries the real failure cause; no-answer has no Dial NOANSWER.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import re
import struct
import uuid
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from tests.asterisk.double.dialplan import default_contexts, parse_dialplan

RATE = 8000
FRAME = 0.02
TALK_RMS = 256.0
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer",
             21: "Call Rejected", 34: "Circuit/channel congestion", 1: "Unallocated (unassigned) number"}
REASON_CAUSE = {"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 19, "rejected": 21,
                "unallocated": 1, "normal_unspecified": 31, "failure": 38, "answered_elsewhere": 26}


class AriHttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def not_found(what: str) -> AriHttpError:
    return AriHttpError(404, {"message": f"{what} not found"})


@dataclass
class Clip:
    """Mono PCM16 at 8 kHz."""

    samples: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE

    @classmethod
    def talk(cls, seconds: float, freq: float = 220.0) -> Clip:
        t = np.arange(int(seconds * RATE)) / RATE
        wave_ = 0.3 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 2.5 * freq * t)
        return cls((wave_ * 32767).astype(np.int16))

    @classmethod
    def silence(cls, seconds: float) -> Clip:
        return cls(np.zeros(int(seconds * RATE), dtype=np.int16))

    @classmethod
    def concat(cls, *clips: Clip) -> Clip:
        return cls(np.concatenate([c.samples for c in clips]))

    @classmethod
    def from_pcm(cls, pcm: bytes, rate: int) -> Clip:
        samples = np.frombuffer(pcm, dtype="<i2")
        if rate != RATE and len(samples):
            n = int(len(samples) * RATE / rate)
            samples = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)),
                                samples.astype(np.float64)).astype(np.int16)
        return cls(samples.astype(np.int16))


def default_sounds() -> dict[str, Clip]:
    reply = Clip.talk(2.72, 180.0)
    return {
        "custom/hello": Clip.talk(4.24, 240.0),
        "custom/reply": reply,
        "custom/reply_first": Clip.concat(Clip.silence(5.5), reply),
        "custom/sil20": Clip.silence(20.0),
        "custom/reply_padded": Clip.concat(Clip.silence(5.5), reply, Clip.silence(20.0)),
        "custom/beep": Clip.talk(1.0, 1000.0),
        "custom/onhold": Clip.talk(3.0, 300.0),
    }


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


@dataclass
class SimChannel:
    id: str
    name: str
    kind: str  # local1 | local2 | pjsip | snoop | media
    app: str | None
    state: str = "Down"
    caller: dict[str, str] = field(default_factory=lambda: {"name": "", "number": ""})
    connected: dict[str, str] = field(default_factory=lambda: {"name": "", "number": ""})
    dialplan: dict[str, Any] = field(default_factory=dict)
    creationtime: str = ""
    vars: dict[str, str] = field(default_factory=dict)
    channelvars: dict[str, str] | None = None
    peer: SimChannel | None = None
    in_stasis: bool = False
    stasis_args: list[str] = field(default_factory=list)
    bridge: str | None = None
    segments: list[tuple[float, float, Clip]] = field(default_factory=list)
    destroyed: bool = False
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    snoop_target: str | None = None
    pending_callerid: bool = False
    playback_app_running: bool = False
    dial_emitted: bool = False
    dialstring: str = ""
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    playback_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    media_remote: tuple[str, int] | None = None
    media_format: str = "ulaw"
    media_received: bytearray = field(default_factory=bytearray)
    media_transport: asyncio.DatagramTransport | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "state": self.state, "protocol_id": "",
            "caller": dict(self.caller), "connected": dict(self.connected), "accountcode": "",
            "dialplan": dict(self.dialplan), "creationtime": self.creationtime, "language": "en"}
        if self.channelvars is not None:
            out["channelvars"] = dict(self.channelvars)
        return out

    def window(self, t: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The n 20 ms frames this party sends from virtual time t: samples (n, 160) and a mask of
        the frames actually sent (a party in Wait() sends none)."""
        per = int(FRAME * RATE)
        total = n * per
        out = np.zeros(total, np.int16)
        covered = np.zeros(total, bool)
        s0 = round(t * RATE)
        for t0, _t1, clip in self.segments:  # later segments win, as the later app would
            a0 = round(t0 * RATE)
            lo, hi = max(s0, a0), min(s0 + total, a0 + len(clip.samples))
            if lo < hi:
                out[lo - s0:hi - s0] = clip.samples[lo - a0:hi - a0]
                covered[lo - s0:hi - s0] = True
        return out.reshape(n, per), covered.reshape(n, per).any(axis=1)


@dataclass
class SimBridge:
    id: str
    name: str
    app: str
    creationtime: str
    channels: list[str] = field(default_factory=list)
    recorder_seq: int = 0

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "technology": "simple_bridge", "bridge_type": "mixing", "bridge_class": "stasis",
                "creator": "Stasis", "name": self.name, "channels": list(self.channels),
                "creationtime": self.creationtime, "video_mode": "talker"}


@dataclass
class SimPlayback:
    id: str
    media_uri: str
    target: SimChannel
    app: str
    state: str = "queued"
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "media_uri": self.media_uri, "target_uri": f"channel:{self.target.id}",
                "language": "en", "state": self.state}


@dataclass
class SimRecording:
    name: str
    format: str
    target_uri: str
    app: str
    max_duration: float
    max_silence: float
    beep: bool
    terminate_on: str
    if_exists: str
    state: str = "queued"
    stop_reason: str | None = None
    cause: str | None = None
    task: asyncio.Task[Any] | None = None

    def json(self, **extra: Any) -> dict[str, Any]:
        out = {"name": self.name, "format": self.format, "state": self.state, "target_uri": self.target_uri}
        if self.cause:
            out["cause"] = self.cause
        out.update(extra)
        return out


def parse_caller_id(value: str | None) -> dict[str, str]:
    if not value:
        return {"name": "", "number": ""}
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', value)
    if m:
        return {"name": m.group(1).strip(), "number": m.group(2).strip()}
    return {"name": "", "number": value.strip()}


class AsteriskSim:
    def __init__(self, *, scale: float = 0.02, transmit_silence: bool = True, beep_installed: bool = True,
                 sounds_dir: str | None = None) -> None:
        self.scale = scale
        self.transmit_silence = transmit_silence
        self.contexts = default_contexts()
        self.sounds = default_sounds()
        if not beep_installed:
            self.sounds.pop("custom/beep")
        self.sounds_dir = sounds_dir
        self.routes: dict[str, str] = {}
        self.default_context = "customer-yes"
        self.enforce_ring_timeout = True
        # None: an unknown sound fails like on Asterisk; a number: it plays as that much silence
        # (handy for flow tests whose scenarios name prompts the double does not have).
        self.missing_sound_seconds: float | None = None
        self.channels: dict[str, SimChannel] = {}
        self.bridges: dict[str, SimBridge] = {}
        self.playbacks: dict[str, SimPlayback] = {}
        self.live: dict[str, SimRecording] = {}
        self.stored: dict[str, tuple[str, bytes]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, int]] = []
        self.sender: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        self.connected_apps: Callable[[], set[str]] = lambda: set()
        self._local_seq = itertools.count(0)
        self._uid = itertools.count(1)
        self._loop_t0 = asyncio.get_event_loop().time()
        self._wall_t0 = datetime.now(UTC)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- time and events ------------------------------------------------------------------------

    def now(self) -> float:
        return (asyncio.get_event_loop().time() - self._loop_t0) / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.scale)

    def stamp(self) -> str:
        ts = self._wall_t0 + timedelta(seconds=self.now())
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ch in self.channels.values():
            if ch.media_transport is not None:
                ch.media_transport.close()

    async def emit(self, app: str | None, kind: str, **fields: Any) -> None:
        if not app:
            return
        event = {"type": kind, "timestamp": self.stamp(), **fields, "asterisk_id": "02:fc:00:00:00:01",
                 "application": app}
        self.events.append(event)
        if self.sender is not None:
            await self.sender(app, event)

    async def emit_ch(self, ch: SimChannel, kind: str, **fields: Any) -> None:
        await self.emit(ch.app, kind, **fields, channel=ch.json())

    # --- configuration API for tests ------------------------------------------------------------

    def add_context(self, name: str, body: str) -> None:
        """Add a far-side context: `body` is dialplan lines (`exten => s,1,...`/`same => n,...`)."""
        self.contexts.update(parse_dialplan(f"[{name}]\n{body}"))

    def add_sound(self, name: str, pcm: bytes, rate: int) -> None:
        self.sounds[name] = Clip.from_pcm(pcm, rate)

    def route(self, number: str, context: str) -> None:
        """Calls to `PJSIP/<number>@...` (or `PJSIP/<number>`) run `context` on the far side."""
        self.routes[number] = context

    def live_channels(self) -> list[SimChannel]:
        return [c for c in self.channels.values() if not c.destroyed]

    def find_sound(self, name: str) -> Clip | None:
        if name in self.sounds:
            return self.sounds[name]
        if self.sounds_dir:
            import pathlib
            path = pathlib.Path(self.sounds_dir) / f"{name}.wav"
            if path.exists():
                with wave.open(str(path), "rb") as w:
                    clip = Clip.from_pcm(w.readframes(w.getnframes()), w.getframerate())
                return clip
        if self.missing_sound_seconds is not None and name != "custom/beep":
            return Clip.silence(self.missing_sound_seconds)
        return None

    # --- channels -------------------------------------------------------------------------------

    def _new_id(self) -> str:
        return f"1795319013.{next(self._uid)}"

    def get_channel(self, channel_id: str) -> SimChannel:
        ch = self.channels.get(channel_id)
        if ch is None or ch.destroyed:
            raise not_found("Channel")
        return ch

    async def originate(self, params: dict[str, str], body: dict[str, Any] | None,
                        channel_id: str | None = None) -> dict[str, Any]:
        endpoint = params.get("endpoint")
        if not endpoint:
            raise AriHttpError(400, {"message": "Endpoint must be specified"})
        app = params.get("app")
        if not app and not params.get("extension"):
            raise AriHttpError(400, {"message": "Application or extension must be specified"})
        channel_id = channel_id or params.get("channelId") or self._new_id()
        other_id = params.get("otherChannelId") or self._new_id()
        if channel_id in self.channels and not self.channels[channel_id].destroyed:
            raise AriHttpError(409, {"message": "Channel with given unique ID already exists"})
        tech, _, resource = endpoint.partition("/")
        timeout = float(params.get("timeout", 30))
        args = [a for a in params.get("appArgs", "").split(",") if a] if params.get("appArgs") else []
        caller = parse_caller_id(params.get("callerId"))
        variables = dict((body or {}).get("variables") or {})
        now = self.stamp()
        if tech == "Local":
            exten, _, context = resource.partition("@")
            if context not in self.contexts:
                raise AriHttpError(500, {"error": "Allocation failed"})
            n = next(self._local_seq)
            near = SimChannel(channel_id, f"Local/{resource}-{n:08x};1", "local1", app, "Down", dict(caller),
                              dict(caller), {"context": context, "exten": exten, "priority": 1,
                                             "app_name": "AppDial2", "app_data": "(Outgoing Line)"}, now)
            far = SimChannel(other_id, f"Local/{resource}-{n:08x};2", "local2", app, "Ring",
                             {"name": "", "number": ""}, {"name": "", "number": ""},
                             {"context": context, "exten": exten, "priority": 1, "app_name": "", "app_data": ""}, now)
            near.peer, far.peer = far, near
            near.stasis_args = args
            near.dialstring = resource
            near.vars.update(variables)
            far.vars.update(variables)
            self.channels[near.id] = near
            self.channels[far.id] = far
            for name, value in variables.items():
                await self.emit(app, "ChannelVarset", variable=name, value=str(value), channel=far.json())
            if params.get("callerId"):
                far.caller, far.connected = dict(caller), dict(caller)
                await self.emit_ch(far, "ChannelCallerId", caller_presentation=0,
                                   caller_presentation_txt="Presentation Allowed, Not Screened")
                await self.emit_ch(far, "ChannelConnectedLine")
            script = self.contexts[context]
            if not (len(script) > 1 and script[1][0] == "Ringing"):
                await self._dial(near, "")
            response = near.json()
            near.tasks.append(self.spawn(self._run_far(far, script, timeout)))
            return response
        if tech == "PJSIP":
            number = resource.split("@", 1)[0]
            context = self.routes.get(number, self.default_context)
            script = self.contexts.get(context)
            if script is None:
                raise AriHttpError(500, {"error": "Allocation failed"})
            ch = SimChannel(channel_id, f"PJSIP/{resource.split('@')[-1]}-{next(self._local_seq):08x}", "pjsip",
                            app, "Down", dict(caller), {"name": "", "number": number},
                            {"context": "default", "exten": "s", "priority": 1, "app_name": "AppDial2",
                             "app_data": "(Outgoing Line)"}, now)
            ch.stasis_args = args
            ch.dialstring = resource
            ch.vars.update(variables)
            self.channels[ch.id] = ch
            for name, value in variables.items():
                await self.emit(app, "ChannelVarset", variable=name, value=str(value), channel=ch.json())
            if not (len(script) > 1 and script[1][0] == "Ringing"):
                await self._dial(ch, "")
            response = ch.json()
            ch.tasks.append(self.spawn(self._run_far(ch, script, timeout)))
            return response
        raise AriHttpError(500, {"error": "Allocation failed"})

    async def _dial(self, near: SimChannel, status: str) -> None:
        near.dial_emitted = True
        await self.emit(near.app, "Dial", dialstatus=status, forward="", dialstring=near.dialstring,
                        peer=near.json())

    def _near_of(self, script_ch: SimChannel) -> SimChannel:
        return script_ch.peer if script_ch.kind == "local2" and script_ch.peer else script_ch

    async def _run_far(self, ch: SimChannel, script: list[tuple[str, str]], timeout: float) -> None:
        """Run a far-side context on `ch` (the ;2 half, or the single PJSIP channel)."""
        near = self._near_of(ch)
        watchdog = self.spawn(self._ring_timeout(ch, timeout))
        try:
            for priority, (app_name, data) in enumerate(script, start=1):
                if ch.destroyed:
                    return
                if ch.kind == "local2":
                    ch.dialplan.update(priority=priority, app_name=app_name, app_data=data)
                    await self.emit_ch(ch, "ChannelDialplan", dialplan_app=app_name, dialplan_app_data=data)
                    if ch.pending_callerid and app_name == "Playback":
                        ch.pending_callerid = False
                        ch.caller = {"name": "", "number": ""}
                        await self.emit_ch(ch, "ChannelCallerId", caller_presentation=67,
                                           caller_presentation_txt="Number Unavailable")
                if not await self._far_app(ch, near, app_name, data):
                    return
            if not ch.destroyed:
                await self.far_hangup(ch, 16)
        finally:
            watchdog.cancel()

    async def _ring_timeout(self, ch: SimChannel, timeout: float) -> None:
        near = self._near_of(ch)
        await self.sleep(timeout)
        if near.state == "Up" or near.destroyed or ch.destroyed or not self.enforce_ring_timeout:
            return
        # No answer in time: no Dial NOANSWER, both halves destroyed with cause 19.
        if ch.kind == "local2":
            await self.emit_ch(ch, "ChannelHangupRequest", cause=19)
            await self._destroy(near, 19)
            await self.emit_ch(ch, "ChannelHangupRequest", cause=16, soft=True)
            await self._destroy(ch, 19)
        else:
            await self._destroy(ch, 19)

    async def _far_app(self, ch: SimChannel, near: SimChannel, app_name: str, data: str) -> bool:
        if app_name == "NoOp":
            return True
        if app_name == "Answer":
            if near.kind == "pjsip" and near.in_stasis:  # inbound caller: the app answers
                await near.answered.wait()
                return True
            await self._answer_far(ch, near)
            return not ch.destroyed
        if app_name == "Ringing":
            near.state = "Ringing"
            await self.emit_ch(near, "ChannelStateChange")
            if not near.dial_emitted:
                await self._dial(near, "")
            await self._dial(near, "RINGING")
            return True
        if app_name == "Wait":
            await self.sleep(float(data or 0))
            return True
        if app_name == "Playback":
            clip = self.find_sound(data)
            if clip is None:
                await self.emit(ch.app, "ChannelVarset", variable="PLAYBACKSTATUS", value="FAILED", channel=ch.json())
                return True
            t0 = self.now()
            ch.segments.append((t0, t0 + clip.duration, clip))
            ch.playback_app_running = True
            await self.sleep(clip.duration)
            ch.playback_app_running = False
            if not ch.destroyed:
                await self.emit(ch.app, "ChannelVarset", variable="PLAYBACKSTATUS", value="SUCCESS", channel=ch.json())
            return True
        if app_name == "SendDTMF":
            digits, _, interval = data.partition(",")
            gap = float(interval or 250) / 1000
            await self.sleep(0.2)
            for i, digit in enumerate(digits):
                if i:
                    await self.sleep(gap + 0.1)
                if near.destroyed:
                    return False
                await self.dtmf(near, digit)
            # SendDTMF is still running shortly after the last tone (the capture hung up 21 ms after
            # '#' and the far side was still in SendDTMF); 1 s keeps that true under test jitter.
            await self.sleep(1.0)
            return True
        if app_name in ("Busy", "Congestion"):
            cause, status = (17, "BUSY") if app_name == "Busy" else (34, "CONGESTION")
            if ch.kind == "local2":
                ch.state = "Busy"
                await self.emit_ch(ch, "ChannelStateChange")
                await self._dial(near, status)
                await self.emit_ch(ch, "ChannelHangupRequest", cause=0)
                await self._destroy(near, 0)
                await self.emit_ch(ch, "ChannelHangupRequest", cause=16, soft=True)
                await self._destroy(ch, cause)
            else:
                await self._dial(near, status)
                await self._destroy(ch, cause)
            return False
        if app_name == "Hangup":
            await self.far_hangup(ch, int(data) if data else 16)
            return False
        return True

    async def _answer_far(self, ch: SimChannel, near: SimChannel) -> None:
        if ch.kind == "local2" and ch.state != "Up":
            ch.state = "Up"
            await self.emit_ch(ch, "ChannelStateChange")
        if near.state == "Up":
            return
        near.state = "Up"
        await self.emit_ch(near, "ChannelStateChange")
        await self._dial(near, "ANSWER")
        if near.app not in self.connected_apps():
            await self.hangup(near, 16)  # Stasis() for an application nobody runs
            return
        near.dialplan.update(app_name="Stasis", app_data=near.app)
        await self.emit(near.app, "ChannelVarset", variable="STASISSTATUS", value="", channel=near.json())
        near.in_stasis = True
        near.answered.set()
        await self.emit_ch(near, "StasisStart", args=near.stasis_args)

    async def dtmf(self, near: SimChannel, digit: str) -> None:
        await self.emit_ch(near, "ChannelDtmfReceived", digit=digit, duration_ms=100)
        for rec in list(self.live.values()):
            if rec.target_uri == f"channel:{near.id}" and rec.terminate_on != "none" and (
                    rec.terminate_on == "any" or digit in rec.terminate_on):
                rec.stop_reason = "dtmf"

    async def _destroy(self, ch: SimChannel, cause: int) -> None:
        if ch.destroyed:
            return
        ch.destroyed = True
        await self.emit_ch(ch, "ChannelDestroyed", cause=cause, cause_txt=CAUSE_TXT.get(cause, "Unknown"))
        for task in ch.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if ch.media_transport is not None:
            ch.media_transport.close()
        for rec in self.live.values():
            if rec.target_uri == f"channel:{ch.id}":
                rec.stop_reason = "hangup"
        for snoop in list(self.channels.values()):
            if snoop.snoop_target == ch.id and not snoop.destroyed:
                await self.hangup(snoop, 16)

    async def _leave_stasis(self, ch: SimChannel) -> None:
        for pb in list(self.playbacks.values()):
            if pb.target is ch and pb.state in ("queued", "playing"):
                pb.state = "failed"
                pb.stop.set()
                self.playbacks.pop(pb.id, None)
                await self.emit(pb.app, "PlaybackFinished", playback=pb.json())
        if ch.bridge:
            await self.leave_bridge(ch)
        if ch.in_stasis:
            ch.in_stasis = False
            await self.emit_ch(ch, "StasisEnd")
            await self.emit(ch.app, "ChannelVarset", variable="STASISSTATUS", value="SUCCESS", channel=ch.json())

    async def far_hangup(self, ch: SimChannel, cause: int) -> None:
        """The customer (far side) hangs up."""
        near = self._near_of(ch)
        if ch.kind == "local2":
            await self.emit_ch(ch, "ChannelHangupRequest", cause=cause, soft=True)
            if not near.destroyed:
                await self.emit_ch(near, "ChannelHangupRequest", cause=cause)
            await self._destroy(ch, cause)
            if not near.destroyed:
                await self._leave_stasis(near)
                await self._destroy(near, cause)
        else:
            await self.emit_ch(ch, "ChannelHangupRequest", cause=cause)
            await self._leave_stasis(ch)
            await self._destroy(ch, cause)

    async def hangup(self, ch: SimChannel, cause: int) -> None:
        """DELETE /channels/{id} (or the app's Stasis ending)."""
        await self.emit_ch(ch, "ChannelHangupRequest", cause=32, soft=True)
        if ch.vars.get("BRIDGEPEER"):
            ch.vars["BRIDGEPEER"] = ""
            await self.emit(ch.app, "ChannelVarset", variable="BRIDGEPEER", value="", channel=ch.json())
        await self._leave_stasis(ch)
        far = ch.peer if ch.kind == "local1" else None
        if far is not None and not far.destroyed:
            await self.emit_ch(far, "ChannelHangupRequest", cause=cause)
        await self._destroy(ch, cause)
        if far is not None and not far.destroyed:
            if far.playback_app_running:
                far.playback_app_running = False
                await self.emit(far.app, "ChannelVarset", variable="PLAYBACKSTATUS", value="SUCCESS",
                                channel=far.json())
            await self.emit_ch(far, "ChannelHangupRequest", cause=cause, soft=True)
            await self._destroy(far, cause)

    async def answer(self, ch: SimChannel) -> None:
        if ch.state != "Up":
            ch.state = "Up"
            await self.emit_ch(ch, "ChannelStateChange")
        ch.answered.set()

    async def inbound_call(self, *, caller: str, dialled: str, context: str = "customer-yes",
                           app: str = "switchboard", args: list[str] | None = None,
                           channel_id: str | None = None) -> SimChannel:
        """A call arriving from the trunk into `Stasis(app, args)`; `context` plays the caller."""
        ch = SimChannel(channel_id or self._new_id(), f"PJSIP/trunk-{next(self._local_seq):08x}", "pjsip", app,
                        "Ring", {"name": "", "number": caller}, {"name": "", "number": ""},
                        {"context": "from-trunk", "exten": dialled, "priority": 2, "app_name": "Stasis",
                         "app_data": app}, self.stamp())
        ch.in_stasis = True
        ch.stasis_args = list(args if args is not None else ["inbound", dialled])
        self.channels[ch.id] = ch
        await self.emit_ch(ch, "StasisStart", args=ch.stasis_args)
        ch.tasks.append(self.spawn(self._run_far(ch, self.contexts[context], 3600)))
        return ch

    async def snoop(self, target: SimChannel, params: dict[str, str], snoop_id: str | None) -> dict[str, Any]:
        app = params.get("app")
        if not app:
            raise AriHttpError(400, {"message": "app must be specified"})
        ch = SimChannel(snoop_id or params.get("snoopId") or self._new_id(),
                        f"Snoop/{target.id}-{next(self._local_seq):08x}", "snoop", app, "Up",
                        dict(target.caller), dict(target.connected),
                        {"context": "default", "exten": "s", "priority": 1, "app_name": "Stasis", "app_data": app},
                        self.stamp())
        ch.snoop_target = target.id
        ch.in_stasis = True
        ch.stasis_args = [a for a in params.get("appArgs", "").split(",") if a]
        self.channels[ch.id] = ch
        await self.emit_ch(ch, "StasisStart", args=ch.stasis_args)
        return ch.json()

    async def external_media(self, params: dict[str, str]) -> dict[str, Any]:
        app, host, fmt = params.get("app"), params.get("external_host"), params.get("format")
        if not app or not host or not fmt:
            raise AriHttpError(400, {"message": "app, external_host and format are required"})
        if fmt not in ("ulaw", "slin16"):
            raise AriHttpError(422, {"message": f"Unsupported format {fmt}"})
        rhost, _, rport = host.rpartition(":")
        loop = asyncio.get_running_loop()
        ch_id = params.get("channelId") or self._new_id()
        ch = SimChannel(ch_id, f"UnicastRTP/{host}-0x{next(self._local_seq):x}", "media", app, "Up",
                        creationtime=self.stamp())
        ch.media_remote = (rhost, int(rport))
        ch.media_format = fmt
        transport, _ = await loop.create_datagram_endpoint(lambda: _MediaProtocol(ch), local_addr=("127.0.0.1", 0))
        ch.media_transport = transport
        port = transport.get_extra_info("sockname")[1]
        ch.channelvars = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": str(port)}
        ch.dialplan = {"context": "default", "exten": "s", "priority": 1, "app_name": "Stasis", "app_data": app}
        ch.in_stasis = True
        self.channels[ch.id] = ch
        await self.emit_ch(ch, "StasisStart", args=[])
        ch.tasks.append(self.spawn(self._stream_media(ch)))
        return ch.json()

    async def _stream_media(self, ch: SimChannel) -> None:
        """Send the other bridge members' audio to the app as RTP, one packet per 20 ms."""
        seq, ts, ssrc = 1000, 5000, 0x1234ABCD
        pt, rate = (0, 8000) if ch.media_format == "ulaw" else (118, 16000)
        t = self.now()
        while not ch.destroyed:
            await self.sleep(FRAME)
            n = int((self.now() - t) / FRAME)
            if n <= 0:
                continue
            bridge = self.bridges.get(ch.bridge or "")
            if bridge is None:  # not bridged yet: nothing flows
                t += n * FRAME
                continue
            frames, sent = self._mix(bridge.channels, t, n, exclude=ch.id)
            t += n * FRAME
            for frame, ok in zip(frames, sent):
                if not ok or ch.media_transport is None or ch.media_remote is None:
                    continue
                if rate == 16000:
                    wide = np.repeat(frame, 2)
                    payload = wide.astype(">i2").tobytes()
                else:
                    wide = frame
                    payload = bytes(_ulaw_encode_sample(int(x)) for x in frame)
                header = struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
                ch.media_transport.sendto(header + payload, ch.media_remote)
                seq += 1
                ts += len(wide)

    def _source(self, ch: SimChannel) -> SimChannel | None:
        """Whose audio a channel carries into Asterisk."""
        if ch.kind == "local1":
            return ch.peer
        if ch.kind == "pjsip":
            return ch
        if ch.kind == "snoop" and ch.snoop_target:
            target = self.channels.get(ch.snoop_target)
            return self._source(target) if target else None
        return None

    def _mix(self, channel_ids: list[str], t: float, n: int,
             exclude: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """What a bridge carries: the sum of its members' audio (silence frames with
        transmit_silence, none without when nobody sends)."""
        total = np.zeros((n, int(FRAME * RATE)), np.int32)
        mask = np.zeros(n, bool)
        for member_id in channel_ids:
            member = self.channels.get(member_id)
            src = self._source(member) if member and member_id != exclude else None
            if src is not None:
                samples, sent = src.window(t, n)
                total += samples
                mask |= sent
        if self.transmit_silence:
            mask[:] = True
        return np.clip(total, -32768, 32767).astype(np.int16), mask

    # --- bridges --------------------------------------------------------------------------------

    def get_bridge(self, bridge_id: str) -> SimBridge:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise not_found("Bridge")
        return bridge

    async def create_bridge(self, params: dict[str, str], app: str) -> dict[str, Any]:
        bridge_id = params.get("bridgeId") or str(uuid.uuid4())
        if bridge_id in self.bridges:
            raise AriHttpError(409, {"message": "Bridge with id already exists"})
        bridge = SimBridge(bridge_id, params.get("name", ""), app, self.stamp())
        self.bridges[bridge_id] = bridge
        return bridge.json()

    async def add_to_bridge(self, bridge: SimBridge, ch: SimChannel) -> None:
        if not ch.in_stasis:
            raise AriHttpError(422, {"message": "Channel not in Stasis application"})
        if any(r.target_uri == f"channel:{ch.id}" for r in self.live.values()):
            raise AriHttpError(409, {"message": "Channel currently recording"})
        if ch.bridge and ch.bridge != bridge.id:
            await self.leave_bridge(ch)
        if ch.id in bridge.channels:
            return
        bridge.channels.append(ch.id)
        ch.bridge = bridge.id
        bridge.app = bridge.app or ch.app or ""
        await self.emit(bridge.app, "ChannelEnteredBridge", bridge=bridge.json(), channel=ch.json())
        parties = [self.channels[c] for c in bridge.channels if self.channels[c].kind in ("local1", "pjsip")]
        if len(parties) == 2:
            a, b = parties
            for one, other in ((a, b), (b, a)):
                one.vars["BRIDGEPEER"] = other.name
                await self.emit(one.app, "ChannelVarset", variable="BRIDGEPEER", value=other.name, channel=one.json())

    async def leave_bridge(self, ch: SimChannel) -> None:
        bridge = self.bridges.get(ch.bridge or "")
        ch.bridge = None
        if bridge is None or ch.id not in bridge.channels:
            return
        bridge.channels.remove(ch.id)
        await self.emit(bridge.app, "ChannelLeftBridge", bridge=bridge.json(), channel=ch.json())

    async def destroy_bridge(self, bridge: SimBridge) -> None:
        for channel_id in list(bridge.channels):
            await self.leave_bridge(self.channels[channel_id])
        for rec in self.live.values():
            if rec.target_uri == f"bridge:{bridge.id}":
                rec.stop_reason = "bridge destroyed"
        del self.bridges[bridge.id]
        await self.emit(bridge.app, "BridgeDestroyed", bridge=bridge.json())

    # --- playbacks ------------------------------------------------------------------------------

    async def play(self, ch: SimChannel, params: dict[str, str], playback_id: str | None) -> dict[str, Any]:
        media = params.get("media")
        if not media:
            raise AriHttpError(400, {"message": "media must be specified"})
        if not ch.in_stasis:
            raise AriHttpError(409, {"message": "Channel not in Stasis application"})
        pb = SimPlayback(playback_id or params.get("playbackId") or str(uuid.uuid4()), media, ch, ch.app or "")
        self.playbacks[pb.id] = pb
        started = asyncio.Event()
        self.spawn(self._run_playback(pb, started))
        await asyncio.wait({asyncio.ensure_future(started.wait())}, timeout=0.05)
        return {**pb.json(), "state": "queued"}

    async def _run_playback(self, pb: SimPlayback, started: asyncio.Event) -> None:
        async with pb.target.playback_lock:
            if pb.state != "queued":
                started.set()
                return
            pb.state = "playing"
            await self.emit(pb.app, "PlaybackStarted", playback=pb.json())
            started.set()
            clip = None
            if pb.media_uri.startswith("sound:"):
                clip = self.find_sound(pb.media_uri[len("sound:"):])
            if clip is None:
                pb.state = "failed"
            else:
                try:
                    await asyncio.wait_for(pb.stop.wait(), clip.duration * self.scale)
                except TimeoutError:
                    pass
                if pb.state == "failed" or pb.id not in self.playbacks:
                    return  # finished by a hang-up
                pb.state = "done"
            self.playbacks.pop(pb.id, None)
            await self.emit(pb.app, "PlaybackFinished", playback=pb.json())

    async def stop_playback(self, pb: SimPlayback) -> None:
        pb.stop.set()
        if pb.state == "queued":
            pb.state = "canceled"
            self.playbacks.pop(pb.id, None)

    # --- recordings -----------------------------------------------------------------------------

    def _check_name(self, name: str, if_exists: str) -> None:
        if name in self.live or (name in self.stored and if_exists == "fail"):
            raise AriHttpError(409, {"message": f"Recording '{name}' already exists and can not be overwritten"})

    def _recording_params(self, params: dict[str, str], target_uri: str, app: str) -> SimRecording:
        name, fmt = params.get("name"), params.get("format")
        if not name or not fmt:
            raise AriHttpError(400, {"message": "Recording name and format are required"})
        if fmt not in ("wav", "wav16", "sln", "gsm", "ulaw"):
            raise AriHttpError(422, {"message": f"Unknown format {fmt}"})
        if_exists = params.get("ifExists", "fail")
        self._check_name(name, if_exists)
        return SimRecording(name, fmt, target_uri, app, float(params.get("maxDurationSeconds", 0)),
                            float(params.get("maxSilenceSeconds", 0)), params.get("beep") == "true",
                            params.get("terminateOn", "none"), if_exists)

    async def record_channel(self, ch: SimChannel, params: dict[str, str]) -> dict[str, Any]:
        if not ch.in_stasis:
            raise AriHttpError(409, {"message": "Channel is not in a Stasis application"})
        rec = self._recording_params(params, f"channel:{ch.id}", ch.app or "")
        if ch.bridge:
            rec.state, rec.cause = "failed", "Cannot record channel while in bridge"
            await self.emit(rec.app, "RecordingFailed", recording=rec.json())
            return {"name": rec.name, "format": rec.format, "state": "queued", "target_uri": rec.target_uri}
        self.live[rec.name] = rec
        rec.state = "recording"
        await self.emit(rec.app, "RecordingStarted", recording=rec.json())
        if rec.beep and self.find_sound("custom/beep") is None:
            # The beep sound is missing: the recording ends at once and nothing is stored.
            rec.state = "done"
            del self.live[rec.name]
            await self.emit(rec.app, "RecordingFinished", recording=rec.json())
            return {**rec.json(), "state": "recording"}
        rec.task = self.spawn(self._run_recording(rec, lambda t, n: self._channel_window(ch, t, n)))
        return {**rec.json(), "state": "queued"}

    async def record_bridge(self, bridge: SimBridge, params: dict[str, str]) -> dict[str, Any]:
        rec = self._recording_params(params, f"bridge:{bridge.id}", bridge.app)
        bridge.recorder_seq += 1
        recorder = f"Recorder/ARI-{bridge.recorder_seq:08x};2"
        for channel_id in bridge.channels:
            member = self.channels[channel_id]
            member.vars["BRIDGEPEER"] = recorder
            await self.emit(member.app, "ChannelVarset", variable="BRIDGEPEER", value=recorder, channel=member.json())
            member.connected = {"name": "", "number": ""}
            await self.emit_ch(member, "ChannelConnectedLine")
            if member.peer is not None:
                member.peer.pending_callerid = True
        self.live[rec.name] = rec

        async def start() -> None:
            await asyncio.sleep(0)
            rec.state = "recording"
            await self.emit(rec.app, "RecordingStarted", recording=rec.json())
            await self._run_recording(rec, lambda t, n: self._bridge_window(bridge, t, n))

        rec.task = self.spawn(start())
        return {**rec.json(), "state": "queued"}

    def _channel_window(self, ch: SimChannel, t: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        src = self._source(ch)
        if src is None:
            return np.zeros((n, int(FRAME * RATE)), np.int16), np.zeros(n, bool)
        samples, sent = src.window(t, n)
        if ch.kind == "snoop":
            sent = np.ones(n, bool)  # a snoop channel is timer-driven: it always yields frames
        return samples, sent

    def _bridge_window(self, bridge: SimBridge, t: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        if bridge.id not in self.bridges:
            return np.zeros((n, int(FRAME * RATE)), np.int16), np.zeros(n, bool)
        return self._mix(bridge.channels, t, n)

    async def _run_recording(self, rec: SimRecording,
                             window: Callable[[float, int], tuple[np.ndarray, np.ndarray]]) -> None:
        if rec.beep:
            await self.sleep(1.0)
        start = t = self.now()
        kept: list[np.ndarray] = []
        talk = 0.0
        silent_run = 0
        ended_by_silence = False
        while rec.stop_reason is None:
            await self.sleep(0.2)
            n = int((self.now() - t) / FRAME + 1e-9)
            if n <= 0:
                continue
            samples, sent = window(t, n)
            rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2, axis=1))
            for i in range(n):
                t += FRAME
                if sent[i]:
                    kept.append(samples[i] // 2)  # ARI recordings come out at half amplitude
                    if rms[i] > TALK_RMS:
                        talk += FRAME
                        silent_run = 0
                    else:
                        silent_run += 1
                if rec.max_silence and silent_run * FRAME >= rec.max_silence - 1e-9:
                    ended_by_silence = True
                    rec.stop_reason = "silence"
                elif rec.max_duration and t - start >= rec.max_duration - 1e-9:
                    rec.stop_reason = "duration"
                if rec.stop_reason is not None:
                    break
        if ended_by_silence:
            kept = kept[: max(0, len(kept) - silent_run)]
        samples_out = np.concatenate(kept).astype(np.int16) if kept else np.zeros(0, np.int16)
        seconds = len(samples_out) / RATE
        if rec.if_exists == "append" and rec.name in self.stored:
            prev = np.frombuffer(self.stored[rec.name][1][44:], dtype="<i2")
            samples_out = np.concatenate([prev, samples_out])
        self.stored[rec.name] = (rec.format, wav_bytes(samples_out))
        self.live.pop(rec.name, None)
        rec.state = "done"
        extra: dict[str, Any] = {"duration": int(seconds)}
        if rec.max_silence:
            talking = min(int(talk), extra["duration"])
            extra.update(talking_duration=talking, silence_duration=extra["duration"] - talking)
        await self.emit(rec.app, "RecordingFinished", recording=rec.json(**extra))

    async def stop_recording(self, name: str) -> None:
        rec = self.live.get(name)
        if rec is None:
            raise not_found("Recording")
        rec.stop_reason = "stopped"


class _MediaProtocol(asyncio.DatagramProtocol):
    def __init__(self, ch: SimChannel) -> None:
        self.ch = ch

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        payload = data[12 + 4 * (data[0] & 0x0F):]
        if self.ch.media_format == "ulaw":
            pcm = np.array([_ulaw_decode_sample(b) for b in payload], dtype="<i2").tobytes()
        else:
            pcm = np.frombuffer(payload, dtype=">i2").astype("<i2").tobytes()
        self.ch.media_received.extend(pcm)


def _ulaw_encode_sample(sample: int) -> int:
    """Reference G.711 μ-law (per sample, independent of the backend's table-driven codec)."""
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent = max(0, int(math.log2(sample)) - 7)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_sample(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if sign else sample
