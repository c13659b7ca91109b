"""Import contacts from CSV or XLSX (`switchboard contacts import FILE`).

Columns are matched by header (case-insensitive, English or Persian): a phone column is required;
name and timezone are optional; every other column goes into the contact's `attributes`. Each bad
row is reported with its row number and reason (invalid number, duplicate, bad time zone) and
skipped; every good row is kept.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable, Iterator
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
    with path.open(newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        yield from csv.reader(fh, dialect)


def _read_xlsx(path: Path) -> Iterator[list[Any]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        for row in wb.active.iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()


def read_rows(path: Path) -> list[list[Any]]:
    """All rows (header first) as lists; blocking, run it in a thread."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return list(_read_csv(path))
        if suffix in (".xlsx", ".xlsm"):
            return list(_read_xlsx(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # openpyxl raises assorted errors on a corrupt workbook
        raise ImportFileError(f"cannot read {path} as a spreadsheet: {exc}") from exc
    raise ImportFileError(f"unsupported file type {suffix!r}: use .csv or .xlsx")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 9121234567 as 9121234567.0
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
    header = [_key(h) for h in rows[0]]
    phone_col = next((i for i, h in enumerate(header) if h in PHONE_HEADERS), None)
    if phone_col is None:
        raise ImportFileError(f"no phone column in {path} (headers: {', '.join(map(str, rows[0]))})")
    name_col = next((i for i, h in enumerate(header) if h in NAME_HEADERS), None)
    tz_col = next((i for i, h in enumerate(header) if h in TZ_HEADERS), None)
    extra = [
        (i, str(rows[0][i]).strip())
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
            try:
                number = normalize(phone_raw, settings.default_region)
            except InvalidPhoneNumber as exc:
                report.errors.append(RowError(row_no, f"invalid phone number: {exc.detail}", phone_raw))
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
                    report.errors.append(RowError(row_no, str(exc), tz))
                    continue
            seen.add(number.e164)
            attributes = {name: cells[i] for i, name in extra if i < len(cells) and cells[i] != ""}
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


def print_report(report: ImportReport, console: Console | None = None, *, max_errors: int = 50) -> None:
    """Summary plus the per-row error table (the CLI prints this after `import_contacts`)."""
    from rich.table import Table

    console = console or Console()
    console.print(
        f"[bold]{report.path.name}[/]: {report.total_rows} rows, "
        f"[green]{report.imported} imported[/], [red]{report.rejected} rejected[/]"
    )
    if report.errors:
        table = Table("row", "reason", "value")
        for err in report.errors[:max_errors]:
            table.add_row(str(err.row), err.reason, err.value)
        console.print(table)
        if report.rejected > max_errors:
            console.print(f"... and {report.rejected - max_errors} more")
