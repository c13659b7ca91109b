"""Pacing agent audio for every call of the process on one 20 ms tick.

A transport must receive agent audio in real time: too early and a barge-in cannot take it back
(RTP plays what it gets), too late and the caller hears a gap. Each talking call has an absolute
schedule (frame n is due at start + n x 20 ms, so timer jitter never accumulates); on every tick the
`Pacer` hands each talker the frames due by now plus a small jitter allowance (`lead`). One timer
serves all calls, and calls that are not talking cost nothing. It runs on whatever loop clock is in
use, so it paces on the wall clock and on the simulator's virtual clock alike.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

from switchboard.voice.port import FRAME_SECONDS


def grid(now: float, period: float) -> float:
    """The last multiple of `period` at or before `now`. Every ticker of the process keeps to this
    grid, so on the simulator's virtual clock their ticks coincide (one clock jump serves them all)."""
    return math.floor(now / period + 1e-9) * period


class Talker(Protocol):
    def pace(self, now: float) -> bool:
        """Send what is due by `now` (+ the allowance); False once there is nothing left to pace."""
        ...


class Pacer:
    """The process-wide 20 ms tick (`lead`: how far ahead of its playout time a frame may go)."""

    def __init__(self, *, lead: float = FRAME_SECONDS, period: float = FRAME_SECONDS) -> None:
        self.lead = lead
        self.period = period
        self._talkers: dict[int, Talker] = {}
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.lag_max = 0.0

    def add(self, talker: Talker) -> None:
        self._talkers[id(talker)] = talker
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-pacer")

    def discard(self, talker: Talker) -> None:
        self._talkers.pop(id(talker), None)
        if not self._talkers and self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()  # nobody is talking: no tick at all
            self._task = None

    @property
    def talking(self) -> int:
        return len(self._talkers)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = grid(loop.time(), self.period)
        try:
            while self._talkers:
                due += self.period
                delay = due - loop.time()
                if delay < 0:  # the loop was late: tick now, then back on the grid
                    self.lag_max = max(self.lag_max, -delay)
                    due = grid(loop.time(), self.period)
                    delay = 0.0
                await asyncio.sleep(delay)
                self.ticks += 1
                now = loop.time()
                for key, talker in list(self._talkers.items()):
                    if not talker.pace(now):
                        self._talkers.pop(key, None)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def aclose(self) -> None:
        self._talkers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
