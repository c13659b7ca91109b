from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, status

from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.schemas import DncIn, DncOut, PageOut
from switchboard.phones import InvalidPhoneNumber, normalize

router = APIRouter(prefix="/api/v1/dnc", dependencies=Authed, tags=["dnc"])


@router.get("", response_model=PageOut[DncOut])
async def list_dnc(
    page: PageParams = Depends(page_params), c: PanelContext = Depends(ctx)
) -> PageOut[DncOut]:
    res = await c.store.dnc.list(offset=page.offset, limit=page.limit)
    return PageOut[DncOut](
        items=[DncOut.model_validate(r) for r in res.items],
        total=res.total,
        offset=res.offset,
        limit=res.limit,
    )


@router.post("", response_model=DncOut, status_code=status.HTTP_201_CREATED)
async def add_dnc(body: DncIn, c: PanelContext = Depends(ctx)) -> DncOut:
    try:
        e164 = normalize(body.phone, c.settings.default_region).e164
    except InvalidPhoneNumber as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    await c.store.dnc.add(e164, reason=body.reason, source=body.source)
    row = await c.store.dnc.get(e164)
    return DncOut.model_validate(row)


@router.delete("/{phone}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_dnc(phone: str = Path(max_length=64), c: PanelContext = Depends(ctx)) -> None:
    try:
        e164 = normalize(phone, c.settings.default_region).e164
    except InvalidPhoneNumber as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if not await c.store.dnc.remove(e164):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not on the do-not-call list")
