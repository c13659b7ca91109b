"""The built-in panel's API against what a hostile or careless client sends: every case is a 4xx that
says why (never a 500, never a cut-off download), nothing wrong is accepted, and nothing that was
refused leaves the database in a state that breaks a later request. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from openpyxl import load_workbook

from switchboard import clock
from switchboard.panel.server import create_panel_app
from switchboard.settings import Settings
from switchboard.store import CallData, Store
from tests.storekit import BACKENDS, PG_URL, db_url, reset_postgres, store  # noqa: F401

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DANGEROUS = ["=cmd|' /C calc'!A0", "=HYPERLINK(\"http://evil.example\",\"click\")", "+1+1", "-2+3", "@SUM(A1)",
             "\tfoo", "\rbar"]


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs", company="acme",
                    builtin_panel_token=TOKEN, panel_timezone="+0330",
                    builtin_panel_token_scopes="dialer,read,pii,write,control,export,delete,admin")


@pytest.fixture
async def api(store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    app = create_panel_app(store, settings, list_scenarios=lambda: ["salehi_language", "agrad_marketing"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel",
                                 headers=AUTH) as client:
        yield client


def assert_422(resp: httpx.Response, words: str = "") -> None:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert isinstance(body["detail"], list) and body["detail"], body
    for item in body["detail"]:
        assert set(item) == {"loc", "msg", "type"}, item
    assert words.lower() in json.dumps(body, ensure_ascii=False).lower(), body


async def test_deeply_nested_attributes_are_refused_and_listing_keeps_working(api: httpx.AsyncClient) -> None:
    nested: dict = {}
    node = nested
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    assert_422(await api.post("/api/v1/contacts", json={"phone": "09121234567", "attributes": nested}), "nested")
    raw = '{"phone": "09121234567", "attributes": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
    assert_422(await api.post("/api/v1/contacts", content=raw, headers={"Content-Type": "application/json"}),
               "nested")
    ok = await api.post("/api/v1/contacts", json={"phone": "09121234567", "attributes": {"a": {"b": {"c": 1}}}})
    assert ok.status_code == 201, ok.text
    listing = await api.get("/api/v1/contacts")
    assert listing.status_code == 200 and listing.json()["total"] == 1


@pytest.mark.parametrize("path", ["/api/v1/contacts/99999999999999999999999", "/api/v1/campaigns/18446744073709551616",
                                  "/api/v1/contacts?campaign_id=99999999999999999999",
                                  "/api/v1/contacts?offset=99999999999999999999999",
                                  "/api/v1/export/contacts.csv?campaign_id=-99999999999999999999"])
async def test_integers_beyond_64_bits_in_paths_and_queries_are_422(api: httpx.AsyncClient, path: str) -> None:
    method = "PATCH" if path.startswith("/api/v1/campaigns/") else "GET"
    resp = await api.request(method, path, json={} if method == "PATCH" else None)
    assert_422(resp)


async def test_integers_beyond_64_bits_in_bodies_are_422(api: httpx.AsyncClient) -> None:
    body = '{"name": "big", "max_attempts": 123456789012345678901234567890}'
    assert_422(await api.post("/api/v1/campaigns", content=body, headers={"Content-Type": "application/json"}),
               "64-bit")
    body = '{"phone": "09121234567", "attributes": {"n": -99999999999999999999999}}'
    assert_422(await api.post("/api/v1/contacts", content=body, headers={"Content-Type": "application/json"}))
    body = '{"company": "acme", "number_id": 184467440737095516160, "phone_number": "09121234567",' \
           ' "status": "missed", "attempted_at": "2026-01-01T10:00:00Z"}'
    assert_422(await api.post("/api/dialer/report-result", content=body, headers={"Content-Type": "application/json"}))


async def test_null_in_a_patch_of_a_required_field_is_422(api: httpx.AsyncClient) -> None:
    created = (await api.post("/api/v1/campaigns", json={"name": "spring"})).json()
    assert_422(await api.patch(f"/api/v1/campaigns/{created['id']}", json={"active": None}), "active")
    cleared = await api.patch(f"/api/v1/campaigns/{created['id']}", json={"scenario": None, "timezone": None})
    assert cleared.status_code == 200 and cleared.json()["active"] is True


@pytest.mark.parametrize("raw", ['{"phone": "\\ud800"}', '{"phone": "09121234567", "name": "a\\udfffb"}',
                                 '{"phone": "09121234567", "name": "nul\\u0000byte"}',
                                 '{"phone": "09121234567", "attributes": {"\\ud83d": 1}}',
                                 '{"phone": "09121234567", "attributes": {"x": NaN}}'])
async def test_lone_surrogates_nul_and_nan_in_json_are_422(api: httpx.AsyncClient, raw: str) -> None:
    assert_422(await api.post("/api/v1/contacts", content=raw, headers={"Content-Type": "application/json"}))
    assert (await api.get("/api/v1/contacts")).status_code == 200


async def test_oversized_bodies_and_strings(api: httpx.AsyncClient) -> None:
    huge = await api.post("/api/v1/campaigns", json={"name": "x" * 10_000_000})
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    assert_422(await api.post("/api/v1/campaigns", json={"name": "x" * 201}), "at most 200")
    assert_422(await api.post("/api/dialer/alert", json={"company": "acme", "kind": "info", "message": "A" * 40_000}),
               "at most 4000")
    assert_422(await api.post("/api/v1/contacts", json={"phone": "09121234567",
                                                        "attributes": {f"k{i}": "v" for i in range(101)}}))
    assert_422(await api.post("/api/v1/contacts", json={"phone": "09121234567",
                                                        "attributes": {"k": "v" * 20_000}}), "bytes")
    assert_422(await api.post("/api/v1/contacts", json={"phone": "09121234567", "timezone": "A" * 5000}))
    assert_422(await api.post("/api/dialer/register-scenarios", json={"company": "acme", "scenarios": [
        {"name": f"s{i}"} for i in range(1001)]}))


async def test_oversized_chunked_body_over_real_http_is_413(store: Store, settings: Settings) -> None:  # noqa: F811
    from tests.panel.conftest import serve

    app = create_panel_app(store, settings)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(2000):
            yield b"x" * 1024
        yield b'"}'

    async with serve(app) as base, httpx.AsyncClient(base_url=base, headers=AUTH) as http:
        resp = await http.post("/api/v1/campaigns", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413


@pytest.mark.parametrize("body, words", [
    ({"name": "c", "calling_hours_start": "99:99"}, "pattern"),
    ({"name": "c", "calling_hours_start": "24:00"}, "pattern"),
    ({"name": "c", "calling_hours_start": "21:00", "calling_hours_end": "09:00"}, "before"),
    ({"name": "c", "calling_hours_start": "09:00", "calling_hours_end": "09:00"}, "before"),
    ({"name": "c", "timezone": "Mars/Olympus"}, "timezone"),
    ({"name": "c", "timezone": "Asia"}, "timezone"),
    ({"name": "c", "scenario": "no_such_scenario"}, "unknown scenario"),
    ({"name": "c", "max_attempts": 0}, "greater than or equal"),
    ({"name": "c", "active": 0}, "boolean"),
    ({"name": "c", "extra_field": 1}, "extra"),
    ({"name": ""}, "at least 1"),
])
async def test_campaigns_refuse_what_is_wrong(api: httpx.AsyncClient, body: dict, words: str) -> None:
    assert_422(await api.post("/api/v1/campaigns", json=body), words)
    assert (await api.get("/api/v1/campaigns")).json()["total"] == 0


async def test_a_patch_that_would_invert_the_calling_hours_is_422(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/campaigns", json={"name": "c", "calling_hours_start": "09:00",
                                                        "calling_hours_end": "17:00", "scenario": "salehi_language",
                                                        "timezone": "Asia/Tehran"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert_422(await api.patch(f"/api/v1/campaigns/{cid}", json={"calling_hours_start": "18:00"}), "before the end")
    assert_422(await api.patch(f"/api/v1/campaigns/{cid}", json={"scenario": "nope"}), "unknown scenario")
    assert (await api.patch(f"/api/v1/campaigns/{cid}", json={"calling_hours_start": "08:00"})).status_code == 200


@pytest.mark.parametrize("number", ["not-a-phone; rm -rf /", "$(reboot)", "1", "0912`id`", "+" + "9" * 30, ""])
async def test_operator_and_line_numbers_must_be_numbers(api: httpx.AsyncClient, number: str) -> None:
    assert_422(await api.post("/api/v1/operators", json={"direction": "inbound", "phone_number": number}))
    assert_422(await api.post("/api/v1/lines", json={"phone_number": number}))
    lines = await api.post("/api/dialer/register-outbound-lines", json={"company": "acme",
                                                                        "lines": [{"phone_number": number or "x"}]})
    assert_422(lines)
    ok = await api.post("/api/v1/operators", json={"direction": "inbound", "phone_number": "۰۹۱۲ ۱۱۱ ۱۱۱۱"})
    assert ok.status_code == 201, ok.text


async def test_deleting_what_does_not_exist_is_404(api: httpx.AsyncClient) -> None:
    for path in ("/api/v1/operators/4242", "/api/v1/lines/4242", "/api/v1/dnc/09121234567"):
        resp = await api.delete(path)
        assert resp.status_code == 404, (path, resp.text)
    op = (await api.post("/api/v1/operators", json={"direction": "inbound", "phone_number": "09121111111"})).json()
    assert (await api.delete(f"/api/v1/operators/{op['id']}")).status_code == 204


REPORT = {"company": "acme", "number_id": 1, "phone_number": "09121234567", "status": "not_interested",
          "attempted_at": "2026-01-01T10:00:00+00:00"}


async def test_an_idempotency_key_reused_with_another_body_is_409(api: httpx.AsyncClient) -> None:
    await api.post("/api/v1/contacts", json={"phone": "09121234567"})
    key = {"Idempotency-Key": "result-1"}
    first = await api.post("/api/dialer/report-result", json=REPORT, headers=key)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    replay = await api.post("/api/dialer/report-result", json=REPORT, headers=key)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    other = await api.post("/api/dialer/report-result", json={**REPORT, "status": "connected_to_operator"}, headers=key)
    assert other.status_code == 409, other.text
    assert "different body" in other.json()["detail"]
    contact = (await api.get("/api/v1/contacts")).json()["items"][0]
    assert contact["last_result"] == "not_interested" and contact["attempts"] == 1


async def test_a_report_date_must_be_a_date(api: httpx.AsyncClient) -> None:
    assert_422(await api.post("/api/dialer/report-result", json={**REPORT, "attempted_at": 0}), "date-time")
    assert_422(await api.post("/api/dialer/alert", json={"company": "acme", "kind": "info", "message": "m",
                                                         "at": "1.5"}), "date-time")


async def seed_calls(store: Store) -> None:  # noqa: F811
    now = clock.now()
    for i, text in enumerate(DANGEROUS):
        call = CallData(id=f"c{i}", direction="outbound", phone=f"+98912000000{i}", phone_e164=f"+98912000000{i}",
                        company="acme", scenario="salehi_language", originated_at=now - timedelta(minutes=5),
                        ended_at=now - timedelta(minutes=4), result="not_interested", reason=text, user_message=text)
        await store.calls.start(CallData(id=call.id, direction="outbound", phone=call.phone, company="acme",
                                         originated_at=call.originated_at))
        await store.calls.record(call)


async def test_results_and_contacts_exports_neutralise_formulas(api: httpx.AsyncClient, store: Store) -> None:  # noqa: F811
    await seed_calls(store)
    for i, text in enumerate(DANGEROUS):
        resp = await api.post("/api/v1/contacts", json={"phone": f"0912000000{i}", "name": text.replace("\r", " "),
                                                        "attributes": {"note": text}})
        assert resp.status_code == 201, resp.text
    results = await api.get("/api/v1/export/results.csv")
    assert results.status_code == 200
    rows = list(csv.DictReader(io.StringIO(results.text.lstrip("\ufeff"))))
    assert sorted(r["user_message"] for r in rows) == sorted("'" + t for t in DANGEROUS)
    assert all(r["phone"].startswith("'+98") for r in rows)  # "+98..." would be read as a formula too
    stored = {c["phone_e164"]: c["name"] for c in (await api.get("/api/v1/contacts")).json()["items"]}
    contacts = await api.get("/api/v1/export/contacts.csv")
    rows = list(csv.DictReader(io.StringIO(contacts.text.lstrip("\ufeff"))))
    assert len(rows) == len(DANGEROUS)
    for row in rows:
        name = stored[row["phone_e164"].lstrip("'")]
        assert row["name"] == ("'" + name if name[0] in "=+-@\t\r" else name), (row["name"], name)
    assert sum(r["name"].startswith("'") for r in rows) >= len(DANGEROUS) - 1
    for path, column in (("/api/v1/export/results.xlsx", "user_message"), ("/api/v1/export/contacts.xlsx", "name")):
        resp = await api.get(path)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/vnd.openxml")
        ws = load_workbook(io.BytesIO(resp.content)).active
        header = [c.value for c in ws[1]]
        cells = [row[header.index(column)] for row in ws.iter_rows(min_row=2)]
        assert len(cells) == len(DANGEROUS)
        for cell in cells:
            assert cell.data_type == "s", (cell.value, cell.data_type)  # text, never a formula
        assert sum(c.value.startswith("'") for c in cells) >= len(DANGEROUS) - 1


async def test_since_without_a_zone_is_the_panels_zone_and_never_cuts_the_download(api: httpx.AsyncClient,
                                                                                    store: Store) -> None:  # noqa: F811
    await seed_calls(store)
    local_now = clock.now().astimezone(__import__("datetime").timezone(timedelta(hours=3, minutes=30)))
    before = (local_now - timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    after = (local_now + timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    got = await api.get("/api/v1/export/results.csv", params={"since": before})
    assert got.status_code == 200 and got.text.count("\n") == len(DANGEROUS) + 1
    none = await api.get("/api/v1/export/results.csv", params={"since": after})
    assert none.status_code == 200 and none.text.count("\n") == 1
    assert_422(await api.get("/api/v1/export/results.csv", params={"since": after, "until": before}), "before")
    assert_422(await api.get("/api/v1/export/results.csv", params={"since": "yesterday"}))
    assert_422(await api.get("/api/v1/export/results.csv", params={"since": "0.5"}), "date-time")
    for kind in ("csv", "xlsx"):  # no UTC time exists for these: a 422, not a download cut off
        assert_422(await api.get(f"/api/v1/export/results.{kind}", params={"since": "0001-01-01T00:00:00+14:00"}),
                   "out of range")
        assert_422(await api.get(f"/api/v1/export/results.{kind}", params={"until": "9999-12-31T23:59:59-14:00"}),
                   "out of range")


async def test_errors_are_documented_in_the_spec(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/api/openapi.json")).json()
    op = spec["paths"]["/api/v1/contacts/{contact_id}"]["get"]
    assert {"200", "401", "404", "422"} <= set(op["responses"])
    assert "413" in spec["paths"]["/api/v1/contacts"]["post"]["responses"]
    assert "409" in spec["paths"]["/api/dialer/report-result"]["post"]["responses"]
    assert "text/csv" in spec["paths"]["/api/v1/export/results.csv"]["get"]["responses"]["200"]["content"]


async def test_wrong_method_names_every_allowed_method(api: httpx.AsyncClient) -> None:
    resp = await api.put("/api/v1/campaigns")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, HEAD, POST"
