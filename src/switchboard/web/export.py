"""CSV and XLSX downloads of any filtered list, streamed, and safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula
(CSV/DDE injection: a contact named `=HYPERLINK(...)`); such text is prefixed with `'`, which
spreadsheets show as plain text. Plain numbers (`+989121234567`, `-3.5`) are left alone: they are
not formulas and a phone number must stay readable.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import FileResponse, StreamingResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?[0-9][0-9 ().]*$")
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def neutralise(value: Any) -> Any:
    """The value as a spreadsheet must see it: text that could start a formula gets a `'`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, float, date)) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_START) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _filename(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "export"


def csv_response(name: str, header: Sequence[str], rows: AsyncIterable[Sequence[Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # Excel opens UTF-8 (Persian names) correctly with a BOM
        writer.writerow([neutralise(h) for h in header])
        async for row in rows:
            writer.writerow([neutralise(v) for v in row])
            if buf.tell() > 64_000:
                yield buf.getvalue().encode()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode()

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{_filename(name)}.csv"'})


async def xlsx_response(name: str, header: Sequence[str], rows: AsyncIterable[Sequence[Any]],
                        *, sheet: str = "export") -> FileResponse:
    """A write-only workbook (rows go straight to a temporary file), every text cell typed as text."""
    import asyncio

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31] or "export")
    bold = Font(bold=True)

    def cells(values: Sequence[Any], font: Font | None = None) -> list[WriteOnlyCell]:
        out = []
        for v in values:
            safe = neutralise(v)
            cell = WriteOnlyCell(ws, value=safe)
            if isinstance(safe, str):
                cell.data_type = "s"  # never a formula, whatever the text
            if font is not None:
                cell.font = font
            out.append(cell)
        return out

    ws.append(cells(header, bold))
    async for row in rows:
        ws.append(cells(row))
    tmp = tempfile.NamedTemporaryFile(prefix="switchboard-export-", suffix=".xlsx", delete=False)
    tmp.close()
    await asyncio.to_thread(wb.save, tmp.name)

    def cleanup() -> None:
        import os

        try:
            os.unlink(tmp.name)
        except OSError:
            pass

    return FileResponse(tmp.name, media_type=XLSX_MEDIA, filename=f"{_filename(name)}.xlsx",
                        background=BackgroundTask(cleanup))


async def export(fmt: str, name: str, header: Sequence[str], rows: AsyncIterable[Sequence[Any]]) -> Any:
    if fmt == "xlsx":
        return await xlsx_response(name, header, rows)
    return csv_response(name, header, rows)


__all__ = ["csv_response", "export", "neutralise", "xlsx_response"]
