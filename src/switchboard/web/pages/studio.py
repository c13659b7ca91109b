"""Personas and the Strategy Studio: edit personas and strategies (validated), the business-agent
wizard, improvement proposals with their diff (approve / reject), and the feedback timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml
from fastapi import APIRouter, Form, HTTPException, Request, status
from pydantic import ValidationError
from starlette.responses import Response

from switchboard.panel.auth import Principal, client_ip, form_principal, page_principal
from switchboard.web.console import Console, console_of
from switchboard.web.node import NodeGone
from switchboard.web.render import redirect, render
from switchboard.web.studio import FetchRefused, WizardInput, draft_strategy, fetch_page

router = APIRouter(include_in_schema=False)
MAX_TEXT = 128 * 1024


def _brain(console: Console) -> Any:
    if console.node.brain is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the brain (personas, strategies) is not loaded "
                                                                  "in this process")
    return console.node.brain


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()]


async def _on_node(console: Console, fn: Any) -> Any:
    try:
        return await console.node.call(fn)
    except NodeGone:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the node has stopped") from None


@router.get("/studio")
async def studio(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    brain = _brain(console)

    async def read() -> dict[str, Any]:
        return {"personas": [brain.personas.get(n) for n in brain.personas.names()],
                "strategies": sorted(brain.strategies.items()),
                "stored": {s.id: s for s in await brain.repository.list_strategies()},
                "pending": await brain.repository.list_proposals("pending")}

    return render(console.templates, request, "studio.html", **await _on_node(console, read),
                  has_llm=console.llm is not None)


# --- personas -----------------------------------------------------------------------------------
@router.get("/studio/personas/{name}")
async def persona_page(request: Request, name: str, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    brain = _brain(console)
    if name not in brain.personas:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no persona {name!r}")
    persona = brain.personas.get(name)
    text = yaml.safe_dump({"persona": persona.model_dump()}, allow_unicode=True, sort_keys=False)
    return render(console.templates, request, "persona.html", persona=persona, text=text, problems=[])


@router.post("/studio/personas/{name}")
async def persona_save(request: Request, name: str, yaml_text: str = Form(..., max_length=MAX_TEXT),
                       principal: Principal = form_principal("write")) -> Response:
    """Validate and apply a persona version: live at once for new conversations, kept across
    restarts (the brain re-applies saved versions), audited."""
    from switchboard.brain.personas import Persona

    console = console_of(request)
    brain = _brain(console)
    if name not in brain.personas:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no persona {name!r}")
    current = brain.personas.get(name)
    problems: list[str] = []
    persona = None
    try:
        data = yaml.safe_load(yaml_text)
        if isinstance(data, dict) and "persona" in data:
            data = data["persona"]
        persona = Persona.model_validate(data)
        if persona.name != name:
            problems.append(f"name: keep {name!r} (handoffs and scenarios refer to it)")
        unknown = [t for t in persona.handoff_targets if t not in brain.personas]
        if unknown:
            problems.append(f"handoff_targets: unknown personas {unknown}")
    except yaml.YAMLError as exc:
        problems.append(f"YAML: {exc}")
    except ValidationError as exc:
        problems.extend(_problems(exc))
    if problems or persona is None:
        return render(console.templates, request, "persona.html", status_code=422, persona=current, text=yaml_text,
                      problems=problems)
    version = persona.version if persona.version != current.version else _bump(current.version)
    persona = persona.model_copy(update={"version": version})

    async def apply() -> None:
        brain.personas.replace(persona)
        await brain.repository.save_persona_version(persona.name, persona.model_dump())

    await _on_node(console, apply)
    await console.accounts.audit(principal.actor, "persona.save", role=principal.role, target=name,
                                 details={"version": version}, ip=client_ip(request))
    return redirect(f"/studio/personas/{name}", flash=f"Persona {name} version {version} is live for new calls.")


def _bump(version: str) -> str:
    head, _, tail = version.rpartition(".")
    if tail.isdigit():
        return f"{head}.{int(tail) + 1}" if head else str(int(tail) + 1)
    return f"{version}.1"


# --- strategies ---------------------------------------------------------------------------------
BLANK = """strategy:
  title: New strategy
  description: ""
  goals: []
  persona: {name: Sales agent, tone: "friendly, brief", locale: en}
  scripts:
    greeting: ""
    pitch: ""
    faqs: {}
    objections: {}
  closing_techniques: []
"""


@router.get("/studio/strategies/new")
async def strategy_new(request: Request, principal: Principal = page_principal("write")) -> Response:
    console = console_of(request)
    return render(console.templates, request, "strategy.html", strategy_id=None, text=BLANK, problems=[],
                  draft=None, versions=[])


@router.get("/studio/strategies/{strategy_id}")
async def strategy_page(request: Request, strategy_id: str, principal: Principal = page_principal("read")
                        ) -> Response:
    console = console_of(request)
    brain = _brain(console)

    async def read() -> tuple[Any, list[Any]]:
        return brain.strategies.get(strategy_id), await brain.repository.strategy_versions(strategy_id)

    strategy, versions = await _on_node(console, read)
    if strategy is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no strategy {strategy_id!r}")
    text = yaml.safe_dump({"strategy": strategy.model_dump(exclude_defaults=True)}, allow_unicode=True,
                          sort_keys=False)
    return render(console.templates, request, "strategy.html", strategy_id=strategy_id, text=text, problems=[],
                  draft=None, versions=versions)


@router.post("/studio/strategies")
async def strategy_save(request: Request, yaml_text: str = Form(..., max_length=MAX_TEXT),
                        principal: Principal = form_principal("write")) -> Response:
    from switchboard.brain.strategies import Strategy

    console = console_of(request)
    brain = _brain(console)
    problems: list[str] = []
    strategy = None
    try:
        data = yaml.safe_load(yaml_text)
        if isinstance(data, dict) and "strategy" in data:
            data = data["strategy"]
        strategy = Strategy.model_validate(data)
    except yaml.YAMLError as exc:
        problems.append(f"YAML: {exc}")
    except ValidationError as exc:
        problems.extend(_problems(exc))
    if problems or strategy is None:
        return render(console.templates, request, "strategy.html", status_code=422, strategy_id=None,
                      text=yaml_text, problems=problems, draft=None, versions=[])

    async def save() -> Any:
        stored = await brain.repository.save_strategy(strategy)
        brain.strategies[stored.id] = stored.strategy
        return stored

    stored = await _on_node(console, save)
    await console.accounts.audit(principal.actor, "strategy.save", role=principal.role, target=stored.id,
                                 details={"version": stored.version}, ip=client_ip(request))
    return redirect(f"/studio/strategies/{stored.id}",
                    flash=f"Strategy {stored.id} version {stored.version} saved and live for conversations using it.")


# --- the business-agent wizard ------------------------------------------------------------------
@router.get("/studio/wizard")
async def wizard(request: Request, principal: Principal = page_principal("write")) -> Response:
    console = console_of(request)
    return render(console.templates, request, "wizard.html", values={}, problem="", has_llm=console.llm is not None)


@router.post("/studio/wizard")
async def wizard_draft(request: Request, industry: str = Form(..., min_length=2, max_length=100),
                       use_case: str = Form(..., min_length=2, max_length=200),
                       goal: str = Form(..., min_length=2, max_length=300), company: str = Form("", max_length=100),
                       language: str = Form("en", max_length=10), url: str = Form("", max_length=2000),
                       principal: Principal = form_principal("write")) -> Response:
    console = console_of(request)
    values = {"industry": industry, "use_case": use_case, "goal": goal, "company": company, "language": language,
              "url": url}
    summary = None
    if url.strip():
        settings = console.settings
        try:
            summary = await fetch_page(url, allow_hosts=set(settings.split_list(settings.studio_fetch_allow_hosts)),
                                       max_bytes=settings.studio_fetch_max_bytes,
                                       timeout=settings.studio_fetch_timeout)
        except FetchRefused as exc:
            return render(console.templates, request, "wizard.html", status_code=422, values=values,
                          problem=f"{url}: {exc}", has_llm=console.llm is not None)
    draft = await draft_strategy(WizardInput(industry.strip(), use_case.strip(), goal.strip(), company.strip(),
                                             language.strip() or "en", url.strip()), summary, console.llm)
    await console.accounts.audit(principal.actor, "studio.draft", role=principal.role, target=url or industry,
                                 details={"by_model": draft.by_model}, ip=client_ip(request))
    return render(console.templates, request, "strategy.html", strategy_id=None, text=draft.yaml, problems=[],
                  draft=draft, versions=[])


# --- improvement proposals and the feedback timeline --------------------------------------------
@router.get("/studio/proposals")
async def proposals(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    brain = _brain(console)
    items = await _on_node(console, lambda: brain.repository.list_proposals(None))
    items = sorted(items, key=lambda p: (p.status != "pending", p.created_at), reverse=False)
    return render(console.templates, request, "proposals.html", proposals=items)


@router.post("/studio/proposals/{proposal_id}/{decision}")
async def decide(request: Request, proposal_id: str, decision: str, note: str = Form("", max_length=2000),
                 principal: Principal = form_principal("write")) -> Response:
    from switchboard.brain.memory import ProposalError

    if decision not in ("approve", "reject"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "approve or reject")
    console = console_of(request)
    brain = _brain(console)
    job = brain.improvements

    async def act() -> Any:
        if decision == "approve":
            return await job.approve(proposal_id, by=principal.name, note=note)
        return await job.reject(proposal_id, by=principal.name, note=note)

    try:
        proposal = await _on_node(console, act)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no proposal {proposal_id!r}") from None
    except ProposalError as exc:
        return redirect("/studio/proposals", error=str(exc))
    await console.accounts.audit(principal.actor, f"proposal.{decision}", role=principal.role, target=proposal_id,
                                 details={"target": f"{proposal.target_kind}:{proposal.target}"},
                                 ip=client_ip(request))
    verb = "approved: the change is live" if decision == "approve" else "rejected"
    return redirect("/studio/proposals", flash=f"Proposal for {proposal.target_kind} {proposal.target} {verb}.")


@router.get("/studio/timeline")
async def timeline(request: Request, principal: Principal = page_principal("read")) -> Response:
    """Feedback, improvement runs and decisions, memory summaries, and calls where a fallback
    stood in for the LLM, newest first."""
    from switchboard.store.usage import CallFilter, UsageRepo

    console = console_of(request)
    brain = _brain(console)

    async def read() -> tuple[list[Any], list[Any], list[Any]]:
        return (await brain.repository.list_feedback(), await brain.repository.list_proposals(None),
                await brain.repository.list_summaries(50))

    feedback, proposals_, summaries = await _on_node(console, read)
    items: list[dict[str, Any]] = []
    for f in feedback[-200:]:
        items.append({"at": f.created_at, "kind": "feedback", "title": f"feedback on call {f.call_id}",
                      "link": f"/calls/{f.call_id}", "text": f.comment,
                      "meta": f"{f.author or '?'}" + (f" · {f.rating}/5" if f.rating else "")})
    for p in proposals_[-200:]:
        items.append({"at": p.created_at, "kind": "improvement run", "title": f"proposal for {p.target_kind} "
                      f"{p.target}", "link": "/studio/proposals", "text": p.rationale, "meta": p.status})
        if p.decided_at:
            items.append({"at": p.decided_at, "kind": f"proposal {p.status}", "title": f"{p.target_kind} {p.target}",
                          "link": "/studio/proposals", "text": p.note, "meta": p.decided_by})
    for s in summaries:
        items.append({"at": s.created_at, "kind": "memory summary", "title": f"summary of {s.calls} conversations",
                      "link": None, "text": s.text, "meta": "by the LLM" if s.by_model else "counted"})
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    fallbacks = 0
    async for call in repo.iter_calls(CallFilter(console.settings.company), chunk=500, cap=2000):
        path = call.intent_path
        if path in ("timeout", "error") or (call.result or "").startswith(("failed:llm", "failed:conversation")):
            fallbacks += 1
            if fallbacks <= 50:
                items.append({"at": call.created_at.isoformat(), "kind": "fallback triggered",
                              "title": f"call {call.id}", "link": f"/calls/{call.id}",
                              "text": f"intent by {path or 'fallback'}; result {call.result}", "meta": call.scenario})

    def when(item: dict[str, Any]) -> str:
        at = item["at"]
        return at.isoformat() if isinstance(at, datetime) else str(at)

    items.sort(key=when, reverse=True)
    return render(console.templates, request, "timeline.html", items=items[:300])
