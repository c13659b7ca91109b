from sqlalchemy import inspect, text

from switchboard.store import open_store
from switchboard.store.db import downgrade, migrate

TABLES = {
    "contacts",
    "campaigns",
    "batches",
    "outbound_lines",
    "operators",
    "scenarios",
    "calls",
    "call_events",
    "results_outbox",
    "panel_receipts",
    "do_not_call",
    "alerts",
    "kv",
    "callbacks",
    "tickets",
    "alembic_version",
}


async def _tables(store) -> set[str]:  # type: ignore[no-untyped-def]
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_fresh_database_is_migrated_to_head(store):
    assert TABLES <= await _tables(store)
    async with store.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    from alembic.script import ScriptDirectory

    from switchboard.store.db import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_migrations_match_the_models(store):
    """Alembic's autogenerate finds nothing to add: the migrations build exactly the models' schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from switchboard.store.models import Base

    def diff(conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return compare_metadata(ctx, Base.metadata)

    async with store.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], changes


async def test_migrations_are_idempotent_and_reversible(store, settings, db_url):
    await store.contacts.add(
        __import__("switchboard.store", fromlist=["NewContact"]).NewContact(
            "09121234567", "+989121234567", "9121234567"
        )
    )
    # Running start-up migrations again changes nothing and keeps data.
    again = await open_store(settings, url=db_url)
    assert (await again.contacts.list()).total == 1
    await again.close()
    await downgrade(store.engine, "base")
    assert await _tables(store) <= {"alembic_version"}
    await migrate(store.engine)
    assert TABLES <= await _tables(store)


async def test_default_url_creates_sqlite_file(tmp_path):
    from switchboard.settings import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path / "nested" / "data")
    st = await open_store(settings)
    try:
        assert st.dialect == "sqlite"
        assert (tmp_path / "nested" / "data" / "switchboard.db").exists()
    finally:
        await st.close()
