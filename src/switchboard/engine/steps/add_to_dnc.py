"""`add_to_dnc`: put the caller on the do-not-call list (e.g. after "don't call me again")."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class AddToDnc(StepModel):
    type_name = "add_to_dnc"
    reason: str = "caller asked not to be called"
    next: str | None = None
    terminal = True

    async def run(self, rt: StepRuntime) -> str | None:
        if rt.services.add_to_dnc is not None:
            await rt.services.add_to_dnc(rt.ctx.remote_number, rt.fill(self.reason))
        rt.ctx.variables["dnc"] = True
        rt.ctx.log("dnc_added", step=self.step, reason=self.reason)
        return self.next
