"""`converse`: hand the call to an AI persona (reception, sales, complaints...) for a conversation.

The conversation itself lives in `switchboard.brain.converse`; this step picks the persona, limits
turns and time, writes every turn into the timeline and routes on how the conversation ended:
`on_end` (the agent ended it; `conversation_result` holds its result), `on_handoff` (the caller is to
be transferred to a human operator), `on_timeout` (max_turns or max_seconds reached), `on_failure`.
The service comes from `services.extras["conversation"]` (and `extras["memory"]`, a `BrainMemory`,
records each conversation); without one, the personas in ./personas are used in scripted mode.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, cast

from pydantic import Field

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step
from switchboard.telephony.call import CallFailed, StreamsOnRequest

log = logging.getLogger(__name__)

_DEFAULT_SERVICE: Any = None


def _service(rt: StepRuntime) -> Any:
    global _DEFAULT_SERVICE
    service = rt.services.extras.get("conversation")
    if service is not None:
        return service
    if _DEFAULT_SERVICE is None:
        from switchboard.brain.converse import ConversationService
        from switchboard.brain.personas import PersonaRegistry

        directory = Path("personas")
        if not directory.is_dir():
            raise CallFailed("no_conversation_service")
        _DEFAULT_SERVICE = ConversationService(PersonaRegistry.load_dir(directory))
    return _DEFAULT_SERVICE


@register_step
class Converse(StepModel):
    type_name = "converse"
    target_fields = ("next", "on_end", "on_handoff", "on_timeout", "on_failure")
    terminal = True
    persona: str = Field(description="persona name from personas/*.yaml")
    strategy: str | None = Field(None, description="sales strategy slug applied to sales personas")
    language: str | None = Field(None, description="fa | ar | en; default: the scenario's language")
    max_turns: int = Field(20, ge=1, le=500, description="caller turns before on_timeout")
    max_seconds: float = Field(300, gt=0, description="seconds before on_timeout")
    barge_in: bool = Field(True, description="the caller may talk over the agent (stops its reply)")
    on_end: str | None = None
    on_handoff: str | None = Field(None, description="next step when the caller asks for a human operator")
    on_timeout: str | None = None
    on_failure: str | None = None

    async def run(self, rt: StepRuntime) -> str | None:
        from switchboard.brain.converse import ListenConfig, Turn

        ctx = rt.ctx
        service = _service(rt)
        stt = rt.scenario.spec.stt
        language = self.language or rt.language

        def on_turn(turn: Turn) -> None:
            data: dict[str, Any] = {"persona": turn.persona, "speaker": turn.speaker, "text": turn.text,
                                    "started": round(turn.started, 3), "ended": round(turn.ended, 3),
                                    "language": turn.language}
            if turn.latency is not None:
                data["latency"] = round(turn.latency, 3)
            if turn.interrupted:
                data["interrupted"] = True
            data.update({k: v for k, v in turn.detail.items() if k not in data})
            ctx.log("turn", step=self.step, **data)
            if turn.speaker == "caller":
                ctx.transcripts.append({"step": self.step, "text": turn.text, "at": ctx.elapsed(),
                                        "persona": turn.persona})

        listen = ListenConfig(max_duration=stt.max_duration, max_silence=stt.max_silence)
        # A call that streams on request (Asterisk's externalMedia) streams the whole conversation.
        call = rt.call
        streamed = cast(StreamsOnRequest, call).streaming() if call.capabilities.stream_on_request \
            else contextlib.nullcontext()
        try:
            async with streamed:
                outcome = await service.run(rt.call, persona=self.persona, language=language,
                                            max_turns=self.max_turns, max_seconds=self.max_seconds,
                                            strategy=self.strategy, contact=ctx.contact,
                                            fields=ctx.variables.get("fields"), on_turn=on_turn,
                                            listen=listen, transcriber=rt.services.transcriber,
                                            barge_in=self.barge_in)
        except KeyError as exc:  # unknown persona/strategy: a configuration error for this call
            ctx.log("error", step=self.step, reason="converse_config", message=str(exc)[:200])
            if self.on_failure:
                return self.on_failure
            raise CallFailed("converse_config") from exc
        usage = outcome.usage
        for key, value in (("llm_prompt_tokens", usage.prompt_tokens),
                           ("llm_completion_tokens", usage.completion_tokens),
                           ("llm_requests", usage.requests)):
            ctx.usage[key] = ctx.usage.get(key, 0) + value
        ctx.variables.update({k: v for k, v in outcome.fields.items() if isinstance(v, (str, int, float))})
        ctx.variables["fields"] = dict(outcome.fields)
        ctx.variables["conversation_status"] = outcome.status
        ctx.variables["conversation_result"] = outcome.result or ""
        ctx.variables["persona"] = outcome.persona
        if outcome.tickets:
            ctx.variables["ticket_id"] = outcome.tickets[-1].get("id", "")
        ctx.log("conversation", step=self.step, status=outcome.status, result=outcome.result,
                persona=outcome.persona, mode=outcome.mode, reason=outcome.reason,
                handoffs=outcome.handoffs, objections=outcome.objections, usage=usage.as_dict())
        memory = rt.services.extras.get("memory")
        if memory is not None:
            try:
                await memory.record(ctx.call_id, outcome, strategy=self.strategy)
            except Exception:
                log.exception("recording the conversation in memory failed")
        if outcome.provider_failure is not None and rt.services.on_provider_failure is not None:
            await rt.services.on_provider_failure(outcome.provider_failure.provider,
                                                  outcome.provider_failure.reason)
        if outcome.status == "ended":
            return self.on_end or self.next
        if outcome.status == "operator":
            return self.on_handoff or self.next
        if outcome.status in ("max_turns", "timeout"):
            return self.on_timeout or self.next
        if self.on_failure:
            return self.on_failure
        raise CallFailed(outcome.reason or "conversation_failed")
