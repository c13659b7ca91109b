"""What every built-in panel route needs: the shared context and authentication (`panel.auth`:
every router takes `dependencies=Authed`; the scope each route needs is decided there)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Query, Request

from switchboard.panel.auth import Authed, Principal, require
from switchboard.panel.auth_accounts import AccountService
from switchboard.panel.local import LocalPanel
from switchboard.settings import Settings
from switchboard.store import Store

ScenarioLister = Callable[[], Sequence[Any]]


class DialerControl(Protocol):
    """What the panel may ask of a dialer running in the same process."""

    async def pause(self, by: str = "admin", reason: str = "") -> None: ...

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
    accounts: AccountService
    list_scenarios: ScenarioLister = field(default=list)
    dialer: DialerControl | None = None


def ctx(request: Request) -> PanelContext:
    return request.app.state.panel  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PageParams:
    offset: int
    limit: int


def page_params(offset: int = Query(0, ge=0, le=2**62), limit: int = Query(50, ge=1, le=500)) -> PageParams:
    return PageParams(offset, limit)


__all__ = ["Authed", "DialerControl", "PageParams", "PanelContext", "Principal", "ctx", "page_params", "require"]
