"""`TwilioCall`: one Twilio call as the engine's `Call`.

Audio runs on the call's current media stream: a streamed leg (the voice layer's `Call` on a Media
Streams port) that `play`, `speak` and `record` are handed to. Signalling is Twilio's REST API and
its webhooks: the call is hung up with a call update, a transfer is a call update to `<Dial>`, and
the far end's hang-up is the `completed` status callback (or the stream's `stop`).

A transfer ends the media stream (Twilio leaves `<Connect>` for `<Dial>`). When nobody answers, the
`<Dial>` action answers with a new `<Connect><Stream>` and the flow goes on (`on_failure`) on the
new stream; that `stop` is therefore not a hang-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from switchboard.telephony.call import (
    Call,
    CallerHangup,
    CallEvent,
    CallFailed,
    Direction,
    HangupSignal,
    PlaybackResult,
    Recording,
    TransferResult,
)
from switchboard.telephony.twilio import twiml
from switchboard.telephony.twilio.models import transfer_reason
from switchboard.telephony.twilio.rest import TwilioApiError
from switchboard.voice.call import STREAMED

if TYPE_CHECKING:
    from switchboard.telephony.twilio.backend import TwilioBackend
    from switchboard.telephony.twilio.media import TwilioMediaPort

log = logging.getLogger(__name__)

TRANSFER_GRACE = 15.0  # seconds past the ring timeout to wait for Twilio's <Dial> callbacks


class StreamedLeg(Protocol):
    """One media stream of a call, as the voice layer gives it: a `Call` for audio (play, speak,
    record) that runs until the stream ends."""

    call: Call

    async def run(self) -> None:
        """Pump the stream until Twilio stops it or the socket closes."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Transfer:
    operator: str
    answered: asyncio.Future[None]
    ended: asyncio.Future[str]  # the <Dial> action's DialCallStatus
    token: str


@dataclass(eq=False)
class TwilioCall:
    capabilities = STREAMED  # audio is streamed (turn-taking by the voice layer)
    backend: TwilioBackend
    call_sid: str
    call_id: str
    direction: Direction
    remote_number: str
    line_number: str | None
    answered_by: str | None = None
    hangup_signal: HangupSignal = field(default_factory=HangupSignal)
    hung_up_by: str | None = None
    operator_number: str | None = None
    streams: int = 0  # media streams this call has had (a failed transfer opens another)
    _leg: StreamedLeg | None = None
    _retired: list[StreamedLeg] = field(default_factory=list)  # legs a transfer ended on purpose
    _leg_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stream_token: str | None = None
    _transfer: _Transfer | None = None
    _events: asyncio.Queue[CallEvent] = field(default_factory=asyncio.Queue)
    _hanging_up: bool = False

    # --- state ------------------------------------------------------------------------------------
    @property
    def hung_up(self) -> bool:
        return self.hangup_signal.is_set

    def far_end_gone(self, cause: str = "normal") -> None:
        """Twilio reported the call over (status `completed`, or the stream stopped outside a transfer)."""
        if self.hangup_signal.is_set:
            return
        self.hung_up_by = self.hung_up_by or "caller"
        self.hangup_signal.set(cause)
        self._events.put_nowait(CallEvent("hangup", {"cause": cause, "by": self.hung_up_by}))
        transfer = self._transfer
        if transfer is not None and not transfer.ended.done():
            transfer.ended.set_result("completed")
        self.backend.forget(self)

    # --- media streams ----------------------------------------------------------------------------
    def new_stream_twiml(self) -> str:
        """`<Connect><Stream>` for this call with a fresh one-time token the media route will claim."""
        self._stream_token = self.backend.issue_stream_token(self)
        return twiml.connect_stream(self.backend.config.ws_url("/twilio/media"), token=self._stream_token,
                                    call_id=self.call_id)

    async def run_stream(self, leg: StreamedLeg) -> None:
        """Serve one media stream until it ends (called by the media WebSocket route)."""
        if self.hung_up:
            await leg.close()
            return
        self.streams += 1
        self._leg = leg
        self._leg_ready.set()
        try:
            await leg.run()
        finally:
            if self._leg is leg:
                self._leg = None
                self._leg_ready.clear()
            await leg.close()
            retired = any(r is leg for r in self._retired)
            self._retired = [r for r in self._retired if r is not leg]
            if not retired and not self._hanging_up:
                # Twilio stopped the stream on its own: the caller is gone.
                self.far_end_gone("stream_stopped")

    async def _audio(self) -> Call:
        """The streamed leg audio goes through; waits for the stream to (re)connect."""
        self.hangup_signal.check()
        if self._leg is not None:
            return self._leg.call
        waiter = asyncio.ensure_future(self._leg_ready.wait())
        try:
            await asyncio.wait_for(self.hangup_signal.race(waiter), self.backend.config.stream_timeout)
        except TimeoutError:
            log.warning("call %s: no media stream within %.0f s; ending it", self.call_id,
                        self.backend.config.stream_timeout)
            await self.hangup("no_media")
            raise CallFailed("media stream did not connect") from None
        if self._leg is None:
            self.hangup_signal.check()
            raise CallFailed("media stream closed")
        return self._leg.call

    # --- Call ---------------------------------------------------------------------------------------
    async def answer(self) -> None:
        """Twilio answered already: inbound calls with our `<Connect>`, outbound calls when picked up."""
        self.hangup_signal.check()

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        return await (await self._audio()).play(prompt, interruptible=interruptible)

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        return await (await self._audio()).speak(text, language=language, voice=voice, interruptible=interruptible)

    async def speak_stream(self, sentences: AsyncIterable[str], *, language: str | None = None,
                           voice: str | None = None, interruptible: bool = False) -> PlaybackResult:
        leg = await self._audio()
        return await leg.speak_stream(sentences, language=language, voice=voice,  # type: ignore[attr-defined]
                                      interruptible=interruptible)

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        return await (await self._audio()).record(max_duration=max_duration, max_silence=max_silence,
                                                  terminate_on=terminate_on)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float,
                       hold_prompt: str | None = None) -> TransferResult:
        """Ring an operator with `<Dial callerId=…>` and bridge them in when they answer.

        `<Dial>` plays ringback to the caller while the operator's phone rings and cannot play our
        audio, so the hold prompt is played on the stream first."""
        self.hangup_signal.check()
        # The stream must be ours before <Dial> replaces it: a stream still connecting when the
        # update goes out would be stopped by Twilio unretired, and read as the caller hanging up.
        await self._audio()
        if hold_prompt:
            await self.play(hold_prompt)
        loop = asyncio.get_running_loop()
        token = self.backend.issue_dial_token(self)
        transfer = _Transfer(operator_number, loop.create_future(), loop.create_future(), token)
        self._transfer = transfer
        query = f"?call={self.call_id}&t={token}"
        document = twiml.dial_operator(
            operator_number, caller_id=caller_id or self.remote_number or self.backend.config.operator_caller_id,
            timeout=timeout, action_url=self.backend.config.url("/twilio/dial" + query),
            answered_url=self.backend.config.url("/twilio/dial/answered" + query))
        # Twilio leaves <Connect> for <Dial>: the stream's end is the transfer's, not the caller's.
        # Retired before the update is sent: Twilio may stop the stream before its REST answer
        # reaches us, and that `stop` must not read as the caller hanging up.
        leg = self._leg
        if leg is not None:
            self._retired.append(leg)
        try:
            await self.backend.rest.update_call(self.call_sid, twiml=document)
        except TwilioApiError as exc:
            self._transfer = None
            self.backend.forget_dial_token(token)
            log.warning("call %s: transfer to %s failed: %s", self.call_id, operator_number, exc.message)
            if leg is not None:
                self._retired = [r for r in self._retired if r is not leg]
                if self._leg is not leg:  # the stream ended meanwhile, and not for a transfer
                    self.far_end_gone("stream_stopped")
            if self.hung_up:
                raise CallerHangup(self.hangup_signal.cause) from exc
            return TransferResult(False, operator_number, "failed")
        if leg is not None and self._leg is leg:
            self._leg = None
            self._leg_ready.clear()
        try:
            done, _ = await asyncio.wait({transfer.answered, transfer.ended},
                                         timeout=timeout + TRANSFER_GRACE, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._transfer = None
            raise
        if transfer.answered in done:
            self.operator_number = operator_number
            self._events.put_nowait(CallEvent("answered", {"operator": operator_number}))
            return TransferResult(True, operator_number)
        self.hangup_signal.check()
        self._transfer = None
        self.backend.forget_dial_token(token)
        if transfer.ended in done:
            return TransferResult(False, operator_number, transfer_reason(transfer.ended.result()))
        # Twilio never reported back: take the call back onto a stream ourselves.
        log.warning("call %s: no <Dial> callback for %s; resuming the flow", self.call_id, operator_number)
        with contextlib.suppress(TwilioApiError):
            await self.backend.rest.update_call(self.call_sid, twiml=self.new_stream_twiml())
        return TransferResult(False, operator_number, "timeout")

    def operator_answered(self, token: str) -> bool:
        transfer = self._transfer
        if transfer is None or transfer.token != token:
            return False
        if not transfer.answered.done():
            transfer.answered.set_result(None)
        return True

    def dial_ended(self, token: str, status: str) -> str:
        """The `<Dial>` action: the TwiML the call goes on with. Not answered: a new stream, so the
        flow's `on_failure` runs; answered and over: hang up."""
        transfer = self._transfer
        if transfer is None or transfer.token != token:
            return twiml.hangup()
        if not transfer.ended.done():
            transfer.ended.set_result(status)
        if transfer.answered.done() or status in ("completed", "answered") or self.hung_up:
            self.hung_up_by = self.hung_up_by or "operator"
            return twiml.hangup()
        return self.new_stream_twiml()

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        if self.hung_up:
            return True
        try:
            await asyncio.wait_for(self.hangup_signal.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def hangup(self, cause: str = "normal") -> None:
        if self.hung_up or self._hanging_up:
            return
        self._hanging_up = True
        self.hung_up_by = self.hung_up_by or "us"
        try:
            await self.backend.rest.hangup(self.call_sid)
        except TwilioApiError as exc:
            log.warning("call %s: hang-up request failed: %s", self.call_id, exc.message)
        leg = self._leg
        if leg is not None:
            await leg.close()
        self.hangup_signal.set(cause)
        self._events.put_nowait(CallEvent("hangup", {"cause": cause, "by": "us"}))
        self.backend.forget(self)

    async def events(self) -> AsyncIterator[CallEvent]:  # type: ignore[override]
        while True:
            event = await self._events.get()
            yield event
            if event.kind == "hangup":
                return


LegFactory = Callable[["TwilioMediaPort", "TwilioCall"], Awaitable[StreamedLeg]]
"""(the stream's port, after its `start` was read and its token checked; the call) -> its leg."""
