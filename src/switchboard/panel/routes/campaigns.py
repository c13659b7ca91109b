from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.exc import IntegrityError

from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.schemas import CampaignIn, CampaignOut, CampaignPatch, PageOut

router = APIRouter(prefix="/api/v1/campaigns", dependencies=Authed, tags=["campaigns"])


@router.get("", response_model=PageOut[CampaignOut])
async def list_campaigns(
    page: PageParams = Depends(page_params), c: PanelContext = Depends(ctx)
) -> PageOut[CampaignOut]:
    res = await c.store.campaigns.list(company=c.settings.company, offset=page.offset, limit=page.limit)
    return PageOut[CampaignOut](
        items=[CampaignOut.model_validate(r) for r in res.items],
        total=res.total,
        offset=res.offset,
        limit=res.limit,
    )


@router.post("", response_model=CampaignOut, status_code=status.HTTP_201_CREATED)
async def create_campaign(body: CampaignIn, c: PanelContext = Depends(ctx)) -> CampaignOut:
    if await c.store.campaigns.by_name(body.name, company=c.settings.company):
        raise HTTPException(status.HTTP_409_CONFLICT, f"campaign {body.name!r} exists")
    fields = body.model_dump(exclude={"name"})
    try:
        row = await c.store.campaigns.get_or_create(body.name, company=c.settings.company, **fields)
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"campaign {body.name!r} exists") from None
    return CampaignOut.model_validate(row)


@router.patch("/{campaign_id}", response_model=CampaignOut)
async def patch_campaign(
    campaign_id: int, body: CampaignPatch, c: PanelContext = Depends(ctx)
) -> CampaignOut:
    row = await c.store.campaigns.get(campaign_id)
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such campaign")
    row = await c.store.campaigns.update(campaign_id, **body.model_dump(exclude_unset=True))
    return CampaignOut.model_validate(row)
