"""What every built-in panel route needs: the shared context and Bearer-token authentication."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Depends, HTTPException, Query, Request, status

from switchboard.panel.local import LocalPanel
from switchboard.settings import Settings
from switchboard.store import Store

ScenarioLister = Callable[[], Sequence[Any]]


class DialerControl(Protocol):
    """What the panel may ask of a dialer running in the same process."""

    async def resume(self, by: str = "admin") -> None: ...

    def status(self) -> dict[str, Any]: ...

    async def call_now(self, phone: str, *, scenario: str | None = None, persona: str | None = None,
                       name: str | None = None, attributes: dict[str, Any] | None = None,
                       wait: float = 10.0) -> Any: ...


@dataclass
class PanelContext:
    store: Store
    settings: Settings
    local: LocalPanel
    list_scenarios: ScenarioLister = field(default=list)
    dialer: DialerControl | None = None


def ctx(request: Request) -> PanelContext:
    return request.app.state.panel  # type: ignore[no-any-return]


async def require_token(request: Request) -> None:
    """Bearer auth against BUILTIN_PANEL_TOKEN; an empty token disables auth (loopback use)."""
    expected = ctx(request).settings.builtin_panel_token.get_secret_value()
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authed = [Depends(require_token)]


@dataclass(frozen=True)
class PageParams:
    offset: int
    limit: int


def page_params(offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)) -> PageParams:
    return PageParams(offset, limit)
