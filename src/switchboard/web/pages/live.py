"""The live page: calls in progress, lines, operators and the dialer's state with Pause / Resume,
kept current over Server-Sent Events (the server renders the same fragment the page starts with)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response, StreamingResponse

from switchboard.dialer.lines import parse_timezone
from switchboard.observability.live import LiveSnapshot
from switchboard.panel.auth import Authed, Principal, client_ip, current_principal, form_principal, page_principal
from switchboard.store.usage import UsageRepo
from switchboard.web.console import Console, console_of
from switchboard.web.node import NodeGone
from switchboard.web.render import redirect, render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["live"], dependencies=Authed)

STATE_LABELS = {"running": "dialing", "paused": "paused", "outside_hours": "outside calling hours",
                "stopping": "stopping", "finished": "campaign finished", "idle": "no dialer running"}
HEARTBEAT = 15.0
TICK = 0.5
REFRESH = 5.0  # calls in progress: re-render this often even unchanged, so durations keep counting


def _pause_text(reason: str | None) -> str:
    if not reason:
        return ""
    if reason.startswith("paused by"):
        return reason
    return f"failure threshold: {reason} kept failing"


async def live_context(console: Console, snap: LiveSnapshot) -> dict[str, Any]:
    state = snap.state
    dialer_state = state.get("state", "idle") if snap.attached else ("finished" if snap.finished else "idle")
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    company = console.settings.company
    tz = parse_timezone(console.settings.panel_timezone)
    local_now = snap.now.astimezone(tz)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    minute = await repo.line_counts(company, snap.now - timedelta(minutes=1))
    today = await repo.line_counts(company, midnight)
    active: dict[str, int] = {}
    for call in snap.calls:
        if call.line:
            active[call.line] = active.get(call.line, 0) + 1
    lines = [{**line, "active": active.get(line["number"], 0), "minute": minute.get(line["number"], 0),
              "today": today.get(line["number"], 0)} for line in state.get("lines", [])]
    return {"snap": snap, "state": state, "dialer_state": dialer_state,
            "dialer_label": STATE_LABELS.get(dialer_state, dialer_state),
            "pause_reason": _pause_text(state.get("pause_reason")) if dialer_state == "paused" else "",
            "call_allowed": not await console.local.is_paused(), "lines": lines,
            "operators": state.get("operators", [])}


@router.get("/live")
async def live(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    return render(console.templates, request, "live.html", **await live_context(console, console.node.live.snapshot()))


@router.get("/live/panel")
async def live_panel(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    return render(console.templates, request, "_live.html",
                  **await live_context(console, console.node.live.snapshot()))


@router.get("/live/events")
async def live_events(request: Request, principal: Principal = page_principal("read")) -> Response:
    """SSE: the rendered live fragment whenever the board changes (at most twice a second) or every
    few seconds while calls are in progress (their durations), and a comment line as heartbeat so
    proxies keep the stream open."""
    console = console_of(request)
    board = console.node.live
    templates = console.templates

    async def stream() -> AsyncIterator[str]:
        sent_version = -1
        quiet = 0.0
        calls_shown = False
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            if board.version != sent_version or (calls_shown and quiet >= REFRESH):
                snap = board.snapshot()
                calls_shown = bool(snap.calls)
                sent_version = snap.version
                context = await live_context(console, snap)
                html = templates.get_template("_live.html").render(principal=principal, csrf=principal.csrf,
                                                                   **context)
                yield "event: live\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
                quiet = 0.0
            elif quiet >= HEARTBEAT:
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(TICK)
            quiet += TICK

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/live/pause")
async def pause(request: Request, reason: str = Form("", max_length=200),
                principal: Principal = form_principal("control")) -> Response:
    console = console_of(request)
    if not console.node.has_dialer:
        return redirect("/live", error="No dialer is running in this process.")
    try:
        await console.node.pause(by=principal.name, reason=reason.strip())
    except NodeGone:
        return redirect("/live", error="The campaign has ended.")
    await console.accounts.audit(principal.actor, "dialer.pause", role=principal.role, details={"reason": reason},
                                 ip=client_ip(request))
    return redirect("/live", flash="Dialing paused: calls in progress finish, no new calls start.")


@router.post("/live/resume")
async def resume(request: Request, principal: Principal = form_principal("control")) -> Response:
    console = console_of(request)
    if not console.node.has_dialer:
        return redirect("/live", error="No dialer is running in this process.")
    try:
        await console.node.resume(by=principal.name)
    except NodeGone:
        return redirect("/live", error="The campaign has ended.")
    await console.accounts.audit(principal.actor, "dialer.resume", role=principal.role, ip=client_ip(request))
    return redirect("/live", flash="Dialing resumed.")


@api.get("/live")
async def live_json(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The live board as JSON (numbers masked for roles without `pii`)."""
    from switchboard.web.render import phone_for

    snap = console_of(request).node.live.snapshot()

    def call(c: Any) -> dict[str, Any]:
        return {"call_id": c.call_id, "direction": c.direction, "phone": phone_for(principal, c.phone),
                "scenario": c.scenario, "line": c.line, "state": c.state, "step": c.step, "persona": c.persona,
                "operator": phone_for(principal, c.operator), "last_speaker": c.last_speaker,
                "last_text": c.last_text, "intent": c.intent, "started_at": c.started_at.isoformat(),
                "seconds": round((snap.now - c.started_at).total_seconds(), 1)}

    state = dict(snap.state)
    state["operators"] = [{**op, "number": phone_for(principal, op["number"])} for op in state.get("operators", [])]
    return {"now": snap.now.isoformat(), "attached": snap.attached, "finished": snap.finished, "state": state,
            "calls": [call(c) for c in snap.calls], "recent": [call(c) | {"result": c.result} for c in snap.recent],
            "ended_total": snap.ended_total, "results": snap.results}
