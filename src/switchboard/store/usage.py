"""Read-only queries for the console and the usage API: filtered call listings (streamed for
exports), per-line counts for the live page, and the usage report (per scenario, persona, line or
day: answer rate, intent mix, conversion to operator, handle time, abandon rate, STT/LLM failure
rate, talk minutes, LLM tokens).

Reports aggregate in SQL, one pass over the calls table per report, so they stay fast on a large
store; day buckets use the panel's UTC offset.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Float, Index, and_, case, cast, func, literal, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from switchboard.store.base import Page, Repository
from switchboard.store.models import Batch, CallRecord, Contact

# The console lists calls newest first; this index keeps that a range scan (created by the
# console_accounts migration).
Index("ix_calls_company_created", CallRecord.company, CallRecord.created_at)

COUNT_CAP = 5_000  # listings count matches up to here ("5000+"): an exact count scans every row
OPTIONS_TTL = 60.0  # seconds filter options (distinct values) are reused
GroupBy = Literal["scenario", "persona", "line", "day"]
_options_cache: dict[tuple[int, str, str], tuple[float, list[str]]] = {}
GROUPS: tuple[GroupBy, ...] = ("scenario", "persona", "line", "day")
# Records of numbers that were never dialed (refused by compliance, invalid numbers).
NOT_DIALED = ("failed:do_not_call", "failed:compliance", "failed:invalid_number")


@dataclass(frozen=True, slots=True)
class CallFilter:
    company: str
    since: datetime | None = None
    until: datetime | None = None
    scenario: str | None = None
    result: str | None = None
    line: str | None = None
    operator: str | None = None
    intent: str | None = None
    persona: str | None = None
    direction: str | None = None
    phone_e164: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        c = CallRecord
        conds: list[ColumnElement[bool]] = [c.company == self.company]
        if self.since is not None:
            conds.append(c.created_at >= self.since)
        if self.until is not None:
            conds.append(c.created_at < self.until)
        if self.scenario:
            conds.append(c.scenario == self.scenario)
        if self.result:
            conds.append(c.result.startswith("failed:") if self.result == "failed" else c.result == self.result)
        if self.line:
            conds.append(c.line == self.line)
        if self.operator:
            conds.append(c.operator == self.operator)
        if self.intent:
            conds.append(c.intent == self.intent)
        if self.persona:
            conds.append(persona_expr() == self.persona)
        if self.direction:
            conds.append(c.direction == self.direction)
        if self.phone_e164:
            conds.append(c.phone_e164 == self.phone_e164)
        return conds


def persona_expr() -> ColumnElement[Any]:
    return CallRecord.attributes["persona"].as_string()


def _seconds(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def day_expr(dialect: str, offset_minutes: int) -> ColumnElement[Any]:
    """The local calendar day (YYYY-MM-DD) of a call's creation, at a fixed UTC offset."""
    if dialect == "postgresql":
        shifted = func.timezone("UTC", CallRecord.created_at) + func.make_interval(0, 0, 0, 0, 0, offset_minutes)
        return func.to_char(shifted, "YYYY-MM-DD")
    return func.date(CallRecord.created_at, f"{offset_minutes:+d} minutes")


@dataclass
class UsageRow:
    key: str
    calls: int = 0  # records, including numbers refused before dialing
    dialed: int = 0
    answered: int = 0
    to_operator: int = 0
    abandoned: int = 0  # hung up after asking for an operator, before one answered
    operator_requests: int = 0
    stt_failures: int = 0
    llm_failures: int = 0
    talk_seconds: float = 0.0
    llm_tokens: int = 0
    intents: dict[str, int] = field(default_factory=dict)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.dialed if self.dialed else None

    @property
    def conversion(self) -> float | None:
        return self.to_operator / self.answered if self.answered else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.operator_requests if self.operator_requests else None

    @property
    def aht(self) -> float | None:
        return self.talk_seconds / self.answered if self.answered else None

    @property
    def stt_failure_rate(self) -> float | None:
        return self.stt_failures / self.answered if self.answered else None

    @property
    def llm_failure_rate(self) -> float | None:
        return self.llm_failures / self.answered if self.answered else None

    @property
    def talk_minutes(self) -> float:
        return round(self.talk_seconds / 60.0, 1)

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {"key": self.key, "calls": self.calls, "dialed": self.dialed, "answered": self.answered,
                "answer_rate": r(self.answer_rate), "to_operator": self.to_operator,
                "conversion_to_operator": r(self.conversion), "abandoned": self.abandoned,
                "abandon_rate": r(self.abandon_rate), "average_handle_seconds": r(self.aht),
                "stt_failures": self.stt_failures, "stt_failure_rate": r(self.stt_failure_rate),
                "llm_failures": self.llm_failures, "llm_failure_rate": r(self.llm_failure_rate),
                "talk_minutes": self.talk_minutes, "llm_tokens": self.llm_tokens, "intents": dict(self.intents)}


def _add(row: UsageRow, intent: str | None, calls: Any, dial: Any, ans: Any, op: Any, ab: Any, opreq: Any,
         stt: Any, llm: Any, secs: Any, tok: Any) -> None:
    row.calls += int(calls or 0)
    row.dialed += int(dial or 0)
    row.answered += int(ans or 0)
    row.to_operator += int(op or 0)
    row.abandoned += int(ab or 0)
    row.operator_requests += int(opreq or 0)
    row.stt_failures += int(stt or 0)
    row.llm_failures += int(llm or 0)
    row.talk_seconds += float(secs or 0.0)
    row.llm_tokens += int(tok or 0)
    if intent is not None:
        row.intents[str(intent)] = row.intents.get(str(intent), 0) + int(calls or 0)


class UsageRepo(Repository):
    # --- listings -------------------------------------------------------------------------------
    async def calls(self, flt: CallFilter, *, offset: int = 0, limit: int = 50) -> Page:
        """A page, newest first; `total` is exact up to COUNT_CAP + 1 (shown as "10,000+"), so a
        listing never scans a whole large table just to count it."""
        conds = flt.conditions()
        stmt = (select(CallRecord).where(*conds).order_by(CallRecord.created_at.desc(), CallRecord.id)
                .offset(offset).limit(limit))
        cap = max(COUNT_CAP, offset + limit) + 1
        capped = select(CallRecord.id).where(*conds).limit(cap).subquery()
        async with self.sessions() as s:
            rows = list((await s.scalars(stmt)).all())
            total = await s.scalar(select(func.count()).select_from(capped)) or 0
        return Page(rows, int(total), offset, limit)

    async def iter_calls(self, flt: CallFilter, *, chunk: int = 2000, cap: int = 1_000_000) -> AsyncIterator[Any]:
        """Every matching call newest first, as light rows (the listed columns, `persona` and
        `intent_path` from the attributes, no transcripts), in keyset-paged chunks: an export never
        holds them all and each chunk is an index range."""
        c = CallRecord
        columns = (c.id, c.direction, c.scenario, persona_expr().label("persona"),
                   c.attributes["intent_path"].as_string().label("intent_path"), c.phone, c.phone_e164, c.line,
                   c.operator, c.originated_at, c.answered_at, c.ended_at, c.created_at, c.result, c.reason, c.intent,
                   c.user_message)
        conds = flt.conditions()
        last: tuple[datetime, str] | None = None
        sent = 0
        while sent < cap:
            stmt = select(*columns).where(*conds)
            if last is not None:
                stmt = stmt.where(tuple_(c.created_at, c.id) < tuple_(literal(last[0], c.created_at.type),
                                                                       literal(last[1])))
            stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(min(chunk, cap - sent))
            async with self.sessions() as s:
                rows = list((await s.execute(stmt)).all())
            for row in rows:
                yield row
            sent += len(rows)
            if len(rows) < chunk:
                return
            last = (rows[-1].created_at, rows[-1].id)

    async def distinct(self, company: str, column: str, *, limit: int = 200) -> list[str]:
        """Values to offer in a filter (scenarios, results, lines, operators, intents, personas),
        reused for OPTIONS_TTL seconds: they change rarely and each is a scan of the calls."""
        key = (id(self.sessions), company, column)
        cached = _options_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < OPTIONS_TTL:
            return cached[1]
        col = persona_expr() if column == "persona" else getattr(CallRecord, column)
        stmt = (select(col).where(CallRecord.company == company, col.is_not(None)).group_by(col)
                .order_by(col).limit(limit))
        async with self.sessions() as s:
            values = [str(v) for v in (await s.scalars(stmt)).all() if v not in (None, "")]
        _options_cache[key] = (now, values)
        return values

    async def line_counts(self, company: str, since: datetime) -> dict[str, int]:
        """Outbound calls per line since `since` (a call's row is created as it is dialed, so the
        (company, created_at) index keeps this a short range scan)."""
        stmt = (select(CallRecord.line, func.count()).where(CallRecord.company == company,
                                                           CallRecord.created_at >= since,
                                                           CallRecord.direction == "outbound",
                                                           CallRecord.line.is_not(None))
                .group_by(CallRecord.line))
        async with self.sessions() as s:
            return {str(line): int(n) for line, n in (await s.execute(stmt)).all()}

    async def contact_counts(self, company: str) -> dict[int | None, dict[str, int]]:
        """Contacts per campaign and status."""
        stmt = (select(Contact.campaign_id, Contact.status, func.count()).where(Contact.company == company)
                .group_by(Contact.campaign_id, Contact.status))
        out: dict[int | None, dict[str, int]] = {}
        async with self.sessions() as s:
            for campaign_id, status, n in (await s.execute(stmt)).all():
                out.setdefault(campaign_id, {})[str(status)] = int(n)
        return out

    async def batches(self, company: str, *, limit: int = 20) -> list[Batch]:
        stmt = select(Batch).where(Batch.company == company).order_by(Batch.id.desc()).limit(limit)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())

    async def iter_contacts(self, company: str, *, campaign_id: int | None = None, status: str | None = None,
                            chunk: int = 1000) -> AsyncIterator[Contact]:
        conds = [Contact.company == company]
        if campaign_id is not None:
            conds.append(Contact.campaign_id == campaign_id)
        if status:
            conds.append(Contact.status == status)
        last = 0
        while True:
            stmt = select(Contact).where(*conds, Contact.id > last).order_by(Contact.id).limit(chunk)
            async with self.sessions() as s:
                rows = list((await s.scalars(stmt)).all())
            for row in rows:
                yield row
            if len(rows) < chunk:
                return
            last = rows[-1].id

    # --- the usage report -----------------------------------------------------------------------
    async def summary(self, flt: CallFilter, group_by: GroupBy, *, offset_minutes: int = 0) -> list[UsageRow]:
        return (await self.report(flt, group_by, offset_minutes=offset_minutes, with_days=False))[0]

    async def report(self, flt: CallFilter, group_by: GroupBy, *, offset_minutes: int = 0, with_days: bool = True
                     ) -> tuple[list[UsageRow], list[UsageRow]]:
        """The rows per `group_by` key and, in the same pass over the calls, per day (the chart)."""
        c = CallRecord
        day = day_expr(self.dialect, offset_minutes)
        if group_by == "day":
            key = day
        elif group_by == "persona":
            key = func.coalesce(persona_expr(), literal("(no persona)"))
        elif group_by == "line":
            key = func.coalesce(c.line, literal("(not dialed)"))
        else:
            key = func.coalesce(c.scenario, literal("(none)"))
        answered = c.answered_at.is_not(None)
        dialed = and_(c.line.is_not(None), or_(c.result.is_(None), c.result.not_in(NOT_DIALED)))
        talk = _seconds(self.dialect, c.answered_at, c.ended_at)
        tokens = (func.coalesce(c.attributes[("usage", "llm_prompt_tokens")].as_integer(), 0)
                  + func.coalesce(c.attributes[("usage", "llm_completion_tokens")].as_integer(), 0))
        intent_path = c.attributes["intent_path"].as_string()
        llm_failed = or_(intent_path.in_(("error", "timeout")), c.result.startswith("failed:llm"),
                         c.result == "failed:conversation")

        def count_if(cond: ColumnElement[bool]) -> Any:
            return func.sum(case((cond, 1), else_=0))

        # One pass: grouped by (key, day, intent), folded into rows per key and per day here (the
        # groups are few: keys x days x intents).
        by_day = with_days and group_by != "day"
        stmt = (select(key.label("k"), (day if by_day else literal("")).label("d"), c.intent, func.count().label("calls"), count_if(dialed), count_if(answered),
                       count_if(c.result.in_(("connected_to_operator",))),
                       count_if(c.result == "disconnected"),
                       count_if(c.result.in_(("connected_to_operator", "disconnected"))),
                       count_if(c.result.startswith("failed:stt")), count_if(llm_failed),
                       func.sum(case((and_(answered, c.ended_at.is_not(None)), cast(talk, Float)), else_=0.0)),
                       func.sum(tokens))
                .where(*flt.conditions()).group_by(key, "d", c.intent))
        async with self.sessions() as s:
            rows = (await s.execute(stmt)).all()
        out: dict[str, UsageRow] = {}
        days: dict[str, UsageRow] = {}
        for k, d, intent, *figures in rows:
            targets = [out.setdefault(str(k), UsageRow(str(k)))]
            if by_day:
                targets.append(days.setdefault(str(d), UsageRow(str(d))))
            for row in targets:
                _add(row, intent, *figures)
        keyed = [out[k] for k in sorted(out)]
        return keyed, (keyed if group_by == "day" and with_days else [days[d] for d in sorted(days)])



def usage_totals(rows: list[UsageRow]) -> UsageRow:
    total = UsageRow("total")
    for row in rows:
        for name in ("calls", "dialed", "answered", "to_operator", "abandoned", "operator_requests", "stt_failures",
                     "llm_failures", "talk_seconds", "llm_tokens"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        for intent, n in row.intents.items():
            total.intents[intent] = total.intents.get(intent, 0) + n
    return total


def offset_minutes_at(tz: Any, at: datetime) -> int:
    delta = at.astimezone(tz).utcoffset() or timedelta(0)
    return int(delta.total_seconds() // 60)


__all__ = ["CallFilter", "GROUPS", "GroupBy", "UsageRepo", "UsageRow", "day_expr", "offset_minutes_at",
           "persona_expr", "usage_totals"]
