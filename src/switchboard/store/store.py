"""`open_store`: connect, migrate to head, and hand out the repositories."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard.settings import Settings
from switchboard.store.calls import CallsRepo
from switchboard.store.catalog import BatchesRepo, CampaignsRepo, LinesRepo, OperatorsRepo, ScenariosRepo
from switchboard.store.contacts import ContactsRepo
from switchboard.store.db import create_engine, migrate
from switchboard.store.dnc import DncRepo
from switchboard.store.followups import CallbacksRepo, TicketsRepo
from switchboard.store.outbox import OutboxRepo
from switchboard.store.reports import ReportsRepo
from switchboard.store.state import AlertsRepo, KvRepo


@dataclass
class Store:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    contacts: ContactsRepo
    calls: CallsRepo
    outbox: OutboxRepo
    campaigns: CampaignsRepo
    batches: BatchesRepo
    lines: LinesRepo
    operators: OperatorsRepo
    scenarios: ScenariosRepo
    dnc: DncRepo
    reports: ReportsRepo
    kv: KvRepo
    alerts: AlertsRepo
    callbacks: CallbacksRepo
    tickets: TicketsRepo

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    @classmethod
    def from_engine(cls, engine: AsyncEngine) -> Store:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        d = engine.dialect.name
        return cls(
            engine=engine,
            sessions=sessions,
            contacts=ContactsRepo(sessions, d),
            calls=CallsRepo(sessions, d),
            outbox=OutboxRepo(sessions, d),
            campaigns=CampaignsRepo(sessions, d),
            batches=BatchesRepo(sessions, d),
            lines=LinesRepo(sessions, d),
            operators=OperatorsRepo(sessions, d),
            scenarios=ScenariosRepo(sessions, d),
            dnc=DncRepo(sessions, d),
            reports=ReportsRepo(sessions, d),
            kv=KvRepo(sessions, d),
            alerts=AlertsRepo(sessions, d),
            callbacks=CallbacksRepo(sessions, d),
            tickets=TicketsRepo(sessions, d),
        )


async def open_store(settings: Settings, *, url: str | None = None, run_migrations: bool = True) -> Store:
    """Open the database named by `url` or `settings.resolved_database_url()` (SQLite file by
    default, PostgreSQL via asyncpg when DATABASE_URL says so) and migrate it to head."""
    engine = create_engine(url or settings.resolved_database_url())
    try:
        if run_migrations:
            await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Store.from_engine(engine)
