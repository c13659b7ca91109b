"""The dialer contract's hot paths on SQLite in one thread hop each.

aiosqlite runs SQLite in a thread of its own; through SQLAlchemy every statement costs several
hand-offs to that thread (cursor, execute, fetch, close), and on a busy machine the hand-offs, not
SQLite, are most of a next-batch or report-result request. Here the whole transaction (a few plain
SQL statements) runs as one function in that thread: the SQL is the same the Core statements
elsewhere produce, on the same connection (so it queues behind, never beside, other writers).
Timestamps are stored the way SQLAlchemy stores them on SQLite (naive UTC text).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def ts(value: datetime | None) -> str | None:
    """An aware datetime as SQLAlchemy's SQLite DATETIME text (naive UTC)."""
    return None if value is None else value.astimezone(UTC).strftime(_FORMAT)


async def run(engine: AsyncEngine, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(connection)` inside BEGIN IMMEDIATE ... COMMIT, in aiosqlite's thread, in one hop."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # aiosqlite.Connection
        return await driver._execute(_transaction, driver._conn, fn)  # noqa: SLF001 - see module docstring


def _transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    if db.in_transaction:  # never mix with a transaction SQLAlchemy left open on this connection
        db.rollback()
    db.execute("BEGIN IMMEDIATE")
    try:
        out = fn(db)
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return out


def marks(n: int) -> str:
    return ",".join("?" * n)


LEASE = """
UPDATE contacts SET status = 'leased', lease_owner = ?, leased_until = ?, updated_at = ?
WHERE id IN (
  SELECT id FROM contacts
  WHERE company = ? AND status = 'pending' AND next_attempt_at <= ?
    AND NOT EXISTS (SELECT 1 FROM do_not_call WHERE do_not_call.phone_e164 = contacts.phone_e164)
    AND (campaign_id IS NULL OR campaign_id IN (SELECT id FROM campaigns WHERE active))
  ORDER BY next_attempt_at, id LIMIT ?)
RETURNING id, phone_e164, next_attempt_at
"""
RECLAIM = """
UPDATE contacts SET status = 'pending', lease_owner = NULL, leased_until = NULL, next_attempt_at = ?
WHERE company = ? AND status = 'leased' AND leased_until < ?
"""
INSERT_BATCH = """
INSERT INTO batches (company, size, leased_by, created_at) VALUES (?, ?, ?, ?) RETURNING id
"""
INSERT_RECEIPT = ("INSERT INTO panel_receipts (idempotency_key, contact_id, status, received_at, body_hash) "
                  "VALUES (?, ?, ?, ?, ?)")
UPDATE_CONTACT = """
UPDATE contacts SET attempts = ?, last_result = ?, last_reason = ?, last_attempt_at = ?, status = ?,
  next_attempt_at = ?, updated_at = ?, lease_owner = NULL, leased_until = NULL
WHERE id = ?
"""
