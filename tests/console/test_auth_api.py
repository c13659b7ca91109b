"""Accounts and security over real HTTP (the console served from its thread on loopback): nothing is
open, scopes and roles hold on every API route, tokens are bound to their company, sessions need
CSRF for changes, sign-in is rate limited, the first start creates a one-time login, changes are
audited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from switchboard.panel.auth import api_scope
from tests.console.conftest import PASSWORD, add_token, add_user, console_settings, serve_console, with_store


def session_client(base: str, username: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A client signed in through the real form; returns it and its CSRF token. (httpx keeps no
    Secure cookie over http, so the session cookie is carried by hand, as a browser on loopback does.)"""
    client = httpx.Client(base_url=base, timeout=20)
    r = client.post("/login", data={"username": username, "password": password})
    assert r.status_code == 303, r.text
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("sb_session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    client.headers["Cookie"] = cookie.split(";", 1)[0]
    page = client.get("/account")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf is not None
    return client, csrf.group(1)


def routes_of(routes: Any, prefix: str = "") -> list[tuple[str, list[str]]]:
    """(path, methods) of every route, through included routers."""
    out: list[tuple[str, list[str]]] = []
    for route in routes:
        if hasattr(route, "original_router"):
            out += routes_of(route.original_router.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "path"):
            out.append((prefix + route.path, sorted(getattr(route, "methods", None) or {"GET"})))
    return out


def test_every_route_needs_a_principal(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    public = {"/healthz", "/readyz", "/login", "/login/once/{token}", "/api/openapi.json",
              "/docs/oauth2-redirect", "/static"}
    with serve_console(settings) as served:
        checked = 0
        with httpx.Client(base_url=served.base, timeout=20) as http:
            for path, methods in routes_of(served.thread._server.config.app.routes):
                if path in public or path in ("/", ""):
                    continue
                url = re.sub(r"\{[^}]+\}", "x1", path)
                for method in methods:
                    if method == "HEAD":
                        continue
                    r = http.request(method, url, follow_redirects=False)
                    if path.startswith(("/api/", "/metrics")):
                        assert r.status_code == 401, (method, path, r.status_code)
                    else:
                        assert r.status_code == 303 and r.headers["location"].startswith("/login"), \
                            (method, path, r.status_code)
                    checked += 1
            assert http.get("/healthz").json() == {"status": "ok"}
        assert checked > 60


def test_api_scope_policy_covers_the_routes() -> None:
    assert api_scope("GET", "/api/dialer/next-batch") == "dialer"
    assert api_scope("POST", "/api/dialer/report-result") == "dialer"
    assert api_scope("POST", "/api/v1/dialer/pause") == "control"
    assert api_scope("GET", "/api/v1/export/results.csv") == "export"
    assert api_scope("DELETE", "/api/v1/dnc/0912") == "delete"
    assert api_scope("GET", "/api/v1/calls") == "pii"
    assert api_scope("GET", "/api/v1/scenarios") == "read"
    assert api_scope("POST", "/api/v1/contacts") == "write"
    assert api_scope("POST", "/api/v1/tokens") == "admin"
    assert api_scope("DELETE", "/api/v1/tokens/3") == "admin"


def test_dialer_token_cannot_pause_export_or_delete(tmp_path: Path) -> None:
    settings = console_settings(tmp_path, builtin_panel_token="contract-s3cret")
    token = add_token(settings, "dialer-1", "dialer")
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        for bearer in ("contract-s3cret", token):
            auth = {"Authorization": f"Bearer {bearer}"}
            assert http.get("/api/dialer/next-batch?size=1", headers=auth).status_code == 200
            assert http.post("/api/v1/dialer/pause", headers=auth).status_code == 403
            assert http.get("/api/v1/export/results.csv", headers=auth).status_code == 403
            assert http.delete("/api/v1/dnc/09121234567", headers=auth).status_code == 403
            assert http.get("/api/v1/contacts", headers=auth).status_code == 403
        wrong = http.get("/api/dialer/next-batch", headers={"Authorization": "Bearer contract-s3creT"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert http.get("/api/dialer/next-batch", headers={"Authorization": "Basic x"}).status_code == 401
        paused = with_store(settings, lambda store: store.kv.get("panel.paused.default", False))
        assert paused is False


def test_tokens_are_bound_to_their_company(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    token = add_token(settings, "dialer-1", "dialer")
    body = {"company": "other", "scenarios": [{"name": "x", "display_name": "X"}]}
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        auth = {"Authorization": f"Bearer {token}"}
        r = http.get("/api/dialer/next-batch?company=other", headers=auth)
        assert r.status_code == 403 and "bound to company 'default'" in r.text
        assert http.post("/api/dialer/register-scenarios", json=body, headers=auth).status_code == 403
        ok = http.post("/api/dialer/register-scenarios", json={**body, "company": "default"}, headers=auth)
        assert ok.status_code == 200


def test_revoked_token_and_scoped_admin_api(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    admin = add_token(settings, "ops", "admin")
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        made = http.post("/api/v1/tokens", json={"name": "crm", "scopes": ["read", "write"]}, headers=auth)
        assert made.status_code == 201, made.text
        crm = made.json()["token"]
        assert http.get("/api/v1/scenarios", headers={"Authorization": f"Bearer {crm}"}).status_code == 200
        assert http.get("/api/v1/calls", headers={"Authorization": f"Bearer {crm}"}).status_code == 403  # no pii
        bad = http.post("/api/v1/tokens", json={"name": "x", "scopes": ["root"]}, headers=auth)
        assert bad.status_code == 422 and "unknown scope" in bad.text
        assert http.delete(f"/api/v1/tokens/{made.json()['id']}", headers=auth).status_code == 204
        assert http.get("/api/v1/scenarios", headers={"Authorization": f"Bearer {crm}"}).status_code == 401
        listed = http.get("/api/v1/tokens", headers=auth).json()
        assert {t["name"]: t["revoked"] for t in listed} == {"ops": False, "crm": True}
        assert all("secret" not in str(t) and crm not in str(t) for t in listed)
        audit = http.get("/api/v1/audit", headers=auth).json()["items"]
        assert [(e["action"], e["status"]) for e in audit] == [
            ("token.revoke", 204), ("POST /api/v1/tokens", 422), ("token.create", 201)]  # the refused try too
        assert {e["actor"] for e in audit} == {"token:ops"}


def test_sessions_roles_csrf_and_masking(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    add_user(settings, "sam", "supervisor")
    add_user(settings, "vic", "viewer")

    async def seed(store: Any) -> None:
        from switchboard import clock
        from switchboard.store import CallData

        await store.calls.record(CallData(id="c1", direction="outbound", phone="09121234567",
                                          phone_e164="+989121234567", scenario="agrad_marketing",
                                          originated_at=clock.now(), ended_at=clock.now(), result="missed"))

    with_store(settings, seed)
    with serve_console(settings) as served:
        sup, sup_csrf = session_client(served.base, "sam")
        viewer, viewer_csrf = session_client(served.base, "vic")
        try:
            # CSRF: a cookie session changes nothing without the page's token.
            assert sup.post("/api/v1/dnc", json={"phone": "09121112222"}).status_code == 403
            ok = sup.post("/api/v1/dnc", json={"phone": "09121112222"}, headers={"X-CSRF-Token": sup_csrf})
            assert ok.status_code == 201
            assert sup.get("/api/v1/calls").json()["items"][0]["phone"] == "09121234567"
            # The viewer: no numbers through the API, masked ones on pages, no control.
            assert viewer.get("/api/v1/calls").status_code == 403
            assert viewer.post("/api/v1/dialer/pause", headers={"X-CSRF-Token": viewer_csrf}).status_code == 403
            page = viewer.get("/calls").text
            assert "+989***4567" in page and "+989121234567" not in page and "09121234567" not in page
            assert viewer.post("/live/pause", data={"csrf_token": viewer_csrf}).status_code == 403
            assert viewer.get("/calls/export.csv").status_code == 403
            assert viewer.get("/settings").status_code == 403
            # Signing out ends the session on the server, not only in the browser.
            cookie = sup.headers["Cookie"]
            assert sup.post("/logout", data={"csrf_token": sup_csrf}).status_code == 303
            with httpx.Client(base_url=served.base, headers={"Cookie": cookie}) as stale:
                assert stale.get("/live", follow_redirects=False).status_code == 303
        finally:
            sup.close()
            viewer.close()
        actions = with_store(settings, lambda store: _audit_actions(store, settings))
        assert ("user:sam", "POST /api/v1/dnc", 201) in actions
        assert ("user:sam", "login", 303) in actions


async def _audit_actions(store: Any, settings: Any) -> list[tuple[str, str, int | None]]:
    from switchboard.store.accounts import AccountsRepo

    page = await AccountsRepo(store.sessions, store.dialect).audit_log(company=settings.company, limit=500)
    return [(e.actor, e.action, e.status) for e in page.items]


def test_login_is_rate_limited(tmp_path: Path) -> None:
    settings = console_settings(tmp_path, login_max_failures=3)
    add_user(settings, "ann", "admin")
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=30) as http:
        for _ in range(3):
            r = http.post("/login", data={"username": "ann", "password": "wrong-password"})
            assert r.status_code == 401 and "wrong username or password" in r.text
        throttled = http.post("/login", data={"username": "ann", "password": PASSWORD})
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
        assert "too many failed sign-ins" in throttled.text
        unknown = http.post("/login", data={"username": "nobody", "password": "whatever-long"})
        assert unknown.status_code == 401  # same answer as a wrong password


def test_first_start_makes_a_one_time_login(tmp_path: Path) -> None:
    from switchboard.web.serve import first_login

    settings = console_settings(tmp_path)
    link = with_store(settings, lambda store: first_login(store, settings))
    assert link and link.startswith(f"http://127.0.0.1:{settings.panel_port}/login/once/")
    again = with_store(settings, lambda store: first_login(store, settings))
    assert again and again != link  # no password set yet: a fresh link, the old one void
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        # Serving re-issues it again (this start's link, printed by `switchboard run`).
        assert served.thread.login_url and served.thread.login_url != again
        path = served.thread.login_url.removeprefix(served.base)
        for void in (link, again):
            assert http.get(void.removeprefix(served.base)).status_code == 404
        assert "Sign in as <strong>admin</strong>" in http.get(path).text  # a GET does not use it up
        used = http.post(path)
        assert used.status_code == 303 and used.headers["location"] == "/account?first=1"
        assert http.post(path).status_code == 404  # once
        cookie = next(h for h in used.headers.get_list("set-cookie") if h.startswith("sb_session="))
        http.headers["Cookie"] = cookie.split(";", 1)[0]
        # Until a password is set, every page leads to the account page.
        assert http.get("/live", follow_redirects=False).headers["location"] == "/account?first=1"
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', http.get("/account").text).group(1)  # type: ignore[union-attr]
        short = http.post("/account/password", data={"csrf_token": csrf, "password": "short", "again": "short"})
        assert short.status_code == 303 and short.headers["location"] == "/account"
        flash = next(h for h in short.headers.get_list("set-cookie") if h.startswith("sb_flash_err="))
        assert "at%20least%2010%20characters" in flash  # said on the page it returns to
        r = http.post("/account/password", data={"csrf_token": csrf, "password": PASSWORD, "again": PASSWORD})
        assert r.status_code == 303 and http.get("/live").status_code == 200
    assert with_store(settings, lambda store: first_login(store, settings)) is None


def test_readyz_and_metrics(tmp_path: Path) -> None:
    from switchboard.observability import metrics

    settings = console_settings(tmp_path)
    token = add_token(settings, "prometheus", "read")
    metrics.observe("stt", "whisper", 0.42)
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["database"] == "ok" and ready.json()["dialer"] == "not running"
        assert http.get("/metrics").status_code == 401
        text = http.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
        assert 'switchboard_stt_seconds_bucket{le="0.5",provider="whisper"}' in text
        assert "switchboard_outbox_backlog 0.0" in text
        assert "switchboard_llm_seconds" in text and "switchboard_tts_seconds" in text
        headers = http.get("/login").headers
        assert headers["x-frame-options"] == "DENY" and "script-src 'self'" in headers["content-security-policy"]


def test_readyz_reports_an_unreachable_database(tmp_path: Path) -> None:
    import asyncio

    from switchboard.panel.server import create_panel_app
    from switchboard.store.db import create_engine
    from switchboard.store.store import Store

    settings = console_settings(tmp_path)

    async def check() -> tuple[int, dict[str, Any]]:
        store = Store.from_engine(create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none"))
        transport = httpx.ASGITransport(app=create_panel_app(store, settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await http.get("/readyz")
        await store.close()
        return r.status_code, r.json()

    code, body = asyncio.run(check())
    assert code == 503 and body["status"] == "not ready" and body["database"].startswith("unreachable")


def test_plain_http_from_another_host_is_told_why_sign_in_cannot_stick(tmp_path: Path) -> None:
    settings = console_settings(tmp_path)
    add_user(settings, "ann", "admin")
    with serve_console(settings) as served, httpx.Client(base_url=served.base, timeout=20) as http:
        form = {"username": "ann", "password": PASSWORD}
        far = http.post("/login", data=form, headers={"Host": "console.example.com"})
        assert far.status_code == 400 and "SESSION_COOKIE_SECURE=false" in far.text
        proxied = http.post("/login", data=form, headers={"Host": "console.example.com",
                                                          "X-Forwarded-Proto": "https"})
        assert proxied.status_code == 303  # behind a TLS-terminating proxy on this machine
