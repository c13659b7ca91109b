"""`AsteriskBackend`: places outbound calls, accepts inbound ones, keeps sessions in step with Asterisk.

One REST client, one WebSocket, one router shared by every call. On every WebSocket reconnect the
backend lists the channels Asterisk still has and reconciles each session with them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.telephony.asterisk.client import AriClient, AriError
from switchboard.telephony.asterisk.events import AriEventStream, EventRouter, ws_url_from
from switchboard.telephony.asterisk.models import StasisStart
from switchboard.telephony.asterisk.session import (
    AriCall,
    AriConfig,
    Synthesize,
    classify_failure,
    new_call_id,
)
from switchboard.telephony.backend import DialResult
from switchboard.telephony.call import CallerHangup, CallFailed, DialOutcome

if TYPE_CHECKING:
    from switchboard.voice.runtime import VoiceRuntime

log = logging.getLogger(__name__)

InboundHandler = Callable[[AriCall], Awaitable[None]]  # a Call handler (telephony.backend)


@dataclass(slots=True)
class OriginateResult(DialResult):
    """A `DialResult` that also unpacks as `(outcome, call)`; `reason` is the attempt's result code
    (`answered`, `busy`, `no_answer`, `failed:congestion`, `failed:<cause_txt>`), `cause` the Q.850 one."""

    cause: int = 0

    @property
    def detail(self) -> str:
        return self.reason

    def __iter__(self) -> Iterator[object]:
        return iter((self.outcome, self.call))


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


class AsteriskBackend:
    def __init__(self, client: AriClient, config: AriConfig, *, ws_url: str, username: str, password: str,
                 synthesize: Synthesize | None = None, on_inbound: InboundHandler | None = None,
                 allowed_inbound: list[str] | None = None, voice: VoiceRuntime | None = None) -> None:
        self.client = client
        self.config = config
        self.router = EventRouter()
        self.router.on_unclaimed_stasis_start = self._on_unclaimed
        self.synthesize = synthesize
        self.voice = voice  # streamed AI turns (AriCall.streaming) run on the voice layer; None: files only
        self.on_inbound = on_inbound
        self.allowed_inbound = {_digits(n) for n in (allowed_inbound or []) if _digits(n)}
        self.sessions: dict[str, AriCall] = {}
        self._originating: dict[str, AriCall] = {}
        self.rejected_inbound = 0
        self.stream = AriEventStream(ws_url, config.app, username, password, self.router,
                                     on_connect=self._on_connect)
        self._tasks: set[asyncio.Task[object]] = set()

    @classmethod
    def from_settings(cls, settings: object, *, synthesize: Synthesize | None = None,
                      on_inbound: InboundHandler | None = None,
                      allowed_inbound: list[str] | None = None,
                      voice: VoiceRuntime | None = None) -> AsteriskBackend:
        """`voice` is the process's voice layer (converse steps stream over externalMedia on it);
        with ARI_STREAMING=false, or none given, converse steps use PBX files."""
        s = settings
        if not getattr(s, "ari_streaming", True):
            voice = None
        client = AriClient(s.ari_base_url, s.ari_username, s.ari_password.get_secret_value(),  # type: ignore[attr-defined]
                           app=s.ari_app_name, timeout=s.ari_timeout)  # type: ignore[attr-defined]
        if allowed_inbound is None:
            allowed_inbound = s.split_list(s.outbound_numbers)  # type: ignore[attr-defined]
        return cls(client, AriConfig.from_settings(s), ws_url=ws_url_from(s.ari_base_url, s.ari_ws_url),  # type: ignore[attr-defined]
                   username=s.ari_username, password=s.ari_password.get_secret_value(),  # type: ignore[attr-defined]
                   synthesize=synthesize, on_inbound=on_inbound, allowed_inbound=allowed_inbound, voice=voice)

    name = "asterisk"

    async def start(self, on_inbound: InboundHandler | None = None) -> None:
        """Connect the event WebSocket (and take inbound calls with `on_inbound`, when given)."""
        if on_inbound is not None:
            self.on_inbound = on_inbound
        await self.stream.start()

    async def stop(self) -> None:
        await self.close()

    async def close(self) -> None:
        for call in list(self.sessions.values()):
            await call.hangup("normal")
        for task in list(self._tasks):
            task.cancel()
        await self.stream.close()
        await self.client.aclose()

    def _spawn(self, aw: Awaitable[object]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _register(self, call: AriCall) -> None:
        self.sessions[call.call_id] = call

    def _ended(self, call: AriCall) -> None:
        self.sessions.pop(call.call_id, None)

    # --- outbound -------------------------------------------------------------------------------

    def dial_endpoint(self, number: str) -> str:
        """A full endpoint (`PJSIP/...`, `Local/...`) is used as is; otherwise the outbound trunk."""
        if "/" in number:
            return number
        return f"PJSIP/{number}@{self.config.outbound_trunk}"

    async def originate(self, number: str, line: str | None = None, scenario_hint: str | None = None, *,
                        dial_string: str | None = None, line_number: str | None = None,
                        caller_id: str | None = None, timeout: float | None = None,
                        variables: dict[str, str] | None = None, remote_number: str | None = None,
                        call_id: str | None = None) -> OriginateResult:
        """Ring a customer; the result unpacks as `(outcome, call)` (call only when answered).

        Two spellings: `originate(number, line, scenario_hint)`, where `number` may be a full dial
        string or a bare number for `OUTBOUND_TRUNK`; or the `TelephonyBackend` keywords
        (`number=` the customer, `dial_string=` from the dialer's template, `line_number=`,
        `caller_id=`, `timeout=`, `variables=`).
        """
        call_id = call_id or new_call_id()
        line = line_number or line
        ring_timeout = max(1, math.ceil(timeout)) if timeout else self.config.origination_timeout
        endpoint = dial_string or self.dial_endpoint(number)
        if remote_number is None:
            remote_number = _bare(number)
        call = AriCall(client=self.client, router=self.router, config=self.config, call_id=call_id,
                       direction="outbound", remote_number=remote_number, line_number=line,
                       channel_id=call_id, far_channel_id=f"{call_id}-far", synthesize=self.synthesize,
                       on_ended=self._ended, voice=self.voice)
        vars_ = {"SWITCHBOARD_CALL_ID": call_id, "SWITCHBOARD_ROLE": "customer"}
        if scenario_hint:
            vars_["SWITCHBOARD_SCENARIO"] = scenario_hint
        vars_.update(variables or {})
        self._originating[call_id] = call
        try:
            try:
                await self.client.originate(endpoint, channel_id=call_id, other_channel_id=f"{call_id}-far",
                                            caller_id=caller_id or line or None, timeout=ring_timeout,
                                            variables=vars_, app_args=f"outbound,{call_id}")
            except AriError as exc:
                call.detach()
                log.warning("originate %s failed: %s", endpoint, exc)
                return OriginateResult(DialOutcome.FAILED, None, f"failed:{exc.message}", exc.status)
            answered, cause, cause_txt, status = await call.wait_started(
                ring_timeout + self.config.watchdog_grace)
        finally:
            self._originating.pop(call_id, None)
        if not answered:
            call.detach()
            if cause == -1:  # watchdog: Asterisk never reported; make sure nothing is left ringing
                try:
                    await self.client.hangup(call_id, "normal")
                except AriError:
                    pass
                return OriginateResult(DialOutcome.FAILED, None, "failed:watchdog", 0)
            outcome, detail = classify_failure(cause, cause_txt, status)
            return OriginateResult(outcome, None, detail, cause)
        self._register(call)
        try:
            await call.ensure_bridge()
        except CallerHangup:
            pass  # answered and gone at once: the flow's first step sees CallerHangup
        except CallFailed as exc:
            log.warning("call %s: bridge setup failed: %s", call_id, exc.reason)
            await call.hangup("normal")
            return OriginateResult(DialOutcome.FAILED, None, "failed:bridge", 0)
        return OriginateResult(DialOutcome.ANSWERED, call, "answered", 0)

    # --- inbound --------------------------------------------------------------------------------

    def _on_unclaimed(self, event: StasisStart) -> None:
        if event.args and event.args[0] in ("operator", "snoop", "outbound"):
            # one of ours that nobody waits for any more (given up on, or a previous process): an orphan
            self._spawn(self._hangup_quietly(event.channel.id))
            return
        self._spawn(self._accept_inbound(event))

    async def _hangup_quietly(self, channel_id: str) -> None:
        try:
            await self.client.hangup(channel_id, "normal")
        except AriError:
            pass

    async def _accept_inbound(self, event: StasisStart) -> None:
        channel = event.channel
        dialled = channel.dialplan.exten
        if len(event.args) > 1 and event.args[0] == "inbound":
            dialled = event.args[1]
        if self.on_inbound is None or _digits(dialled) not in self.allowed_inbound:
            self.rejected_inbound += 1
            log.info("rejecting inbound call to %r from %r", dialled, channel.caller.number)
            try:
                await self.client.hangup(channel.id, "rejected")
            except AriError:
                pass
            return
        call = AriCall(client=self.client, router=self.router, config=self.config, call_id=channel.id,
                       direction="inbound", remote_number=channel.caller.number, line_number=dialled,
                       channel_id=channel.id, synthesize=self.synthesize, on_ended=self._ended,
                       voice=self.voice)
        call.mark_answered(event)
        self._register(call)
        try:
            # A hang-up before this point was not routed to the call yet: check it is still there.
            await self.client.get_channel(channel.id)
        except AriError:
            await call.hangup("normal")
            return
        await self.on_inbound(call)

    # --- reconnect ------------------------------------------------------------------------------

    async def _on_connect(self, reconnected: bool) -> None:
        if reconnected:
            await self.reconcile()

    async def reconcile(self) -> None:
        """Compare sessions with the channels and bridges Asterisk still has."""
        try:
            channels = {c.id for c in await self.client.list_channels()}
            bridges = {b.id for b in await self.client.list_bridges()}
        except AriError as exc:
            log.warning("reconcile: cannot list channels/bridges: %s", exc)
            return
        for call in list(self._originating.values()):
            await call.settle_pending_legs(channels)
        for call in list(self.sessions.values()):
            await call.reconcile(channels)
            if call.bridge_id not in bridges and call._bridge_ready and not call.hung_up:
                log.warning("call %s lost its bridge; ending it", call.call_id)
                await call.hangup("normal")


def _bare(number: str) -> str:
    """The customer's number out of a dial string such as `PJSIP/0912...@trunk`."""
    if "/" not in number:
        return number
    tail = number.split("/", 1)[1]
    return tail.split("@", 1)[0]
