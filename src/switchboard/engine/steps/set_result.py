"""`set_result`: record the call's result (one of the statuses panels expect)."""

from __future__ import annotations

from pydantic import field_validator

from switchboard.engine import results
from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class SetResult(StepModel):
    type_name = "set_result"
    result: str
    reason: str = ""
    next: str | None = None
    terminal = True

    @field_validator("result")
    @classmethod
    def _known(cls, value: str) -> str:
        if not results.is_valid_result(value):
            raise ValueError(f"unknown result {value!r}; use one of {', '.join(results.FIXED_RESULTS)} "
                             "or failed:<reason>")
        return value

    async def run(self, rt: StepRuntime) -> str | None:
        rt.ctx.set_result(self.result, rt.fill(self.reason))
        return self.next
