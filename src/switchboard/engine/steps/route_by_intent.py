"""`route_by_intent`: jump by the classified intent."""

from __future__ import annotations

from switchboard.engine.runtime import StepRuntime
from switchboard.flows.steptypes import StepModel, register_step


@register_step
class RouteByIntent(StepModel):
    type_name = "route_by_intent"
    target_fields = ("routes", "default")
    routes: dict[str, str]
    default: str | None = None
    terminal = True  # routes replace `next`

    def intents_routed(self) -> list[tuple[tuple[str | int, ...], str]]:
        return [(("routes", intent), intent) for intent in self.routes]

    async def run(self, rt: StepRuntime) -> str | None:
        intent = rt.ctx.intent or "unknown"
        target = self.routes.get(intent) or self.default or self.routes.get("unknown")
        rt.ctx.log("route", step=self.step, intent=intent, to=target)
        return target
