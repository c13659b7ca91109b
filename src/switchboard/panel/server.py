"""The built-in panel: a FastAPI app serving the dialer contract and a small REST API from the
local database, so Switchboard runs without an external panel."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from switchboard.panel.deps import Authed, DialerControl, PanelContext, ScenarioLister
from switchboard.panel.local import LocalPanel
from switchboard.panel.routes import admin, calls, campaigns, contacts, dnc, export, followups, roster, scenarios
from switchboard.panel.routes import dialer as dialer_routes
from switchboard.settings import Settings
from switchboard.store import RetryPolicy, Store

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
) -> FastAPI:
    """`list_scenarios()` returns the engine's scenarios (names, dicts with name/display_name, or
    objects with those attributes) for GET /api/v1/scenarios. The store's lifetime is the caller's."""
    if not settings.builtin_panel_token.get_secret_value():
        log.warning("BUILTIN_PANEL_TOKEN is empty: the built-in panel accepts unauthenticated requests")
    app = FastAPI(
        title="Switchboard panel", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json"
    )
    app.state.panel = PanelContext(
        store=store,
        settings=settings,
        local=local or LocalPanel(store, settings, retry_policy=retry_policy),
        list_scenarios=list_scenarios or list,
        dialer=dialer,
    )
    for module in (dialer_routes, contacts, calls, followups, campaigns, roster, scenarios, dnc, export, admin):
        app.include_router(module.router)
    for router in routers:  # e.g. the brain's /api/v1/strategies, /calls/{id}/feedback
        app.include_router(router, dependencies=Authed)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
