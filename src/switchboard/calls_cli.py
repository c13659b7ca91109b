"""`switchboard calls`: recent calls and their results in the terminal, read from the local store
(works while `switchboard run` is running: SQLite in WAL mode, or PostgreSQL)."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from switchboard.dialer.lines import parse_timezone
from switchboard.engine.results import ResultCatalog
from switchboard.flows.registry import ScenarioRegistry
from switchboard.phones import try_normalize
from switchboard.settings import Settings


async def show_calls(settings: Settings, console: Console, *, limit: int = 20, result: str | None = None,
                     phone: str | None = None, summary: bool = False, as_json: bool = False) -> int:
    from switchboard.store import open_store

    catalog = ResultCatalog(ScenarioRegistry(settings.scenarios_dir).all(),
                            default_retry=settings.retry_delay_seconds)
    number = try_normalize(phone, settings.default_region) if phone else None
    if phone and number is None:
        console.print(f"[red]{phone!r} is not a phone number[/red]")
        return 2
    store = await open_store(settings)
    try:
        if summary:
            rows = await store.calls.count_by_result(company=settings.company)
            return _summary(console, catalog, rows, as_json)
        page = await store.calls.list(company=settings.company, result=result,
                                      phone_e164=number.e164 if number else None, limit=limit)
    finally:
        await store.close()
    tz = parse_timezone(settings.panel_timezone)
    if as_json:
        for c in page.items:
            d = catalog.get(c.result, c.scenario) if c.result else None
            sys.stdout.write(json.dumps({
                "call_id": c.id, "direction": c.direction, "scenario": c.scenario, "phone": c.phone_e164 or c.phone,
                "line": c.line, "originated_at": c.originated_at.isoformat() if c.originated_at else None,
                "ended_at": c.ended_at.isoformat() if c.ended_at else None, "result": c.result,
                "display_name": d.display_name if d else None, "panel_status": c.panel_status, "reason": c.reason,
                "operator": c.operator}, ensure_ascii=False) + "\n")
        return 0
    if not page.items:
        console.print("no calls recorded yet" + (" matching that" if result or phone else ""))
        return 0
    table = Table(title=f"{len(page.items)} of {page.total} calls, newest first (times {settings.panel_timezone})")
    for col in ("when", "call", "dir", "scenario", "phone", "line", "result", "why", "secs"):
        table.add_column(col, overflow="fold")
    for c in page.items:
        d = catalog.get(c.result, c.scenario) if c.result else None
        start = c.answered_at or c.originated_at
        secs = f"{(c.ended_at - start).total_seconds():.0f}" if c.ended_at and start and c.answered_at else ""
        when = (c.originated_at or c.created_at).astimezone(tz)
        table.add_row(f"{when:%m-%d %H:%M}", c.id, "in" if c.direction == "inbound" else "out", c.scenario or "-",
                      c.phone_e164 or c.phone, c.line or "-", c.result or "(in progress)",
                      c.reason or (d.display_name if d else ""), secs)
    console.print(table)
    return 0


def _summary(console: Console, catalog: ResultCatalog, rows: list[tuple[str | None, str, int]], as_json: bool) -> int:
    items = []
    for scenario, result, n in sorted(rows, key=lambda r: (r[0] or "", -r[2])):
        d = catalog.get(result, scenario)
        items.append({"scenario": scenario, "result": result, "display_name": d.display_name,
                      "panel_status": d.panel_status, "contacted": d.contacted, "success": d.success, "calls": n})
    if as_json:
        for item in items:
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
        return 0
    table = Table(title="calls by scenario and result")
    for col in ("scenario", "result", "meaning", "panel status", "contacted", "success", "calls"):
        table.add_column(col)
    for i in items:
        table.add_row(str(i["scenario"] or "-"), str(i["result"]), str(i["display_name"]), str(i["panel_status"]),
                      "yes" if i["contacted"] else "", "yes" if i["success"] else "", str(i["calls"]))
    console.print(table)
    total = sum(int(i["calls"]) for i in items)  # type: ignore[call-overload]
    contacted = sum(int(i["calls"]) for i in items if i["contacted"])  # type: ignore[call-overload]
    success = sum(int(i["calls"]) for i in items if i["success"])  # type: ignore[call-overload]
    if total:
        console.print(f"{total} calls: {contacted} reached ({contacted / total:.0%}), {success} successes "
                      f"({success / total:.0%})", highlight=False)
    return 0
