"""The console's REST API: the usage summary, users, API tokens and the audit log (admin), and
the live board. Mounted by `panel.server.create_panel_app` on every panel app."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from switchboard.dialer.lines import parse_timezone
from switchboard.panel.auth import Authed, Principal, client_ip, current_principal
from switchboard.panel.auth_accounts import ROLES, AccountError
from switchboard.panel.deps import PanelContext, ctx
from switchboard.store.usage import GROUPS, CallFilter, UsageRepo, offset_minutes_at, usage_totals
from switchboard.web.pages.live import api as live_api

router = APIRouter(prefix="/api/v1", dependencies=Authed, tags=["console"])


@router.get("/usage/summary")
async def usage_summary(
    group_by: Literal["scenario", "persona", "line", "day"] = "scenario",
    since: datetime | None = Query(None, description="ISO-8601; calls created at or after"),
    until: datetime | None = Query(None, description="ISO-8601; calls created before"),
    scenario: str | None = Query(None, max_length=200),
    line: str | None = Query(None, max_length=32),
    persona: str | None = Query(None, max_length=100),
    direction: Literal["inbound", "outbound"] | None = None,
    c: PanelContext = Depends(ctx),
) -> dict[str, Any]:
    """The report figures per scenario, persona, line or day: answer rate, intent mix, conversion
    to operator, average handle time, abandon rate, STT/LLM failure rates, talk minutes, LLM tokens."""
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since/until need a time zone (e.g. Z)")
    flt = CallFilter(c.settings.company, since=since, until=until, scenario=scenario, line=line, persona=persona,
                     direction=direction)
    tz = parse_timezone(c.settings.panel_timezone)
    rows = await UsageRepo(c.store.sessions, c.store.dialect).summary(
        flt, group_by, offset_minutes=offset_minutes_at(tz, until or datetime.now(tz)))
    return {"group_by": group_by, "groups": list(GROUPS), "rows": [r.as_dict() for r in rows],
            "totals": usage_totals(rows).as_dict()}


# --- users, tokens, audit (admin scope, see panel.auth.api_scope) --------------------------------
class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    role: Literal["admin", "supervisor", "viewer"]
    password: str | None = Field(None, min_length=10, max_length=1024)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "supervisor", "viewer"] | None = None
    active: bool | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=10)


def _user(u: Any) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "role": u.role, "active": u.active,
            "has_password": u.password_hash is not None, "created_at": u.created_at,
            "last_login_at": u.last_login_at}


def _token(t: Any) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "scopes": t.scopes, "created_by": t.created_by,
            "created_at": t.created_at, "last_used_at": t.last_used_at, "revoked": t.revoked_at is not None}


@router.get("/users")
async def list_users(c: PanelContext = Depends(ctx)) -> list[dict[str, Any]]:
    return [_user(u) for u in await c.accounts.repo.users(company=c.settings.company)]


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, request: Request, c: PanelContext = Depends(ctx),
                      principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    try:
        user = await c.accounts.create_user(body.username, body.role, body.password)
    except AccountError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT if "exists" in str(exc) else
                            status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    out = _user(user)
    if body.password is None:
        out["login_path"] = await c.accounts.issue_login_link(user.username)
    request.state.audited = True
    await c.accounts.audit(principal.actor, "user.create", role=principal.role, target=user.username,
                           details={"role": user.role}, ip=client_ip(request), status=201)
    return out


@router.patch("/users/{user_id}")
async def patch_user(user_id: int, body: UserPatch, request: Request, c: PanelContext = Depends(ctx),
                     principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    user = await c.accounts.repo.user_by_id(user_id)
    if user is None or user.company != c.settings.company:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    if user.id == principal.user_id and (body.active is False or (body.role and body.role != "admin")):
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot demote or deactivate yourself")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    user = await c.accounts.repo.update_user(user_id, **changes)
    if changes.get("active") is False or "role" in changes:
        await c.accounts.repo.delete_sessions_of(user_id)  # the new rights apply from the next sign-in
    request.state.audited = True
    await c.accounts.audit(principal.actor, "user.update", role=principal.role, target=user.username if user else "",
                           details=changes, ip=client_ip(request), status=200)
    return _user(user)


@router.get("/tokens")
async def list_tokens(c: PanelContext = Depends(ctx)) -> list[dict[str, Any]]:
    return [_token(t) for t in await c.accounts.repo.tokens(company=c.settings.company)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenIn, request: Request, c: PanelContext = Depends(ctx),
                       principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    try:
        issued = await c.accounts.create_token(body.name, body.scopes, created_by=principal.actor)
    except AccountError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT if "exists" in str(exc) else
                            status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    request.state.audited = True
    await c.accounts.audit(principal.actor, "token.create", role=principal.role, target=body.name,
                           details={"scopes": issued.row.scopes}, ip=client_ip(request), status=201)
    return {**_token(issued.row), "token": issued.token}


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: int, request: Request, c: PanelContext = Depends(ctx),
                       principal: Principal = Depends(current_principal)) -> None:
    row = await c.accounts.repo.revoke_token(token_id, company=c.settings.company)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token")
    request.state.audited = True
    await c.accounts.audit(principal.actor, "token.revoke", role=principal.role, target=row.name,
                           ip=client_ip(request), status=204)


@router.get("/audit")
async def audit_log(actor: str | None = Query(None, max_length=200), action: str | None = Query(None, max_length=100),
                    offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=500),
                    c: PanelContext = Depends(ctx)) -> dict[str, Any]:
    page = await c.accounts.repo.audit_log(company=c.settings.company, actor=actor, action=action, offset=offset,
                                           limit=limit)
    return {"total": page.total, "offset": page.offset, "limit": page.limit,
            "items": [{"id": e.id, "at": e.at, "actor": e.actor, "role": e.role, "action": e.action,
                       "target": e.target, "details": e.details, "ip": e.ip, "status": e.status}
                      for e in page.items]}


ROUTERS = [router, live_api]
__all__ = ["ROLES", "ROUTERS"]
