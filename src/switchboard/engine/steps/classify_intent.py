"""`classify_intent`: turn the last transcript into one of the scenario's intent categories."""

from __future__ import annotations

import logging

from pydantic import Field

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step

log = logging.getLogger(__name__)


@register_step
class ClassifyIntent(StepModel):
    type_name = "classify_intent"
    target_fields = ("next", "on_failure")
    next: str
    on_failure: str | None = None
    input: str | None = Field(None, description="variable holding the text; default: the last transcript")

    async def run(self, rt: StepRuntime) -> str | None:
        llm = rt.scenario.spec.llm
        text = str(rt.ctx.variables.get(self.input, "")) if self.input else rt.ctx.last_transcript()
        try:
            decision = await rt.services.intents.classify(
                text, prompt_template=llm.prompt_template, categories=llm.intent_categories,
                fallback_tokens=llm.fallback_tokens, examples=llm.examples or None, timeout=llm.timeout,
                model=llm.model)
        except Exception as exc:  # a classifier failure is a branch, not a crash
            log.warning("intent classification failed: %s", exc)
            rt.ctx.log("intent_failed", step=self.step, reason=type(exc).__name__)
            if self.on_failure:
                return self.on_failure
            rt.ctx.intent = "unknown"
            return self.next
        failure = getattr(decision, "provider_failure", None)
        if failure is not None and rt.services.on_provider_failure is not None:
            await rt.services.on_provider_failure(failure.provider, failure.reason)
        elif decision.path == "llm" and rt.services.on_provider_success is not None:
            await rt.services.on_provider_success()
        rt.ctx.intent = decision.intent
        rt.ctx.intent_path = decision.path
        rt.ctx.log("intent", step=self.step, intent=decision.intent, path=decision.path,
                   latency=round(decision.latency, 3))
        opt_out = rt.scenario.spec.opt_out_intent
        if opt_out and decision.intent == opt_out and rt.services.add_to_dnc:
            await rt.services.add_to_dnc(rt.ctx.remote_number, f"opt-out in {rt.scenario.name}")
            rt.ctx.log("dnc_added", step=self.step)
        return self.next
