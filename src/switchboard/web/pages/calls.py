"""Calls: a filterable table (exportable as CSV/XLSX) and a page per call with its step timeline,
transcript turns, intents, tokens and latency per turn, recordings and the feedback box."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from starlette.responses import FileResponse, Response

from switchboard.dialer.lines import parse_timezone
from switchboard.panel.auth import Principal, client_ip, form_principal, page_principal
from switchboard.phones import try_normalize
from switchboard.store.models import CallRecord
from switchboard.store.usage import COUNT_CAP, CallFilter, UsageRepo
from switchboard.web.console import Console, console_of
from switchboard.web.export import export
from switchboard.web.node import NodeGone
from switchboard.web.render import phone_for, redirect, render

router = APIRouter(include_in_schema=False)
PAGE = 50
FILTERS = ("scenario", "result", "line", "operator", "intent", "persona", "direction")
EXPORT_COLUMNS = ["call_id", "direction", "scenario", "persona", "phone", "line", "operator", "originated_at",
                  "answered_at", "ended_at", "seconds", "result", "reason", "intent", "user_message"]


def parse_day(value: str | None, tz: Any, *, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD in the panel's time zone as the UTC instant its day starts (or ends)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not a date: {value!r} (use YYYY-MM-DD)") from None
    start = datetime.combine(day + timedelta(days=1) if end else day, time.min, tzinfo=tz)
    return start


def call_filter(console: Console, principal: Principal, params: dict[str, str]) -> CallFilter:
    tz = parse_timezone(console.settings.panel_timezone)
    phone = params.get("phone", "").strip()
    e164 = None
    if phone:
        if principal.masked:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "searching by phone number needs the pii scope")
        number = try_normalize(phone, console.settings.default_region)
        if number is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid phone number {phone!r}")
        e164 = number.e164
    values = {k: (params.get(k) or "").strip()[:200] or None for k in FILTERS}
    if values["direction"] not in (None, "inbound", "outbound"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "direction is inbound or outbound")
    return CallFilter(console.settings.company, since=parse_day(params.get("since"), tz),
                      until=parse_day(params.get("until"), tz, end=True), phone_e164=e164, **values)  # type: ignore[arg-type]


async def filter_options(console: Console) -> dict[str, list[str]]:
    """What the filters offer, from the configuration (scenarios, their intents, lines, operators,
    personas, the result vocabulary): no scan of a large calls table to build a form."""
    from switchboard.engine.results import FIXED_RESULTS

    company = console.settings.company
    registry = console.node.registry
    scenarios = {s.name for s in registry.all()} | {r.name for r in await console.store.scenarios.list(company=company)}
    intents = {i for s in registry.all() for i in s.spec.llm.intent_categories}
    lines = {row.phone_number for row in await console.store.lines.list(company=company, active_only=False)}
    lines |= set(console.settings.split_list(console.settings.outbound_numbers))
    operators = {row.phone_number for row in await console.store.operators.list(company=company)}
    personas = set(console.node.brain.personas.names()) if console.node.brain is not None else set()
    return {"scenario": sorted(scenarios), "result": sorted(FIXED_RESULTS), "line": sorted(lines),
            "operator": sorted(operators), "intent": sorted(intents), "persona": sorted(personas)}


def _seconds(call: CallRecord) -> float | None:
    if call.answered_at is None or call.ended_at is None:
        return None
    return round((call.ended_at - call.answered_at).total_seconds(), 1)


@router.get("/calls")
async def calls(request: Request, offset: int = Query(0, ge=0, le=10_000_000),
                principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    params = dict(request.query_params)
    flt = call_filter(console, principal, params)
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    page = await repo.calls(flt, offset=offset, limit=PAGE)
    options = await filter_options(console)
    for key in options:  # a value typed into the URL stays selectable
        if params.get(key) and params[key] not in options[key]:
            options[key].append(params[key])
    query = "&".join(f"{k}={v}" for k, v in params.items() if k != "offset" and v)
    return render(console.templates, request, "calls.html", page=page, params=params, options=options,
                  query=query, seconds=_seconds, cap=COUNT_CAP)


async def _export_rows(console: Console, principal: Principal, flt: CallFilter) -> AsyncIterator[list[Any]]:
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    async for c in repo.iter_calls(flt):
        yield [c.id, c.direction, c.scenario, c.persona, phone_for(principal, c.phone),
               c.line, phone_for(principal, c.operator), c.originated_at, c.answered_at, c.ended_at, _seconds(c),
               c.result, c.reason, c.intent, c.user_message]


@router.get("/calls/export.{fmt}")
async def export_calls(request: Request, fmt: str, principal: Principal = page_principal("export")) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as .csv or .xlsx")
    console = console_of(request)
    flt = call_filter(console, principal, dict(request.query_params))
    await console.accounts.audit(principal.actor, "export.calls", role=principal.role, ip=client_ip(request),
                                 details={k: v for k, v in request.query_params.items()}, target=fmt)
    return await export(fmt, "calls", EXPORT_COLUMNS, _export_rows(console, principal, flt))


# --- one call -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Recording:
    label: str
    rel: str  # path under RECORDINGS_DIR (what the audio URL names)
    enhanced: str | None = None


def recordings_for(console: Console, call: CallRecord) -> list[Recording]:
    """Recordings of this call under RECORDINGS_DIR: the backend's own (Asterisk keeps
    `<call>/<name>.wav`), and the caller's utterances the speech pipeline kept with their enhanced
    copies (`<call>-<step>-<n>.wav`, `enhanced/<same>`)."""
    root = console.settings.recordings_dir.resolve()
    if not root.is_dir():
        return []
    attrs = call.attributes or {}
    refs = {r for r in (attrs.get("call_ref"), call.id) if r and "/" not in str(r) and ".." not in str(r)}
    found: dict[str, Recording] = {}

    def add(path: Path) -> None:
        try:
            rel = path.resolve().relative_to(root)
        except ValueError:
            return  # outside the recordings folder: never served
        if path.suffix.lower() not in (".wav", ".wav16", ".mp3", ".ogg") or not path.is_file():
            return
        if rel.parts[0] == "enhanced":
            return
        enhanced = root / "enhanced" / rel.name
        found[str(rel)] = Recording(path.stem, str(rel), str(enhanced.relative_to(root)) if enhanced.is_file()
                                    else None)

    for explicit in [*(attrs.get("recordings") or []), call.recording_path]:
        if explicit:
            add(Path(explicit) if Path(explicit).is_absolute() else root / explicit)
            add(Path(explicit))
    for ref in refs:
        for path in sorted(root.glob(f"{ref}-*")):
            add(path)
        folder = root / str(ref)
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                add(path)
    return sorted(found.values(), key=lambda r: r.rel)


def transcript_of(events: list[Any], call: CallRecord) -> list[dict[str, Any]]:
    """Turns in order: conversation turns (speaker, persona, latency, tokens), IVR prompts the
    agent said and the caller's transcribed answers."""
    turns: list[dict[str, Any]] = []
    for e in events:
        d = e.data or {}
        if e.kind == "turn":
            turns.append({"speaker": d.get("speaker", "?"), "persona": d.get("persona"), "text": d.get("text", ""),
                          "at": d.get("at"), "latency": d.get("latency"), "interrupted": d.get("interrupted"),
                          "tokens": (d.get("prompt_tokens") or 0) + (d.get("completion_tokens") or 0) or
                          d.get("tokens"), "language": d.get("language"), "step": d.get("step")})
        elif e.kind == "said":
            turns.append({"speaker": "agent", "text": d.get("text", ""), "at": d.get("at"), "step": d.get("step")})
        elif e.kind == "transcript":
            turns.append({"speaker": "caller", "text": d.get("text", ""), "at": d.get("at"), "step": d.get("step")})
    if not turns:  # calls recorded before their events: the stored transcripts
        turns = [{"speaker": t.get("role", "caller"), "text": t.get("text", ""), "at": t.get("at"),
                  "persona": t.get("persona"), "latency": t.get("stt_latency"), "step": t.get("step")}
                 for t in (call.transcripts or [])]
    return turns


async def _feedback(console: Console, call_id: str) -> list[Any]:
    brain = console.node.brain
    if brain is None:
        return []
    try:
        return await console.node.call(lambda: brain.repository.list_feedback(call_id))
    except NodeGone:
        return []


@router.get("/calls/{call_id}")
async def call_page(request: Request, call_id: str, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    call = await console.store.calls.get(call_id)
    if call is None or call.company != console.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
    events = await console.store.calls.events(call_id)
    intents = [e for e in events if e.kind == "intent"]
    timeline = [e for e in events if e.kind not in ("turn", "said", "transcript")]
    recordings = [] if principal.masked else recordings_for(console, call)
    usage = (call.attributes or {}).get("usage") or {}
    return render(console.templates, request, "call.html", call=call, events=events, timeline=timeline,
                  turns=transcript_of(events, call), intents=intents, recordings=recordings, usage=usage,
                  feedback=await _feedback(console, call_id), seconds=_seconds(call),
                  has_brain=console.node.brain is not None)


@router.get("/calls/{call_id}/audio")
async def call_audio(request: Request, call_id: str, f: str = Query(..., max_length=500),
                     principal: Principal = page_principal("pii")) -> Response:
    """A recording of this call (only the files `recordings_for` lists for it)."""
    console = console_of(request)
    call = await console.store.calls.get(call_id)
    if call is None or call.company != console.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
    allowed = {r.rel for r in recordings_for(console, call)} | {r.enhanced for r in recordings_for(console, call)
                                                               if r.enhanced}
    if f not in allowed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such recording for this call")
    path = console.settings.recordings_dir.resolve() / f
    media = "audio/wav" if path.suffix.lower().startswith(".wav") else (mimetypes.guess_type(path.name)[0]
                                                                        or "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-store"})


@router.post("/calls/{call_id}/feedback")
async def feedback(request: Request, call_id: str, rating: int | None = Form(None, ge=1, le=5),
                   comment: str = Form("", max_length=4000), outcome_correct: str = Form(""),
                   principal: Principal = form_principal("write")) -> Response:
    console = console_of(request)
    brain = console.node.brain
    call = await console.store.calls.get(call_id)
    if call is None or call.company != console.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such call")
    if brain is None:
        return redirect(f"/calls/{call_id}", error="Feedback needs the brain (not configured in this process).")
    from switchboard.brain.repository import Feedback

    item = Feedback(call_id=call_id, rating=rating, comment=comment.strip(), author=principal.name,
                    outcome_correct={"yes": True, "no": False}.get(outcome_correct))
    try:
        await console.node.call(lambda: brain.repository.add_feedback(item))
    except NodeGone:
        return redirect(f"/calls/{call_id}", error="The campaign has ended; feedback could not be stored.")
    await console.accounts.audit(principal.actor, "call.feedback", role=principal.role, target=call_id,
                                 ip=client_ip(request), details={"rating": rating})
    return redirect(f"/calls/{call_id}#feedback", flash="Feedback saved: the improvement job reads it.")
