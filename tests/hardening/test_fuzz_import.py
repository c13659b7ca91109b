"""Hypothesis fuzzing of the contacts importer (`switchboard contacts import`): generated tables written
as CSV (random delimiters and quoting) and XLSX, and CSV files mutated at the byte level.

For any file: the import either refuses the whole file with an `ImportFileError` that says why, or
returns a report where every non-blank row is imported or rejected with its row number and a reason;
what was imported is exactly what the store holds, and every stored contact can be listed through
the API and exported (CSV and XLSX) without an error. The CLI never prints a traceback.
"""

from __future__ import annotations

import asyncio
import re
import csv
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from openpyxl import Workbook
from typer.testing import CliRunner

from switchboard.cli import app as cli
from switchboard.contacts_import import ImportFileError, import_contacts
from switchboard.panel.server import create_panel_app
from switchboard.settings import Settings
from switchboard.store import Store, open_store
from tests.hardening.util import fuzz
from tests.storekit import BACKENDS, PG_URL, reset_postgres

PHONES = st.one_of(
    st.sampled_from(["09121234567", "۰۹۱۲۱۲۳۴۵۶۷", "+98 912 123 4567", "00989121234567", "9121234567",
                     "9.121234567E9", "0912-123-4567", "+15555550100", "0", "", "=cmd|' /C calc'!A0", "٠٩١٢١٢٣٤٥٦٧"]),
    st.from_regex(r"09[0-9]{9}", fullmatch=True),
    st.text(max_size=20),
)
CELLS = st.one_of(st.text(max_size=30), st.sampled_from(["=1+1", "+1", "-1", "@x", "\tx", "Asia/Tehran", "+0330",
                                                         "Mars/Olympus", "Asia", "x" * 1500, "a\x00b", "\x1b[31m",
                                                         "[red]markup[/red]", "[/]"]),
                  st.integers(-(2**70), 2**70), st.floats(), st.none())
HEADERS = st.lists(st.sampled_from(["phone", "Phone Number", "شماره", "name", "نام", "timezone", "tz", "city",
                                    "", "note", "x" * 300, "[bold]", "phone"]), min_size=1, max_size=6)


@st.composite
def table(draw: st.DrawFn) -> list[list[Any]]:
    header = draw(HEADERS)
    if draw(st.booleans()):
        header.insert(draw(st.integers(0, len(header))), "phone")
    rows = [header]
    for _ in range(draw(st.integers(0, 12))):
        width = draw(st.integers(0, len(header) + 2))
        rows.append([draw(PHONES) if header[i % len(header)].lower().startswith(("phone", "شماره")) else draw(CELLS)
                     for i in range(width)])
    return rows


def write_csv(rows: list[list[Any]], delimiter: str, quoting: int) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, quoting=quoting).writerows(
        [["" if v is None else v for v in row] for row in rows])
    return buf.getvalue().encode("utf-8", "surrogatepass")


def write_xlsx(rows: list[list[Any]], path: Path) -> None:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in row])
    wb.save(path)


class Rig:
    """One store and one API for a whole fuzz run (each example imports into its own campaign)."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.settings = Settings(_env_file=None, data_dir=tmp / "data", logs_dir=tmp / "logs",  # type: ignore[call-arg]
                                 builtin_panel_token="t", database_url=url,
                                 builtin_panel_token_scopes="dialer,read,pii,write,control,export,delete,admin")
        self.loop = asyncio.new_event_loop()
        if url.startswith("postgresql"):
            self.loop.run_until_complete(reset_postgres(url))
        self.store: Store = self.loop.run_until_complete(open_store(self.settings))
        self.app = create_panel_app(self.store, self.settings)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module", params=BACKENDS)
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    r = Rig(tmp_path_factory.mktemp("import-fuzz"), PG_URL if request.param == "postgresql" else "")
    yield r
    r.close()


async def check_import(rig: Rig, path: Path) -> str:
    """Import `path`; returns what happened ("refused: <reason>", or "imported N of M rows")."""
    campaign = uuid.uuid4().hex
    try:
        report = await import_contacts(rig.store, path, rig.settings, progress=False, campaign=campaign)
    except ImportFileError as exc:
        assert str(exc)
        event("file refused: " + re.sub(r"[0-9a-f]{32}|\d+", "N", str(exc))[:50])
        return f"refused: {exc}"
    event("imported" if report.imported else "every row rejected" if report.errors else "no rows")
    assert report.imported + report.rejected == report.total_rows, report
    for err in report.errors:
        assert 2 <= err.row and err.reason
    row = await rig.store.campaigns.by_name(campaign, company=rig.settings.company)
    assert row is not None
    stored = await rig.store.contacts.list(company=rig.settings.company, campaign_id=row.id, limit=500)
    assert stored.total == report.imported
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="http://panel",
                                 headers={"Authorization": "Bearer t"}) as api:
        listing = await api.get("/api/v1/contacts", params={"campaign_id": row.id, "limit": 500})
        assert listing.status_code == 200 and listing.json()["total"] == report.imported
        for kind in ("csv", "xlsx"):
            export = await api.get(f"/api/v1/export/contacts.{kind}", params={"campaign_id": row.id})
            assert export.status_code == 200, export.text[:500]
    return f"imported {report.imported} of {report.total_rows} rows"


OUTCOME = re.compile(r"refused: \S.*|imported \d+ of \d+ rows", re.S)  # refused with a reason, or accounted


@fuzz(120)
@given(table(), st.sampled_from([",", ";", "\t", "|"]), st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL,
                                                                          csv.QUOTE_NONNUMERIC]))
def test_generated_csv_imports_or_is_refused_with_reasons(rig: Rig, rows: list[list[Any]], delimiter: str,
                                                          quoting: int) -> None:
    path = rig.tmp / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(write_csv(rows, delimiter, quoting))
    outcome = rig.run(check_import(rig, path))
    assert OUTCOME.fullmatch(outcome), outcome


@fuzz(60)
@given(table())
def test_generated_xlsx_imports_or_is_refused_with_reasons(rig: Rig, rows: list[list[Any]]) -> None:
    path = rig.tmp / f"{uuid.uuid4().hex}.xlsx"
    write_xlsx(rows, path)
    outcome = rig.run(check_import(rig, path))
    assert OUTCOME.fullmatch(outcome), outcome


SEED_CSV = "phone,name,city,timezone\n09121234567,Sara,Tehran,Asia/Tehran\n09121234568,Ali,Shiraz,+0330\n".encode()


@fuzz(150)
@given(st.lists(st.tuples(st.integers(0, len(SEED_CSV)),
                          st.one_of(st.binary(max_size=8), st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),
                                    st.sampled_from([b",", b"\n", b'"', b";", b"\r\n", b"\x00", b"=", b"\t"]))),
                min_size=1, max_size=6))
def test_byte_mutated_csv_imports_or_is_refused_with_reasons(rig: Rig, edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(SEED_CSV)
    for at, chunk in edits:
        data[at:at + len(chunk) // 2] = chunk
    path = rig.tmp / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(bytes(data))
    outcome = rig.run(check_import(rig, path))
    assert OUTCOME.fullmatch(outcome), outcome


@pytest.mark.parametrize("name, content, words", [
    ("nul.csv", b"phone,name\n09121234567,a\x00b\n09121234568,ok\n", "1 imported"),
    ("huge_field.csv", b"phone,name\n09121234567," + b"x" * 200_000 + b"\n", "field larger"),
    ("latin1.csv", b"phone,name\n09121234567,caf\xe9\n", "line 2"),
    ("markup.csv", b"phone,[red]name[/]\n[/]0912,x\n", "rejected"),
    ("not_a_zip.xlsx", b"PK\x03\x04 definitely not a workbook", "not an XLSX workbook"),
    ("empty.csv", b"", "is empty"),
    ("bom_only.csv", b"\xef\xbb\xbf", "is empty"),
])
def test_hostile_files_through_the_cli(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    env = {"DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"), "COLUMNS": "200"}
    out = CliRunner().invoke(cli, ["contacts", "import", str(path)], env=env)
    assert "Traceback" not in out.output and out.exception is None or isinstance(out.exception, SystemExit), \
        out.output
    assert words in out.output, out.output


async def _aiter(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item
