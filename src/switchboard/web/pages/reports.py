"""Reports: per scenario, persona, line or day, with a chart over time and CSV/XLSX export; the
same figures as `GET /api/v1/usage/summary`."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, AsyncIterator

from fastapi import APIRouter, HTTPException, Request, status
from markupsafe import Markup
from starlette.responses import Response

from switchboard.dialer.lines import parse_timezone
from switchboard.panel.auth import Principal, client_ip, page_principal
from switchboard.store.usage import GROUPS, CallFilter, UsageRepo, UsageRow, offset_minutes_at, usage_totals
from switchboard.web.charts import daily_chart
from switchboard.web.console import Console, console_of
from switchboard.web.export import export
from switchboard.web.pages.calls import filter_options, parse_day
from switchboard.web.render import render

router = APIRouter(include_in_schema=False)
CACHE_SECONDS = 30.0  # a report is one pass over the calls: reloading the page within this reuses it
_cache: dict[tuple[Any, ...], tuple[float, list[UsageRow], list[UsageRow]]] = {}
COLUMNS = ["group", "calls", "dialed", "answered", "answer_rate", "to_operator", "conversion_to_operator",
           "average_handle_seconds", "abandoned", "abandon_rate", "stt_failure_rate", "llm_failure_rate",
           "talk_minutes", "llm_tokens", "intent_mix"]


async def _report(console: Console, params: dict[str, str]) -> tuple[str, list[UsageRow], list[UsageRow], CallFilter]:
    group = params.get("group_by") or "scenario"
    if group not in GROUPS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"group_by is one of {', '.join(GROUPS)}")
    tz = parse_timezone(console.settings.panel_timezone)
    scenario = (params.get("scenario") or "").strip()[:200] or None
    flt = CallFilter(console.settings.company, since=parse_day(params.get("since"), tz),
                     until=parse_day(params.get("until"), tz, end=True), scenario=scenario)
    key = (console.settings.company, group, params.get("since"), params.get("until"), scenario)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return group, cached[1], cached[2], flt
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    rows, days = await repo.report(flt, group, offset_minutes=offset_minutes_at(tz, datetime.now(tz)))  # type: ignore[arg-type]
    days = days[-90:]  # the chart shows the last 90 days of the range
    _cache[key] = (time.monotonic(), rows, days)
    while len(_cache) > 200:
        _cache.pop(next(iter(_cache)))
    return group, rows, days, flt


def _cells(row: UsageRow) -> list[Any]:
    d = row.as_dict()
    mix = ", ".join(f"{k}={v}" for k, v in sorted(row.intents.items(), key=lambda kv: -kv[1]))
    return [row.key, d["calls"], d["dialed"], d["answered"], d["answer_rate"], d["to_operator"],
            d["conversion_to_operator"], d["average_handle_seconds"], d["abandoned"], d["abandon_rate"],
            d["stt_failure_rate"], d["llm_failure_rate"], d["talk_minutes"], d["llm_tokens"], mix]


@router.get("/reports")
async def reports(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    params = dict(request.query_params)
    group, rows, days, _ = await _report(console, params)
    scenarios = (await filter_options(console))["scenario"]
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return render(console.templates, request, "reports.html", group=group, groups=GROUPS, rows=rows,
                  total=usage_totals(rows), chart=Markup(daily_chart(days)), params=params, scenarios=scenarios,
                  query=query)


@router.get("/reports/export.{fmt}")
async def export_report(request: Request, fmt: str, principal: Principal = page_principal("export")) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as .csv or .xlsx")
    console = console_of(request)
    group, rows, _, _ = await _report(console, dict(request.query_params))

    async def lines() -> AsyncIterator[list[Any]]:
        for row in [*rows, usage_totals(rows)]:
            yield _cells(row)

    await console.accounts.audit(principal.actor, "export.report", role=principal.role, target=fmt,
                                 details=dict(request.query_params), ip=client_ip(request))
    return await export(fmt, f"report-by-{group}", COLUMNS, lines())
