"""`play_prompt`: play one of the scenario's prompts (a PBX sound, a file or a URL)."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class PlayPrompt(StepModel):
    type_name = "play_prompt"
    prompt: str
    next: str | None = None
    interruptible: bool = False
    terminal = True  # a prompt may be the last thing a flow does

    def prompts_used(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("prompt",), self.prompt)]

    async def run(self, rt: StepRuntime) -> str | None:
        result = await rt.call.play(rt.prompt_ref(self.prompt), interruptible=self.interruptible)
        rt.ctx.log("played", step=self.step, prompt=self.prompt, completed=result.completed)
        return self.next
