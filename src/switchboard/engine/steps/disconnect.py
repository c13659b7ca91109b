"""`disconnect`: end the flow and hang up, keeping whatever result was set (or `result:` here)."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Disconnect(StepModel):
    type_name = "disconnect"
    result: str | None = None
    terminal = True

    async def run(self, rt: StepRuntime) -> str | None:
        if self.result:
            rt.ctx.set_result(self.result)
        await rt.call.hangup()
        return None
