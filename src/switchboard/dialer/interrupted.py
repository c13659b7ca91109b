"""Calls cut off by a crash: a dialer process that died mid-call left call rows with no end (they are
written before dialing). At start-up those of dead processes are finished as `failed:interrupted`
and reported like any result (the contact's attempt counts; `failed:*` is retried), so the panel
never waits forever for them.

A row belongs to the process named in its `attributes["node"]` (`host-pid`). On this host a row is
recovered when that pid no longer runs; a row of another host (or of an older version, without a
node) only once it is older than any call can last (`MAX_CALL`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from switchboard import clock
from switchboard.engine import results
from switchboard.panel.contract import ReportResultRequest
from switchboard.process import gone
from switchboard.store import CallData

log = logging.getLogger(__name__)

INTERRUPTED = results.failed("interrupted")
MAX_CALL = timedelta(hours=4)


def _dead(node: object, started: Any, now: Any) -> bool:
    state = gone(node) if isinstance(node, str) else None
    if state is not None:
        return state
    return started is None or now - started > MAX_CALL


async def report_interrupted(store: Any, outbox: Any, company: str) -> int:
    """Finish and report the calls dead processes left behind; returns how many."""
    now = clock.now()
    done = 0
    for row in await store.calls.unfinished(company=company):
        if not _dead((row.attributes or {}).get("node"), row.originated_at, now):
            continue
        reason = "the Switchboard process stopped during this call"
        data = CallData(id=row.id, direction=row.direction, phone=row.phone, company=row.company,
                        phone_e164=row.phone_e164, scenario=row.scenario, number_id=row.number_id,
                        line=row.line, ended_at=now, result=INTERRUPTED, reason=reason)
        report = ReportResultRequest(company=row.company, number_id=row.number_id, phone_number=row.phone,
                                     status=INTERRUPTED, reason=reason, attempted_at=row.originated_at or now,
                                     scenario_id=row.scenario, outbound_line_id=row.line_id)
        await outbox.submit(data, report)
        done += 1
    if done:
        log.warning("%d call(s) cut off by a stopped process reported as %s", done, INTERRUPTED)
    return done
