"""Small durable state: a key/value table (e.g. the dialer's paused flag) and the alert log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from switchboard.store.base import Repository, utcnow
from switchboard.store.models import Alert, KeyValue


class KvRepo(Repository):
    async def get(self, key: str, default: Any = None) -> Any:
        async with self.sessions() as s:
            row = await s.get(KeyValue, key)
            return default if row is None else row.value

    async def set(self, key: str, value: Any) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(KeyValue, key, with_for_update=self.is_postgres)
            if row is None:
                s.add(KeyValue(key=key, value=value, updated_at=utcnow()))
            else:
                row.value = value
                row.updated_at = utcnow()

    async def delete(self, key: str) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(KeyValue, key)
            if row is not None:
                await s.delete(row)


class AlertsRepo(Repository):
    async def add(
        self, kind: str, message: str, *, company: str = "default", details: dict[str, Any] | None = None
    ) -> Alert:
        async with self.sessions.begin() as s:
            row = Alert(
                company=company, kind=kind, message=message, details=details or {}, created_at=utcnow()
            )
            s.add(row)
        return row

    async def list(self, *, company: str | None = None, limit: int = 50) -> list[Alert]:
        stmt = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if company is not None:
            stmt = stmt.where(Alert.company == company)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())
