"""Operator rosters per scenario and who is busy. An operator is busy from the moment we ring them
until the call they took ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AgentType = Literal["inbound", "outbound"]


@dataclass(slots=True)
class Operator:
    number: str
    id: str | None = None


@dataclass
class OperatorPool:
    """In-process busy state. A Redis-backed pool with the same methods shares it across nodes."""

    default_inbound: list[Operator] = field(default_factory=list)
    default_outbound: list[Operator] = field(default_factory=list)
    _rosters: dict[tuple[str, str], list[Operator]] = field(default_factory=dict)
    _busy: set[str] = field(default_factory=set)
    _cursor: dict[tuple[str, str], int] = field(default_factory=dict)

    def set_roster(self, scenario: str | None, agent_type: AgentType, operators: list[Operator]) -> None:
        """`scenario=None` sets the default roster used by scenarios without their own."""
        if scenario is None:
            if agent_type == "inbound":
                self.default_inbound = list(operators)
            else:
                self.default_outbound = list(operators)
        else:
            self._rosters[(scenario, agent_type)] = list(operators)

    def roster(self, scenario: str, agent_type: AgentType) -> list[Operator]:
        own = self._rosters.get((scenario, agent_type))
        if own:
            return own
        return self.default_inbound if agent_type == "inbound" else self.default_outbound

    async def acquire(self, scenario: str, agent_type: AgentType,
                      exclude: set[str] | None = None) -> Operator | None:
        """A free operator (round-robin over the roster), marked busy; None when all are busy."""
        roster = self.roster(scenario, agent_type)
        if not roster:
            return None
        key = (scenario, agent_type)
        start = self._cursor.get(key, 0)
        for i in range(len(roster)):
            op = roster[(start + i) % len(roster)]
            if op.number in self._busy or (exclude and op.number in exclude):
                continue
            self._busy.add(op.number)
            self._cursor[key] = (start + i + 1) % len(roster)
            return op
        return None

    async def release(self, number: str) -> None:
        self._busy.discard(number)

    def is_busy(self, number: str) -> bool:
        return number in self._busy
