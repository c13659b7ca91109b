"""`branch`: the first condition that holds picks the next step; `else` otherwise.

Conditions are small expressions over `vars`, `contact`, `intent`, `counters`, e.g.
`contact.city == "Tehran" and vars.tries < 2`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard.engine.expressions import ExpressionError, compile_expression, evaluate
from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    when: str = Field(alias="if")
    then: str

    @field_validator("when")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            compile_expression(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return value


@register_step
class Branch(StepModel):
    type_name = "branch"
    cases: list[Case]
    else_: str = Field(alias="else")
    terminal = True

    def targets(self) -> list[tuple[tuple[str | int, ...], str]]:
        out: list[tuple[tuple[str | int, ...], str]] = [(("cases", i, "then"), c.then)
                                                         for i, c in enumerate(self.cases)]
        out.append((("else",), self.else_))
        return out

    async def run(self, rt: StepRuntime) -> str | None:
        ctx = rt.ctx
        scope = {"vars": ctx.variables, "contact": {**(ctx.contact.get("attributes") or {}), **ctx.contact},
                 "intent": ctx.intent, "counters": ctx.counters, "direction": ctx.direction}
        for case in self.cases:
            if evaluate(case.when, scope):
                ctx.log("branch", step=self.step, matched=case.when, to=case.then)
                return case.then
        ctx.log("branch", step=self.step, matched="else", to=self.else_)
        return self.else_
