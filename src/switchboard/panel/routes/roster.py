"""Operators (agents) and outbound lines."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status

from switchboard.panel.deps import Authed, PanelContext, ctx
from switchboard.panel.limits import IdPath
from switchboard.panel.schemas import LineIn, LineOut, OperatorIn, OperatorOut
from switchboard.phones import InvalidPhoneNumber, normalize
from switchboard.store import LineSpec, OperatorSpec

router = APIRouter(prefix="/api/v1", dependencies=Authed, tags=["roster"])


@router.get("/operators", response_model=list[OperatorOut])
async def list_operators(
    direction: str | None = Query(None, pattern="^(inbound|outbound)$"),
    scenario: str | None = Query(None, max_length=200),
    c: PanelContext = Depends(ctx),
) -> list[OperatorOut]:
    rows = await c.store.operators.list(company=c.settings.company, direction=direction, scenario=scenario)
    return [OperatorOut.model_validate(r) for r in rows]


@router.post("/operators", response_model=OperatorOut, status_code=status.HTTP_201_CREATED)
async def add_operator(body: OperatorIn, c: PanelContext = Depends(ctx)) -> OperatorOut:
    row = await c.store.operators.upsert(
        OperatorSpec(body.direction, body.phone_number, body.name, body.scenario), company=c.settings.company
    )
    return OperatorOut.model_validate(row)


@router.delete("/operators/{operator_id}", status_code=status.HTTP_204_NO_CONTENT)
async def deactivate_operator(operator_id: IdPath, c: PanelContext = Depends(ctx)) -> None:
    if not await c.store.operators.set_active(operator_id, False, company=c.settings.company):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such operator")


@router.get("/lines", response_model=list[LineOut])
async def list_lines(c: PanelContext = Depends(ctx)) -> list[LineOut]:
    return [LineOut.model_validate(r) for r in await c.store.lines.list(company=c.settings.company)]


@router.post("/lines", response_model=LineOut, status_code=status.HTTP_201_CREATED)
async def add_line(body: LineIn, c: PanelContext = Depends(ctx)) -> LineOut:
    try:
        normalize(body.phone_number, c.settings.default_region)
    except InvalidPhoneNumber as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    row = await c.store.lines.upsert(
        LineSpec(
            body.phone_number,
            body.display_name,
            None,
            body.max_concurrent,
            body.max_per_minute,
            body.max_per_day,
        ),
        company=c.settings.company,
    )
    return LineOut.model_validate(row)


@router.delete("/lines/{line_id}", status_code=status.HTTP_204_NO_CONTENT)
async def deactivate_line(line_id: IdPath, c: PanelContext = Depends(ctx)) -> None:
    if not await c.store.lines.set_active(line_id, False, company=c.settings.company):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such line")
