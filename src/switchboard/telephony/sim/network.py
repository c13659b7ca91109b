"""The simulated phone network: dials scripted callers, delivers inbound calls, rings operators."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from switchboard.telephony.call import DialOutcome, Direction
from switchboard.telephony.sim.call import CallerVoice, SimCall, SimTimings
from switchboard.telephony.sim.script import CallerScript, OperatorScript


@dataclass
class SimNetwork:
    operators: dict[str, OperatorScript] = field(default_factory=dict)
    caller_voice: CallerVoice | None = None
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

    def _call(self, script: CallerScript, direction: Direction, line: str | None) -> SimCall:
        call = SimCall(network=self, script=script, direction=direction, line_number=line,
                       caller_voice=self.caller_voice, timings=self.timings)
        if self.keep_calls:
            self.calls.append(call)
        return call

    async def dial(self, script: CallerScript, *, line: str | None = None,
                   timeout: float | None = None) -> tuple[DialOutcome, SimCall | None]:
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
        return DialOutcome.ANSWERED, call

    def inbound(self, script: CallerScript, *, line: str | None = None) -> SimCall:
        """A scripted caller rings one of our lines (the engine answers in the `entry` step)."""
        return self._call(script, "inbound", line)
