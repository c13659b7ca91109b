"""`schedule_callback`: book a call back to this caller (e.g. when no operator was free) and record
the result (`callback_scheduled` unless told otherwise). The dialer dials it when due, before new
contacts of the same priority, within calling hours and every line limit.

    - {step: later, type: schedule_callback, after: 30m, scenario: sales_callback, priority: 20,
       reason: "asked for an advisor, all busy", next: sorry}

`after`, `scenario` and `priority` default to the scenario's `callbacks:` block.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from switchboard import clock
from switchboard.engine import results
from switchboard.engine.callbacks import CallbackRequest
from switchboard.engine.runtime import StepRuntime
from switchboard.flows.schema import Duration, parse_duration
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class ScheduleCallback(StepModel):
    type_name = "schedule_callback"
    after: Duration | None = Field(None, description="how long from now (seconds, 15m, 2h); default: "
                                                     "the scenario's callbacks.after")
    scenario: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="scenario the call back runs; default: callbacks.scenario, "
                                             "else this one")
    priority: int | None = Field(None, ge=-100, le=100)
    result: str = results.CALLBACK_SCHEDULED
    reason: str = ""

    @field_validator("after")
    @classmethod
    def _after(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("result")
    @classmethod
    def _result(cls, value: str) -> str:
        if not results.is_result_name(value):
            raise ValueError(f"{value!r} is not a result name")
        return value

    def results_set(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [*super().results_set(), (("result",), self.result)]

    async def run(self, rt: StepRuntime) -> str | None:
        ctx, policy = rt.ctx, rt.scenario.spec.callbacks
        seconds = parse_duration(self.after if self.after is not None else policy.after)
        due = clock.now() + timedelta(seconds=seconds)
        reason = rt.fill(self.reason) or ctx.reason or "call back booked"
        contact_id = ctx.contact.get("id")
        request = CallbackRequest(
            phone=ctx.remote_number, due_at=due,
            scenario=self.scenario or policy.scenario or rt.scenario.name,
            priority=self.priority if self.priority is not None else policy.priority, reason=reason,
            call_id=ctx.call_id, number_id=str(contact_id) if contact_id is not None else None,
            name=str(ctx.contact.get("name") or "") or None, source="flow", max_attempts=policy.max_attempts,
            rebook=ctx.contact.get("callback_id"))
        book = rt.services.callbacks
        callback_id = await book.schedule(request) if book is not None else ""
        ctx.variables["callback_id"] = callback_id
        ctx.variables["callback_at"] = due.isoformat(timespec="seconds")
        ctx.log("callback_scheduled", step=self.step, callback_id=callback_id, due_at=due.isoformat(),
                scenario=request.scenario, priority=request.priority)
        ctx.set_result(self.result, reason)
        return self.next
