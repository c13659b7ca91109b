"""Campaigns and contacts: campaigns with their contact counts, calling hours and attempts; the
`call_allowed` switch; recent batches; the retry policy; contacts (filter, export, import with a
progress bar and a per-row error report); the do-not-call list."""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from starlette.responses import JSONResponse, Response

from switchboard.panel.auth import Principal, check_csrf, client_ip, form_principal, page_principal
from switchboard.phones import InvalidPhoneNumber, normalize
from switchboard.store.reports import FINAL_RESULTS, RETRY_RESULTS
from switchboard.store.usage import UsageRepo
from switchboard.web.console import Console, console_of
from switchboard.web.export import export
from switchboard.web.render import phone_for, redirect, render

router = APIRouter(include_in_schema=False)
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_UPLOAD = 20 * 1024 * 1024
STATUSES = ("pending", "leased", "done", "dnc")


@router.get("/campaigns")
async def campaigns(request: Request, principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    company = console.settings.company
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    listed = await console.store.campaigns.list(company=company, limit=200)
    counts = await repo.contact_counts(company)
    policy = {"retried": sorted(RETRY_RESULTS) + ["failed:*"], "final": sorted(FINAL_RESULTS),
              "delay_minutes": round(console.settings.retry_delay_seconds / 60, 1),
              "max_attempts": console.settings.max_attempts,
              "per_day": console.settings.daily_attempts_per_contact,
              "abandon_lockout_minutes": round(console.settings.abandon_lockout_seconds / 60, 1)}
    return render(console.templates, request, "campaigns.html", campaigns=listed.items, counts=counts,
                  batches=await repo.batches(company), policy=policy, settings=console.settings,
                  call_allowed=not await console.local.is_paused())


@router.post("/campaigns/call-allowed")
async def call_allowed(request: Request, allowed: str = Form(...), principal: Principal = form_principal("control")
                       ) -> Response:
    """The built-in panel's `call_allowed` switch: off, next-batch hands no contacts to any dialer."""
    console = console_of(request)
    on = allowed == "on"
    await console.local.set_paused(not on)
    await console.accounts.audit(principal.actor, "panel.call_allowed", role=principal.role,
                                 details={"call_allowed": on}, ip=client_ip(request))
    return redirect("/campaigns", flash="call_allowed is " + ("on: dialers get contacts." if on else
                                                             "off: dialers get no contacts."))


@router.post("/campaigns/{campaign_id}")
async def update_campaign(request: Request, campaign_id: int, calling_hours_start: str = Form(""),
                          calling_hours_end: str = Form(""), timezone: str = Form("", max_length=64),
                          max_attempts: str = Form(""), active: str = Form(""),
                          principal: Principal = form_principal("write")) -> Response:
    console = console_of(request)
    row = await console.store.campaigns.get(campaign_id)
    if row is None or row.company != console.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such campaign")
    changes: dict[str, Any] = {"active": active == "on"}
    for name, value in (("calling_hours_start", calling_hours_start), ("calling_hours_end", calling_hours_end)):
        value = value.strip()
        if value and not HHMM.match(value):
            return redirect("/campaigns", error=f"{name.replace('_', ' ')}: {value!r} is not HH:MM (00:00-23:59)")
        changes[name] = value or None
    if changes["calling_hours_start"] and changes["calling_hours_start"] == changes["calling_hours_end"]:
        return redirect("/campaigns", error="calling hours: start equals end (an empty window)")
    if timezone.strip():
        from switchboard.dialer.lines import parse_timezone

        try:
            parse_timezone(timezone.strip())
        except ValueError as exc:
            return redirect("/campaigns", error=str(exc))
    changes["timezone"] = timezone.strip() or None
    if max_attempts.strip():
        if not max_attempts.strip().isdigit() or not 1 <= int(max_attempts) <= 50:
            return redirect("/campaigns", error="max attempts is a whole number from 1 to 50")
        changes["max_attempts"] = int(max_attempts)
    else:
        changes["max_attempts"] = None
    await console.store.campaigns.update(campaign_id, **changes)
    await console.accounts.audit(principal.actor, "campaign.update", role=principal.role, target=row.name,
                                 details={k: v for k, v in changes.items()}, ip=client_ip(request))
    return redirect("/campaigns", flash=f"Campaign {row.name} saved.")


# --- contacts -----------------------------------------------------------------------------------
@router.get("/contacts")
async def contacts(request: Request, campaign_id: int | None = Query(None), status_: str = Query("", alias="status"),
                   offset: int = Query(0, ge=0), principal: Principal = page_principal("read")) -> Response:
    console = console_of(request)
    if status_ and status_ not in STATUSES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"status is one of {', '.join(STATUSES)}")
    page = await console.store.contacts.list(company=console.settings.company, status=status_ or None,
                                             campaign_id=campaign_id, offset=offset, limit=50)
    listed = await console.store.campaigns.list(company=console.settings.company, limit=200)
    query = "&".join(f"{k}={v}" for k, v in (("campaign_id", campaign_id or ""), ("status", status_)) if v)
    return render(console.templates, request, "contacts.html", page=page, campaigns=listed.items,
                  campaign_id=campaign_id, status=status_, statuses=STATUSES, query=query,
                  jobs=list(console.jobs.values())[-5:])


async def _contact_rows(console: Console, principal: Principal, campaign_id: int | None,
                        status_: str | None) -> AsyncIterator[list[Any]]:
    repo = UsageRepo(console.store.sessions, console.store.dialect)
    async for c in repo.iter_contacts(console.settings.company, campaign_id=campaign_id, status=status_):
        yield [c.id, phone_for(principal, c.phone_e164), c.name, c.campaign_id, c.status, c.attempts, c.last_result,
               c.last_attempt_at, c.next_attempt_at, c.timezone,
               " ".join(f"{k}={v}" for k, v in (c.attributes or {}).items())]


@router.get("/contacts/export.{fmt}")
async def export_contacts(request: Request, fmt: str, campaign_id: int | None = Query(None),
                          status_: str = Query("", alias="status"), principal: Principal = page_principal("export")
                          ) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as .csv or .xlsx")
    console = console_of(request)
    await console.accounts.audit(principal.actor, "export.contacts", role=principal.role, target=fmt,
                                 details={"campaign_id": campaign_id, "status": status_}, ip=client_ip(request))
    return await export(fmt, "contacts", ["id", "phone", "name", "campaign_id", "status", "attempts", "last_result",
                                          "last_attempt_at", "next_attempt_at", "timezone", "attributes"],
                        _contact_rows(console, principal, campaign_id, status_ or None))


@dataclass
class ImportJob:
    id: str
    file: str
    campaign: str | None
    by: str
    state: str = "queued"  # queued | running | done | failed
    total: int = 0
    done: int = 0
    imported: int = 0
    errors: list[Any] = field(default_factory=list)
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.id, "file": self.file, "state": self.state, "total": self.total, "done": self.done,
                "imported": self.imported, "rejected": len(self.errors), "problem": self.problem}


async def _run_import(console: Console, job: ImportJob, path: Path) -> None:
    from switchboard.contacts_import import ImportFileError, import_contacts

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    job.state = "running"
    try:
        report = await import_contacts(console.store, path, console.settings, progress=False, campaign=job.campaign,
                                       on_progress=progress)
        job.imported, job.errors, job.total = report.imported, list(report.errors), report.total_rows
        job.done = job.total
        job.state = "done"
    except ImportFileError as exc:
        job.state, job.problem = "failed", str(exc).replace(str(path), job.file)
    except Exception as exc:  # noqa: BLE001 - reported on the job page
        job.state, job.problem = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        path.unlink(missing_ok=True)
        await console.accounts.audit(f"user:{job.by}", "contacts.import", target=job.file,
                                     details=job.as_dict() | {"errors": len(job.errors)})


@router.post("/contacts/import")
async def import_upload(request: Request, file: UploadFile = File(...), campaign: str = Form("", max_length=200),
                        principal: Principal = page_principal("write")) -> Response:
    """Upload a CSV/XLSX; the import runs in the background (JSON clients follow its progress)."""
    await check_csrf(request, principal, form=True)
    console = console_of(request)
    name = Path(file.filename or "contacts.csv").name[:200]
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: upload a .csv or .xlsx file")
    tmp = tempfile.NamedTemporaryFile(prefix="switchboard-import-", suffix=suffix, delete=False)
    size = 0
    try:
        while chunk := await file.read(256 * 1024):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                    f"{name} is larger than {MAX_UPLOAD // (1024 * 1024)} MB")
            tmp.write(chunk)
    except HTTPException:
        tmp.close()
        Path(tmp.name).unlink(missing_ok=True)
        raise
    tmp.close()
    job = ImportJob(uuid.uuid4().hex[:12], name, campaign.strip() or None, principal.name)
    console.jobs[job.id] = job
    while len(console.jobs) > 20:
        console.jobs.pop(next(iter(console.jobs)))
    task = asyncio.create_task(_run_import(console, job, Path(tmp.name)))
    console.jobs[job.id].task = task  # type: ignore[attr-defined]  # keep a reference while it runs
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(job.as_dict(), status_code=202)
    return redirect(f"/contacts/import/{job.id}")


@router.get("/contacts/import/{job_id}.json")
async def import_status(request: Request, job_id: str, principal: Principal = page_principal("write")
                        ) -> dict[str, Any]:
    job = console_of(request).jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such import")
    return job.as_dict()


@router.get("/contacts/import/{job_id}")
async def import_page(request: Request, job_id: str, principal: Principal = page_principal("write")) -> Response:
    console = console_of(request)
    job = console.jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such import (imports are kept until a restart)")
    return render(console.templates, request, "import.html", job=job)


# --- do-not-call ----------------------------------------------------------------------------------
@router.get("/dnc")
async def dnc(request: Request, offset: int = Query(0, ge=0), principal: Principal = page_principal("read")
              ) -> Response:
    console = console_of(request)
    page = await console.store.dnc.list(offset=offset, limit=100)
    return render(console.templates, request, "dnc.html", page=page)


@router.post("/dnc")
async def dnc_add(request: Request, phone: str = Form(..., max_length=40), reason: str = Form("", max_length=500),
                  principal: Principal = form_principal("write")) -> Response:
    console = console_of(request)
    try:
        e164 = normalize(phone, console.settings.default_region).e164
    except InvalidPhoneNumber as exc:
        return redirect("/dnc", error=f"{phone}: {exc}")
    await console.store.dnc.add(e164, reason=reason.strip() or None, source=f"console:{principal.name}")
    await console.accounts.audit(principal.actor, "dnc.add", role=principal.role, target=e164, ip=client_ip(request))
    return redirect("/dnc", flash=f"{phone_for(principal, e164)} is on the do-not-call list.")


@router.post("/dnc/remove")
async def dnc_remove(request: Request, phone: str = Form(..., max_length=40),
                     principal: Principal = form_principal("delete")) -> Response:
    console = console_of(request)
    try:
        e164 = normalize(phone, console.settings.default_region).e164
    except InvalidPhoneNumber as exc:
        return redirect("/dnc", error=f"{phone}: {exc}")
    if not await console.store.dnc.remove(e164):
        return redirect("/dnc", error="That number is not on the do-not-call list.")
    await console.accounts.audit(principal.actor, "dnc.remove", role=principal.role, target=e164,
                                 ip=client_ip(request))
    return redirect("/dnc", flash="Removed from the do-not-call list.")
