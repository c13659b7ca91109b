"""Dialer switch (pause/resume: next-batch answers call_allowed=false while paused) and alerts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from switchboard.panel.deps import Authed, PanelContext, ctx
from switchboard.panel.schemas import AlertOut

router = APIRouter(prefix="/api/v1", dependencies=Authed, tags=["admin"])


@router.get("/dialer")
async def dialer_state(c: PanelContext = Depends(ctx)) -> dict[str, object]:
    state: dict[str, object] = {
        "paused": await c.local.is_paused(),
        "contacts": await c.store.contacts.counts_by_status(c.settings.company),
        "outbox_pending": await c.store.outbox.pending_count(),
    }
    if c.dialer is not None:  # failure-threshold pause, abandon rates, live calls
        state.update(c.dialer.status())
    return state


@router.post("/dialer/pause")
async def pause(c: PanelContext = Depends(ctx)) -> dict[str, bool]:
    """Stop dialing: next-batch answers call_allowed=false, and a dialer in this process pauses."""
    await c.local.set_paused(True)
    if c.dialer is not None:
        await c.dialer.pause(by="api")
    return {"paused": True}


@router.post("/dialer/resume")
async def resume(c: PanelContext = Depends(ctx)) -> dict[str, bool]:
    """Resume dialing: the admin switch, and a pause the failure threshold caused."""
    await c.local.set_paused(False)
    if c.dialer is not None:
        await c.dialer.resume(by="admin")
    return {"paused": False}


@router.get("/alerts", response_model=list[AlertOut])
async def alerts(limit: int = Query(50, ge=1, le=500), c: PanelContext = Depends(ctx)) -> list[AlertOut]:
    return [
        AlertOut.model_validate(a) for a in await c.store.alerts.list(company=c.settings.company, limit=limit)
    ]
