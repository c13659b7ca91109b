"""HTTP API of the brain: sales strategies, call feedback and improvement proposals.

`build_router` returns a FastAPI `APIRouter`; the composition root mounts it (with its auth
dependencies) on the panel app. Strategy posts are validated, versioned and applied to the live
strategies the conversation service uses; proposals change a live prompt only through `approve`.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from switchboard.brain.memory import ImprovementJob, ProposalError
from switchboard.brain.repository import BrainRepository, Feedback
from switchboard.brain.strategies import Strategy


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: int | None = Field(None, ge=1, le=5)
    comment: str = Field("", max_length=4000)
    outcome_correct: bool | None = Field(None, strict=True)  # true/false: `0` is not a boolean
    tags: list[str] = Field(default_factory=list, max_length=20)
    author: str = Field("", max_length=200)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field("admin", min_length=1, max_length=200)
    note: str = Field("", max_length=2000)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_kind: Literal["persona", "strategy"] | None = None
    target: str | None = None
    language: str | None = "en"


def build_router(repo: BrainRepository, *, strategies: MutableMapping[str, Strategy] | None = None,
                 improvements: ImprovementJob | None = None,
                 dependencies: Sequence[Any] | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["brain"], dependencies=list(dependencies or []))

    @router.post("/strategies", status_code=status.HTTP_201_CREATED)
    async def create_strategy(strategy: Strategy) -> dict[str, Any]:
        stored = await repo.save_strategy(strategy)
        if strategies is not None:
            strategies[stored.id] = stored.strategy
        return stored.as_dict()

    @router.post("/agent/sales/ingest_strategy", status_code=status.HTTP_201_CREATED)
    async def ingest_strategy(strategy: Strategy) -> dict[str, Any]:
        """A sales strategy as a business writes it (persona with a free-text tone_override,
        "confidence_below_0.5" triggers, subagents from the allow-list): validated, versioned and
        applied to the live sales persona at once. Answers what was applied."""
        stored = await repo.save_strategy(strategy)
        if strategies is not None:
            strategies[stored.id] = stored.strategy
        applied = {"tone": strategy.persona.override or strategy.persona.tone,
                   "tone_overridden": bool(strategy.persona.override),
                   "voice_settings": strategy.voice_settings(),
                   "fallback_policies": [p.model_dump() for p in strategy.fallback_policies],
                   "subagents": [s.name for s in strategy.subagents]}
        return {**stored.as_dict(), "applied": applied}

    @router.get("/strategies")
    async def list_strategies() -> list[dict[str, Any]]:
        return [s.as_dict() for s in await repo.list_strategies()]

    @router.get("/strategies/{strategy_id}")
    async def get_strategy(strategy_id: str, version: int | None = Query(None, ge=1)) -> dict[str, Any]:
        stored = await repo.get_strategy(strategy_id, version)
        if stored is None:
            raise HTTPException(404, f"no strategy {strategy_id!r}" + (f" version {version}" if version else ""))
        return stored.as_dict()

    @router.get("/strategies/{strategy_id}/versions")
    async def strategy_versions(strategy_id: str) -> list[dict[str, Any]]:
        versions = await repo.strategy_versions(strategy_id)
        if not versions:
            raise HTTPException(404, f"no strategy {strategy_id!r}")
        return [v.as_dict() for v in versions]

    @router.post("/calls/{call_id}/feedback", status_code=status.HTTP_201_CREATED)
    async def add_feedback(call_id: str, body: FeedbackIn) -> dict[str, Any]:
        feedback = await repo.add_feedback(Feedback(call_id=call_id, **body.model_dump()))
        return asdict(feedback)

    @router.get("/calls/{call_id}/feedback")
    async def list_feedback(call_id: str) -> list[dict[str, Any]]:
        return [asdict(f) for f in await repo.list_feedback(call_id)]

    @router.get("/improvements")
    async def list_proposals(status_: Literal["pending", "approved", "rejected"] | None =
                             Query(None, alias="status")) -> list[dict[str, Any]]:
        return [asdict(p) for p in await repo.list_proposals(status_)]

    @router.get("/improvements/{proposal_id}")
    async def get_proposal(proposal_id: str) -> dict[str, Any]:
        proposal = await repo.get_proposal(proposal_id)
        if proposal is None:
            raise HTTPException(404, f"no proposal {proposal_id!r}")
        return asdict(proposal)

    def job() -> ImprovementJob:
        if improvements is None:
            raise HTTPException(503, "the improvement job is not configured")
        return improvements

    async def decide(proposal_id: str, body: DecisionIn, approve: bool) -> dict[str, Any]:
        try:
            if approve:
                proposal = await job().approve(proposal_id, by=body.by, note=body.note)
            else:
                proposal = await job().reject(proposal_id, by=body.by, note=body.note)
        except KeyError:
            raise HTTPException(404, f"no proposal {proposal_id!r}") from None
        except ProposalError as exc:
            raise HTTPException(409, str(exc)) from None
        return asdict(proposal)

    @router.post("/improvements/{proposal_id}/approve")
    async def approve(proposal_id: str, body: DecisionIn) -> dict[str, Any]:
        return await decide(proposal_id, body, True)

    @router.post("/improvements/{proposal_id}/reject")
    async def reject(proposal_id: str, body: DecisionIn) -> dict[str, Any]:
        return await decide(proposal_id, body, False)

    @router.post("/improvements/run")
    async def run(body: RunIn) -> list[dict[str, Any]]:
        """Draft proposals now (the daily job does the same)."""
        if body.target_kind and body.target:
            try:
                made = await job().propose(body.target_kind, body.target, language=body.language)
            except KeyError:
                raise HTTPException(404, f"no {body.target_kind} {body.target!r}") from None
            return [asdict(made)] if made else []
        return [asdict(p) for p in await job().run_daily()]

    return router


__all__ = ["DecisionIn", "FeedbackIn", "build_router"]
