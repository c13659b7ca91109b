"""Store fixtures: every test runs on a fresh SQLite file, and also on PostgreSQL when
DATABASE_URL_TEST is set (a database the tests may wipe)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest
import uvicorn
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


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """Run an ASGI app with uvicorn on 127.0.0.1:<free port>; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def serve_app():  # type: ignore[no-untyped-def]
    return serve
