"""Calls: the record (list, one call with its timeline), calls placed now (POST /api/v1/calls and
the sales teams' `POST /api/v1/agent/sales/start_call`), the results a node knows and a report of
results by scenario."""

from __future__ import annotations


from fastapi import APIRouter, Depends, HTTPException, Query, status

from switchboard.panel.bounded import IsoDatetime
from switchboard.panel.deps import Authed, PageParams, PanelContext, ctx, page_params
from switchboard.panel.limits import ErrorOut
from switchboard.panel.schemas import (
    CallDetailOut,
    CallNowIn,
    CallOut,
    CallPlacedOut,
    EventOut,
    PageOut,
    ResultCountOut,
    ResultOut,
    ResultsReportOut,
    SalesStartCallIn,
)
from switchboard.phones import try_normalize

router = APIRouter(dependencies=Authed, tags=["calls"])


@router.get("/api/v1/calls", response_model=PageOut[CallOut])
async def list_calls(
    direction: str | None = Query(None, pattern="^(inbound|outbound)$"),
    result: str | None = Query(None, max_length=100),
    phone: str | None = Query(None, max_length=64),
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


async def _place(c: PanelContext, phone: str, *, scenario: str | None, persona: str | None, name: str | None,
                 fields: dict[str, object]) -> CallPlacedOut:
    dialer = c.dialer
    if dialer is None:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "no dialer runs in this process (start `switchboard run`, not `switchboard panel`)")
    from switchboard.dialer.loop import CallRefused

    try:
        placed = await dialer.call_now(phone, scenario=scenario, persona=persona, name=name, attributes=fields,
                                       wait=c.settings.call_now_wait_seconds)
    except CallRefused as exc:
        headers = {"Retry-After": "30"} if exc.status == 503 else None
        raise HTTPException(exc.status, exc.reason, headers=headers) from None
    return CallPlacedOut(call_id=placed.call_id, scenario=placed.scenario, phone=placed.phone, line=placed.line,
                         url=f"/api/v1/calls/{placed.call_id}")


_PLACE_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "Unknown scenario or persona"},
    409: {"model": ErrorOut, "description": "Not callable now: do-not-call, calling hours, caps, no dialer running"},
    503: {"model": ErrorOut, "description": "Dialing paused or no line free in time; retry after Retry-After"},
}


@router.post("/api/v1/calls", response_model=CallPlacedOut, status_code=status.HTTP_202_ACCEPTED,
             responses=_PLACE_ERRORS)
async def call_now(body: CallNowIn, c: PanelContext = Depends(ctx)) -> CallPlacedOut:
    """Call this number now, on whichever backend is configured, through the dialer's line limits
    and compliance (do-not-call, calling hours, daily caps). 202 with the call id to follow;
    409 (may not be called now, and why), 404 (unknown scenario/persona), 503 (no line free,
    dialing paused)."""
    if body.scenario and body.persona:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give a scenario or a persona, not both")
    return await _place(c, body.phone, scenario=body.scenario, persona=body.persona, name=body.name,
                        fields=dict(body.fields))


@router.post("/api/v1/agent/sales/start_call", response_model=CallPlacedOut, status_code=status.HTTP_202_ACCEPTED,
             responses=_PLACE_ERRORS)
async def sales_start_call(body: SalesStartCallIn, c: PanelContext = Depends(ctx)) -> CallPlacedOut:
    """The sales AI agent calls a lead now (same as POST /api/v1/calls with persona `sales`)."""
    return await _place(c, body.lead_phone, scenario=None, persona="sales", name=body.lead_name,
                        fields={**body.lead_fields, **({"name": body.lead_name} if body.lead_name else {})})


@router.get("/api/v1/calls/{call_id}", response_model=CallDetailOut)
async def get_call(call_id: str, c: PanelContext = Depends(ctx)) -> CallDetailOut:
    row = await c.store.calls.get(call_id[:64])
    if row is None or row.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
    out = CallDetailOut.model_validate(row)
    out.events = [EventOut.model_validate(e) for e in await c.store.calls.events(row.id)]
    return out


@router.get("/api/v1/results", response_model=list[ResultOut])
async def result_catalog(c: PanelContext = Depends(ctx)) -> list[ResultOut]:
    """Every result this node may record: the built-ins and each scenario's own, with what they mean."""
    return [ResultOut.model_validate(d.as_dict()) for d in c.local.results.all()]


@router.get("/api/v1/reports/results", response_model=ResultsReportOut)
async def results_report(since: IsoDatetime | None = None, until: IsoDatetime | None = None,
                         c: PanelContext = Depends(ctx)) -> ResultsReportOut:
    """Calls by scenario and result, with contact and success rates from the results' declarations."""
    rows = await c.store.calls.count_by_result(company=c.settings.company, since=since, until=until)
    out: list[ResultCountOut] = []
    for scenario, result, calls in sorted(rows, key=lambda r: (r[0] or "", -r[2], r[1])):
        d = c.local.results.get(result, scenario)
        out.append(ResultCountOut(scenario=scenario, result=result, display_name=d.display_name,
                                  panel_status=d.panel_status, contacted=d.contacted, success=d.success, calls=calls))
    total = sum(r.calls for r in out)
    contacted = sum(r.calls for r in out if r.contacted)
    success = sum(r.calls for r in out if r.success)
    return ResultsReportOut(calls=total, contacted=contacted, success=success,
                            contact_rate=round(contacted / total, 4) if total else 0.0,
                            success_rate=round(success / total, 4) if total else 0.0, by_result=out)
