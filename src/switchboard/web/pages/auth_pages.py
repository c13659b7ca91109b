"""Signing in and out, one-time login links, and setting one's password."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from switchboard.panel.auth import SESSION_COOKIE, Principal, client_ip, form_principal, page_principal
from switchboard.panel.auth_accounts import AccountError, LoginRefused, LoginThrottled, NewSession
from switchboard.web.console import console_of
from switchboard.web.render import redirect, render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: `//evil.example` or `https://...` would make the login an open redirect."""
    if not target:
        return "/live"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/live"
    return target


def _signed_in(request: Request, session: NewSession, location: str) -> Response:
    response = RedirectResponse(location, status_code=303)
    console = console_of(request)
    response.set_cookie(SESSION_COOKIE, session.cookie, max_age=session.max_age, path="/", httponly=True,
                        secure=console.settings.session_cookie_secure, samesite="lax")
    return response


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/live", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str = "") -> Response:
    return render(console_of(request).templates, request, "login.html", next=_safe_next(next), username="",
                  problem="")


@router.post("/login")
async def login(request: Request, username: str = Form(..., max_length=100),
                password: str = Form(..., max_length=1024), next: str = Form("")) -> Response:
    console = console_of(request)
    ip = client_ip(request)
    try:
        user = await console.accounts.authenticate(username.strip(), password, ip)
    except LoginThrottled as exc:
        await console.accounts.audit(f"user:{username[:100]}", "login.throttled", ip=ip, status=429)
        response = render(console.templates, request, "login.html", status_code=429, next=_safe_next(next),
                          username=username, problem=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except LoginRefused as exc:
        await console.accounts.audit(f"user:{username[:100]}", "login.failed", ip=ip, status=401)
        return render(console.templates, request, "login.html", status_code=401, next=_safe_next(next),
                      username=username, problem=str(exc))
    if cookie_would_be_dropped(request):
        return render(console.templates, request, "login.html", status_code=400, next=_safe_next(next),
                      username=username, problem="This page came over plain http from another machine, so the "
                      "browser would drop the secure session cookie: serve the console over https (a reverse "
                      "proxy), or set SESSION_COOKIE_SECURE=false on a trusted network.")
    session = await console.accounts.start_session(user, ip=ip, user_agent=request.headers.get("user-agent"))
    await console.accounts.audit(f"user:{user.username}", "login", role=user.role, ip=ip, status=303)
    return _signed_in(request, session, _safe_next(next))


def cookie_would_be_dropped(request: Request) -> bool:
    """Browsers keep Secure cookies from https and from loopback hosts only."""
    host = (request.url.hostname or "").strip("[]")
    return (console_of(request).settings.session_cookie_secure and request.url.scheme != "https"
            and host not in ("127.0.0.1", "localhost", "::1") and not host.endswith(".localhost"))


@router.post("/logout")
async def logout(request: Request, principal: Principal = form_principal("read", allow_without_password=True)
                 ) -> Response:
    console = console_of(request)
    await console.accounts.end_session(request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/login", flash="Signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/login/once/{token}")
async def once_page(request: Request, token: str) -> Response:
    """Shows whom the link signs in; the sign-in itself is a POST, so a link previewer that fetches
    the URL does not burn it."""
    console = console_of(request)
    user = await console.accounts.peek_login_link(token)
    return render(console.templates, request, "login_once.html", status_code=200 if user else 404, user=user,
                  token=token)


@router.post("/login/once/{token}")
async def use_once(request: Request, token: str) -> Response:
    console = console_of(request)
    user = await console.accounts.use_login_link(token)
    if user is None:
        return render(console.templates, request, "login_once.html", status_code=404, user=None, token="")
    ip = client_ip(request)
    session = await console.accounts.start_session(user, ip=ip, user_agent=request.headers.get("user-agent"))
    await console.accounts.audit(f"user:{user.username}", "login.link", role=user.role, ip=ip, status=303)
    return _signed_in(request, session, "/account?first=1" if user.password_hash is None else "/live")


@router.get("/account")
async def account(request: Request, principal: Principal = page_principal("read", allow_without_password=True)
                  ) -> Response:
    return render(console_of(request).templates, request, "account.html")


@router.post("/account/password")
async def set_password(request: Request, password: str = Form(..., max_length=1024),
                       again: str = Form(..., max_length=1024), current: str = Form("", max_length=1024),
                       principal: Principal = form_principal("read", allow_without_password=True)) -> Response:
    console = console_of(request)
    if password != again:
        return redirect("/account", error="The two passwords differ.")
    if principal.has_password:
        try:
            await console.accounts.authenticate(principal.name, current, client_ip(request))
        except (LoginRefused, LoginThrottled):
            return redirect("/account", error="Your current password is wrong.")
    assert principal.user_id is not None
    session_id = None
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie:
        from switchboard.panel.auth_accounts import digest

        session_id = digest(cookie)
    try:
        await console.accounts.set_password(principal.user_id, password, keep_session=session_id)
    except AccountError as exc:
        return redirect("/account", error=str(exc))
    await console.accounts.audit(principal.actor, "account.password", role=principal.role, ip=client_ip(request))
    return redirect("/live", flash="Password set.")
