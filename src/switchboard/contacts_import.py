"""Import contacts from CSV or XLSX (`switchboard contacts import FILE`).

Columns are matched by header (case-insensitive, English or Persian): a phone column is required;
name and timezone are optional; every other column goes into the contact's `attributes`. Each bad
row is reported with its row number and reason (invalid number, duplicate, bad time zone, a value too
long or holding control characters) and skipped; every good row is kept.

Limits (a file over them is refused whole, with the reason): `MAX_FILE_BYTES` on disk, `MAX_ROWS`
rows, `MAX_COLUMNS` columns, and for XLSX (a zip) `MAX_UNZIPPED_BYTES` once unpacked.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from switchboard.panel.tz import parse_offset
from switchboard.phones import InvalidPhoneNumber, normalize
from switchboard.settings import Settings
from switchboard.store import NewContact, Store

PHONE_HEADERS = {
    "phone",
    "phone_number",
    "phonenumber",
    "number",
    "mobile",
    "msisdn",
    "tel",
    "telephone",
    "شماره",
    "شماره تلفن",
    "تلفن",
    "موبایل",
    "شماره موبایل",
    "همراه",
}
NAME_HEADERS = {"name", "full_name", "fullname", "customer", "نام", "نام و نام خانوادگی", "اسم"}
TZ_HEADERS = {"timezone", "time_zone", "tz", "منطقه زمانی"}
CHUNK = 500
MAX_FILE_BYTES = 50_000_000
MAX_UNZIPPED_BYTES = 500_000_000
MAX_ROWS = 500_000
MAX_COLUMNS = 200
MAX_CELL = 1000  # characters in one attribute cell
MAX_NAME = 200  # the contacts.name column
MAX_PHONE = 64  # the contacts.phone column
MAX_ATTRIBUTES_BYTES = 16_384  # as the API allows
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, unknown type, no phone column)."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1-based row number as a spreadsheet shows it (the header is row 1)
    reason: str
    value: str = ""


@dataclass
class ImportReport:
    path: Path
    total_rows: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


def _key(header: Any) -> str:
    return " ".join(str(header or "").strip().lower().replace("-", "_").split())


def _read_csv(path: Path) -> Iterator[list[Any]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{path.name} is not UTF-8 text (line {line}, byte {exc.start}); "
                              "save it as CSV UTF-8") from None
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportFileError(f"{path.name}: line {reader.line_num}: {exc}") from None


def _read_xlsx(path: Path) -> Iterator[list[Any]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile:
        raise ImportFileError(f"cannot read {path.name}: not an XLSX workbook") from None
    if unpacked > MAX_UNZIPPED_BYTES:
        raise ImportFileError(f"{path.name} unpacks to {unpacked:,} bytes (limit {MAX_UNZIPPED_BYTES:,}); "
                              "split it")
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.active
        if ws is None:
            raise ImportFileError(f"{path.name} has no worksheet")
        # max_col: a sheet whose stated size is 16,384 columns must not become rows of 16,384 cells
        for row in ws.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1):
            cells = list(row)
            while cells and cells[-1] is None:  # read-only rows are padded to max_col
                cells.pop()
            yield cells
    finally:
        wb.close()


def read_rows(path: Path) -> list[list[Any]]:
    """All rows (header first) as lists; blocking, run it in a thread. Raises ImportFileError for a
    file that cannot be imported at all (unreadable, too large, unknown type, corrupt)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm"):
        raise ImportFileError(f"unsupported file type {suffix!r}: use .csv or .xlsx")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size > MAX_FILE_BYTES:
        raise ImportFileError(f"{path.name} is {size:,} bytes (limit {MAX_FILE_BYTES:,}); split it")
    rows: list[list[Any]] = []
    try:
        for row in (_read_csv(path) if suffix in (".csv", ".txt", ".tsv") else _read_xlsx(path)):
            if len(rows) > MAX_ROWS:
                raise ImportFileError(f"{path.name} has more than {MAX_ROWS:,} rows; split it")
            rows.append(row[: MAX_COLUMNS + 1])
    except ImportFileError:
        raise
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # openpyxl raises assorted errors on a corrupt workbook
        raise ImportFileError(f"cannot read {path.name} as a spreadsheet: {type(exc).__name__}: "
                              f"{str(exc)[:200]}") from exc
    if rows and len(rows[0]) > MAX_COLUMNS:
        raise ImportFileError(f"{path.name} has more than {MAX_COLUMNS} columns")
    return rows


def _problem(cells: list[str], phone_col: int, name_col: int | None) -> str | None:
    """Why a row cannot be stored as it is, or None."""
    for i, cell in enumerate(cells):
        if _CONTROL.search(cell):
            return f"column {i + 1} holds a control character"
    if phone_col < len(cells) and len(cells[phone_col]) > MAX_PHONE:
        return f"phone cell longer than {MAX_PHONE} characters"
    if name_col is not None and name_col < len(cells) and len(cells[name_col]) > MAX_NAME:
        return f"name longer than {MAX_NAME} characters"
    long = next((i for i, cell in enumerate(cells) if len(cell) > MAX_CELL), None)
    if long is not None:
        return f"column {long + 1} is longer than {MAX_CELL} characters"
    return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # Excel stores 9121234567 as 9121234567.0
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).strip()


async def import_contacts(
    store: Store,
    path: Path | str,
    settings: Settings,
    progress: bool = True,
    *,
    campaign: str | None = None,
    console: Console | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate and insert the file's contacts (optionally into `campaign`, created if missing)."""
    path = Path(path)
    rows = await asyncio.to_thread(read_rows, path)
    report = ImportReport(path=path)
    if not rows:
        raise ImportFileError(f"{path} is empty")
    header = [_key(_cell(h))[:100] for h in rows[0]]
    phone_col = next((i for i, h in enumerate(header) if h in PHONE_HEADERS), None)
    if phone_col is None:
        raise ImportFileError(f"no phone column in {path} (headers: {', '.join(map(str, rows[0]))})")
    name_col = next((i for i, h in enumerate(header) if h in NAME_HEADERS), None)
    tz_col = next((i for i, h in enumerate(header) if h in TZ_HEADERS), None)
    extra = [
        (i, _CONTROL.sub("", _cell(rows[0][i]))[:100])
        for i, h in enumerate(header)
        if i not in (phone_col, name_col, tz_col) and h
    ]

    company = settings.company
    campaign_id = (await store.campaigns.get_or_create(campaign, company=company)).id if campaign else None
    body = rows[1:]
    report.total_rows = sum(1 for r in body if any(_cell(v) for v in r))
    seen: set[str] = set()
    pending: list[tuple[int, NewContact]] = []

    async def flush() -> None:
        if not pending:
            return
        existing = await store.contacts.existing_phones(
            [c.phone_e164 for _, c in pending], company=company, campaign_id=campaign_id
        )
        fresh = []
        for row_no, contact in pending:
            if contact.phone_e164 in existing:
                report.errors.append(RowError(row_no, "duplicate: already a contact", contact.phone))
            else:
                fresh.append(contact)
        report.imported += await store.contacts.add_many(fresh)
        pending.clear()

    bar = Progress(
        TextColumn("[bold]importing {task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
        transient=False,
    )
    with bar:
        task = bar.add_task("import", total=len(body), name=path.name)
        for offset, raw in enumerate(body):
            row_no = offset + 2
            bar.advance(task)
            if on_progress is not None:
                on_progress(offset + 1, len(body))
            cells = [_cell(v) for v in raw]
            if not any(cells):
                continue  # blank line
            phone_raw = cells[phone_col] if phone_col < len(cells) else ""
            problem = _problem(cells, phone_col, name_col)
            if problem is not None:
                report.errors.append(RowError(row_no, problem, _shown(phone_raw)))
                continue
            try:
                number = normalize(phone_raw, settings.default_region)
            except InvalidPhoneNumber as exc:
                report.errors.append(RowError(row_no, f"invalid phone number: {exc.detail}", _shown(phone_raw)))
                continue
            if number.e164 in seen:
                report.errors.append(
                    RowError(row_no, "duplicate: same number earlier in the file", phone_raw)
                )
                continue
            tz = cells[tz_col] if tz_col is not None and tz_col < len(cells) else ""
            if tz:
                try:
                    parse_offset(tz)
                except ValueError as exc:
                    report.errors.append(RowError(row_no, str(exc), _shown(tz)))
                    continue
            attributes = {name: cells[i] for i, name in extra if i < len(cells) and cells[i] != ""}
            if len(json.dumps(attributes, ensure_ascii=False).encode("utf-8")) > MAX_ATTRIBUTES_BYTES:
                report.errors.append(RowError(row_no, f"the other columns hold more than {MAX_ATTRIBUTES_BYTES:,} "
                                              "bytes", _shown(phone_raw)))
                continue
            seen.add(number.e164)
            pending.append(
                (
                    row_no,
                    NewContact(
                        phone=phone_raw,
                        phone_e164=number.e164,
                        phone_national=number.national,
                        name=(cells[name_col] or None)
                        if name_col is not None and name_col < len(cells)
                        else None,
                        attributes=attributes,
                        timezone=tz or number.timezone,
                        company=company,
                        campaign_id=campaign_id,
                    ),
                )
            )
            if len(pending) >= CHUNK:
                await flush()
        await flush()
    report.errors.sort(key=lambda e: e.row)
    return report


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def print_report(report: ImportReport, console: Console | None = None, *, max_errors: int = 50) -> None:
    """Summary plus the per-row error table (the CLI prints this after `import_contacts`)."""
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    console.print(
        f"[bold]{escape(report.path.name)}[/]: {report.total_rows} rows, "
        f"[green]{report.imported} imported[/], [red]{report.rejected} rejected[/]"
    )
    if report.errors:
        table = Table("row", "reason", "value")
        for err in report.errors[:max_errors]:
            table.add_row(str(err.row), escape(err.reason), escape(err.value))  # cells are data, not markup
        console.print(table)
        if report.rejected > max_errors:
            console.print(f"... and {report.rejected - max_errors} more")
