"""Who is asking and what they may do, for every API route and console page.

A request is made by a `Principal`: a console user (server-side session in an HttpOnly cookie,
CSRF token on every change) or a machine (a scoped API token as `Authorization: Bearer`, or the
configured `BUILTIN_PANEL_TOKEN`). Nothing is open because a setting is empty.

Routers apply one dependency:
    router = APIRouter(dependencies=Authed)                 # scope from the route (see `api_scope`)
    @router.post("/x", dependencies=[require("control")])   # or name the scope explicitly
Console pages use `page_principal("read")` (redirects to the sign-in page) and forms
`form_principal("write")` (also checks the CSRF field).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.panel.auth_accounts import ROLE_SCOPES, AccountService, effective_scopes
from switchboard.settings import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "sb_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# GET routes under these prefixes return phone numbers or recordings: `pii` as well as `read`.
PII_PREFIXES = ("/api/v1/calls", "/api/v1/contacts", "/api/v1/dnc", "/api/v1/operators", "/api/v1/export",
                "/api/v1/callbacks", "/api/v1/tickets")
ADMIN_PREFIXES = ("/api/v1/users", "/api/v1/tokens", "/api/v1/audit")
CONTROL_PATHS = ("/api/v1/dialer/pause", "/api/v1/dialer/resume")


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["user", "token"]
    name: str
    scopes: frozenset[str]
    company: str
    role: str | None = None  # users
    user_id: int | None = None
    csrf: str | None = None  # cookie sessions: the token forms and fetch() calls must echo
    has_password: bool = True

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def masked(self) -> bool:
        """True when phone numbers must be masked and recordings withheld (viewers)."""
        return "pii" not in self.scopes

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def via_cookie(self) -> bool:
        return self.csrf is not None


def api_scope(method: str, path: str) -> str:
    """The scope an API request needs, decided in one place for every route (so a new route is
    never open by accident): the dialer contract, control switches, exports, admin resources,
    deletions, then reads and writes."""
    if path.startswith("/api/dialer/"):
        return "dialer"
    if path in CONTROL_PATHS or path.startswith("/api/v1/control/"):
        return "control"
    if path.startswith("/api/v1/export") or path.endswith((".csv", ".xlsx")):
        return "export"
    if path.startswith(ADMIN_PREFIXES):
        return "admin"
    if method == "DELETE":
        return "delete"
    if method in SAFE_METHODS:
        return "pii" if path.startswith(PII_PREFIXES) else "read"
    return "write"


def accounts(request: Request) -> AccountService:
    return request.app.state.accounts  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _bearer_principal(request: Request, token: str) -> Principal | None:
    service = accounts(request)
    configured = service.settings.builtin_panel_token.get_secret_value()
    if configured and hmac.compare_digest(token.encode(), configured.encode()):
        scopes = Settings.split_list(service.settings.builtin_panel_token_scopes)
        return Principal("token", "BUILTIN_PANEL_TOKEN", effective_scopes(scopes), service.company)
    row = await service.check_token(token)
    if row is None:
        return None
    return Principal("token", row.name, effective_scopes(list(row.scopes)), row.company)


async def session_principal(request: Request) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return None
    row = await accounts(request).session(cookie)
    if row is None:
        return None
    return Principal("user", row.username, ROLE_SCOPES.get(row.role, frozenset()), row.company, role=row.role,
                     user_id=row.user_id, csrf=row.csrf, has_password=row.has_password)


async def request_principal(request: Request) -> Principal | None:
    """Bearer token first (machines), then the session cookie (people)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return await _bearer_principal(request, token.strip())
    return await session_principal(request)


async def _requested_company(request: Request) -> str | None:
    """The `company` a request acts for: the query's, or a JSON body's top-level field."""
    company = request.query_params.get("company")
    if company:
        return company
    if request.method in SAFE_METHODS or "json" not in request.headers.get("content-type", ""):
        return None
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None  # the route answers the malformed body with its own 422
    value = body.get("company") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


async def check_csrf(request: Request, principal: Principal, *, form: bool = False) -> None:
    """Cookie-authenticated changes must echo the session's CSRF token (header, or form field)."""
    if not principal.via_cookie or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and form:
        sent = str((await request.form()).get(CSRF_FIELD, ""))
    if not sent or not hmac.compare_digest(sent.encode(), (principal.csrf or "").encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the page and retry")


async def authorize(request: Request, scope: str) -> Principal:
    principal = await request_principal(request)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in, or send a valid bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    if not principal.can(scope):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{principal.actor} may not do this: it needs the {scope!r} scope")
    wanted = await _requested_company(request)
    effective = wanted or accounts(request).company
    if effective != principal.company:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{principal.actor} is bound to company {principal.company!r}, not {effective!r}")
    await check_csrf(request, principal, form="form" in request.headers.get("content-type", ""))
    return principal


async def api_principal(request: Request) -> Principal:
    """The router-wide dependency: the scope comes from `api_scope(method, path)`."""
    return await authorize(request, api_scope(request.method, request.url.path))


def require(*scopes: str) -> Any:
    """A dependency demanding every one of `scopes` (on top of the router's)."""

    async def dependency(request: Request) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            principal = await authorize(request, scopes[0] if scopes else "read")
        for scope in scopes:
            if not principal.can(scope):
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"{principal.actor} may not do this: it needs the {scope!r} scope")
        return principal

    return Depends(dependency)


Authed = [Depends(api_principal)]


def current_principal(request: Request) -> Principal:
    """The principal a router-level `Authed` already established (use after it)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated")
    return principal


# --- console pages ----------------------------------------------------------------------------
class LoginRequired(Exception):
    """Raised by page dependencies; the console answers with a redirect to the sign-in page."""

    def __init__(self, location: str) -> None:
        self.location = location


def page_principal(scope: str = "read", *, allow_without_password: bool = False) -> Any:
    """A signed-in user with `scope`; otherwise a redirect to /login (or 403 for a lesser role)."""

    async def dependency(request: Request) -> Principal:
        principal = await session_principal(request)
        if principal is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(f"/login?next={quote(target, safe='')}")
        request.state.principal = principal
        if not principal.has_password and not allow_without_password:
            raise LoginRequired("/account?first=1")
        if not principal.can(scope):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"your role ({principal.role}) may not do this: it needs {scope!r}")
        return principal

    return Depends(dependency)


def form_principal(scope: str, *, allow_without_password: bool = False) -> Any:
    """`page_principal` for a form post, with its CSRF field checked."""
    inner = page_principal(scope, allow_without_password=allow_without_password).dependency

    async def dependency(request: Request, principal: Principal = Depends(inner)) -> Principal:
        await check_csrf(request, principal, form=True)
        return principal

    return Depends(dependency)


# --- audit of API changes ---------------------------------------------------------------------
class AuditMiddleware:
    """Writes an audit entry for every change made through the API by a person or a token (the
    console's own forms write richer entries themselves and mark the request audited). Machine
    traffic of the dialer contract is not an admin action and is left out."""

    def __init__(self, app: ASGIApp, write: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.write = write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or not scope["path"].startswith("/api/") \
                or scope["path"].startswith("/api/dialer/"):
            await self.app(scope, receive, send)
            return
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            state = scope.get("state") or {}
            principal = state.get("principal")
            if principal is not None and not state.get("audited"):
                client = scope.get("client")
                await self.write(principal.actor, f"{scope['method']} {scope['path']}"[:100], role=principal.role,
                                 ip=client[0] if client else None, status=status_code)


class SecurityHeadersMiddleware:
    """Headers every answer carries: no framing, no sniffing, no referrer (login links carry a
    token), a strict CSP (the console has no inline script), and no caching of signed-in pages."""

    HEADERS = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                     b"style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                                     b"form-action 'self'; base-uri 'none'"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.HEADERS if h[0] not in names)
                if not static and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)


__all__ = ["AuditMiddleware", "Authed", "CSRF_FIELD", "CSRF_HEADER", "LoginRequired", "Principal", "SESSION_COOKIE",
           "SecurityHeadersMiddleware", "api_principal", "api_scope", "authorize", "check_csrf", "client_ip", "current_principal", "form_principal",
           "page_principal", "request_principal", "require", "session_principal"]
