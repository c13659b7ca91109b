from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from switchboard.panel.deps import Authed, PanelContext, ctx
from switchboard.panel.schemas import ScenarioOut

router = APIRouter(prefix="/api/v1/scenarios", dependencies=Authed, tags=["scenarios"])


def _as_out(item: Any) -> ScenarioOut:
    if isinstance(item, str):
        return ScenarioOut(name=item)
    if isinstance(item, dict):
        return ScenarioOut(name=item["name"], display_name=item.get("display_name"))
    return ScenarioOut(name=item.name, display_name=getattr(item, "display_name", None))


@router.get("", response_model=list[ScenarioOut])
async def list_scenarios(c: PanelContext = Depends(ctx)) -> list[ScenarioOut]:
    """Scenarios the engine knows (injected lister), merged with those registered with the panel."""
    out: dict[str, ScenarioOut] = {}
    for item in c.list_scenarios():
        s = _as_out(item)
        out[s.name] = s
    for reg in await c.store.scenarios.list(company=c.settings.company):
        s = out.get(reg.name) or ScenarioOut(name=reg.name, display_name=reg.display_name)
        s.registered, s.active = True, reg.active
        s.display_name = s.display_name or reg.display_name
        out[reg.name] = s
    return list(out.values())
