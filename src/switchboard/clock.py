"""Time as the event loop sees it, so the same code runs on the wall clock and on the simulator's
virtual clock (`sim.clock.VirtualClockLoop`), where a day of calls takes seconds.

Always use `now()`/`monotonic()` from here (never `time.time()`/`datetime.now()`) in code that a
simulated campaign exercises.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timezone
from typing import Callable, Iterator

_ANCHORS: dict[int, tuple[float, float]] = {}
PACED_UP_TO = 30.0  # virtual seconds: a paced loop waits out shorter timers, jumps over longer ones


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def monotonic() -> float:
    loop = _loop()
    return loop.time() if loop is not None else time.monotonic()


def now() -> datetime:
    """Aware UTC datetime that advances with the running loop's clock."""
    loop = _loop()
    if loop is None:
        return datetime.now(timezone.utc)
    epoch = getattr(loop, "virtual_epoch", None)
    if epoch is not None:
        return datetime.fromtimestamp(epoch + loop.time(), timezone.utc)
    anchor = _ANCHORS.get(id(loop))
    if anchor is None:
        anchor = (time.time(), loop.time())
        _ANCHORS[id(loop)] = anchor
    return datetime.fromtimestamp(anchor[0] + (loop.time() - anchor[1]), timezone.utc)


class _VirtualSelector:
    """Wraps the real selector: real I/O is still served, but instead of sleeping until the next
    timer the loop jumps its virtual clock there."""

    def __init__(self, loop: "VirtualClockLoop", real: object) -> None:
        self._loop = loop
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def select(self, timeout: float | None = None) -> list:  # type: ignore[type-arg]
        events = self._real.select(0)  # type: ignore[attr-defined]
        if events or timeout == 0:
            return events
        if self._loop._pending_threads > 0 or timeout is None:
            # Thread-pool work (or nothing scheduled at all) must finish in real time.
            wait = 0.05 if timeout is None else min(timeout, 0.05)
            events = self._real.select(wait)  # type: ignore[attr-defined]
            if events or timeout is None or self._loop._pending_threads > 0:
                return events
        if self._loop.real_grace > 0:
            events = self._real.select(self._loop.real_grace)  # type: ignore[attr-defined]
            if events:
                return events
        if self._loop.speed > 0 and timeout <= PACED_UP_TO and self._loop.pace_if():
            # Paced: a virtual second takes 1/speed real seconds, so people can watch (the demo's
            # console); real I/O arriving meanwhile is served at the virtual time reached so far.
            # Longer idle gaps (a retry due in an hour, tomorrow's calling hours) are skipped.
            started = time.perf_counter()
            events = self._real.select(timeout / self._loop.speed)  # type: ignore[attr-defined]
            if events:
                self._loop._virtual_now += min(timeout, (time.perf_counter() - started) * self._loop.speed)
                self._loop.last_advance_real = time.perf_counter()
                return events
        self._loop._virtual_now += timeout
        self._loop.last_advance_real = time.perf_counter()
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer when every task is waiting.

    `real_grace` (seconds) lets work in foreign threads (database drivers) land before the clock
    jumps; 0 suits pure in-process simulations.
    """

    def __init__(self, start: datetime | None = None, real_grace: float = 0.0, speed: float = 0.0) -> None:
        super().__init__()
        self._virtual_now = 0.0
        self._pending_threads = 0
        self.real_grace = real_grace
        self.speed = speed  # virtual seconds per real second; 0 = as fast as the work allows
        self.pace_if: Callable[[], bool] = lambda: True  # e.g. only while calls are in progress
        self.last_advance_real = time.perf_counter()  # when the virtual clock last jumped
        start = start or datetime.now(timezone.utc)
        self.virtual_epoch = start.timestamp()
        self._selector = _VirtualSelector(self, self._selector)  # type: ignore[assignment]

    def time(self) -> float:
        return self._virtual_now

    def run_in_executor(self, executor, func, *args):  # type: ignore[no-untyped-def, override]
        fut = super().run_in_executor(executor, func, *args)
        self._pending_threads += 1

        def _done(_: object) -> None:
            self._pending_threads -= 1

        fut.add_done_callback(_done)
        return fut


@contextlib.contextmanager
def real_io() -> Iterator[None]:
    """Mark a wait on the real world (an HTTP request to an LLM, say) in progress.

    On a `VirtualClockLoop` the clock then stops jumping ahead, as it does for thread-pool work,
    so a real answer arrives before a (virtual) timeout fires; on a normal loop it does nothing.
    Keep the scope to the await itself: virtual timers do not advance inside it."""
    loop = _loop()
    virtual = isinstance(loop, VirtualClockLoop)
    if virtual:
        loop._pending_threads += 1  # type: ignore[union-attr]
    try:
        yield
    finally:
        if virtual:
            loop._pending_threads -= 1  # type: ignore[union-attr]


def run_virtual(coro, *, start: datetime | None = None, real_grace: float = 0.0,  # type: ignore[no-untyped-def]
                speed: float = 0.0):
    """Run a coroutine to completion on a fresh virtual-clock loop (paced at `speed` when > 0)."""
    loop = VirtualClockLoop(start=start, real_grace=real_grace, speed=speed)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
