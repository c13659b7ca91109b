"""Campaigns, batches, outbound lines, operators and registered scenarios: the small, slowly
changing tables the dialer and the panel read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from switchboard.store.base import Page, Repository, utcnow
from switchboard.store.models import Batch, Campaign, Operator, OutboundLine, ScenarioRegistration

T = TypeVar("T")


async def _losing_race_retried(upsert: Callable[[], Awaitable[T]]) -> T:
    """Run a select-then-insert upsert; when another process inserted the same key in between
    (dialers starting together), the unique-key violation means "it exists now": try again, and
    the select finds the other's row."""
    for attempt in range(3):
        try:
            return await upsert()
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class CampaignsRepo(Repository):
    async def get_or_create(self, name: str, *, company: str = "default", **fields: Any) -> Campaign:
        async with self.sessions.begin() as s:
            row = await s.scalar(select(Campaign).where(Campaign.company == company, Campaign.name == name))
            if row is None:
                row = Campaign(company=company, name=name, **fields)
                s.add(row)
            return row

    async def get(self, campaign_id: int) -> Campaign | None:
        async with self.sessions() as s:
            return await s.get(Campaign, campaign_id)

    async def by_name(self, name: str, *, company: str = "default") -> Campaign | None:
        async with self.sessions() as s:
            return await s.scalar(select(Campaign).where(Campaign.company == company, Campaign.name == name))

    async def update(self, campaign_id: int, **fields: Any) -> Campaign | None:
        async with self.sessions.begin() as s:
            row = await s.get(Campaign, campaign_id)
            if row is None:
                return None
            for key, value in fields.items():
                setattr(row, key, value)
            return row

    async def list(self, *, company: str | None = None, offset: int = 0, limit: int = 50) -> Page:
        conds = [] if company is None else [Campaign.company == company]
        async with self.sessions() as s:
            total = await s.scalar(select(func.count()).select_from(Campaign).where(*conds))
            rows = await s.scalars(
                select(Campaign).where(*conds).order_by(Campaign.id).offset(offset).limit(limit)
            )
            return Page(list(rows.all()), int(total or 0), offset, limit)


class BatchesRepo(Repository):
    async def create(
        self,
        *,
        company: str = "default",
        size: int = 0,
        leased_by: str | None = None,
        external_id: str | None = None,
        campaign_id: int | None = None,
    ) -> Batch:
        async with self.sessions.begin() as s:
            row = Batch(
                company=company,
                size=size,
                leased_by=leased_by,
                external_id=external_id,
                campaign_id=campaign_id,
                created_at=utcnow(),
            )
            s.add(row)
        return row

    async def set_size(self, batch_id: int, size: int) -> None:
        async with self.sessions.begin() as s:
            await s.execute(update(Batch).where(Batch.id == batch_id).values(size=size))

    async def get(self, batch_id: int) -> Batch | None:
        async with self.sessions() as s:
            return await s.get(Batch, batch_id)


@dataclass(frozen=True, slots=True)
class LineSpec:
    phone_number: str
    display_name: str | None = None
    external_id: str | None = None
    max_concurrent: int | None = None
    max_per_minute: int | None = None
    max_per_day: int | None = None


class LinesRepo(Repository):
    async def upsert(self, line: LineSpec, *, company: str = "default") -> OutboundLine:
        """Insert or update; two dialers starting together race on the insert (`_losing_race_retried`)."""
        return await _losing_race_retried(lambda: self._upsert(line, company))

    async def _upsert(self, line: LineSpec, company: str) -> OutboundLine:
        async with self.sessions.begin() as s:
            row = await s.scalar(
                select(OutboundLine).where(
                    OutboundLine.company == company, OutboundLine.phone_number == line.phone_number
                )
            )
            if row is None:
                row = OutboundLine(company=company, phone_number=line.phone_number)
                s.add(row)
            for key in ("display_name", "external_id", "max_concurrent", "max_per_minute", "max_per_day"):
                value = getattr(line, key)
                if value is not None:
                    setattr(row, key, value)
            row.active = True
            return row

    async def upsert_many(self, lines: Sequence[LineSpec], *, company: str = "default") -> list[OutboundLine]:
        return [await self.upsert(line, company=company) for line in lines]

    async def set_active(self, line_id: int, active: bool, *, company: str | None = None) -> bool:
        """False when there is no such line (of that company)."""
        stmt = update(OutboundLine).where(OutboundLine.id == line_id)
        if company is not None:
            stmt = stmt.where(OutboundLine.company == company)
        async with self.sessions.begin() as s:
            return bool((await s.execute(stmt.values(active=active))).rowcount)

    async def list(self, *, company: str | None = None, active_only: bool = True) -> list[OutboundLine]:
        stmt = select(OutboundLine).order_by(OutboundLine.id)
        if company is not None:
            stmt = stmt.where(OutboundLine.company == company)
        if active_only:
            stmt = stmt.where(OutboundLine.active)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    direction: str  # inbound | outbound
    phone_number: str
    name: str | None = None
    scenario: str | None = None  # None = every scenario
    external_id: str | None = None


class OperatorsRepo(Repository):
    async def upsert(self, op: OperatorSpec, *, company: str = "default") -> Operator:
        if op.direction not in ("inbound", "outbound"):
            raise ValueError(f"operator direction must be inbound or outbound, got {op.direction!r}")
        scen = Operator.scenario.is_(None) if op.scenario is None else Operator.scenario == op.scenario
        async with self.sessions.begin() as s:
            row = await s.scalar(
                select(Operator).where(
                    Operator.company == company,
                    Operator.direction == op.direction,
                    Operator.phone_number == op.phone_number,
                    scen,
                )
            )
            if row is None:
                row = Operator(
                    company=company,
                    direction=op.direction,
                    phone_number=op.phone_number,
                    scenario=op.scenario,
                )
                s.add(row)
            if op.name is not None:
                row.name = op.name
            if op.external_id is not None:
                row.external_id = op.external_id
            row.active = True
            return row

    async def set_active(self, operator_id: int, active: bool, *, company: str | None = None) -> bool:
        """False when there is no such operator (of that company)."""
        stmt = update(Operator).where(Operator.id == operator_id)
        if company is not None:
            stmt = stmt.where(Operator.company == company)
        async with self.sessions.begin() as s:
            return bool((await s.execute(stmt.values(active=active))).rowcount)

    async def list(
        self,
        *,
        company: str | None = None,
        direction: str | None = None,
        scenario: str | None = None,
        active_only: bool = True,
    ) -> list[Operator]:
        """Operators for a direction; with `scenario`, those of that scenario plus the general ones."""
        stmt = select(Operator).order_by(Operator.id)
        if company is not None:
            stmt = stmt.where(Operator.company == company)
        if direction is not None:
            stmt = stmt.where(Operator.direction == direction)
        if scenario is not None:
            stmt = stmt.where((Operator.scenario == scenario) | Operator.scenario.is_(None))
        if active_only:
            stmt = stmt.where(Operator.active)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())


class ScenariosRepo(Repository):
    async def register(self, scenarios: Sequence[tuple[str, str | None]], *, company: str = "default") -> int:
        """Upsert (name, display_name) pairs; returns how many were new. Dialers starting together
        register the same names at once: the one that loses the insert race tries again and finds
        the other's rows (a unique-key violation is not a failed start)."""
        return await _losing_race_retried(lambda: self._register(scenarios, company))

    async def _register(self, scenarios: Sequence[tuple[str, str | None]], company: str) -> int:
        new = 0
        async with self.sessions.begin() as s:
            for name, display in scenarios:
                row = await s.scalar(
                    select(ScenarioRegistration).where(
                        ScenarioRegistration.company == company, ScenarioRegistration.name == name
                    )
                )
                if row is None:
                    s.add(
                        ScenarioRegistration(
                            company=company, name=name, display_name=display, registered_at=utcnow()
                        )
                    )
                    new += 1
                else:
                    row.display_name = display or row.display_name
                    row.registered_at = utcnow()
        return new

    async def set_active(self, name: str, active: bool, *, company: str = "default") -> bool:
        stmt = (
            update(ScenarioRegistration)
            .where(ScenarioRegistration.company == company, ScenarioRegistration.name == name)
            .values(active=active)
        )
        async with self.sessions.begin() as s:
            return bool((await s.execute(stmt)).rowcount)

    async def list(
        self, *, company: str | None = None, active_only: bool = False
    ) -> list[ScenarioRegistration]:
        stmt = select(ScenarioRegistration).order_by(ScenarioRegistration.id)
        if company is not None:
            stmt = stmt.where(ScenarioRegistration.company == company)
        if active_only:
            stmt = stmt.where(ScenarioRegistration.active)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())
