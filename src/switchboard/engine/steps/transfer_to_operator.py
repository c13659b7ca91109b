"""`transfer_to_operator`: ring a free operator from the scenario's roster and bridge them in.

The operator leg shows the customer's number as caller ID. Operators who do not answer are skipped
for the next free one. When every operator is busy (or none is on the roster) `on_all_busy` runs,
when the operators rung did not answer `on_no_answer` runs; either falls back to `on_failure`
(typically a `schedule_callback` step, so the caller promised a call back gets one).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from switchboard import clock
from switchboard.engine import results
from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class TransferToOperator(StepModel):
    type_name = "transfer_to_operator"
    target_fields = ("on_success", "on_failure", "on_all_busy", "on_no_answer")
    agent_type: Literal["inbound", "outbound"] = "outbound"
    on_success: str
    on_failure: str
    on_all_busy: str | None = Field(None, description="next step when no operator is free; default on_failure")
    on_no_answer: str | None = Field(None, description="next step when the operators rung did not answer; "
                                                       "default on_failure")
    hold_prompt: str | None = Field(None, description="prompt played while the operator rings; "
                                                      "default: the scenario's `onhold` prompt if any")
    timeout: float | None = Field(None, gt=0, description="seconds to ring each operator")
    max_operators: int = Field(3, ge=1, description="operators to try before giving up")
    terminal = True

    def prompts_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("hold_prompt",), self.hold_prompt)] if self.hold_prompt else []

    async def run(self, rt: StepRuntime) -> str | None:
        ctx, services = rt.ctx, rt.services
        if ctx.hangup_result is None:
            ctx.hangup_result = results.DISCONNECTED
        if ctx.operator_requested_at is None:
            ctx.operator_requested_at = ctx.elapsed()
        hold = self.hold_prompt or ("onhold" if "onhold" in rt.scenario.spec.prompts else None)
        caller_id = ctx.remote_number or services.operator_caller_id
        tried: set[str] = set()
        reason = "no_operator"
        for _ in range(self.max_operators):
            operator = await services.operators.acquire(rt.scenario.name, self.agent_type, exclude=tried)
            if operator is None:
                reason = "all_busy" if not tried else reason
                break
            tried.add(operator.number)
            ctx.log("operator_ringing", step=self.step, operator=operator.number)
            try:
                outcome = await rt.call.transfer(operator.number, caller_id=caller_id,
                                                 timeout=self.timeout or services.operator_timeout,
                                                 hold_prompt=rt.prompt_ref(hold) if hold else None)
            except BaseException:
                await services.operators.release(operator.number)
                raise
            if outcome.answered:
                ctx.agent = operator.number
                ctx.variables["operator_id"] = operator.id
                ctx.operator_answered_at = ctx.elapsed()
                ctx.log("operator_answered", step=self.step, operator=operator.number,
                        waited=round(ctx.operator_answered_at - ctx.operator_requested_at, 3))
                ctx.set_result(results.CONNECTED_TO_OPERATOR if rt.call.direction == "outbound"
                               else results.INBOUND_CALL)
                ctx.answered_at = ctx.answered_at or clock.now()
                return self.on_success
            await services.operators.release(operator.number)
            reason = outcome.reason or "no_answer"
            ctx.log("operator_failed", step=self.step, operator=operator.number, reason=reason)
        ctx.reason = "all operators busy" if reason == "all_busy" else f"no operator answered ({reason})"
        ctx.variables["operator_failure"] = reason
        ctx.log("transfer_failed", step=self.step, reason=reason)
        if reason == "all_busy":
            return self.on_all_busy or self.on_failure
        return self.on_no_answer or self.on_failure
