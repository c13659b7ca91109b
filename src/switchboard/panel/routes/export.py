"""Results and contacts as CSV (streamed, so a large campaign never sits in memory) or XLSX.

Every cell is safe to open in a spreadsheet: text that a spreadsheet would run as a formula (it
starts with `=`, `+`, `-`, `@`, a tab or a carriage return — what callers said, names, reasons,
phone numbers such as `+98…`) is prefixed with a `'`, as OWASP recommends; in XLSX it is also
written as a text cell, never a formula.

`since` / `until` without a time zone are read in the panel's zone (PANEL_TIMEZONE). Everything is
checked before the first byte is sent: a bad parameter is a 422, never a download cut off after 200.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from switchboard.panel.bounded import IsoDatetime
from switchboard.panel.deps import Authed, PanelContext, ctx
from switchboard.panel.limits import IdQuery
from switchboard.store.models import Contact

router = APIRouter(prefix="/api/v1/export", dependencies=Authed, tags=["export"])

RESULT_COLUMNS = [
    "call_id", "direction", "scenario", "contact_id", "number_id", "phone", "phone_e164", "line", "operator",
    "originated_at", "answered_at", "ended_at", "result", "reason", "intent", "user_message", "recording_path",
    # what the result means (built in, or declared by its scenario): see GET /api/v1/results
    "result_name", "panel_status", "contacted", "success",
]
CONTACT_COLUMNS = [
    "contact_id", "campaign_id", "external_id", "phone", "phone_e164", "name", "status", "attempts",
    "last_attempt_at", "next_attempt_at", "last_result", "last_reason", "timezone", "attributes",
]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 500


def neutralize(value: Any) -> str:
    """A cell's text, with a leading `'` when a spreadsheet would otherwise read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = value if isinstance(value, str) else str(value)
    if text.startswith(DANGEROUS):
        return "'" + text
    return text


def _call_row(call: Any) -> list[Any]:
    return [call.id, call.direction, call.scenario, call.contact_id, call.number_id, call.phone, call.phone_e164,
            call.line, call.operator, call.originated_at, call.answered_at, call.ended_at, call.result, call.reason,
            call.intent, call.user_message, call.recording_path]


def _meaning(c: PanelContext, call: Any) -> list[str]:
    result = getattr(call, "result", None)
    if not result:
        return ["", "", "", ""]
    d = c.local.results.get(result, getattr(call, "scenario", None))
    return [d.display_name, getattr(call, "panel_status", None) or d.panel_status, "yes" if d.contacted else "no",
            "yes" if d.success else "no"]


def _contact_row(contact: Contact) -> list[Any]:
    attributes = json.dumps(contact.attributes or {}, ensure_ascii=False, sort_keys=True, default=str)
    return [contact.id, contact.campaign_id, contact.external_id, contact.phone, contact.phone_e164, contact.name,
            contact.status, contact.attempts, contact.last_attempt_at, contact.next_attempt_at, contact.last_result,
            contact.last_reason, contact.timezone, attributes]


def _window(c: PanelContext, since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    from switchboard.panel.tz import parse_offset

    zone = parse_offset(c.settings.panel_timezone)
    since = since.replace(tzinfo=zone) if since is not None and since.tzinfo is None else since
    until = until.replace(tzinfo=zone) if until is not None and until.tzinfo is None else until
    try:  # the store compares in UTC: 0001-01-01T00:00+14:00 has no UTC time
        since = since.astimezone(UTC) if since is not None else None
        until = until.astimezone(UTC) if until is not None else None
    except (OverflowError, ValueError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since/until out of range") from None
    if since is not None and until is not None and since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since must be before until")
    return since, until


async def _calls(c: PanelContext, since: datetime | None, until: datetime | None) -> AsyncIterator[list[Any]]:
    async for call in c.store.calls.iter_finished(company=c.settings.company, since=since, until=until):
        yield [*_call_row(call), *_meaning(c, call)]


async def _contacts(c: PanelContext, campaign_id: int | None) -> AsyncIterator[list[Any]]:
    last = 0
    while True:
        stmt = select(Contact).where(Contact.company == c.settings.company, Contact.id > last)
        if campaign_id is not None:
            stmt = stmt.where(Contact.campaign_id == campaign_id)
        async with c.store.sessions() as s:
            rows = list((await s.scalars(stmt.order_by(Contact.id).limit(CHUNK))).all())
        for row in rows:
            yield _contact_row(row)
        if len(rows) < CHUNK:
            return
        last = rows[-1].id


def _csv(name: str, columns: list[str], rows: AsyncIterator[list[Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # Excel opens UTF-8 (Persian names) correctly with a BOM
        writer.writerow(columns)
        async for row in rows:
            writer.writerow([neutralize(v) for v in row])
            if buf.tell() > 64_000:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(body(), media_type=CSV_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def _write_xlsx(columns: list[str], rows: Iterable[list[Any]], out: Any) -> None:
    """Blocking: openpyxl's write-only workbook, every cell a text cell (data_type "s")."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("export")

    def cell(value: Any) -> WriteOnlyCell:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return WriteOnlyCell(ws, value=value)
        # XML 1.0 cannot hold most control characters (names typed with them, imported rows)
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", neutralize(value))
        c = WriteOnlyCell(ws, value=text)
        c.data_type = "s"  # text, even when it starts with "=": openpyxl would write a formula
        return c

    ws.append([cell(name) for name in columns])
    for row in rows:
        ws.append([cell(v) for v in row])
    wb.save(out)


async def _xlsx(name: str, columns: list[str], rows: AsyncIterator[list[Any]]) -> StreamingResponse:
    collected = [row async for row in rows]  # XLSX is a zip: written whole, then streamed from disk
    spool = tempfile.SpooledTemporaryFile(max_size=8_000_000)
    await asyncio.to_thread(_write_xlsx, columns, collected, spool)
    spool.seek(0)

    def chunks() -> Iterable[bytes]:
        try:
            while block := spool.read(65_536):
                yield block
        finally:
            spool.close()

    return StreamingResponse(chunks(), media_type=XLSX_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


def _doc(kind: str) -> dict[int | str, dict[str, Any]]:
    media = CSV_TYPE.split(";")[0] if kind == "csv" else XLSX_TYPE
    return {200: {"content": {media: {"schema": {"type": "string", "format": "binary"}}},
                  "description": f"the {kind.upper()} file"}}


SINCE = Query(None, description="calls created at or after this RFC 3339 time; without a zone: PANEL_TIMEZONE")
UNTIL = Query(None, description="calls created before this RFC 3339 time; without a zone: PANEL_TIMEZONE")


def _results(kind: str) -> Callable[..., Any]:
    async def export(since: IsoDatetime | None = SINCE, until: IsoDatetime | None = UNTIL,
                     c: PanelContext = Depends(ctx)) -> StreamingResponse:
        lo, hi = _window(c, since, until)
        if kind == "csv":
            return _csv("results", RESULT_COLUMNS, _calls(c, lo, hi))
        return await _xlsx("results", RESULT_COLUMNS, _calls(c, lo, hi))

    return export


def _contacts_export(kind: str) -> Callable[..., Any]:
    async def export(campaign_id: IdQuery = None, c: PanelContext = Depends(ctx)) -> StreamingResponse:
        if kind == "csv":
            return _csv("contacts", CONTACT_COLUMNS, _contacts(c, campaign_id))
        return await _xlsx("contacts", CONTACT_COLUMNS, _contacts(c, campaign_id))

    return export


for _kind in ("csv", "xlsx"):
    router.add_api_route(f"/results.{_kind}", _results(_kind), methods=["GET"], response_class=StreamingResponse,
                         responses=_doc(_kind), summary=f"Call results as {_kind.upper()}")
    router.add_api_route(f"/contacts.{_kind}", _contacts_export(_kind), methods=["GET"],
                         response_class=StreamingResponse, responses=_doc(_kind),
                         summary=f"Contacts as {_kind.upper()}")
