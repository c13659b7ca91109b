"""The built-in panel: one FastAPI app serving the dialer contract, the REST API, the operational
endpoints (/healthz, /readyz, /metrics) and, when asked, the web console, from the local database.

Every route but /healthz, /readyz, the sign-in pages and static files needs a principal (a console
session or a scoped token, see `panel.auth`); nothing is open because a setting is empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from switchboard.panel import limits
from switchboard.panel.auth import AuditMiddleware, Authed, SecurityHeadersMiddleware
from switchboard.panel.auth_accounts import AccountService
from switchboard.panel.deps import DialerControl, PanelContext, ScenarioLister
from switchboard.panel.local import LocalPanel
from switchboard.panel.routes import admin, calls, campaigns, contacts, dnc, export, followups, roster, scenarios
from switchboard.panel.routes import dialer as dialer_routes
from switchboard.settings import Settings
from switchboard.store import RetryPolicy, Store
from switchboard.store.accounts import AccountsRepo

if TYPE_CHECKING:
    from switchboard.brain.llm import LLMClient
    from switchboard.web.node import NodeLink

log = logging.getLogger(__name__)


def create_panel_app(
    store: Store,
    settings: Settings,
    *,
    list_scenarios: ScenarioLister | None = None,
    retry_policy: RetryPolicy | None = None,
    local: LocalPanel | None = None,
    dialer: DialerControl | None = None,
    routers: Sequence[APIRouter] = (),
    node: "NodeLink | None" = None,
    console: bool = False,
    llm: "LLMClient | None" = None,
) -> FastAPI:
    """`list_scenarios()` returns the engine's scenarios (names, dicts with name/display_name, or
    objects with those attributes) for GET /api/v1/scenarios. With `node` (the running node's
    registry, brain, dialer and live board) and `console=True` the web console is mounted too.
    The store's lifetime is the caller's."""
    accounts = AccountService(AccountsRepo(store.sessions, store.dialect), settings)
    local = local or LocalPanel(store, settings, retry_policy=retry_policy)
    # No Swagger/ReDoc pages: they load scripts from a CDN (offline machines, and the CSP). The schema
    # itself is served at /api/openapi.json.
    app = FastAPI(title="Switchboard panel", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.accounts = accounts
    app.state.panel = PanelContext(store=store, settings=settings, local=local, accounts=accounts,
                                   list_scenarios=list_scenarios or list, dialer=dialer or node)
    for module in (dialer_routes, contacts, calls, followups, campaigns, roster, scenarios, dnc, export, admin):
        app.include_router(module.router)
    for router in routers:  # e.g. the brain's /api/v1/strategies, /calls/{id}/feedback
        app.include_router(router, dependencies=Authed)
    _operations(app, store, settings, node)
    from switchboard.web import api as console_api

    for router in console_api.ROUTERS:
        app.include_router(router)
    # Body limits, 422 shapes, documented errors. The spec is built lazily (every route is in by the
    # first request); installed before the console, whose HTML error pages defer to these for the API.
    limits.install(app)
    if console:
        if node is None:
            raise ValueError("the console needs the node (registry, brain, live board)")
        from switchboard.web.console import mount_console

        mount_console(app, store=store, settings=settings, accounts=accounts, node=node, local=local, llm=llm)
    app.add_middleware(AuditMiddleware, write=accounts.audit)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _operations(app: FastAPI, store: Store, settings: Settings, node: "NodeLink | None") -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process answers (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        """Ready to work: the database answers; the dialer's state is reported (a paused dialer
        is still ready: an admin paused it)."""
        body: dict[str, Any] = {}
        try:
            async with asyncio.timeout(3.0):
                async with store.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            body["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            body["database"] = f"unreachable: {type(exc).__name__}"
        if node is not None:
            snap = node.live.snapshot()
            body["dialer"] = snap.state.get("state", "unknown") if snap.attached else \
                ("finished" if snap.finished else "not running")
        body["status"] = "ready" if body["database"] == "ok" else "not ready"
        return JSONResponse(body, status_code=200 if body["database"] == "ok" else 503)

    if settings.metrics_enabled:
        metrics_router = APIRouter(dependencies=Authed, include_in_schema=False)

        @metrics_router.get("/metrics")
        async def metrics() -> Response:
            """Prometheus exposition; scrape with a token that has the `read` scope."""
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            from switchboard.observability.metrics import REGISTRY, refresh_outbox_backlog

            await refresh_outbox_backlog(store)
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

        app.include_router(metrics_router)


__all__ = ["create_panel_app"]
