"""Contact import from CSV/XLSX with per-row errors."""

import io

import pytest
from openpyxl import Workbook
from rich.console import Console

from switchboard.contacts_import import ImportFileError, import_contacts, print_report

CSV = """\ufeffPhone,Name,City,Timezone,Plan
09121234567,Ali,Tehran,,gold
+989121234568,Sara,Shiraz,Asia/Tehran,
0912,Short,,,
not-a-number,Bad,,,
۰۹۱۲۱۲۳۴۵۶۹,Reza,Tabriz,+0330,silver
,,,,
0912 123 4567,Dup in file,,,
09121234570,Bad tz,,Mars/Olympus,
"""


async def test_csv_import_keeps_good_rows_and_reports_bad_ones(store, settings, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text(CSV, encoding="utf-8")
    out = io.StringIO()
    report = await import_contacts(
        store, path, settings, progress=True, campaign="spring", console=Console(file=out, width=100)
    )
    assert (report.total_rows, report.imported, report.rejected) == (7, 3, 4)
    errors = {e.row: e.reason for e in report.errors}
    assert set(errors) == {4, 5, 8, 9}
    assert "too short" in errors[4]
    assert "invalid phone number" in errors[5]
    assert "duplicate" in errors[8]
    assert "timezone" in errors[9]
    page = await store.contacts.list(company="acme")
    by_phone = {c.phone_e164: c for c in page.items}
    assert set(by_phone) == {"+989121234567", "+989121234568", "+989121234569"}
    ali = by_phone["+989121234567"]
    assert ali.name == "Ali" and ali.attributes == {"City": "Tehran", "Plan": "gold"}
    assert ali.timezone == "Asia/Tehran"  # from the number's region
    assert by_phone["+989121234569"].timezone == "+0330"
    assert ali.campaign_id == (await store.campaigns.by_name("spring", company="acme")).id
    assert "importing contacts.csv" in out.getvalue()
    # Importing the same file again: every row is now a duplicate, nothing is added twice.
    again = await import_contacts(store, path, settings, progress=False, campaign="spring")
    assert again.imported == 0 and sum("already a contact" in e.reason for e in again.errors) == 3
    printed = io.StringIO()
    print_report(again, Console(file=printed, width=120))
    assert "0 imported" in printed.getvalue() and "already a contact" in printed.getvalue()


async def test_xlsx_import_with_persian_headers_and_numeric_cells(store, settings, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["شماره موبایل", "نام", "بدهی"])
    ws.append([9121234567, "علی", 1500000])  # Excel dropped the leading zero
    ws.append([9121234567.0, "تکراری", 1])
    ws.append(["۰۹۳۵۱۲۳۴۵۶۷", "مریم", None])
    ws.append(["0211", "بد", None])
    path = tmp_path / "contacts.xlsx"
    wb.save(path)
    report = await import_contacts(store, path, settings, progress=False)
    assert (report.imported, [e.row for e in report.errors]) == (2, [3, 5])
    rows = {c.phone_e164: c for c in (await store.contacts.list()).items}
    assert rows["+989121234567"].name == "علی" and rows["+989121234567"].attributes == {"بدهی": "1500000"}
    assert "+989351234567" in rows


async def test_unusable_files(store, settings, tmp_path):
    no_phone = tmp_path / "x.csv"
    no_phone.write_text("name,city\nAli,Tehran\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no phone column"):
        await import_contacts(store, no_phone, settings, progress=False)
    odd = tmp_path / "x.pdf"
    odd.write_bytes(b"%PDF")
    with pytest.raises(ImportFileError, match="unsupported"):
        await import_contacts(store, odd, settings, progress=False)
    broken = tmp_path / "x.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ImportFileError, match="cannot read"):
        await import_contacts(store, broken, settings, progress=False)
    with pytest.raises(ImportFileError, match="cannot read"):
        await import_contacts(store, tmp_path / "missing.csv", settings, progress=False)
