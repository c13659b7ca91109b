"""`goto`: jump to another step."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Goto(StepModel):
    type_name = "goto"
    target_fields = ("target",)
    target: str
    terminal = True

    async def run(self, rt: StepRuntime) -> str | None:
        return self.target
