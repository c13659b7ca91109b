"""The `webrtc` telephony backend: calls from browsers, straight into the engine, no media server.

`POST /api/v1/webrtc/offer` hands the page's SDP offer and its (already consumed) call scope to
`accept`, which answers at once and runs the call in the background: it waits for the connection
(ICE + DTLS) to come up, builds the streamed `Call` on a `WebRTCPort`, and gives it to the same
inbound path a phone call takes (the dialer's `handle_inbound`: stored, reported, counted), with
the scenario the token was scoped to. While the call runs, the engine's timeline is mirrored to the
page (`observe`), and an avatar session runs beside it when a provider is configured.

The call ends — with a result, because the engine turns every ending into one — when the page hangs
up, the tab closes or the network goes (no caller audio for `media_timeout`; ICE/DTLS failure), the
flow ends, or `max_call_seconds` pass. Whatever the ending, the peer connection, its tracks and tasks,
the avatar session and the call's entry here are released (`active` is the proof tests read).

Outbound dialing is not something a browser can take: `originate` fails at once as a trunk failure
(retried, and counted toward the dialer's failure pause), never as the contact's own result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switchboard.avatar.base import AvatarProvider, AvatarSession, AvatarUnavailable
from switchboard.telephony.backend import DialResult, InboundHandler
from switchboard.telephony.call import Call, DialOutcome
from switchboard.telephony.webrtc.feed import CallFeed
from switchboard.telephony.webrtc.peer import BrowserPeer, IceConfig
from switchboard.telephony.webrtc.port import WebRTCPort
from switchboard.telephony.webrtc.tokens import CallScope

if TYPE_CHECKING:
    from switchboard.telephony.registry import BackendDeps

log = logging.getLogger(__name__)

MakeCall = Callable[["BrowserCall"], Call]
"""Builds the streamed `Call` (the voice layer's) on a browser call's port and signalling."""
BrowserInbound = Callable[[Call, Any], Awaitable[None]]
"""Runs an inbound call on a given scenario (the dialer's `handle_inbound(call, scenario=...)`)."""


class Busy(Exception):
    """Every browser-call slot of this process is taken."""


@dataclass(slots=True)
class Answer:
    sdp: str
    type: str
    call_id: str


@dataclass
class BrowserCall:
    """One browser call's parts, as long as it lasts."""

    call_id: str
    remote: str  # who is calling, as stored with the call (web:<user> / web:anonymous)
    scope: CallScope
    peer: BrowserPeer
    feed: CallFeed
    first_persona: str | None = None  # whom the flow talks with first (the avatar's first face)
    started: float = field(default_factory=time.monotonic)
    call: Call | None = None
    avatar: AvatarSession | None = None
    task: asyncio.Task[None] | None = None
    side_tasks: set[asyncio.Task[None]] = field(default_factory=set)  # avatar start/switch
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.side_tasks.add(task)
        task.add_done_callback(self.side_tasks.discard)

    @property
    def port(self) -> WebRTCPort:
        return self.peer.port


@dataclass
class WebRTCBackend:
    make_call: MakeCall
    sample_rate: int = 16000
    ice: IceConfig = field(default_factory=IceConfig)
    max_calls: int = 20
    connect_timeout: float = 20.0
    media_timeout: float = 8.0
    max_call_seconds: float = 1800.0
    avatar: AvatarProvider | None = None
    display_names: Mapping[str, str] = field(default_factory=dict)
    name: str = "webrtc"
    _on_inbound: BrowserInbound | None = None
    _calls: dict[str, BrowserCall] = field(default_factory=dict)
    _stopping: bool = False
    _stopped: bool = False
    connects_failed: int = 0

    @classmethod
    def from_deps(cls, deps: BackendDeps) -> WebRTCBackend:
        """From settings and the process's voice runtime (`telephony.registry`)."""
        from switchboard.avatar.registry import build_avatar
        from switchboard.brain.personas import PersonaRegistry
        from switchboard.telephony.webrtc.call import BrowserCallFactory

        settings = deps.settings
        if deps.voice is None:
            raise RuntimeError("the webrtc backend needs the voice runtime (VAD, pacer, TTS)")
        names: dict[str, str] = {}
        if settings.personas_dir.is_dir():
            personas = PersonaRegistry.load_dir(settings.personas_dir)
            names = {n: personas.get(n).display_name or n for n in personas.names()}
        return cls(make_call=BrowserCallFactory(deps.voice), sample_rate=settings.webrtc_sample_rate,
                   ice=IceConfig.parse(settings.webrtc_ice_servers, settings.webrtc_turn_username,
                                       settings.webrtc_turn_password.get_secret_value()),
                   max_calls=settings.webrtc_max_calls, connect_timeout=settings.webrtc_connect_timeout,
                   media_timeout=settings.webrtc_media_timeout, max_call_seconds=settings.webrtc_max_call_seconds,
                   avatar=build_avatar(settings), display_names=names)

    # --- TelephonyBackend ---------------------------------------------------------------------------
    async def start(self, on_inbound: InboundHandler | BrowserInbound) -> None:
        """`on_inbound(call, scenario)` runs a browser call; a plain `InboundHandler` (one argument)
        is accepted too and then the call gets the next inbound scenario, as a phone call would."""
        self._stopping = False
        self._on_inbound = on_inbound  # type: ignore[assignment]

    async def originate(self, *, number: str, dial_string: str, line_number: str, caller_id: str,
                        timeout: float, variables: dict[str, str] | None = None) -> DialResult:
        # A configuration error, not the contact's doing: a trunk failure (the contact is retried;
        # the dialer pauses and alerts after FAIL_ALERT_THRESHOLD of them) rather than "missed".
        log.error("webrtc: asked to dial %s, but browser calls cannot be placed: dial outbound over a phone "
                  "backend (TELEPHONY_BACKEND=asterisk with WEBRTC_ENABLED=true)", line_number)
        return DialResult(DialOutcome.FAILED, None, "the webrtc backend takes calls from browsers; "
                                                    "it cannot dial phone numbers")

    async def stop(self, timeout: float = 15.0) -> None:
        """Hang up every browser call (each ends with a result) and release them all; idempotent."""
        if self._stopped:
            return
        self._stopping = True
        calls = list(self._calls.values())
        for bc in calls:
            bc.port.hangup("shutdown")
        tasks = [bc.task for bc in calls if bc.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for bc in calls:
            await bc.peer.close()
        self._stopped = True
        if self.avatar is not None:
            await self.avatar.aclose()

    # --- browser calls ----------------------------------------------------------------------------
    @property
    def active(self) -> dict[str, BrowserCall]:
        return dict(self._calls)

    async def accept(self, sdp: str, kind: str, scope: CallScope, scenario: Any, *,
                     persona: str | None = None) -> Answer:
        """Answer a page's offer and run the call in the background. Raises `Busy` when every slot
        is taken and `OfferError` when the offer cannot carry a call."""
        if self._on_inbound is None or self._stopping:
            raise Busy("browser calls are not being taken (starting or stopping)")
        if len(self._calls) >= self.max_calls:
            raise Busy(f"all {self.max_calls} browser-call slots are in use")
        call_id = f"web-{uuid.uuid4().hex[:12]}"
        feed = CallFeed(display_names=self.display_names)
        port = WebRTCPort(self.sample_rate, media_timeout=self.media_timeout)
        peer = BrowserPeer(port, feed, self.ice)
        bc = BrowserCall(call_id, f"web:{scope.caller}", scope, peer, feed, first_persona=persona)
        self._calls[call_id] = bc  # counted from now on, so concurrent offers respect max_calls
        try:
            answer = await peer.answer(sdp, kind)
        except BaseException:
            self._calls.pop(call_id, None)
            await peer.close()
            raise
        feed.publish({"type": "state", "state": "connecting", "call_id": call_id})
        bc.task = asyncio.create_task(self._run(bc, scenario), name=f"webrtc {call_id}")
        return Answer(answer.sdp, answer.type, call_id)

    async def _run(self, bc: BrowserCall, scenario: Any) -> None:
        limit: asyncio.TimerHandle | None = None
        try:
            try:
                await asyncio.wait_for(bc.peer.connected.wait(), self.connect_timeout)
            except TimeoutError:
                self.connects_failed += 1
                log.warning("webrtc: call %s never connected within %.0f s (ICE/DTLS); no call was run",
                            bc.call_id, self.connect_timeout)
                return
            if bc.port.hangup_cause is not None:
                return
            bc.feed.publish({"type": "state", "state": "connected", "call_id": bc.call_id})
            limit = asyncio.get_running_loop().call_later(self.max_call_seconds, bc.port.hangup, "max_duration")
            bc.call = self.make_call(bc)
            if self.avatar is not None:
                bc.spawn(self._start_avatar(bc))
            assert self._on_inbound is not None
            await self._on_inbound(bc.call, scenario)
        except Exception:
            log.exception("webrtc: call %s failed", bc.call_id)
        finally:
            if limit is not None:
                limit.cancel()
            await self._end(bc)

    async def _end(self, bc: BrowserCall) -> None:
        """Tell the page, then let go of everything: the session (VAD stream, port), the peer
        connection, the avatar session, the entry in `active`."""
        with contextlib.suppress(Exception):
            bc.peer.say_goodbye()
            await self._flush(bc)
        if bc.call is not None:
            try:
                await bc.call.hangup("normal")  # closes the voice session whoever hung up first
            except Exception:
                log.exception("webrtc: closing call %s", bc.call_id)
        await bc.peer.close()
        for task in list(bc.side_tasks):
            task.cancel()
        await asyncio.gather(*bc.side_tasks, return_exceptions=True)
        if bc.avatar is not None and self.avatar is not None:
            await self.avatar.end(bc.avatar)
            bc.avatar = None
        self._calls.pop(bc.call_id, None)
        bc.ended.set()

    @staticmethod
    async def _flush(bc: BrowserCall, limit: float = 2.0) -> None:
        """Give the data channel a moment to deliver the last events (the result) before closing."""
        channel = bc.peer.channel
        if channel is None or channel.readyState != "open" or bc.port.hangup_cause == "connection_lost":
            return
        deadline = time.monotonic() + limit
        await asyncio.sleep(0.05)
        while channel.bufferedAmount > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # SCTP acknowledgement on the way back

    # --- what the page sees -------------------------------------------------------------------------
    def observe(self, call_id: str, event: str, detail: Mapping[str, Any]) -> None:
        """A timeline entry of some call; mirrored to the page when it is a browser call."""
        bc = self._calls.get(call_id)
        if bc is None:
            return
        bc.feed.timeline(event, detail)
        if event == "turn" and detail.get("kind") == "handoff" and bc.avatar is not None:
            bc.spawn(self._switch_avatar(bc, str(detail.get("to") or "")))

    async def _start_avatar(self, bc: BrowserCall) -> None:
        assert self.avatar is not None
        persona = bc.feed.persona or bc.first_persona or ""
        try:
            session = await self.avatar.start(bc.call_id, persona)
        except AvatarUnavailable as exc:
            log.warning("webrtc: call %s goes on without an avatar: %s", bc.call_id, exc)
            bc.feed.publish({"type": "avatar", "status": "unavailable", "reason": str(exc)[:200]})
            return
        except asyncio.CancelledError:
            raise
        bc.avatar = session  # from here on, `_end` ends it
        bc.feed.publish({"type": "avatar", "status": "live", **session.for_page()})

    async def _switch_avatar(self, bc: BrowserCall, persona: str) -> None:
        assert self.avatar is not None
        current = bc.avatar
        if current is None or not persona:
            return
        bc.avatar = None  # while switching, the session belongs to `switch` (it ends the old one)
        try:
            new = await self.avatar.switch(current, persona)
        except AvatarUnavailable as exc:
            bc.feed.publish({"type": "avatar", "status": "unavailable", "reason": str(exc)[:200]})
            return
        except asyncio.CancelledError:
            bc.avatar = current  # cancelled by `_end`: it ends whichever is current
            raise
        bc.avatar = new
        if new is not current or new.session_id != current.session_id:
            bc.feed.publish({"type": "avatar", "status": "live", **new.for_page()})
