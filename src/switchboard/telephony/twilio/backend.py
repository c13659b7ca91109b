"""`TwilioBackend`: outbound calls through Twilio's REST API, inbound calls from its voice webhook,
media over Media Streams. The webhook routes (`webhooks.py`) feed it; the dialer drives it.

Every call Twilio tells us about is matched by a one-time token we issued: the originate token in
the voice/status URLs of a call we placed, the stream token in the `<Connect><Stream>` parameters,
the dial token in a transfer's `<Dial>` URLs. Nothing unannounced gets a call or a stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter

from switchboard.telephony.backend import DialResult
from switchboard.telephony.call import Call, DialOutcome
from switchboard.telephony.twilio import twiml
from switchboard.telephony.twilio.call import LegFactory, TwilioCall
from switchboard.telephony.twilio.config import TwilioConfig
from switchboard.telephony.twilio.models import (
    FINAL_STATUSES,
    DialAction,
    StatusCallback,
    VoiceRequest,
    dial_outcome,
    is_machine,
)
from switchboard.telephony.twilio.rest import TwilioApiError, TwilioRest

if TYPE_CHECKING:
    from switchboard.settings import Settings
    from switchboard.telephony.registry import BackendDeps

log = logging.getLogger(__name__)

InboundHandler = Callable[[Call], Awaitable[None]]
ORIGINATE_GRACE = 20.0  # seconds past the ring timeout to wait for Twilio's final status


@dataclass
class _Originate:
    token: str
    call_id: str
    number: str
    line: str
    result: asyncio.Future[DialResult]
    sid: str = ""
    call: TwilioCall | None = field(default=None)


def _token() -> str:
    return secrets.token_urlsafe(24)


class TwilioBackend:
    name = "twilio"

    def __init__(self, config: TwilioConfig, *, leg_factory: LegFactory, rest: TwilioRest | None = None) -> None:
        self.config = config
        self.rest = rest or TwilioRest(config)
        self.leg_factory = leg_factory
        self.on_inbound: InboundHandler | None = None
        self.calls: dict[str, TwilioCall] = {}  # by CallSid
        self._originating: dict[str, _Originate] = {}  # by originate token
        self._stream_tokens: dict[str, TwilioCall] = {}
        self._dial_tokens: dict[str, TwilioCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.rejected_inbound = 0
        self.rejected_streams = 0

    @classmethod
    def from_deps(cls, deps: BackendDeps) -> TwilioBackend:
        """The backend `TELEPHONY_BACKEND=twilio` runs: its calls stream on the process's voice runtime."""
        from switchboard.telephony.registry import BackendStartError
        from switchboard.telephony.twilio.legs import voice_leg_factory

        if deps.voice is None:
            raise BackendStartError("TELEPHONY_BACKEND=twilio streams speech: build it with the voice layer")
        return cls(TwilioConfig.from_settings(deps.settings), leg_factory=voice_leg_factory(deps.voice))

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self, on_inbound: InboundHandler | None = None) -> None:
        if on_inbound is not None:
            self.on_inbound = on_inbound
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True
        for call in list(self.calls.values()):
            await call.hangup("shutdown")
        for pending in list(self._originating.values()):
            if pending.sid:
                try:
                    await self.rest.cancel(pending.sid)
                except TwilioApiError:
                    pass
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rest.aclose()

    def router(self) -> APIRouter:
        from switchboard.telephony.twilio.webhooks import build_router

        return build_router(self)

    # --- tokens -----------------------------------------------------------------------------------
    def issue_stream_token(self, call: TwilioCall) -> str:
        token = _token()
        self._stream_tokens[token] = call
        return token

    def claim_stream(self, token: str, call_sid: str) -> TwilioCall | None:
        """The call a media stream belongs to: its token must be one we issued (once) for that CallSid."""
        call = self._stream_tokens.pop(token, None) if token else None
        if call is None or call.call_sid != call_sid or call.hung_up:
            self.rejected_streams += 1
            return None
        return call

    def issue_dial_token(self, call: TwilioCall) -> str:
        token = _token()
        self._dial_tokens[token] = call
        return token

    def forget_dial_token(self, token: str) -> None:
        self._dial_tokens.pop(token, None)

    def dial_call(self, call_id: str, token: str) -> TwilioCall | None:
        call = self._dial_tokens.get(token)
        return call if call is not None and call.call_id == call_id else None

    def forget(self, call: TwilioCall) -> None:
        if self.calls.get(call.call_sid) is call:
            del self.calls[call.call_sid]
        for tokens in (self._stream_tokens, self._dial_tokens):
            for token in [t for t, c in tokens.items() if c is call]:
                del tokens[token]

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- outbound ---------------------------------------------------------------------------------
    async def originate(self, *, number: str, dial_string: str = "", line_number: str, caller_id: str = "",
                        timeout: float, variables: dict[str, str] | None = None) -> DialResult:
        """Place a call from one of our Twilio numbers to `number` (E.164). `dial_string` is the
        PBX's concern and is not used: Twilio dials numbers."""
        from_ = self.config.our_number(line_number) or self.config.our_number(caller_id)
        if from_ is None:
            return DialResult(DialOutcome.FAILED, None, f"line {line_number} is not one of TWILIO_NUMBERS")
        if self._stopping:
            return DialResult(DialOutcome.FAILED, None, "stopping")
        token = _token()
        call_id = (variables or {}).get("SWITCHBOARD_CALL_ID") or f"tw-{uuid.uuid4().hex[:12]}"
        pending = _Originate(token, call_id, number, from_, asyncio.get_running_loop().create_future())
        self._originating[token] = pending
        ring = max(5, min(600, math.ceil(timeout)))
        try:
            try:
                created = await self.rest.create_call(
                    to=number, from_=from_, url=self.config.url(f"/twilio/voice?o={token}"),
                    status_callback=self.config.url(f"/twilio/status?o={token}"), timeout=ring,
                    machine_detection=self.config.machine_detection)
            except TwilioApiError as exc:
                log.warning("originate to %s on %s failed: %s", _mask(number), from_, exc.message)
                return DialResult(DialOutcome.FAILED, None, f"twilio:{exc.message}")
            pending.sid = created.sid
            try:
                # The ring timeout, plus answering-machine detection's time when on, plus a grace.
                wait = ring + ORIGINATE_GRACE + (30.0 if self.config.machine_detection else 0.0)
                return await asyncio.wait_for(asyncio.shield(pending.result), wait)
            except TimeoutError:
                log.warning("originate %s: no answer or final status from Twilio in time; cancelling", created.sid)
                try:
                    await self.rest.cancel(created.sid)
                except TwilioApiError:
                    pass
                return DialResult(DialOutcome.FAILED, None, "failed:watchdog")
        finally:
            self._originating.pop(token, None)

    # --- webhooks (called by the routes once the signature checked out) ---------------------------
    def on_voice(self, req: VoiceRequest, originate_token: str | None) -> str:
        """POST /twilio/voice: the TwiML for a call that rang in, or for one of ours that was answered."""
        if req.account_sid != self.config.account_sid:
            log.warning("voice webhook for another account (%s); hanging up", req.account_sid)
            return twiml.hangup()
        if originate_token:
            return self._outbound_answered(req, originate_token)
        if req.direction != "inbound":
            log.warning("voice webhook for unknown %s call %s; hanging up", req.direction, req.call_sid)
            return twiml.hangup()
        return self._inbound(req)

    def _outbound_answered(self, req: VoiceRequest, token: str) -> str:
        pending = self._originating.get(token)
        if pending is None or pending.result.done():
            log.warning("voice webhook for call %s nobody waits for; hanging up", req.call_sid)
            return twiml.hangup()
        pending.sid = pending.sid or req.call_sid
        if is_machine(req.answered_by):
            log.info("call %s answered by %s; hanging up", req.call_sid, req.answered_by)
            pending.result.set_result(DialResult(DialOutcome.NO_ANSWER, None, f"answered_by:{req.answered_by}"))
            return twiml.hangup()
        call = TwilioCall(self, call_sid=req.call_sid, call_id=pending.call_id, direction="outbound",
                          remote_number=pending.number, line_number=pending.line, answered_by=req.answered_by)
        self.calls[req.call_sid] = call
        document = call.new_stream_twiml()
        pending.call = call
        pending.result.set_result(DialResult(DialOutcome.ANSWERED, call, "answered"))
        return document

    def _inbound(self, req: VoiceRequest) -> str:
        line = self.config.our_number(req.to)
        if line is None or self.on_inbound is None or self._stopping:
            self.rejected_inbound += 1
            log.info("rejecting inbound call %s to %s", req.call_sid, req.to)
            return twiml.reject("busy" if self._stopping else "rejected")
        existing = self.calls.get(req.call_sid)
        if existing is not None:  # Twilio retried the webhook: same call, new stream token
            return existing.new_stream_twiml()
        call = TwilioCall(self, call_sid=req.call_sid, call_id=f"tw-{uuid.uuid4().hex[:12]}", direction="inbound",
                          remote_number=req.from_, line_number=line)
        self.calls[req.call_sid] = call
        document = call.new_stream_twiml()
        self._spawn(self._run_inbound(call))
        return document

    async def _run_inbound(self, call: TwilioCall) -> None:
        assert self.on_inbound is not None
        try:
            await self.on_inbound(call)
        except Exception:
            log.exception("inbound call %s failed", call.call_id)
        finally:
            if not call.hung_up:
                await call.hangup("normal")

    def on_status(self, cb: StatusCallback, originate_token: str | None) -> None:
        """POST /twilio/status: a call we placed never got answered, or a live call ended."""
        pending = self._originating.get(originate_token or "")
        if pending is not None and not pending.result.done() and cb.call_status in FINAL_STATUSES:
            reason = cb.call_status if not cb.sip_response_code else f"{cb.call_status}:sip{cb.sip_response_code}"
            if is_machine(cb.answered_by):
                outcome, reason = DialOutcome.NO_ANSWER, f"answered_by:{cb.answered_by}"
            else:
                outcome = dial_outcome(cb.call_status)
            pending.result.set_result(DialResult(outcome, None, reason))
            return
        call = self.calls.get(cb.call_sid)
        if call is not None and cb.call_status in FINAL_STATUSES:
            call.far_end_gone(cb.call_status)

    def on_dial_action(self, call_id: str, token: str, action: DialAction) -> str:
        call = self.dial_call(call_id, token)
        if call is None or call.call_sid != action.call_sid:
            log.warning("<Dial> action for unknown call %s", action.call_sid)
            return twiml.hangup()
        self.forget_dial_token(token)
        return call.dial_ended(token, action.dial_call_status)

    def on_operator_status(self, call_id: str, token: str, cb: StatusCallback) -> None:
        call = self.dial_call(call_id, token)
        if call is None or (cb.parent_call_sid and cb.parent_call_sid != call.call_sid):
            log.warning("operator status for unknown call %s", cb.call_sid)
            return
        if cb.call_status == "in-progress":
            call.operator_answered(token)


def configure(settings: Settings) -> Settings:
    """Settings checked before anything is built (a missing or malformed TWILIO_* setting is a
    `TwilioConfigError` naming it); without OUTBOUND_NUMBERS, the Twilio numbers are the outbound lines."""
    TwilioConfig.from_settings(settings)
    if not settings.outbound_numbers:
        settings = settings.model_copy(update={"outbound_numbers": settings.twilio_numbers})
    return settings


async def build_stream_prompts(settings: Settings) -> None:
    """Streamed calls play `sound:custom/*` from PROMPTS_WAV_DIR: build what changed in
    PROMPTS_SRC_DIR first (a no-op when everything is up to date). A prompt that fails to build is
    logged, not fatal: the calls that use it fail with a `CallFailed` naming the file."""
    from switchboard.telephony.asterisk.prompts import PromptError, build_prompts, find_sources

    if not find_sources(settings.prompts_src_dir):
        return
    try:
        report = await build_prompts(settings.prompts_src_dir, settings.prompts_wav_dir)
    except PromptError as exc:
        log.warning("prompts: %s", exc)
        return
    if report.failed:
        log.warning("prompts: %d failed to build (see `switchboard prompts build`): %s", len(report.failed),
                    "; ".join(reason for _, reason in report.failed))


def _mask(number: str) -> str:
    return number[:-4] + "****" if len(number) > 6 else "****"
