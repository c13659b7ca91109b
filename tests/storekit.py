"""Store fixtures shared by the store and panel tests: every test runs on a fresh SQLite file, and
also on PostgreSQL when DATABASE_URL_TEST is set (a database the tests may wipe)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from switchboard.settings import Settings
from switchboard.store import Store, open_store

PG_URL = os.environ.get("DATABASE_URL_TEST", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


async def reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sb.db'}"
    return PG_URL


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs", company="acme")


@pytest.fixture
async def store(db_url: str, settings: Settings) -> AsyncIterator[Store]:
    if db_url.startswith("postgresql"):
        await reset_postgres(db_url)
    st = await open_store(settings, url=db_url)
    try:
        yield st
    finally:
        await st.close()
