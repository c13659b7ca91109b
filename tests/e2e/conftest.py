"""E2E fixtures: PostgreSQL (a database of its own, `switchboard_e2e`, next to DATABASE_URL_TEST's,
so other suites wiping theirs never race these tests) and Redis (REDIS_URL_TEST). Tests needing
them skip only when those variables are absent."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


async def _fresh_database(base_url: str, name: str) -> str:
    admin = create_async_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
    return url


@pytest.fixture
def e2e_postgres_url() -> str:
    base = os.environ.get("DATABASE_URL_TEST", "")
    if not base:
        pytest.skip("DATABASE_URL_TEST is not set (eval \"$(bash scripts/services.sh start)\")")
    return asyncio.run(_fresh_database(base, "switchboard_e2e"))


@pytest.fixture
def e2e_redis_url() -> str:
    url = os.environ.get("REDIS_URL_TEST", "")
    if not url:
        pytest.skip("REDIS_URL_TEST is not set (eval \"$(bash scripts/services.sh start)\")")
    return url
