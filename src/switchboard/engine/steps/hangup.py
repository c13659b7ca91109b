"""`hangup`: hang up now; optionally set the result first."""

from __future__ import annotations

from pydantic import field_validator

from switchboard.engine import results
from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Hangup(StepModel):
    type_name = "hangup"
    result: str | None = None
    reason: str = ""
    terminal = True

    @field_validator("result")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and not results.is_valid_result(value):
            raise ValueError(f"unknown result {value!r}")
        return value

    async def run(self, rt: StepRuntime) -> str | None:
        if self.result and (rt.ctx.result is None or rt.ctx.result == results.UNKNOWN):
            rt.ctx.set_result(self.result, self.reason)
        await rt.call.hangup()
        return None
