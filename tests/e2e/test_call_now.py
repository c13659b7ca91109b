"""Call this number now: `POST /api/v1/calls` (scenario or persona, contact fields) and the sales
teams' `POST /api/v1/agent/sales/start_call`, through the running node's dialer: the call id comes
back at once, the call runs on the configured backend within the line limits and compliance, and
refusals say why with the right status."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from switchboard.clock import run_virtual
from switchboard.panel.server import create_panel_app
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

from tests.e2e.harness import e2e_settings, line, running_node

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 11:30 in Tehran
TOKEN = {"Authorization": "Bearer tok"}


def caller(number: str, variables: dict[str, str]) -> CallerScript:
    return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2), talk_seconds=30,
                        replies=[Reply(say="no thanks"), Reply(say="how much are your plans?"), Reply(say="goodbye")])


async def wait_result(http: httpx.AsyncClient, call_id: str) -> dict:  # type: ignore[type-arg]
    for _ in range(400):
        resp = await http.get(f"/api/v1/calls/{call_id}", headers=TOKEN)
        assert resp.status_code == 200, resp.text
        if resp.json()["ended_at"]:
            return resp.json()
        await asyncio.sleep(5)
    raise AssertionError("the call never ended")


def test_calls_placed_now_through_the_api(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, "agrad_marketing", builtin_panel_token="tok", calling_hours_start="09:00",
                            calling_hours_end="21:00", panel_timezone="+0330", call_now_wait_seconds=5,
                            builtin_panel_token_scopes="dialer,pii,write")

    async def main() -> None:
        async with running_node(settings, script=caller, lines=[line("02191000001", 1, 30, 1000)]) as h:
            app = create_panel_app(h.store, settings, dialer=h.dialer, list_scenarios=h.node.registry.get_names)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://panel") as http:
                unauthorised = await http.post("/api/v1/calls", json={"phone": "09121234567"})
                assert unauthorised.status_code == 401
                resp = await http.post("/api/v1/calls", headers=TOKEN, json={
                    "phone": "09121234567", "scenario": "agrad_marketing", "name": "Sara",
                    "fields": {"plan": "gold"}})
                assert resp.status_code == 202, resp.text
                placed = resp.json()
                assert placed["scenario"] == "agrad_marketing" and placed["phone"] == "+989121234567"
                assert placed["line"] == "02191000001" and placed["url"] == f"/api/v1/calls/{placed['call_id']}"
                # the line takes one call at a time: a second call now finds no free line
                busy = await http.post("/api/v1/calls", headers=TOKEN, json={"phone": "09121234568",
                                                                             "scenario": "agrad_marketing"})
                assert busy.status_code == 503 and "no line" in busy.json()["detail"]
                done = await wait_result(http, placed["call_id"])
                assert done["result"] == "not_interested" and done["direction"] == "outbound"
                events = [e["kind"] for e in done["events"]]
                assert "call_started" in events and "call_ended" in events
                greeting = next(e for e in done["events"] if e["kind"] == "step" and e["data"]["step"] == "greet")
                assert greeting is not None
                # the sales teams' path: the sales persona calls the lead (scripted mode, no LLM)
                lead = await http.post("/api/v1/agent/sales/start_call", headers=TOKEN,
                                       json={"lead_phone": "09129876543", "lead_name": "Reza"})
                assert lead.status_code == 202, lead.text
                assert lead.json()["scenario"] == "persona_sales"
                sold = await wait_result(http, lead.json()["call_id"])
                turns = [e for e in sold["events"] if e["kind"] == "turn"]
                assert turns and any(t["data"]["persona"] == "sales" for t in turns)
                assert sold["result"] == "conversation_ended", sold["result"]
                # refusals, each with its reason
                await h.store.dnc.add("+989120000001", reason="asked", source="test")
                dnc = await http.post("/api/v1/calls", headers=TOKEN, json={"phone": "09120000001"})
                assert dnc.status_code == 409 and "do-not-call" in dnc.json()["detail"]
                unknown = await http.post("/api/v1/calls", headers=TOKEN,
                                          json={"phone": "09120000002", "scenario": "nope"})
                assert unknown.status_code == 404 and "agrad_marketing" in unknown.json()["detail"]
                persona = await http.post("/api/v1/calls", headers=TOKEN,
                                          json={"phone": "09120000002", "persona": "nobody"})
                assert persona.status_code == 404
                bad = await http.post("/api/v1/calls", headers=TOKEN, json={"phone": "120"})
                assert bad.status_code == 422 and "not a valid phone number" in bad.json()["detail"][0]["msg"]
                both = await http.post("/api/v1/calls", headers=TOKEN,
                                       json={"phone": "09120000002", "scenario": "agrad_marketing",
                                             "persona": "sales"})
                assert both.status_code == 422
                listed = (await http.get("/api/v1/calls", headers=TOKEN)).json()
                assert {c["id"] for c in listed["items"]} >= {placed["call_id"], lead.json()["call_id"]}

    run_virtual(main(), start=START, real_grace=0.005)


def test_call_now_respects_calling_hours(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = e2e_settings(tmp_path, "agrad_marketing", builtin_panel_token="tok", calling_hours_start="09:00",
                            calling_hours_end="21:00", panel_timezone="+0330", builtin_panel_token_scopes="write")

    async def main() -> None:
        async with running_node(settings, script=caller, lines=[line("02191000001", 1, 30, 1000)]) as h:
            app = create_panel_app(h.store, settings, dialer=h.dialer)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://panel") as http:
                resp = await http.post("/api/v1/calls", headers=TOKEN, json={"phone": "09121234567"})
                assert resp.status_code == 409
                assert "may not be called before 2026-03-03T05:30" in resp.json()["detail"]
                assert "outside calling hours" in resp.json()["detail"]

    run_virtual(main(), start=datetime(2026, 3, 2, 19, 0, tzinfo=UTC), real_grace=0.005)  # 22:30 Tehran
