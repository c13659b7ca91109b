"""The web console: server-rendered pages (Jinja2, plain JS, no build step) mounted on the panel's
FastAPI app, so the console, the REST API and the dialer contract share one server, one account
system and one port.

Each page lives in its own module under `web.pages`; this module holds what they share.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from switchboard.panel.auth import LoginRequired
from switchboard.panel.auth_accounts import AccountService
from switchboard.panel.local import LocalPanel
from switchboard.settings import Settings
from switchboard.store import Store
from switchboard.web.node import NodeLink
from switchboard.web.render import HERE, build_templates, render

if TYPE_CHECKING:
    from switchboard.brain.llm import LLMClient

log = logging.getLogger(__name__)


@dataclass
class Console:
    store: Store
    settings: Settings
    accounts: AccountService
    node: NodeLink
    local: LocalPanel
    templates: Jinja2Templates
    llm: "LLMClient | None" = None  # the Strategy Studio's drafts; None = deterministic drafts
    jobs: dict[str, Any] = field(default_factory=dict)  # contact imports in progress, by id


def console_of(request: Request) -> Console:
    return request.app.state.console  # type: ignore[no-any-return]


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/metrics", "/healthz", "/readyz"))


def mount_console(app: FastAPI, *, store: Store, settings: Settings, accounts: AccountService, node: NodeLink,
                  local: LocalPanel, llm: "LLMClient | None" = None) -> Console:
    from switchboard.web.pages import ROUTERS

    console = Console(store, settings, accounts, node, local, build_templates(settings.panel_timezone), llm)
    app.state.console = console
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    # Pages get HTML error pages; the API keeps the handlers installed before (panel/limits.py: the
    # documented error shapes), or FastAPI's own.
    api_http_error = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)
    api_invalid = app.exception_handlers.get(RequestValidationError, request_validation_exception_handler)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not wants_html(request):
            return await api_http_error(request, exc)  # type: ignore[arg-type]
        return render(console.templates, request, "error.html", status_code=exc.status_code,
                      status=exc.status_code, detail=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not wants_html(request):
            return await api_invalid(request, exc)  # type: ignore[arg-type]
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
                             for e in exc.errors())
        return render(console.templates, request, "error.html", status_code=422, status=422, detail=problems)

    return console


__all__ = ["Console", "console_of", "mount_console"]
