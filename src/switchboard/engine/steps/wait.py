"""`wait`: keep the call up (e.g. while the caller talks to an operator) until someone hangs up."""

from __future__ import annotations

from pydantic import Field

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Wait(StepModel):
    type_name = "wait"
    seconds: float | None = Field(None, gt=0, description="stop waiting after this long and go to next")
    terminal = True

    async def run(self, rt: StepRuntime) -> str | None:
        hung_up = await rt.call.wait_for_hangup(self.seconds)
        rt.ctx.log("wait_over", step=self.step, hung_up=hung_up)
        return None if hung_up else self.next
