"""What every repository shares: the session factory and the dialect it talks to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard import clock


@dataclass
class Repository:
    sessions: async_sessionmaker[AsyncSession]
    dialect: str  # "sqlite" | "postgresql"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def engine(self) -> AsyncEngine:
        return self.sessions.kw["bind"]  # type: ignore[no-any-return]


def utcnow(now: datetime | None = None) -> datetime:
    return now if now is not None else clock.now()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; `total` counts every matching row."""

    items: list  # type: ignore[type-arg]
    total: int
    offset: int
    limit: int
