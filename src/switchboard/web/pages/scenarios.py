"""Scenarios: enabled switches (the built-in panel's `active_scenarios`), reload (an invalid file
keeps its previous version running; calls in flight finish on theirs), and per scenario the YAML
with validation errors inline, the flow diagram and an editor (admin)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request, status
from markupsafe import Markup
from starlette.responses import Response

from switchboard.flows.loader import FlowError
from switchboard.flows.schema import Scenario
from switchboard.flows.validate import FileResult, parse_scenario_file, parse_scenario_text
from switchboard.panel.auth import Principal, client_ip, form_principal, page_principal
from switchboard.web.console import Console, console_of
from switchboard.web.flowchart import flow_svg
from switchboard.web.node import NodeGone
from switchboard.web.render import redirect, render

router = APIRouter(include_in_schema=False)
MAX_YAML = 256 * 1024


@dataclass
class ScenarioFileView:
    stem: str
    path: Path
    parsed: FileResult  # what the file on disk says now
    running: Scenario | None  # the version the dialer uses (the previous one when the file is broken)
    registered: bool
    switched_on: bool
    dialer_active: bool

    @property
    def name(self) -> str:
        if self.running is not None:
            return self.running.name
        return self.parsed.scenario.name if self.parsed.scenario is not None else self.stem

    @property
    def stale(self) -> bool:
        """The file on disk differs from the version running (broken, or not reloaded yet)."""
        fresh = self.parsed.scenario
        return self.running is not None and (fresh is None or fresh.version != self.running.version)


async def scenario_views(console: Console) -> list[ScenarioFileView]:
    registry = console.node.registry
    running_by_file = {Path(s.source).resolve(): s for s in registry.all()}
    registrations = {r.name: r for r in await console.store.scenarios.list(company=console.settings.company)}
    active = set(registry.active_names())
    views = []
    for path in registry.files:
        parsed = await asyncio.to_thread(parse_scenario_file, path)
        running = running_by_file.get(path.resolve())
        name = running.name if running else (parsed.scenario.name if parsed.scenario else path.stem)
        reg = registrations.get(name)
        views.append(ScenarioFileView(path.stem, path, parsed, running, reg is not None,
                                      reg.active if reg is not None else True, name in active))
    return views


def _view(views: list[ScenarioFileView], stem: str) -> ScenarioFileView:
    for v in views:
        if v.stem == stem:
            return v
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario file {stem!r}")


@router.get("/scenarios")
async def scenarios(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    return render(console.templates, request, "scenarios.html", views=await scenario_views(console),
                  external=bool(console.settings.panel_base_url),
                  report=console.node.registry.last_report)


@router.post("/scenarios/reload")
async def reload(request: Request, principal: Principal = form_principal("control")) -> Response:
    console = console_of(request)
    try:
        report = await console.node.reload_scenarios()
    except NodeGone:
        return redirect("/scenarios", error="The node has stopped; restart to load scenarios.")
    registry = console.node.registry
    await console.store.scenarios.register([(s.name, s.spec.display_name or s.name) for s in registry.all()],
                                           company=console.settings.company)
    await console.accounts.audit(principal.actor, "scenarios.reload", role=principal.role, ip=client_ip(request),
                                 details={"loaded": report.loaded, "kept_previous": report.kept_previous,
                                          "removed": report.removed, "errors": len(report.errors)})
    text = f"Reloaded: {len(report.loaded)} loaded"
    if report.kept_previous:
        text += f"; {', '.join(report.kept_previous)} kept the previous version (the file has errors)"
    if report.removed:
        text += f"; removed {', '.join(report.removed)}"
    errors = "\n".join(str(e) for e in report.errors[:20])
    return redirect("/scenarios", flash=text + ".", error=errors)


@router.post("/scenarios/{stem}/enabled")
async def switch(request: Request, stem: str, enabled: str = Form(...),
                 principal: Principal = form_principal("control")) -> Response:
    """The same switch as the panel's `active_scenarios`: an off scenario gets no new contacts."""
    console = console_of(request)
    if console.settings.panel_base_url:
        return redirect("/scenarios", error="An external panel (PANEL_BASE_URL) decides the active scenarios.")
    company = console.settings.company
    # Every loaded scenario is registered with the panel (as a dialer does at start), so the
    # switches describe the whole roster.
    await console.store.scenarios.register([(s.name, s.spec.display_name or s.name)
                                            for s in console.node.registry.all()], company=company)
    views = await scenario_views(console)
    view = _view(views, stem)
    on = enabled == "on"
    if not view.registered:
        return redirect("/scenarios", error=f"{view.name} is not loaded (its file has errors).")
    if not on and not any(v.switched_on for v in views if v.registered and v.name != view.name):
        # The contract reads an empty `active_scenarios` as "every scenario": switching the last one
        # off would switch them all on. Pausing is the way to stop dialing.
        return redirect("/scenarios", error="That is the last scenario switched on: pause dialing instead "
                                            "(Live page), or switch another scenario on first.")
    await console.store.scenarios.set_active(view.name, on, company=company)
    await console.accounts.audit(principal.actor, "scenario.enable" if on else "scenario.disable",
                                 role=principal.role, target=view.name, ip=client_ip(request))
    return redirect("/scenarios", flash=f"{view.name} switched {'on' if on else 'off'}: "
                                        f"{'it gets contacts from the next batch' if on else 'it gets no new contacts'}.")


def _annotated(text: str, errors: list[FlowError]) -> list[dict[str, Any]]:
    """The YAML as numbered lines, each with the errors that point at it."""
    by_line: dict[int, list[FlowError]] = {}
    for e in errors:
        by_line.setdefault(e.line, []).append(e)
    return [{"no": i, "text": line, "errors": by_line.get(i, [])}
            for i, line in enumerate(text.splitlines() or [""], start=1)]


async def _scenario_page(request: Request, console: Console, view: ScenarioFileView, *, text: str | None = None,
                         errors: list[FlowError] | None = None, status_code: int = 200) -> Response:
    on_disk = await asyncio.to_thread(view.path.read_text, encoding="utf-8")
    shown = text if text is not None else on_disk
    shown_errors = errors if errors is not None else view.parsed.errors
    scenario = view.parsed.scenario or view.running
    diagrams = []
    if scenario is not None:
        diagrams.append(("flow (outbound)", Markup(flow_svg(scenario.flow, title=f"{scenario.name} flow"))))
        if scenario.inbound_flow is not None:
            diagrams.append(("inbound_flow", Markup(flow_svg(scenario.inbound_flow,
                                                            title=f"{scenario.name} inbound flow"))))
    return render(console.templates, request, "scenario.html", status_code=status_code, view=view, text=shown,
                  lines=_annotated(shown, shown_errors), errors=shown_errors, diagrams=diagrams,
                  edited=text is not None)


@router.get("/scenarios/{stem}")
async def scenario(request: Request, stem: str, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    return await _scenario_page(request, console, _view(await scenario_views(console), stem))


@router.post("/scenarios/{stem}")
async def save(request: Request, stem: str, yaml_text: str = Form(..., max_length=MAX_YAML),
               principal: Principal = form_principal("admin")) -> Response:
    """Validate, then write the file and reload. Invalid YAML is shown back with its errors next to
    the lines, and nothing is written: the running version is untouched."""
    console = console_of(request)
    view = _view(await scenario_views(console), stem)
    text = yaml_text.replace("\r\n", "\n")
    result = parse_scenario_text(text, str(view.path))
    errors = list(result.errors)
    if result.scenario is not None and view.running is not None and result.scenario.name != view.running.name:
        errors.append(FlowError(str(view.path), 1, 1, "renamed",
                                f"the scenario is named {result.scenario.name!r} here but {view.running.name!r} "
                                "is running", "keep the name (calls and reports refer to it)"))
    if errors:
        return await _scenario_page(request, console, view, text=text, errors=errors, status_code=422)

    def write() -> None:
        tmp = view.path.with_suffix(view.path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, view.path)

    await asyncio.to_thread(write)
    try:
        report = await console.node.reload_scenarios()
    except NodeGone:
        report = None
    await console.accounts.audit(principal.actor, "scenario.save", role=principal.role, target=view.name,
                                 ip=client_ip(request), details={"version": result.scenario.version
                                                                 if result.scenario else None})
    note = "" if report is None else f" and reloaded ({len(report.loaded)} scenarios)"
    return redirect(f"/scenarios/{stem}", flash=f"Saved{note}: new calls use this version; calls in progress "
                                                f"finish on theirs.")
