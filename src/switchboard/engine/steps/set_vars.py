"""`set`: assign variables (values may use `{placeholders}`)."""

from __future__ import annotations

from typing import Any

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class SetVariables(StepModel):
    type_name = "set"
    values: dict[str, Any]
    next: str

    async def run(self, rt: StepRuntime) -> str | None:
        for name, value in self.values.items():
            rt.ctx.variables[name] = rt.fill(value) if isinstance(value, str) else value
        rt.ctx.log("set", step=self.step, names=list(self.values))
        return self.next
