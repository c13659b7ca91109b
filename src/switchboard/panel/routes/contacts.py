from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status

from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.limits import IdPath, IdQuery
from switchboard.panel.schemas import ContactIn, ContactOut, PageOut
from switchboard.phones import InvalidPhoneNumber, normalize
from switchboard.store import NewContact

router = APIRouter(prefix="/api/v1/contacts", dependencies=Authed, tags=["contacts"])


@router.get("", response_model=PageOut[ContactOut])
async def list_contacts(
    status_: str | None = Query(None, alias="status", pattern="^(pending|leased|done|dnc)$"),
    campaign_id: IdQuery = None,
    phone: str | None = Query(None, max_length=64),
    page: PageParams = Depends(page_params),
    c: PanelContext = Depends(ctx),
) -> PageOut[ContactOut]:
    e164 = None
    if phone:
        try:
            e164 = normalize(phone, c.settings.default_region).e164
        except InvalidPhoneNumber as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    res = await c.store.contacts.list(
        company=c.settings.company,
        status=status_,
        campaign_id=campaign_id,
        phone_e164=e164,
        offset=page.offset,
        limit=page.limit,
    )
    return PageOut[ContactOut](
        items=[ContactOut.model_validate(r) for r in res.items],
        total=res.total,
        offset=res.offset,
        limit=res.limit,
    )


@router.post("", response_model=ContactOut, status_code=status.HTTP_201_CREATED)
async def add_contact(body: ContactIn, c: PanelContext = Depends(ctx)) -> ContactOut:
    try:
        number = normalize(body.phone, c.settings.default_region)
    except InvalidPhoneNumber as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if body.timezone:
        from switchboard.panel.tz import parse_offset

        try:
            parse_offset(body.timezone)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    campaign_id = None
    if body.campaign:
        campaign_id = (await c.store.campaigns.get_or_create(body.campaign, company=c.settings.company)).id
    row = await c.store.contacts.add(
        NewContact(
            phone=body.phone,
            phone_e164=number.e164,
            phone_national=number.national,
            name=body.name,
            attributes=body.attributes,
            timezone=body.timezone or number.timezone,
            company=c.settings.company,
            campaign_id=campaign_id,
        )
    )
    return ContactOut.model_validate(row)


@router.get("/{contact_id}", response_model=ContactOut)
async def get_contact(contact_id: IdPath, c: PanelContext = Depends(ctx)) -> ContactOut:
    row = await c.store.contacts.get(contact_id)
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such contact")
    return ContactOut.model_validate(row)
