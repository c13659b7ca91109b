"""The simulated phone network: dials scripted callers, delivers inbound calls, rings operators."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from switchboard.telephony.call import Call, DialOutcome, Direction
from switchboard.telephony.sim.call import SimCall, SimTimings
from switchboard.telephony.sim.script import CallerScript, OperatorScript
from switchboard.voice.pacing import Pacer

if TYPE_CHECKING:
    from switchboard.telephony.sim.voice import CallerVoices
    from switchboard.voice.runtime import VoiceRuntime


@dataclass
class SimNetwork:
    """Text mode by default; audio mode when given the voice layer (`voice`, our side) and the
    callers' voices: each call is then a `StreamingCall` against a `SimCallerPort`."""

    operators: dict[str, OperatorScript] = field(default_factory=dict)
    voice: "VoiceRuntime | None" = None
    caller_voices: "CallerVoices | None" = None
    timings: SimTimings = field(default_factory=SimTimings)
    origination_timeout: float = 30.0
    originated: int = 0
    keep_calls: bool = False  # keep every call made (flow tests inspect what was played)
    calls: list[SimCall] = field(default_factory=list)

    def add_operators(self, operators: list[OperatorScript]) -> None:
        for op in operators:
            self.operators[op.phone] = op

    def operator(self, number: str) -> OperatorScript | None:
        return self.operators.get(number)

    _media_clock: Pacer | None = None
    _prompts: object = None  # the simulator's prompt source (StandInPrompts), made with the clock

    @property
    def audio(self) -> bool:
        return self.voice is not None and self.caller_voices is not None

    def _call(self, script: CallerScript, direction: Direction, line: str | None) -> SimCall:
        call = SimCall(network=self, script=script, direction=direction, line_number=line, timings=self.timings)
        if self.keep_calls:
            self.calls.append(call)
        return call

    def _media(self, call: SimCall) -> Call:
        """Audio mode: the scripted caller speaks through a port; turns run on the voice layer."""
        if not self.audio:
            return call
        from switchboard.telephony.sim.port import SimCallerPort, StandInPrompts

        assert self.voice is not None and self.caller_voices is not None
        if self._media_clock is None:
            self._media_clock = Pacer(lead=0.0)  # the far ends' 20 ms clock, shared by every caller
            self._prompts = StandInPrompts(self.voice.prompts, self.timings.prompt_seconds)
        port = SimCallerPort(call, self.caller_voices, self._media_clock)
        return self.voice.call(port, call, call_id=call.call_id, direction=call.direction,
                               remote_number=call.remote_number, line_number=call.line_number,
                               language=call.script.language, prompts=self._prompts)

    async def dial(self, script: CallerScript, *, line: str | None = None,
                   timeout: float | None = None) -> tuple[DialOutcome, Call | None]:
        """Ring a scripted contact; returns how the attempt ended and, if answered, the live call."""
        self.originated += 1
        answer = script.answer
        limit = self.origination_timeout if timeout is None else timeout
        if answer == "unreachable":
            await asyncio.sleep(0.2)
            return DialOutcome.UNREACHABLE, None
        if answer == "congestion":
            await asyncio.sleep(0.5)
            return DialOutcome.CONGESTION, None
        if answer == "failed":
            await asyncio.sleep(0.1)
            return DialOutcome.FAILED, None
        if answer == "busy":
            await asyncio.sleep(1.0)
            return DialOutcome.BUSY, None
        if answer is False or answer == "no_answer":
            await asyncio.sleep(limit)
            return DialOutcome.NO_ANSWER, None
        ring = script.ring_seconds()
        if ring > limit:
            await asyncio.sleep(limit)
            return DialOutcome.NO_ANSWER, None
        await asyncio.sleep(ring)
        call = self._call(script, "outbound", line)
        call.start()
        return DialOutcome.ANSWERED, self._media(call)

    def inbound(self, script: CallerScript, *, line: str | None = None) -> Call:
        """A scripted caller rings one of our lines (the engine answers in the `entry` step)."""
        return self._media(self._call(script, "inbound", line))
