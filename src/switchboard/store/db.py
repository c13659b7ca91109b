"""Engine creation and programmatic Alembic migrations (run on every start-up)."""

from __future__ import annotations

import logging
from pathlib import Path

from switchboard import clock

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
ALEMBIC_INI = _HERE / "alembic.ini"


def _sqlite_work_is_real_io() -> None:
    """aiosqlite runs SQLite in its own thread. On the simulator's virtual clock the loop must not
    jump ahead while that thread works (a pool wait would "time out" in no real time), so each
    operation is marked as real I/O (`clock.real_io`, a no-op on a normal loop)."""
    import aiosqlite.core

    original = aiosqlite.core.Connection._execute
    if getattr(original, "_switchboard_real_io", False):
        return

    async def _execute(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        with clock.real_io():
            return await original(self, fn, *args, **kwargs)

    _execute._switchboard_real_io = True  # type: ignore[attr-defined]
    aiosqlite.core.Connection._execute = _execute  # type: ignore[method-assign]


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`. SQLite gets WAL, foreign keys and a busy timeout so several
    processes can share one file; its directory is created when missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_work_is_real_io()
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has a single writer anyway, and queueing on the pool (an asyncio
        # wait) beats queueing in SQLite's busy handler (sleeps of up to 100 ms).
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def alembic_config() -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`. Safe to run from several processes at once on PostgreSQL
    (an advisory lock serialises them); SQLite serialises writers itself."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy import text

            await conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
        await conn.run_sync(_upgrade, revision)
    log.debug("database migrated to %s", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade, revision)
