"""PanelClient against the built-in panel over real HTTP (uvicorn on 127.0.0.1)."""

from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from switchboard import clock
from switchboard.panel.client import PanelClient
from switchboard.panel.contract import ReportResultRequest
from switchboard.panel.server import create_panel_app
from switchboard.store import CallData, EventData, OutboxEntry
from tests.panel.conftest import make_token

TOKEN = "s3cret-token"


@pytest.fixture
def panel_settings(settings):
    return settings.model_copy(update={"builtin_panel_token": SecretStr(TOKEN)})


def report(number_id, phone, status, **kw) -> ReportResultRequest:  # type: ignore[no-untyped-def]
    return ReportResultRequest(
        company="acme", number_id=number_id, phone_number=phone, status=status, attempted_at=clock.now(), **kw
    )


async def test_dialer_contract_round_trip(store, panel_settings, serve_app):
    app = create_panel_app(store, panel_settings, list_scenarios=lambda: ["sales", {"name": "survey"}])
    async with serve_app(app) as url:
        # The REST API with an admin's API token; the dialer contract below with BUILTIN_PANEL_TOKEN
        # (scope `dialer` by default: it cannot touch the REST API).
        auth = {"Authorization": f"Bearer {await make_token(store, panel_settings)}"}
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            refused = await http.post("/api/v1/contacts", json={"phone": "09121234567"})
            assert refused.status_code == 403 and "'write' scope" in refused.text
        async with httpx.AsyncClient(base_url=url, headers=auth) as http:
            for phone in ("09121234567", "+989121234568", "۰۹۱۲۱۲۳۴۵۶۹"):
                r = await http.post(
                    "/api/v1/contacts", json={"phone": phone, "name": "x", "attributes": {"a": 1}}
                )
                assert r.status_code == 201, r.text
            bad = await http.post("/api/v1/contacts", json={"phone": "0912"})
            assert bad.status_code == 422 and "too short" in bad.text
            r = await http.post(
                "/api/v1/operators", json={"direction": "inbound", "phone_number": "09120000001"}
            )
            assert r.status_code == 201
            r = await http.post(
                "/api/v1/operators", json={"direction": "outbound", "phone_number": "09120000002"}
            )
            assert r.status_code == 201
            assert (await http.get("/healthz")).status_code == 200

        async with PanelClient(url, TOKEN, company="acme", retries=0, dialer_id="engine-1") as client:
            assert (await client.register_scenarios([("sales", "Sales")])).delivered
            assert (await client.register_outbound_lines([("02191001234", "Line 1")])).delivered
            b1 = await client.next_batch(2)
            assert b1.error is None and b1.call_allowed and len(b1.numbers) == 2
            assert [s.name for s in b1.active_scenarios] == ["sales"]
            assert [line.phone_number for line in b1.outbound_lines] == ["02191001234"]
            assert [a.phone_number for a in b1.inbound_agents] == ["09120000001"]
            assert [a.phone_number for a in b1.outbound_agents] == ["09120000002"]
            assert b1.timezone == "+0330" and b1.server_time is not None
            b2 = await client.next_batch(10)
            assert len(b2.numbers) == 1 and b2.batch_id != b1.batch_id
            leased = await store.contacts.get(int(b2.numbers[0].id))
            assert leased.lease_owner == "engine-1" and leased.status == "leased"
            empty = await client.next_batch(10)
            assert empty.call_allowed and empty.numbers == [] and empty.error is None

            first, second = b1.numbers
            ok = await client.report_result(
                report(first.id, first.phone_number, "not_interested"), idempotency_key="k1"
            )
            assert ok.delivered and not ok.duplicate
            again = await client.report_result(
                report(first.id, first.phone_number, "not_interested"), idempotency_key="k1"
            )
            assert again.delivered and again.duplicate
            row = await store.contacts.get(int(first.id))
            assert (row.status, row.attempts, row.last_result, row.lease_owner) == (
                "done",
                1,
                "not_interested",
                None,
            )

            missed = await client.report_result(
                report(second.id, second.phone_number, "missed"), idempotency_key="k2"
            )
            assert missed.delivered
            row = await store.contacts.get(int(second.id))
            assert row.status == "pending" and row.next_attempt_at > clock.now() + timedelta(minutes=29)

            # Inbound: no number_id, matched by phone (any format).
            inbound = await client.report_result(
                ReportResultRequest(
                    company="acme",
                    phone_number="00989121234569",
                    status="inbound_call",
                    attempted_at=clock.now(),
                ),
                idempotency_key="k3",
            )
            assert inbound.delivered
            assert await store.reports.seen("k3")

            assert (
                await client.send_alert("paused", "STT balance exhausted", {"provider": "vira"})
            ).delivered
            assert [(a.kind, a.details) for a in await store.alerts.list()] == [
                ("paused", {"provider": "vira"})
            ]

        async with httpx.AsyncClient(base_url=url, headers=auth) as http:
            assert (await http.post("/api/v1/dialer/pause")).json() == {"paused": True}
        async with PanelClient(url, TOKEN, company="acme", retries=0) as client:
            paused = await client.next_batch(5)
            assert paused.call_allowed is False and paused.numbers == [] and paused.error is None


async def test_auth_is_required(store, panel_settings, serve_app):
    async with serve_app(create_panel_app(store, panel_settings)) as url:
        async with PanelClient(url, "wrong", company="acme", retries=0) as client:
            b = await client.next_batch(5)
            assert not b.call_allowed and "401" in b.error
            out = await client.report_result(report(1, "09121234567", "missed"), idempotency_key="x")
            assert not out.delivered and out.permanent and out.status_code == 401
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/v1/contacts")).status_code == 401
            assert (
                await http.get("/api/v1/contacts", headers={"Authorization": f"Bearer {TOKEN}"})
            ).status_code == 403  # the dialer-contract token reads no contacts
            token = await make_token(store, panel_settings, "read", "pii")
            assert (
                await http.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"})
            ).status_code == 200


async def test_rest_resources_and_csv_export(store, panel_settings, serve_app):
    t0 = clock.now()
    await store.calls.record(
        CallData(
            id="c1",
            direction="outbound",
            phone="09121234567",
            phone_e164="+989121234567",
            company="acme",
            scenario="sales",
            originated_at=t0,
            ended_at=t0 + timedelta(seconds=30),
            result="hangup",
            user_message="سلام، بله",
        ),
        [EventData(t0, "originated"), EventData(t0 + timedelta(seconds=30), "ended")],
        outbox=OutboxEntry("call:c1", {"status": "hangup"}),
    )
    await store.calls.record(
        CallData(
            id="c2",
            direction="inbound",
            phone="09120000000",
            company="acme",
            ended_at=t0,
            result="inbound_call",
        )
    )
    await store.calls.record(
        CallData(id="other", direction="inbound", phone="1", company="elsewhere", ended_at=t0)
    )
    app = create_panel_app(store, panel_settings, list_scenarios=lambda: ["sales"])
    token = await make_token(store, panel_settings)
    async with serve_app(app) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            calls = (await http.get("/api/v1/calls", params={"limit": 1})).json()
            assert calls["total"] == 2 and len(calls["items"]) == 1
            only_out = (await http.get("/api/v1/calls", params={"direction": "outbound"})).json()
            assert [c["id"] for c in only_out["items"]] == ["c1"]
            detail = (await http.get("/api/v1/calls/c1")).json()
            assert [e["kind"] for e in detail["events"]] == ["originated", "ended"]
            assert (await http.get("/api/v1/calls/other")).status_code == 404

            camp = await http.post(
                "/api/v1/campaigns", json={"name": "spring", "calling_hours_start": "09:00"}
            )
            assert camp.status_code == 201
            assert (await http.post("/api/v1/campaigns", json={"name": "spring"})).status_code == 409
            patched = await http.patch(f"/api/v1/campaigns/{camp.json()['id']}", json={"active": False})
            assert patched.json()["active"] is False
            assert (await http.get("/api/v1/campaigns")).json()["total"] == 1
            r = await http.post("/api/v1/contacts", json={"phone": "09121112222", "campaign": "spring"})
            assert r.json()["campaign_id"] == camp.json()["id"] and r.json()["timezone"] == "Asia/Tehran"

            assert (
                await http.post("/api/v1/dnc", json={"phone": "0912 111 2222", "reason": "asked"})
            ).status_code == 201
            dnc = (await http.get("/api/v1/dnc")).json()
            assert [d["phone_e164"] for d in dnc["items"]] == ["+989121112222"]
            assert (await http.delete("/api/v1/dnc/09121112222")).status_code == 204
            assert (await http.delete("/api/v1/dnc/09121112222")).status_code == 404

            lines = await http.post(
                "/api/v1/lines", json={"phone_number": "02191001234", "max_concurrent": 2}
            )
            assert lines.status_code == 201 and lines.json()["max_concurrent"] == 2
            await http.post(
                "/api/dialer/register-scenarios",
                json={"company": "acme", "scenarios": [{"name": "survey", "display_name": "Survey"}]},
            )
            names = {s["name"]: s for s in (await http.get("/api/v1/scenarios")).json()}
            assert set(names) == {"sales", "survey"} and names["survey"]["registered"]
            assert (await http.get("/api/v1/contacts", params={"limit": 0})).status_code == 422

            csv_resp = await http.get("/api/v1/export/results.csv")
            assert csv_resp.headers["content-type"].startswith("text/csv")
            lines_ = csv_resp.content.decode("utf-8-sig").strip().splitlines()
            assert lines_[0].startswith("call_id,direction")
            assert len(lines_) == 3 and any("سلام، بله" in line for line in lines_)
            state = (await http.get("/api/v1/dialer")).json()
            assert state["outbox_pending"] == 1


async def test_report_without_idempotency_key_is_deduplicated_by_body(store, panel_settings, serve_app):
    from switchboard.store import NewContact

    c = await store.contacts.add(NewContact("09121234567", "+989121234567", "9121234567", company="acme"))
    body = {
        "company": "acme",
        "number_id": c.id,
        "phone_number": "09121234567",
        "status": "missed",
        "attempted_at": "2026-03-20T09:00:00+03:30",
    }
    async with serve_app(create_panel_app(store, panel_settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            first = (await http.post("/api/dialer/report-result", json=body)).json()
            second = (await http.post("/api/dialer/report-result", json=body)).json()
            unknown = (
                await http.post(
                    "/api/dialer/report-result", json=dict(body, number_id=None, phone_number="09350000000")
                )
            ).json()
            bad = await http.post("/api/dialer/report-result", json=dict(body, status="exploded"))
    assert first == {"ok": True, "duplicate": False, "detail": None}
    assert second["duplicate"] is True
    assert unknown["detail"] == "no matching contact"
    assert bad.status_code == 422 and "unknown status" in bad.text
    assert (await store.contacts.get(c.id)).attempts == 1
