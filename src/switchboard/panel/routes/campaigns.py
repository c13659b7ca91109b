from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from sqlalchemy.exc import IntegrityError

from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.limits import ErrorOut, IdPath
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


async def _known_scenario(c: PanelContext, name: str | None) -> None:
    """A campaign may only name a scenario the engine has loaded or one registered with the panel."""
    if name is None:
        return
    from switchboard.panel.routes.scenarios import _as_out

    known = {_as_out(item).name for item in c.list_scenarios()}
    known |= {row.name for row in await c.store.scenarios.list(company=c.settings.company)}
    if name not in known:
        choices = ", ".join(sorted(n for n in known if n)[:20]) or "none loaded"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown scenario {name!r}; known: {choices}")


@router.post("", response_model=CampaignOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"model": ErrorOut, "description": "A campaign with this name exists"}})
async def create_campaign(body: CampaignIn, c: PanelContext = Depends(ctx)) -> CampaignOut:
    await _known_scenario(c, body.scenario)
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
    campaign_id: IdPath, body: CampaignPatch, c: PanelContext = Depends(ctx)
) -> CampaignOut:
    row = await c.store.campaigns.get(campaign_id)
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such campaign")
    changes = body.model_dump(exclude_unset=True)
    if "scenario" in changes:
        await _known_scenario(c, changes["scenario"])
    start = changes.get("calling_hours_start", row.calling_hours_start)
    end = changes.get("calling_hours_end", row.calling_hours_end)
    if start is not None and end is not None and start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"calling hours {start}-{end}: the start must be before the end")
    row = await c.store.campaigns.update(campaign_id, **changes)
    return CampaignOut.model_validate(row)
