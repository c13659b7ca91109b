"""Panel fixtures: the store fixtures (tests/storekit.py) and a loopback uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn


# The store fixtures (fresh SQLite per test, and PostgreSQL when DATABASE_URL_TEST is set).
from tests.storekit import BACKENDS, PG_URL, db_url, reset_postgres, settings, store  # noqa: E402,F401


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


async def make_token(on_store, with_settings, *scopes: str, name: str = "tests") -> str:  # type: ignore[no-untyped-def]
    """An API token on this store (every scope unless named): the REST API takes no anonymous calls."""
    from switchboard.panel.auth_accounts import SCOPES, AccountService
    from switchboard.store.accounts import AccountsRepo

    accounts = AccountService(AccountsRepo(on_store.sessions, on_store.dialect), with_settings)
    return (await accounts.create_token(name, list(scopes or SCOPES), created_by="tests")).token
