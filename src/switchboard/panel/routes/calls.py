from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status

from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.schemas import CallDetailOut, CallOut, EventOut, PageOut
from switchboard.phones import try_normalize

router = APIRouter(prefix="/api/v1/calls", dependencies=Authed, tags=["calls"])


@router.get("", response_model=PageOut[CallOut])
async def list_calls(
    direction: str | None = Query(None, pattern="^(inbound|outbound)$"),
    result: str | None = None,
    phone: str | None = None,
    page: PageParams = Depends(page_params),
    c: PanelContext = Depends(ctx),
) -> PageOut[CallOut]:
    number = try_normalize(phone, c.settings.default_region) if phone else None
    if phone and number is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid phone number {phone!r}")
    res = await c.store.calls.list(
        company=c.settings.company,
        direction=direction,
        result=result,
        phone_e164=number.e164 if number else None,
        offset=page.offset,
        limit=page.limit,
    )
    return PageOut[CallOut](
        items=[CallOut.model_validate(r) for r in res.items],
        total=res.total,
        offset=res.offset,
        limit=res.limit,
    )


@router.get("/{call_id}", response_model=CallDetailOut)
async def get_call(call_id: str, c: PanelContext = Depends(ctx)) -> CallDetailOut:
    row = await c.store.calls.get(call_id)
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
    out = CallDetailOut.model_validate(row)
    out.events = [EventOut.model_validate(e) for e in await c.store.calls.events(call_id)]
    return out
