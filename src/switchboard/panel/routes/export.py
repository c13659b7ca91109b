"""Results as CSV, streamed so a large campaign never sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from switchboard.panel.deps import Authed, PanelContext, ctx

router = APIRouter(prefix="/api/v1/export", dependencies=Authed, tags=["export"])

COLUMNS = [
    "call_id",
    "direction",
    "scenario",
    "contact_id",
    "number_id",
    "phone",
    "phone_e164",
    "line",
    "operator",
    "originated_at",
    "answered_at",
    "ended_at",
    "result",
    "reason",
    "intent",
    "user_message",
    "recording_path",
    # what the result means (built in, or declared by its scenario): see GET /api/v1/results
    "result_name",
    "panel_status",
    "contacted",
    "success",
]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _meaning(c: PanelContext, call: object) -> list[str]:
    result = getattr(call, "result", None)
    if not result:
        return ["", "", "", ""]
    d = c.local.results.get(result, getattr(call, "scenario", None))
    return [d.display_name, getattr(call, "panel_status", None) or d.panel_status, "yes" if d.contacted else "no",
            "yes" if d.success else "no"]


@router.get("/results.csv")
async def results_csv(
    since: datetime | None = None, until: datetime | None = None, c: PanelContext = Depends(ctx)
) -> StreamingResponse:
    async def rows() -> AsyncIterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # Excel opens UTF-8 (Persian names) correctly with a BOM
        writer.writerow(COLUMNS)
        async for call in c.store.calls.iter_finished(company=c.settings.company, since=since, until=until):
            writer.writerow(
                [
                    call.id,
                    call.direction,
                    call.scenario or "",
                    call.contact_id or "",
                    call.number_id or "",
                    call.phone,
                    call.phone_e164 or "",
                    call.line or "",
                    call.operator or "",
                    _iso(call.originated_at),
                    _iso(call.answered_at),
                    _iso(call.ended_at),
                    call.result or "",
                    call.reason or "",
                    call.intent or "",
                    call.user_message or "",
                    call.recording_path or "",
                    *_meaning(c, call),
                ]
            )
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="results.csv"'},
    )
