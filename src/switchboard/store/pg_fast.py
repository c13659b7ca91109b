"""The next-batch lease on PostgreSQL as ONE statement over the raw asyncpg connection (one round
trip, atomic on its own: pick with FOR UPDATE SKIP LOCKED, lease, record the batch). The same rules
as `ContactsRepo._due`; other processes leasing at the same time skip each other's rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

LEASE = """
WITH picked AS (
  SELECT id FROM contacts
  WHERE company = $1 AND status = 'pending' AND next_attempt_at <= $2
    AND NOT EXISTS (SELECT 1 FROM do_not_call WHERE do_not_call.phone_e164 = contacts.phone_e164)
    AND (campaign_id IS NULL OR campaign_id IN (SELECT id FROM campaigns WHERE active))
  ORDER BY next_attempt_at, id LIMIT $3
  FOR UPDATE SKIP LOCKED
), leased AS (
  UPDATE contacts SET status = 'leased', lease_owner = $4, leased_until = $5, updated_at = $2
  FROM picked WHERE contacts.id = picked.id
  RETURNING contacts.id, contacts.phone_e164, contacts.next_attempt_at
), batch AS (
  INSERT INTO batches (company, size, leased_by, created_at)
  SELECT $1, count(*), $4, $2 FROM leased HAVING count(*) > 0
  RETURNING id
)
SELECT leased.id, leased.phone_e164, leased.next_attempt_at, (SELECT id FROM batch) AS batch_id
FROM leased ORDER BY leased.next_attempt_at, leased.id
"""


async def lease(engine: AsyncEngine, *, company: str, now: datetime, until: datetime, owner: str,
                limit: int) -> tuple[int | None, list[tuple[int, str]]]:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg.Connection, outside any SQLAlchemy transaction
        rows = await driver.fetch(LEASE, company, now, limit, owner, until)
    if not rows:
        return None, []
    return rows[0]["batch_id"], [(r["id"], r["phone_e164"]) for r in rows]
