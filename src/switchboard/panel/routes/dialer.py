"""The dialer contract (/api/dialer/*) served from the local database."""

from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response, status

from switchboard.panel.contract import (
    Ack,
    AlertRequest,
    NextBatchResponse,
    RegisterOutboundLinesRequest,
    RegisterScenariosRequest,
    ReportResultRequest,
)
from switchboard.panel.deps import Authed, PanelContext, ctx
from switchboard.panel.limits import ErrorOut

router = APIRouter(prefix="/api/dialer", dependencies=Authed, tags=["dialer"])


@router.get("/next-batch", response_model=NextBatchResponse)
async def next_batch(
    size: int = Query(50, ge=0, le=1000),
    company: str | None = Query(None),
    dialer_id: str | None = Header(None, alias="X-Dialer-Id"),
    c: PanelContext = Depends(ctx),
) -> Response:
    # The dialer polls this all day: the JSON is written directly (same document as the model).
    body = await c.local.next_batch_body(size, company, owner=dialer_id[:100] if dialer_id else None)
    return Response(body, media_type="application/json")


@router.post("/register-scenarios", response_model=Ack)
async def register_scenarios(body: RegisterScenariosRequest, c: PanelContext = Depends(ctx)) -> Ack:
    await c.local.register_scenarios(body.scenarios, company=body.company)
    return Ack()


@router.post("/register-outbound-lines", response_model=Ack)
async def register_outbound_lines(body: RegisterOutboundLinesRequest, c: PanelContext = Depends(ctx)) -> Ack:
    await c.local.register_outbound_lines(body.lines, company=body.company)
    return Ack()


_ACKS = {(dup, found): Ack(duplicate=dup, detail=None if found else "no matching contact").model_dump_json().encode()
         for dup in (False, True) for found in (False, True)}


@router.post("/report-result", response_model=Ack, responses={
    409: {"model": ErrorOut, "description": "Idempotency-Key already used with a different body"}})
async def report_result(
    body: ReportResultRequest,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=100),
    c: PanelContext = Depends(ctx),
) -> Response:
    # Without a key, the body itself is the key: an identical replay is still applied once.
    key = (
        idempotency_key
        or "body:"
        + hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:40]
    )
    outcome = await c.local.apply_report(body, key)
    if outcome.conflict:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "Idempotency-Key was already used with a different body; use a new key per result")
    return Response(_ACKS[(outcome.duplicate, outcome.contact_id is not None)], media_type="application/json")


@router.post("/alert", response_model=Ack)
async def alert(body: AlertRequest, c: PanelContext = Depends(ctx)) -> Ack:
    await c.local.send_alert(body.kind, body.message, body.details, company=body.company)
    return Ack()
