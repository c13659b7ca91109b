"""The flow engine: runs a scenario's steps against a `Call` until the flow ends or the caller
hangs up, and leaves the result and the timeline in the call's context.

It knows the flow language and the `Call` protocol, never a telephony backend or a provider.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from switchboard import clock
from switchboard.engine import results
from switchboard.engine.context import CallContext
from switchboard.engine.runtime import StepRuntime
from switchboard.engine.services import EngineServices
from switchboard.flows.schema import Scenario
from switchboard.telephony.call import Call, CallerHangup, CallFailed

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CallOutcome:
    result: str
    reason: str
    context: CallContext


class FlowEngine:
    def __init__(self, services: EngineServices | None = None) -> None:
        self.services = services or EngineServices()

    def new_context(self, call: Call, scenario: Scenario, contact: dict | None = None) -> CallContext:
        return CallContext(call_id=call.call_id, scenario=scenario.name, direction=call.direction,
                           remote_number=call.remote_number, line_number=call.line_number,
                           scenario_version=scenario.version, contact=dict(contact or {}))

    async def run(self, call: Call, scenario: Scenario, ctx: CallContext | None = None) -> CallOutcome:
        ctx = ctx or self.new_context(call, scenario)
        flow = scenario.flow_for(call.direction)
        rt = StepRuntime(call=call, ctx=ctx, scenario=scenario, flow=flow, services=self.services)
        ctx.answered_at = ctx.answered_at or clock.now()
        ctx.log("call_started", direction=call.direction, remote=call.remote_number)
        current: str | None = None
        try:
            disclosure = scenario.spec.disclosure_prompt
            if disclosure and call.direction == "outbound":
                ctx.log("disclosure", prompt=disclosure)
                await call.play(rt.prompt_ref(disclosure))
            current = flow.entry
            count = 0
            while current is not None:
                count += 1
                if count > self.services.max_steps:
                    ctx.set_result(results.failed("step_limit"), f"more than {self.services.max_steps} steps")
                    break
                step = flow.steps[current]
                if self.services.step_observer is not None:
                    self.services.step_observer(step.step)
                ctx.steps_visited.append(step.step)
                hangup_result = getattr(step, "hangup_result", None)
                if hangup_result:
                    ctx.hangup_result = hangup_result
                ctx.log("step", step=step.step, type=step.type)
                current = await step.run(rt)
        except CallerHangup as exc:
            ctx.log("hangup", step=current, by="caller", cause=exc.cause)
            if ctx.result is None or ctx.result == results.UNKNOWN:
                ctx.set_result(ctx.hangup_result or results.HANGUP, "caller hung up")
        except CallFailed as exc:
            ctx.log("error", step=current, reason=exc.reason)
            if ctx.result is None:
                ctx.set_result(results.failed(exc.reason), exc.reason)
        except asyncio.CancelledError:
            ctx.log("cancelled", step=current)
            if ctx.result is None:
                ctx.set_result(results.failed("cancelled"), "engine stopped")
            await self._finish(call, ctx)
            raise
        except Exception as exc:  # a bug in a step must end one call, never the engine
            log.exception("call %s failed in step %s", ctx.call_id, current)
            ctx.log("error", step=current, reason=type(exc).__name__, message=str(exc)[:200])
            if ctx.result is None:
                ctx.set_result(results.failed("internal_error"), f"{type(exc).__name__} in step {current}")
        await self._finish(call, ctx)
        return CallOutcome(ctx.result or results.UNKNOWN, ctx.reason, ctx)

    async def _finish(self, call: Call, ctx: CallContext) -> None:
        if ctx.result is None:
            ctx.set_result(results.UNKNOWN, "flow ended without a result")
        if ctx.agent:
            await self.services.operators.release(ctx.agent)
        if not call.hung_up:
            try:
                await call.hangup()
            except Exception:  # the far end may already be gone
                log.debug("hangup after flow end failed", exc_info=True)
        ctx.ended_at = clock.now()
        ctx.log("call_ended", result=ctx.result)
