"""A simulated call: the far end follows a `CallerScript`; time passes on the loop's clock (virtual
by default, so thousands of calls take seconds).

In text mode this is the call the engine drives: it hands over the caller's words directly. In
audio mode it is only the call's signalling (answer, hang-up, operators) — the `CallControl` of a
`StreamingCall` whose turns run on the voice layer against a `SimCallerPort` that speaks the
script as real audio (see `sim.port`).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from switchboard.telephony.call import (
    TEXT_CALL,
    CallCapabilities,
    CallerHangup,
    CallEvent,
    Direction,
    HangupSignal,
    PlaybackResult,
    Recording,
    TransferResult,
)
from switchboard.telephony.sim.script import CallerScript, OperatorScript

if TYPE_CHECKING:
    from switchboard.telephony.sim.network import SimNetwork

_ids = itertools.count(1)
_RUN = uuid.uuid4().hex[:6]  # call ids unique across runs (recordings are named after them)

@dataclass
class SimTimings:
    prompt_seconds: float = 2.0
    seconds_per_char: float = 0.06
    words_per_second: float = 2.5
    max_wait: float = 3600.0


@dataclass
class SimCall:
    network: "SimNetwork"
    script: CallerScript
    direction: Direction
    line_number: str | None
    timings: SimTimings = field(default_factory=SimTimings)
    call_id: str = field(default_factory=lambda: f"sim-{_RUN}-{next(_ids)}")
    played: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    transfers: list[dict[str, object]] = field(default_factory=list)
    hung_up_by: str | None = None
    answered: bool = False
    _hangup: HangupSignal = field(default_factory=HangupSignal)
    _reply_index: int = 0
    _events: asyncio.Queue[CallEvent] = field(default_factory=asyncio.Queue)
    _timer: asyncio.TimerHandle | None = None
    _connected_operator: str | None = None
    capabilities: CallCapabilities = TEXT_CALL  # the words themselves; audio mode is a StreamingCall
    hangup_listeners: list[Callable[[str], None]] = field(default_factory=list)  # told of the far end's hang-up

    @property
    def remote_number(self) -> str:
        return self.script.phone

    @property
    def hung_up(self) -> bool:
        return self._hangup.is_set

    def far_end_hangup(self, cause: str = "normal") -> None:
        """The simulated caller (or the conversation's end) hangs up."""
        if not self._hangup.is_set:
            self.hung_up_by = "caller"
            self._hangup.set(cause)
            self._events.put_nowait(CallEvent("hangup", {"by": "caller", "cause": cause}))
            for listener in list(self.hangup_listeners):
                listener(cause)

    def start(self) -> None:
        """The far end picked up: arm its hang-up timer."""
        self.answered = True
        if self.script.hangup_after is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.script.hangup_after, self.far_end_hangup, "caller_hangup")

    async def _pass(self, seconds: float) -> None:
        await self._hangup.race(asyncio.sleep(max(0.0, seconds)))

    async def answer(self) -> None:
        self._hangup.check()
        if not self.answered:
            self.start()

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        self._hangup.check()
        self.played.append(prompt)
        await self._pass(self.timings.prompt_seconds)
        self._events.put_nowait(CallEvent("playback_finished", {"prompt": prompt}))
        return PlaybackResult(completed=True)

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        self._hangup.check()
        self.spoken.append(text)
        full = max(0.5, len(text) * self.timings.seconds_per_char)
        nxt = self._peek_reply()
        if interruptible and nxt is not None and nxt.barge_in and nxt.say is not None and nxt.delay < full:
            # The caller talks over the agent: playback stops where they start.
            await self._pass(nxt.delay)
            return PlaybackResult(completed=False, interrupted_by="speech")
        await self._pass(full)
        return PlaybackResult(completed=True)

    def _peek_reply(self):  # type: ignore[no-untyped-def]
        replies = self.script.replies
        return replies[self._reply_index] if self._reply_index < len(replies) else None

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        self._hangup.check()
        reply = self._peek_reply()
        self._reply_index += 1
        if reply is None or reply.silence:
            await self._pass(min(max_duration, max_silence + 0.5))
            return Recording(text="")
        if reply.hangup:
            await self._pass(reply.delay)
            self.far_end_hangup("caller_hangup")
            raise CallerHangup("caller_hangup")
        if reply.dtmf is not None:
            await self._pass(reply.delay + 0.25 * len(reply.dtmf))
            for digit in reply.dtmf:
                self._events.put_nowait(CallEvent("dtmf", {"digit": digit}))
            return Recording(text="", dtmf=reply.dtmf)
        assert reply.say is not None
        words = max(1, len(reply.say.split()))
        talk = words / self.timings.words_per_second
        await self._pass(min(max_duration, reply.delay + talk + max_silence))
        return Recording(text=reply.say, language=reply.language or self.script.language)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float,
                       hold_prompt: str | None = None) -> TransferResult:
        self._hangup.check()
        if hold_prompt:
            self.played.append(hold_prompt)
        op: OperatorScript | None = self.network.operator(operator_number)
        record: dict[str, object] = {"operator": operator_number, "caller_id": caller_id}
        self.transfers.append(record)
        after = op.answers_after() if op is not None else 2.0
        if op is not None and op.answer == "busy":
            await self._pass(0.5)
            record["answered"] = False
            return TransferResult(False, operator_number, "busy")
        if after is None or after > timeout:
            await self._pass(timeout)
            record["answered"] = False
            return TransferResult(False, operator_number, "no_answer")
        await self._pass(after)
        record["answered"] = True
        self._connected_operator = operator_number
        return TransferResult(True, operator_number)

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        if self._hangup.is_set:
            return True
        if self._connected_operator is not None and self.script.hangup_after is None and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.script.talk_seconds, self.far_end_hangup, "conversation_over")
        limit = self.timings.max_wait if timeout is None else timeout
        try:
            await asyncio.wait_for(self._hangup.wait(), limit)
        except asyncio.TimeoutError:
            return False
        return True

    async def hangup(self, cause: str = "normal") -> None:
        if not self._hangup.is_set:
            self.hung_up_by = "us"
            self._hangup.set(cause)
        if self._timer is not None:
            self._timer.cancel()

    async def events(self) -> AsyncIterator[CallEvent]:  # type: ignore[override]
        while True:
            event = await self._events.get()
            yield event
            if event.kind == "hangup":
                return
