"""Settings (admin): outbound lines, operators, SMS alert recipients, providers (keys masked),
console users and API tokens; and the audit log."""

from __future__ import annotations

from typing import Any, AsyncIterator

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from starlette.responses import Response

from switchboard.panel.auth import Principal, client_ip, form_principal, page_principal
from switchboard.panel.auth_accounts import ROLES, SCOPES, AccountError
from switchboard.phones import InvalidPhoneNumber, normalize
from switchboard.store import LineSpec, OperatorSpec
from switchboard.web.console import Console, console_of
from switchboard.web.export import export
from switchboard.web.node import NodeGone
from switchboard.web.render import redirect, render
from switchboard.web.serve import public_url

router = APIRouter(include_in_schema=False)
SMS_KEY = "console.sms_admins.{company}"


def mask_secret(value: str) -> str:
    if not value:
        return "not set"
    if len(value) <= 8:
        return "••••"
    return f"{value[:3]}••••{value[-2:]}"


def providers(console: Console) -> list[tuple[str, str]]:
    s = console.settings
    llm = s.llm_base_url or s.gapgpt_base_url
    return [
        ("Telephony backend", s.telephony_backend),
        ("STT", f"{s.stt_provider} ({s.stt_model})"), ("TTS", s.tts_provider), ("VAD", s.vad_provider),
        ("LLM", f"{llm} · {s.llm_model_critical} / {s.llm_model_cheap}" if llm else "none (fallback tokens, scripted "
                                                                                    "personas)"),
        ("LLM key", mask_secret((s.llm_api_key if s.llm_base_url else s.gapgpt_api_key).get_secret_value())),
        ("OpenAI key", mask_secret(s.openai_api_key.get_secret_value())),
        ("ElevenLabs key", mask_secret(s.elevenlabs_api_key.get_secret_value())),
        ("Vira STT token", mask_secret(s.vira_stt_token.get_secret_value())),
        ("Vira TTS token", mask_secret(s.vira_tts_token.get_secret_value())),
        ("ARI", f"{s.ari_base_url} as {s.ari_username}, password {mask_secret(s.ari_password.get_secret_value())}"),
        ("External panel", f"{s.panel_base_url}, token {mask_secret(s.panel_api_token.get_secret_value())}"
         if s.panel_base_url else "none (the built-in panel)"),
        ("BUILTIN_PANEL_TOKEN", f"{mask_secret(s.builtin_panel_token.get_secret_value())} "
                                f"(scopes: {s.builtin_panel_token_scopes})"),
        ("SMS provider", f"{s.sms_provider_url or 'Kavenegar'}, key {mask_secret(s.sms_api_key.get_secret_value())}"),
        ("Database", s.resolved_database_url().split("@")[-1]), ("Redis", s.redis_url.split("@")[-1] or "none"),
    ]


def _sms_alerter(console: Console) -> Any:
    dialer = console.node.dialer
    return getattr(getattr(dialer, "health", None), "sms", None) if dialer is not None else None


async def sms_recipients(console: Console) -> list[str]:
    saved = await console.store.kv.get(SMS_KEY.format(company=console.settings.company))
    if saved is not None:
        return list(saved)
    return console.settings.split_list(console.settings.sms_admins)


@router.get("/settings")
async def settings_page(request: Request, principal: Principal = page_principal("admin")) -> Response:
    console = console_of(request)
    company = console.settings.company
    new_token = request.cookies.get("sb_new_token", "")
    response = render(console.templates, request, "settings.html",
                      lines=await console.store.lines.list(company=company, active_only=False),
                      operators=await console.store.operators.list(company=company),
                      sms=await sms_recipients(console), sms_live=_sms_alerter(console) is not None,
                      providers=providers(console), users=await console.accounts.repo.users(company=company),
                      tokens=await console.accounts.repo.tokens(company=company), roles=ROLES, scopes=SCOPES,
                      new_token=new_token, new_link=request.cookies.get("sb_new_link", ""))
    response.delete_cookie("sb_new_token", path="/settings")
    response.delete_cookie("sb_new_link", path="/settings")
    return response


async def _audit(console: Console, request: Request, principal: Principal, action: str, target: str = "",
                 **details: Any) -> None:
    await console.accounts.audit(principal.actor, action, role=principal.role, target=target, details=details,
                                 ip=client_ip(request))


# --- lines and operators ------------------------------------------------------------------------
@router.post("/settings/lines")
async def add_line(request: Request, phone_number: str = Form(..., max_length=32),
                   display_name: str = Form("", max_length=200), max_concurrent: int | None = Form(None, ge=1, le=10000),
                   max_per_minute: int | None = Form(None, ge=1, le=100000),
                   max_per_day: int | None = Form(None, ge=1, le=10_000_000),
                   principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    try:
        normalize(phone_number, console.settings.default_region)
    except InvalidPhoneNumber as exc:
        return redirect("/settings#lines", error=f"{phone_number}: {exc}")
    await console.store.lines.upsert(LineSpec(phone_number.strip(), display_name.strip() or None, None, max_concurrent,
                                              max_per_minute, max_per_day), company=console.settings.company)
    console.local.invalidate_roster()
    await _audit(console, request, principal, "line.save", phone_number)
    return redirect("/settings#lines", flash=f"Line {phone_number} saved: dialers get it with the next batch.")


@router.post("/settings/lines/{line_id}/active")
async def line_active(request: Request, line_id: int, active: str = Form(...),
                      principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    await console.store.lines.set_active(line_id, active == "on")
    console.local.invalidate_roster()
    await _audit(console, request, principal, "line.activate" if active == "on" else "line.deactivate", str(line_id))
    return redirect("/settings#lines", flash="Line updated.")


@router.post("/settings/operators")
async def add_operator(request: Request, phone_number: str = Form(..., max_length=32),
                       direction: str = Form(...), name: str = Form("", max_length=200),
                       scenario: str = Form("", max_length=200), principal: Principal = form_principal("admin")
                       ) -> Response:
    console = console_of(request)
    if direction not in ("inbound", "outbound"):
        return redirect("/settings#operators", error="direction is inbound or outbound")
    try:
        normalize(phone_number, console.settings.default_region)
    except InvalidPhoneNumber as exc:
        return redirect("/settings#operators", error=f"{phone_number}: {exc}")
    await console.store.operators.upsert(OperatorSpec(direction, phone_number.strip(), name.strip() or None,
                                                      scenario.strip() or None), company=console.settings.company)
    console.local.invalidate_roster()
    await _audit(console, request, principal, "operator.save", phone_number, direction=direction)
    return redirect("/settings#operators", flash="Operator saved: dialers get the roster with the next batch.")


@router.post("/settings/operators/{operator_id}/active")
async def operator_active(request: Request, operator_id: int, active: str = Form(...),
                          principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    await console.store.operators.set_active(operator_id, active == "on")
    console.local.invalidate_roster()
    await _audit(console, request, principal, "operator.activate" if active == "on" else "operator.deactivate",
                 str(operator_id))
    return redirect("/settings#operators", flash="Operator updated.")


@router.post("/settings/sms")
async def set_sms(request: Request, recipients: str = Form("", max_length=2000),
                  principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    numbers = []
    for raw in recipients.replace("\n", ",").split(","):
        if raw.strip():
            try:
                numbers.append(normalize(raw, console.settings.default_region).national_dialing)
            except InvalidPhoneNumber as exc:
                return redirect("/settings#sms", error=f"{raw.strip()}: {exc}")
    await console.store.kv.set(SMS_KEY.format(company=console.settings.company), numbers)
    alerter = _sms_alerter(console)
    if alerter is not None:
        async def apply() -> None:
            alerter.admins = list(numbers)

        try:
            await console.node.call(apply)
        except NodeGone:
            pass
    await _audit(console, request, principal, "sms.recipients", details_count=len(numbers))
    return redirect("/settings#sms", flash=f"{len(numbers)} SMS alert recipient(s) saved.")


# --- users and tokens ---------------------------------------------------------------------------
@router.post("/settings/users")
async def create_user(request: Request, username: str = Form(..., max_length=100), role: str = Form(...),
                      password: str = Form("", max_length=1024), principal: Principal = form_principal("admin")
                      ) -> Response:
    console = console_of(request)
    try:
        user = await console.accounts.create_user(username.strip(), role, password or None)
    except AccountError as exc:
        return redirect("/settings#users", error=str(exc))
    await _audit(console, request, principal, "user.create", user.username, role=role)
    if password:
        return redirect("/settings#users", flash=f"User {user.username} ({role}) created.")
    link = f"{public_url(console.settings)}{await console.accounts.issue_login_link(user.username)}"
    response = redirect("/settings#users", flash=f"User {user.username} ({role}) created: give them the one-time link.")
    response.set_cookie("sb_new_link", link, max_age=120, path="/settings", httponly=True, samesite="strict",
                        secure=console.settings.session_cookie_secure)
    return response


@router.post("/settings/users/{user_id}")
async def update_user(request: Request, user_id: int, action: str = Form(...), role: str = Form(""),
                      principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    user = await console.accounts.repo.user_by_id(user_id)
    if user is None or user.company != console.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    if user.id == principal.user_id and action in ("deactivate", "role"):
        return redirect("/settings#users", error="You cannot demote or deactivate yourself.")
    if action == "role":
        if role not in ROLES:
            return redirect("/settings#users", error=f"role must be one of {', '.join(ROLES)}")
        await console.accounts.repo.update_user(user_id, role=role)
        await console.accounts.repo.delete_sessions_of(user_id)
    elif action in ("activate", "deactivate"):
        await console.accounts.repo.update_user(user_id, active=action == "activate")
        await console.accounts.repo.delete_sessions_of(user_id)
    elif action == "link":
        link = f"{public_url(console.settings)}{await console.accounts.issue_login_link(user.username)}"
        await _audit(console, request, principal, "user.link", user.username)
        response = redirect("/settings#users", flash=f"One-time link for {user.username} (shown once).")
        response.set_cookie("sb_new_link", link, max_age=120, path="/settings", httponly=True, samesite="strict",
                            secure=console.settings.session_cookie_secure)
        return response
    else:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown action")
    await _audit(console, request, principal, f"user.{action}", user.username, role=role or None)
    return redirect("/settings#users", flash=f"User {user.username} updated; their sessions were signed out.")


@router.post("/settings/tokens")
async def create_token(request: Request, name: str = Form(..., max_length=100),
                       principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    form = await request.form()
    scopes = [str(s) for s in form.getlist("scopes")]
    try:
        issued = await console.accounts.create_token(name.strip(), scopes, created_by=principal.actor)
    except AccountError as exc:
        return redirect("/settings#tokens", error=str(exc))
    await _audit(console, request, principal, "token.create", name, scopes=issued.row.scopes)
    response = redirect("/settings#tokens", flash=f"Token {name} created: copy it now, it is shown once.")
    response.set_cookie("sb_new_token", issued.token, max_age=120, path="/settings", httponly=True,
                        samesite="strict", secure=console.settings.session_cookie_secure)
    return response


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int, principal: Principal = form_principal("admin")) -> Response:
    console = console_of(request)
    row = await console.accounts.repo.revoke_token(token_id, company=console.settings.company)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token")
    await _audit(console, request, principal, "token.revoke", row.name)
    return redirect("/settings#tokens", flash=f"Token {row.name} revoked.")


# --- the audit log ------------------------------------------------------------------------------
@router.get("/audit")
async def audit(request: Request, actor: str = Query("", max_length=200), action: str = Query("", max_length=100),
                offset: int = Query(0, ge=0), principal: Principal = page_principal("admin")) -> Response:
    console = console_of(request)
    page = await console.accounts.repo.audit_log(company=console.settings.company, actor=actor or None,
                                                 action=action or None, offset=offset, limit=100)
    query = "&".join(f"{k}={v}" for k, v in (("actor", actor), ("action", action)) if v)
    return render(console.templates, request, "audit.html", page=page, actor=actor, action=action, query=query)


@router.get("/audit/export.{fmt}")
async def export_audit(request: Request, fmt: str, actor: str = Query("", max_length=200),
                       action: str = Query("", max_length=100), principal: Principal = page_principal("admin")
                       ) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as .csv or .xlsx")
    console = console_of(request)

    async def rows() -> AsyncIterator[list[Any]]:
        offset = 0
        while True:
            page = await console.accounts.repo.audit_log(company=console.settings.company, actor=actor or None,
                                                         action=action or None, offset=offset, limit=500)
            for e in page.items:
                yield [e.at, e.actor, e.role, e.action, e.target, e.status, e.ip, e.details]
            offset += 500
            if offset >= page.total:
                return

    return await export(fmt, "audit", ["at", "actor", "role", "action", "target", "status", "ip", "details"], rows())
