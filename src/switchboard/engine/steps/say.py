"""`say`: speak text with `{variables}` filled in, through the backend's TTS path."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class Say(StepModel):
    type_name = "say"
    text: str
    language: str | None = None
    voice: str | None = None
    interruptible: bool = False
    next: str | None = None
    terminal = True

    async def run(self, rt: StepRuntime) -> str | None:
        text = rt.fill(self.text)
        spec = rt.scenario.spec
        await rt.call.speak(text, language=self.language or spec.tts.language or rt.language,
                            voice=self.voice or spec.tts.voice, interruptible=self.interruptible)
        rt.ctx.log("said", step=self.step, text=text)
        return self.next
