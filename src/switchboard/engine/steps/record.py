"""`record`: capture one reply from the caller and transcribe it."""

from __future__ import annotations

from pydantic import Field

from switchboard.engine.runtime import CaptureEmpty, CaptureFailed, StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Record(StepModel):
    type_name = "record"
    target_fields = ("next", "on_empty", "on_failure")
    next: str
    on_empty: str | None = None
    on_failure: str | None = None
    max_duration: float | None = Field(None, gt=0)
    max_silence: float | None = Field(None, gt=0)
    terminate_on: str = ""
    variable: str | None = Field(None, description="also store the transcript in this variable")

    async def run(self, rt: StepRuntime) -> str | None:
        try:
            text = await rt.capture(max_duration=self.max_duration, max_silence=self.max_silence,
                                    terminate_on=self.terminate_on, step=self.step)
        except CaptureEmpty:
            return self.on_empty or self.on_failure or self.next
        except CaptureFailed as exc:
            rt.ctx.reason = exc.reason
            rt.ctx.log("capture_failed", step=self.step, reason=exc.reason)
            if self.on_failure is None:
                from switchboard.telephony.call import CallFailed

                raise CallFailed(exc.reason) from exc
            return self.on_failure
        if self.variable:
            rt.ctx.variables[self.variable] = text
        return self.next
