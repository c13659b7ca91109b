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
        if value is not None and not results.is_result_name(value):
            raise ValueError(f"{value!r} is not a result name")
        return value

    def results_set(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [*super().results_set(), *([(("result",), self.result)] if self.result else [])]

    async def run(self, rt: StepRuntime) -> str | None:
        if self.result and (rt.ctx.result is None or rt.ctx.result == results.UNKNOWN):
            rt.ctx.set_result(self.result, self.reason)
        await rt.call.hangup()
        return None
