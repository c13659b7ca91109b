"""The simulator as a telephony backend: numbers map to caller scripts (unknown numbers get a
default script), and a scripted stream of inbound callers can ring our lines."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from switchboard.telephony.backend import DialResult, InboundHandler
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerScript

log = logging.getLogger(__name__)


@dataclass
class SimBackend:
    network: SimNetwork
    scripts: dict[str, CallerScript] = field(default_factory=dict)
    # Script for a number with no script of its own; gets the originate variables (the scenario).
    default_script: Callable[[str, dict[str, str]], CallerScript] = \
        lambda number, variables: CallerScript(phone=number)
    inbound_callers: list[tuple[float, CallerScript, str]] = field(default_factory=list)  # (at, script, line)
    name: str = "sim"
    # the last originations (for tests and debugging): bounded, a long campaign must not grow it
    dialed: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=1000))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def script_for(self, number: str, variables: dict[str, str] | None = None) -> CallerScript:
        script = self.scripts.get(number)
        if script is None:
            script = self.default_script(number, variables or {})
        return script if script.phone == number else script.model_copy(update={"phone": number})

    async def start(self, on_inbound: InboundHandler) -> None:
        for at, script, line in self.inbound_callers:
            task = asyncio.create_task(self._ring_later(at, script, line, on_inbound))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ring_later(self, at: float, script: CallerScript, line: str, on_inbound: InboundHandler) -> None:
        await asyncio.sleep(at)
        await on_inbound(self.network.inbound(script, line=line))

    async def originate(self, *, number: str, dial_string: str, line_number: str, caller_id: str,
                        timeout: float, variables: dict[str, str] | None = None) -> DialResult:
        self.dialed.append({"number": number, "dial_string": dial_string, "line": line_number,
                            "caller_id": caller_id})
        outcome, call = await self.network.dial(self.script_for(number, variables), line=line_number,
                                                timeout=timeout)
        return DialResult(outcome, call, outcome.value)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
