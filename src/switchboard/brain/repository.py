"""Where the brain keeps what must outlive a call: strategy versions, feedback, conversation records,
summaries, improvement proposals and approved persona versions.

`BrainRepository` is the protocol the API and the memory jobs use; `JsonBrainRepository` keeps it in
memory and, given a path, in one JSON file (written atomically after every change). The SQL store
can implement the same protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from switchboard import clock
from switchboard.brain.strategies import Strategy

ProposalStatus = Literal["pending", "approved", "rejected"]


def _now() -> str:
    return clock.now().isoformat()


@dataclass
class StoredStrategy:
    id: str
    version: int
    strategy: Strategy
    created_at: str = field(default_factory=_now)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "created_at": self.created_at,
                "title": self.strategy.title, "strategy": self.strategy.model_dump()}


@dataclass
class Feedback:
    call_id: str
    rating: int | None = None
    comment: str = ""
    outcome_correct: bool | None = None
    tags: list[str] = field(default_factory=list)
    author: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = field(default_factory=_now)


@dataclass
class ConversationRecord:
    call_id: str
    persona: str
    status: str
    result: str | None
    objections: list[str] = field(default_factory=list)
    personas: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, Any]] = field(default_factory=list)
    strategy: str | None = None
    created_at: str = field(default_factory=_now)


@dataclass
class Summary:
    calls: int
    text: str
    stats: dict[str, Any] = field(default_factory=dict)
    by_model: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = field(default_factory=_now)


@dataclass
class Proposal:
    target_kind: Literal["persona", "strategy"]
    target: str
    base_version: str
    current_text: str
    proposed_text: str
    diff: str
    rationale: str = ""
    language: str | None = None
    status: ProposalStatus = "pending"
    decided_by: str = ""
    note: str = ""
    decided_at: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = field(default_factory=_now)


class BrainRepository(Protocol):
    async def save_strategy(self, strategy: Strategy) -> StoredStrategy: ...
    async def get_strategy(self, strategy_id: str, version: int | None = None) -> StoredStrategy | None: ...
    async def list_strategies(self) -> list[StoredStrategy]: ...
    async def strategy_versions(self, strategy_id: str) -> list[StoredStrategy]: ...
    async def add_feedback(self, feedback: Feedback) -> Feedback: ...
    async def list_feedback(self, call_id: str | None = None) -> list[Feedback]: ...
    async def add_conversation(self, record: ConversationRecord) -> None: ...
    async def list_conversations(self, offset: int = 0) -> list[ConversationRecord]: ...
    async def count_conversations(self) -> int: ...
    async def add_summary(self, summary: Summary) -> Summary: ...
    async def list_summaries(self, limit: int = 10) -> list[Summary]: ...
    async def add_proposal(self, proposal: Proposal) -> Proposal: ...
    async def get_proposal(self, proposal_id: str) -> Proposal | None: ...
    async def list_proposals(self, status: ProposalStatus | None = None) -> list[Proposal]: ...
    async def update_proposal(self, proposal: Proposal) -> None: ...
    async def save_persona_version(self, name: str, data: dict[str, Any]) -> None: ...
    async def persona_versions(self) -> dict[str, dict[str, Any]]: ...


class JsonBrainRepository:
    """In memory; persisted to `path` (one JSON document) when a path is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = asyncio.Lock()
        self.strategies: dict[str, list[StoredStrategy]] = {}
        self.feedback: list[Feedback] = []
        self.conversations: list[ConversationRecord] = []
        self.summaries: list[Summary] = []
        self.proposals: dict[str, Proposal] = {}
        self.personas: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            self._load(json.loads(self.path.read_text(encoding="utf-8")))

    # --- persistence ----------------------------------------------------------------------------
    def _load(self, data: dict[str, Any]) -> None:
        for sid, versions in data.get("strategies", {}).items():
            self.strategies[sid] = [StoredStrategy(v["id"], v["version"], Strategy.model_validate(v["strategy"]),
                                                   v["created_at"]) for v in versions]
        self.feedback = [Feedback(**f) for f in data.get("feedback", [])]
        self.conversations = [ConversationRecord(**c) for c in data.get("conversations", [])]
        self.summaries = [Summary(**s) for s in data.get("summaries", [])]
        self.proposals = {p["id"]: Proposal(**p) for p in data.get("proposals", [])}
        self.personas = dict(data.get("personas", {}))

    def _dump(self) -> dict[str, Any]:
        return {
            "strategies": {sid: [{"id": v.id, "version": v.version, "created_at": v.created_at,
                                  "strategy": v.strategy.model_dump()} for v in versions]
                           for sid, versions in self.strategies.items()},
            "feedback": [asdict(f) for f in self.feedback],
            "conversations": [asdict(c) for c in self.conversations],
            "summaries": [asdict(s) for s in self.summaries],
            "proposals": [asdict(p) for p in self.proposals.values()],
            "personas": self.personas,
        }

    async def _save(self) -> None:
        if self.path is None:
            return
        text = json.dumps(self._dump(), ensure_ascii=False, indent=1, default=str)
        path = self.path

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    # --- strategies -----------------------------------------------------------------------------
    async def save_strategy(self, strategy: Strategy) -> StoredStrategy:
        async with self._lock:
            versions = self.strategies.setdefault(strategy.slug, [])
            stored = StoredStrategy(strategy.slug, len(versions) + 1, strategy)
            versions.append(stored)
            await self._save()
            return stored

    async def get_strategy(self, strategy_id: str, version: int | None = None) -> StoredStrategy | None:
        versions = self.strategies.get(strategy_id) or []
        if not versions:
            return None
        if version is None:
            return versions[-1]
        return next((v for v in versions if v.version == version), None)

    async def list_strategies(self) -> list[StoredStrategy]:
        return [versions[-1] for _, versions in sorted(self.strategies.items()) if versions]

    async def strategy_versions(self, strategy_id: str) -> list[StoredStrategy]:
        return list(self.strategies.get(strategy_id, []))

    # --- feedback, conversations, summaries ------------------------------------------------------
    async def add_feedback(self, feedback: Feedback) -> Feedback:
        async with self._lock:
            self.feedback.append(feedback)
            await self._save()
            return feedback

    async def list_feedback(self, call_id: str | None = None) -> list[Feedback]:
        return [f for f in self.feedback if call_id is None or f.call_id == call_id]

    async def add_conversation(self, record: ConversationRecord) -> None:
        async with self._lock:
            self.conversations.append(record)
            await self._save()

    async def list_conversations(self, offset: int = 0) -> list[ConversationRecord]:
        return self.conversations[offset:]

    async def count_conversations(self) -> int:
        return len(self.conversations)

    async def add_summary(self, summary: Summary) -> Summary:
        async with self._lock:
            self.summaries.append(summary)
            await self._save()
            return summary

    async def list_summaries(self, limit: int = 10) -> list[Summary]:
        return self.summaries[-limit:]

    # --- proposals and persona versions ----------------------------------------------------------
    async def add_proposal(self, proposal: Proposal) -> Proposal:
        async with self._lock:
            self.proposals[proposal.id] = proposal
            await self._save()
            return proposal

    async def get_proposal(self, proposal_id: str) -> Proposal | None:
        return self.proposals.get(proposal_id)

    async def list_proposals(self, status: ProposalStatus | None = None) -> list[Proposal]:
        return [p for p in self.proposals.values() if status is None or p.status == status]

    async def update_proposal(self, proposal: Proposal) -> None:
        async with self._lock:
            self.proposals[proposal.id] = proposal
            await self._save()

    async def save_persona_version(self, name: str, data: dict[str, Any]) -> None:
        async with self._lock:
            self.personas[name] = data
            await self._save()

    async def persona_versions(self) -> dict[str, dict[str, Any]]:
        return dict(self.personas)


__all__ = ["BrainRepository", "ConversationRecord", "Feedback", "JsonBrainRepository", "Proposal",
           "ProposalStatus", "StoredStrategy", "Summary"]
