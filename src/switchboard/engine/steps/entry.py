"""`entry`: where a flow starts."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Entry(StepModel):
    type_name = "entry"
    next: str

    async def run(self, rt: StepRuntime) -> str | None:
        if rt.call.direction == "inbound":
            await rt.call.answer()
        return self.next
