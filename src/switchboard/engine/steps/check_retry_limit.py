"""`check_retry_limit`: count passes through a loop; past `max` take `on_exceeded`."""

from __future__ import annotations

from pydantic import Field

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class CheckRetryLimit(StepModel):
    type_name = "check_retry_limit"
    target_fields = ("next", "on_exceeded")
    counter: str | None = Field(None, description="counter name; default: this step's name")
    max: int = Field(ge=1)
    next: str
    on_exceeded: str

    def breaks_loops(self) -> bool:
        return True

    async def run(self, rt: StepRuntime) -> str | None:
        name = self.counter or self.step
        count = rt.ctx.counters.get(name, 0) + 1
        rt.ctx.counters[name] = count
        exceeded = count > self.max
        rt.ctx.log("retry_check", step=self.step, counter=name, count=count, exceeded=exceeded)
        return self.on_exceeded if exceeded else self.next
