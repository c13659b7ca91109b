"""The built-in panel over real HTTP: older dialers' bodies accepted (plain-string scenario lists,
upper-case statuses, `scenario` / `outbound_line` / `batch_id`), a scenario's own results applied
with their declared meaning, and the call backs and tickets API."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from switchboard import clock
from switchboard.engine.results import ResultCatalog
from switchboard.flows.validate import parse_scenario_text
from switchboard.panel.local import LocalPanel
from switchboard.panel.server import create_panel_app
from switchboard.store import NewContact

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLINIC = parse_scenario_text("""\
scenario:
  name: clinic
  results:
    desk_unavailable: {panel_status: disconnected, retry_after: 2h}
    appointment_confirmed: {display_name: Confirmed, panel_status: connected_to_operator, success: true}
  flow:
    - {step: start, type: entry, next: done}
    - {step: done, type: hangup, result: appointment_confirmed}
""", "clinic.yaml").scenario


@pytest.fixture
def panel_settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"builtin_panel_token": SecretStr(TOKEN), "retry_delay_seconds": 600,
                                       "builtin_panel_token_scopes": "dialer,pii,write,delete"})


async def contacts(store, company: str, *phones: str) -> list[int]:  # type: ignore[no-untyped-def]
    out = []
    for p in phones:
        row = await store.contacts.add(NewContact(phone=p, phone_e164="+98" + p[1:], phone_national=p[1:],
                                                  company=company))
        out.append(row.id)
    return out


def body(number_id: int, phone: str, status: str, **kw: object) -> dict[str, object]:
    return {"company": "acme", "number_id": number_id, "phone_number": phone, "status": status,
            "attempted_at": clock.now().isoformat(), **kw}


async def test_older_bodies_are_accepted(store, panel_settings, serve_app) -> None:  # type: ignore[no-untyped-def]
    ids = await contacts(store, "acme", "09121110001", "09121110002", "09121110003")
    app = create_panel_app(store, panel_settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        r = await http.post("/api/dialer/register-scenarios", json={"company": "acme", "scenarios": ["sales", "survey"]})
        assert r.status_code == 200, r.text
        names = [s["name"] for s in (await http.get("/api/v1/scenarios")).json()]
        assert {"sales", "survey"} <= set(names)
        r = await http.post("/api/dialer/report-result", headers={"Idempotency-Key": "k1"},
                            json=body(ids[0], "09121110001", "CONNECTED", scenario="sales",
                                      outbound_line="02191000001", batch_id=77))
        assert r.status_code == 200, r.text
        r = await http.post("/api/dialer/report-result", headers={"Idempotency-Key": "k2"},
                            json=body(ids[1], "09121110002", "NO_ANSWER", batch_id="b-9"))
        assert r.status_code == 200, r.text
        r = await http.post("/api/dialer/report-result", headers={"Idempotency-Key": "k3"},
                            json=body(ids[2], "09121110003", "FAILED:TRUNK"))
        assert r.status_code == 200, r.text
        bad = await http.post("/api/dialer/report-result", headers={"Idempotency-Key": "k4"},
                              json=body(ids[2], "09121110003", "WHATEVER"))
        assert bad.status_code == 422 and "unknown status" in bad.text
    rows = {c.id: c for c in (await store.contacts.list(company="acme")).items}
    assert (rows[ids[0]].status, rows[ids[0]].last_result) == ("done", "connected_to_operator")
    assert (rows[ids[1]].status, rows[ids[1]].last_result) == ("pending", "no_answer")  # retried later
    assert rows[ids[1]].next_attempt_at is not None
    assert (rows[ids[2]].status, rows[ids[2]].last_result) == ("pending", "failed:TRUNK")  # base lower-cased, reason kept


async def test_declared_results_apply_with_their_meaning(store, panel_settings, serve_app) -> None:  # type: ignore[no-untyped-def]
    assert CLINIC is not None
    ids = await contacts(store, "acme", "09121110001", "09121110002")
    local = LocalPanel(store, panel_settings, results=ResultCatalog([CLINIC], default_retry=600))
    app = create_panel_app(store, panel_settings, local=local)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        await http.post("/api/dialer/register-scenarios", json={"company": "acme", "scenarios": [{"name": "clinic"}]})
        [ref] = (await http.get("/api/dialer/next-batch", params={"size": 0})).json()["active_scenarios"]
        at = clock.now()
        r = await http.post("/api/dialer/report-result", headers={"Idempotency-Key": "a"}, json=body(
            ids[0], "09121110001", "disconnected", outcome="desk_unavailable", scenario_id=ref["id"],
            attempted_at=at.isoformat()))
        assert r.status_code == 200, r.text
        r = await http.post("/api/dialer/report-result", headers={"Idempotency-Key": "b"}, json=body(
            ids[1], "09121110002", "connected_to_operator", outcome="appointment_confirmed", scenario_id=ref["id"]))
        assert r.status_code == 200, r.text
        catalog = (await http.get("/api/v1/results")).json()
        declared = {r["name"]: r for r in catalog if r["scenario"] == "clinic"}
        assert declared["desk_unavailable"]["retry_after"] == 7200.0 and not declared["desk_unavailable"]["final"]
        assert declared["appointment_confirmed"]["display_name"] == "Confirmed"
    rows = {c.id: c for c in (await store.contacts.list(company="acme")).items}
    desk = rows[ids[0]]
    assert (desk.status, desk.last_result) == ("pending", "desk_unavailable")
    assert abs((desk.next_attempt_at - at) - timedelta(hours=2)) < timedelta(seconds=2)  # its own delay
    assert (rows[ids[1]].status, rows[ids[1]].last_result) == ("done", "appointment_confirmed")


async def test_call_backs_and_tickets_api(store, panel_settings, serve_app) -> None:  # type: ignore[no-untyped-def]
    await store.tickets.add(company="acme", subject="router broken", description="still not working",
                            persona="complaints", call_id="out-1", phone="+989121110001")
    app = create_panel_app(store, panel_settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        assert (await http.get("/api/v1/callbacks", headers={"Authorization": "Bearer nope"})).status_code == 401
        r = await http.post("/api/v1/callbacks", json={"phone": "09121110001", "after_minutes": 30, "priority": 50,
                                                       "reason": "asked on the website"})
        assert r.status_code == 201, r.text
        cb = r.json()
        assert cb["status"] == "scheduled" and cb["source"] == "api" and cb["phone_e164"] == "+989121110001"
        # booking the same number again moves the open call back instead of calling twice
        again = await http.post("/api/v1/callbacks", json={"phone": "+989121110001", "after_minutes": 5})
        assert again.json()["id"] == cb["id"] and again.json()["priority"] == 50
        assert (await http.post("/api/v1/callbacks", json={"phone": "12x"})).status_code == 422
        listed = (await http.get("/api/v1/callbacks", params={"status": "scheduled"})).json()
        assert [c["id"] for c in listed["items"]] == [cb["id"]]
        assert (await http.delete(f"/api/v1/callbacks/{cb['id']}")).status_code == 204
        assert (await http.delete(f"/api/v1/callbacks/{cb['id']}")).status_code == 409
        assert (await http.get(f"/api/v1/callbacks/{cb['id']}")).json()["status"] == "cancelled"
        tickets = (await http.get("/api/v1/tickets")).json()
        [t] = tickets["items"]
        assert (t["subject"], t["persona"], t["status"]) == ("router broken", "complaints", "open")
        closed = await http.patch(f"/api/v1/tickets/{t['id']}", json={"status": "closed"})
        assert closed.json()["status"] == "closed"
        assert (await http.patch(f"/api/v1/tickets/{t['id']}", json={"status": "gone"})).status_code == 422
        assert (await http.get("/api/v1/tickets/9999")).status_code == 404
        # POST /api/v1/calls needs a dialer in the process: the standalone panel says so
        r = await http.post("/api/v1/calls", json={"phone": "09121110001"})
        assert r.status_code == 409 and "switchboard run" in r.json()["detail"]


async def test_results_export_says_what_each_result_means(store, panel_settings, serve_app) -> None:  # type: ignore[no-untyped-def]
    from switchboard import clock as sbclock
    from switchboard.store import CallData

    assert CLINIC is not None
    now = sbclock.now()
    for i, (result, status) in enumerate((("appointment_confirmed", "connected_to_operator"), ("missed", "missed"))):
        await store.calls.record(CallData(id=f"out-{i}", direction="outbound", phone="09121110001", company="acme",
                                          scenario="clinic", originated_at=now, ended_at=now, result=result,
                                          panel_status=status, line="02191000001"))
    local = LocalPanel(store, panel_settings, results=ResultCatalog([CLINIC], default_retry=600))
    settings = panel_settings.model_copy(update={"builtin_panel_token_scopes": "export"})
    app = create_panel_app(store, settings, local=local)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        resp = await http.get("/api/v1/export/results.csv")
        assert resp.status_code == 200, resp.text
    import csv
    import io

    rows = {r["result"]: r for r in csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig")))}
    assert (rows["appointment_confirmed"]["result_name"], rows["appointment_confirmed"]["panel_status"],
            rows["appointment_confirmed"]["success"]) == ("Confirmed", "connected_to_operator", "yes")
    assert (rows["missed"]["result_name"], rows["missed"]["contacted"]) == ("No answer", "no")
