"""`set_result`: record the call's result: a built-in one or one the scenario declares under
`results:` (`switchboard validate` checks which, with file and line)."""

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
        if not results.is_result_name(value):
            raise ValueError(f"{value!r} is not a result name; use lower-case letters, digits and _ "
                             f"(built in: {', '.join(results.FIXED_RESULTS)}, failed:<reason>)")
        return value

    def results_set(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [*super().results_set(), (("result",), self.result)]

    async def run(self, rt: StepRuntime) -> str | None:
        rt.ctx.set_result(self.result, rt.fill(self.reason))
        return self.next
