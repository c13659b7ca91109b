"""Call backs (booked by flows, AI personas or here) and tickets (opened by AI personas)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, HTTPException, Query, status

from switchboard import clock
from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.limits import ErrorOut
from switchboard.panel.schemas import CallbackIn, CallbackOut, PageOut, TicketOut, TicketPatch
from switchboard.phones import try_normalize
from switchboard.store import NewCallback
from switchboard.store.followups import CALLBACK_STATUSES

router = APIRouter(prefix="/api/v1", dependencies=Authed, tags=["follow-ups"])


@router.get("/callbacks", response_model=PageOut[CallbackOut])
async def list_callbacks(
    status_: str | None = Query(None, alias="status", pattern="^(" + "|".join(CALLBACK_STATUSES) + ")$"),
    phone: str | None = Query(None, max_length=64),
    page: PageParams = Depends(page_params),
    c: PanelContext = Depends(ctx),
) -> PageOut[CallbackOut]:
    number = try_normalize(phone, c.settings.default_region) if phone else None
    if phone and number is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid phone number {phone!r}")
    res = await c.store.callbacks.list(company=c.settings.company, status=status_,
                                       phone_e164=number.e164 if number else None, offset=page.offset,
                                       limit=page.limit)
    return PageOut[CallbackOut](items=[CallbackOut.model_validate(r) for r in res.items], total=res.total,
                                offset=res.offset, limit=res.limit)


@router.post("/callbacks", response_model=CallbackOut, status_code=status.HTTP_201_CREATED)
async def book_callback(body: CallbackIn, c: PanelContext = Depends(ctx)) -> CallbackOut:
    """Book a call back; the dialer dials it when due (calling hours and line limits still apply)."""
    number = try_normalize(body.phone, c.settings.default_region)
    if number is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid phone number {body.phone!r}")
    if body.at is not None and body.after_minutes is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give `at` or `after_minutes`, not both")
    now = clock.now()
    due = body.at if body.at is not None else now + timedelta(minutes=body.after_minutes or 0)
    if due.tzinfo is None:
        due = due.replace(tzinfo=now.tzinfo)
    row = await c.store.callbacks.add(NewCallback(
        phone=body.phone, phone_e164=number.e164, due_at=max(due, now), company=c.settings.company, name=body.name,
        scenario=body.scenario, priority=body.priority, max_attempts=body.max_attempts, reason=body.reason,
        source="api"))
    return CallbackOut.model_validate(row)


@router.get("/callbacks/{callback_id}", response_model=CallbackOut)
async def get_callback(callback_id: int, c: PanelContext = Depends(ctx)) -> CallbackOut:
    row = await c.store.callbacks.get(callback_id)
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call back")
    return CallbackOut.model_validate(row)


@router.delete("/callbacks/{callback_id}", status_code=status.HTTP_204_NO_CONTENT, responses={
    409: {"model": ErrorOut, "description": "No scheduled call back with that id: done, dialing or cancelled"}})
async def cancel_callback(callback_id: int, c: PanelContext = Depends(ctx)) -> None:
    if not await c.store.callbacks.cancel(callback_id, company=c.settings.company):
        raise HTTPException(status.HTTP_409_CONFLICT, "no scheduled call back with that id (done, dialing or "
                                                      "cancelled already)")


@router.get("/tickets", response_model=PageOut[TicketOut])
async def list_tickets(
    status_: str | None = Query(None, alias="status", pattern="^(open|closed)$"),
    page: PageParams = Depends(page_params),
    c: PanelContext = Depends(ctx),
) -> PageOut[TicketOut]:
    res = await c.store.tickets.list(company=c.settings.company, status=status_, offset=page.offset,
                                     limit=page.limit)
    return PageOut[TicketOut](items=[TicketOut.model_validate(r) for r in res.items], total=res.total,
                              offset=res.offset, limit=res.limit)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
async def get_ticket(ticket_id: int, c: PanelContext = Depends(ctx)) -> TicketOut:
    row = await c.store.tickets.get(ticket_id)
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such ticket")
    return TicketOut.model_validate(row)


@router.patch("/tickets/{ticket_id}", response_model=TicketOut)
async def update_ticket(ticket_id: int, body: TicketPatch, c: PanelContext = Depends(ctx)) -> TicketOut:
    row = await c.store.tickets.set_status(ticket_id, body.status, company=c.settings.company)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such ticket")
    return TicketOut.model_validate(row)
