"""The console's handle on a running node: its scenario registry, brain and dialer live on the
node's event loop, which may be another thread's (the demo runs on the virtual clock while the
console serves in real time). Every change to them goes through `NodeLink.call`, which runs the
coroutine on the node's loop and hands the result back; reads of plain data go the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from switchboard.flows.registry import ReloadReport, ScenarioRegistry
from switchboard.observability.live import LiveBoard

if TYPE_CHECKING:
    from switchboard.brain.services import Brain

log = logging.getLogger(__name__)
T = TypeVar("T")


class NodeGone(RuntimeError):
    """The node's loop has ended (the demo campaign finished and the process is shutting down)."""


class NodeLink:
    def __init__(self, *, registry: ScenarioRegistry, brain: "Brain | None", live: LiveBoard,
                 dialer: Any = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.registry = registry
        self.brain = brain
        self.live = live
        self.dialer = dialer
        self.loop = loop

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Tie the link to the loop the node's objects live on (the running loop by default)."""
        self.loop = loop or asyncio.get_running_loop()

    async def call(self, fn: Callable[[], Awaitable[T]], *, timeout: float = 30.0) -> T:
        """Run `fn()` on the node's loop and await its result here."""
        loop = self.loop
        here = asyncio.get_running_loop()
        if loop is None or loop is here:
            return await fn()
        if loop.is_closed():
            raise NodeGone("the node has stopped")
        try:
            future = asyncio.run_coroutine_threadsafe(_invoke(fn), loop)
        except RuntimeError as exc:
            raise NodeGone("the node has stopped") from exc
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    # --- the dialer (the `DialerControl` the panel routes use) -----------------------------------
    @property
    def has_dialer(self) -> bool:
        return self.dialer is not None

    async def pause(self, by: str = "admin", reason: str = "") -> None:
        dialer = self.dialer
        if dialer is not None:
            await self.call(lambda: dialer.pause(by=by, reason=reason))

    async def resume(self, by: str = "admin") -> None:
        dialer = self.dialer
        if dialer is not None:
            await self.call(lambda: dialer.resume(by=by))

    async def call_now(self, phone: str, **options: Any) -> Any:
        """POST /api/v1/calls: the dialer places the call on its own loop (`Dialer.call_now`)."""
        dialer = self.dialer
        if dialer is None:
            from switchboard.dialer.loop import CallRefused

            raise CallRefused("the campaign has finished: no dialer runs now", 409)
        wait = float(options.get("wait", 10.0))
        return await self.call(lambda: dialer.call_now(phone, **options), timeout=wait + 30.0)

    def status(self) -> dict[str, Any]:
        """The dialer's last known state, as the live board has it (no cross-thread read)."""
        snap = self.live.snapshot()
        state = snap.state
        if not snap.attached:
            return {"dialer": "finished" if snap.finished else "not running"}
        return {"failure_pause": state.get("pause_reason"), "active_calls": state.get("active_calls", 0),
                "abandon": state.get("abandon", {}), "lines": [line["number"] for line in state.get("lines", [])],
                "state": state.get("state")}

    def detach_dialer(self) -> None:
        self.dialer = None
        self.live.detach(finished=True)

    # --- scenarios -------------------------------------------------------------------------------
    async def reload_scenarios(self) -> ReloadReport:
        """Re-read the scenario files; an invalid file keeps its previous version running, and
        calls in flight finish on the version they started with (they hold their own object)."""
        registry = self.registry

        async def reload() -> ReloadReport:
            return registry.reload()

        return await self.call(reload)


async def _invoke(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


__all__ = ["NodeGone", "NodeLink"]
