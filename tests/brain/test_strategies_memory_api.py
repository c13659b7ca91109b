from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI

from switchboard.brain.api import build_router
from switchboard.brain.converse import ConversationService
from switchboard.brain.memory import BrainMemory, ImprovementJob, ProposalError
from switchboard.brain.personas import PersonaError, PersonaRegistry, load_persona
from switchboard.brain.repository import JsonBrainRepository
from switchboard.brain.services import apply_approved_versions, build_brain
from switchboard.brain.strategies import Strategy, StrategyError, load_strategies, load_strategy
from switchboard.settings import Settings

from .calls import ScriptedCall
from .fake_llm import Reply
from .test_converse import STRATEGY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def personas() -> PersonaRegistry:
    return PersonaRegistry.load_dir(ROOT / "personas")


# --- personas & strategies -----------------------------------------------------------------------
def test_shipped_personas_have_arabic_and_english(personas):
    for name in ("reception", "sales", "complaints"):
        p = personas.get(name)
        assert {"en", "ar"} <= set(p.system_prompt) and p.greeting["ar"] and p.greeting["en"]
        assert set(p.handoff_targets) <= set(personas.names())
        assert "end_call" in p.tools
    assert "create_ticket" in personas.get("complaints").tools


def test_persona_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("persona: {name: x, department: d, languages: [en, ar], system_prompt: {en: hi}, greeting: {}}")
    with pytest.raises(PersonaError, match="system_prompt has no text for languages \\['ar'\\]"):
        load_persona(bad)
    bad.write_text("persona: {name: x, department: d, languages: [en], system_prompt: {en: hi}, greeting: {}, "
                   "handoff_targets: [ghost]}")
    with pytest.raises(PersonaError, match="unknown handoff targets"):
        PersonaRegistry.load_dir(tmp_path)


def test_example_strategy_loads_and_applies_to_sales(personas):
    strategies = load_strategies(ROOT / "strategies")
    s = strategies["spring-promo"]
    applied = s.apply(personas.get("sales"))
    prompt = applied.prompt("en")
    assert prompt.startswith(personas.get("sales").prompt("en").rstrip())
    assert "Sales strategy: Spring promo." in prompt and "20 percent off" in prompt
    assert "assumptive close" in prompt and "expensive / too much" in prompt
    assert applied.greeting["en"].startswith("Hi, this is Omid from sales. We have a spring offer")
    # the upbeat tone makes the voice livelier (lower ElevenLabs stability than the 0.5 default)
    assert applied.voice["en"] == "en-us-omid?stability=0.3&similarity_boost=0.7" and "upbeat" in applied.tone
    assert s.policy_for("low_confidence", 0.3).action == "ask_to_repeat"
    assert s.policy_for("low_confidence", 0.6) is None
    assert s.policy_for("no_match", 3).action == "transfer_to_operator"
    override = Strategy.model_validate({**STRATEGY, "persona": {**STRATEGY["persona"], "tone_override": True}})
    assert override.apply(personas.get("sales")).tone == "upbeat"
    assert "Use ONLY this tone, whatever your usual one: upbeat." in override.prompt_section()


def test_strategy_validation(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text(yaml.safe_dump({"strategy": {**STRATEGY, "fallback_policies": [
        {"trigger": "low_confidence", "threshold": 3, "action": "ask_to_repeat"}]}}))
    with pytest.raises(StrategyError, match="between 0 and 1"):
        load_strategy(bad)
    bad.write_text(yaml.safe_dump({"strategy": {**STRATEGY, "fallback_policies": [
        {"trigger": "moon_phase", "threshold": 1, "action": "x"}]}}))
    with pytest.raises(StrategyError, match="fallback_policies.0.trigger"):
        load_strategy(bad)


async def test_no_match_policy_transfers(personas):
    strategy = Strategy.model_validate({**STRATEGY, "fallback_policies": [
        {"trigger": "no_match", "threshold": 2, "action": "transfer_to_operator"}]})
    out = await ConversationService(personas).run(ScriptedCall(["blah", "blah blah", "more"]), persona="sales",
                                                   language="en", strategy=strategy)
    assert out.status == "operator" and len([t for t in out.turns if t.speaker == "caller"]) == 2


async def test_silence_policy_ends_call(personas):
    strategy = Strategy.model_validate({**STRATEGY, "fallback_policies": [
        {"trigger": "silence", "threshold": 1, "action": "end_call"}]})
    out = await ConversationService(personas).run(ScriptedCall([None]), persona="sales", language="en",
                                                   strategy=strategy)
    assert (out.status, out.result) == ("ended", "fallback")


# --- memory & improvements -------------------------------------------------------------------------
async def _conversations(personas, memory, n):
    svc = ConversationService(personas)
    summaries = []
    for i in range(n):
        lines = ["how much does it cost", "that's too expensive", "bye"] if i % 2 else ["hmm", "bye"]
        out = await svc.run(ScriptedCall(lines, call_id=f"c{i}"), persona="sales", language="en")
        summaries.append(await memory.record(f"c{i}", out))
    return summaries


async def test_memory_summarises_every_n_calls_without_model(personas, tmp_path):
    repo = JsonBrainRepository(tmp_path / "brain.json")
    memory = BrainMemory(repo, None, every_n=3)
    summaries = await _conversations(personas, memory, 6)
    assert [s is not None for s in summaries] == [False, False, True, False, False, True]
    first = summaries[2]
    assert first.calls == 3 and first.stats["objections"] == {"too_expensive": 1}
    assert "Objections: too_expensive 1" in first.text and not first.by_model
    reloaded = JsonBrainRepository(tmp_path / "brain.json")
    assert await reloaded.count_conversations() == 6 and len(reloaded.summaries) == 2
    assert reloaded.conversations[1].turns[1]["speaker"] == "caller"


async def test_memory_summary_with_cheap_model(personas, fake, make_llm):
    fake.push(Reply(content="Price is the main objection; half the calls ended politely."))
    memory = BrainMemory(JsonBrainRepository(), make_llm(), every_n=2)
    summaries = await _conversations(personas, memory, 2)
    assert summaries[1].by_model and summaries[1].text.startswith("Price is the main objection")
    req = fake.requests[-1]
    assert req["model"] == "cheap-model"
    data = req["messages"][1]["content"]
    assert data.startswith("<data>") and "that's too expensive" in data


async def test_improvement_proposal_needs_approval(personas, fake, make_llm):
    repo = JsonBrainRepository()
    strategies = {"spring-promo": Strategy.model_validate(STRATEGY)}
    job = ImprovementJob(repo, make_llm(), personas, strategies)
    live = personas.get("sales").prompt("en")
    new_prompt = live + "When the caller says it is expensive, mention the free trial first.\n"
    fake.push(Reply(content=json.dumps({"proposed_text": new_prompt, "rationale": "price objections"})))
    proposal = await job.propose("persona", "sales", language="en")
    assert proposal is not None and proposal.status == "pending"
    assert "+When the caller says it is expensive" in proposal.diff
    assert personas.get("sales").prompt("en") == live  # nothing applied yet
    rejected_twin = await repo.add_proposal(type(proposal)(**{**proposal.__dict__, "id": "twin"}))
    approved = await job.approve(proposal.id, by="admin", note="ok")
    assert approved.status == "approved" and personas.get("sales").prompt("en") == new_prompt
    assert personas.get("sales").version == "2"
    with pytest.raises(ProposalError, match="already approved"):
        await job.approve(proposal.id, by="admin")
    with pytest.raises(ProposalError, match="stale"):  # drafted against the old prompt
        await job.approve(rejected_twin.id, by="admin")
    assert (await repo.persona_versions())["sales"]["version"] == "2"


async def test_strategy_proposal_validated_and_versioned(personas, fake, make_llm):
    repo = JsonBrainRepository()
    base = Strategy.model_validate(STRATEGY)
    await repo.save_strategy(base)
    strategies = {"spring-promo": base}
    job = ImprovementJob(repo, make_llm(), personas, strategies)
    fake.push(Reply(content=json.dumps({"proposed_text": "title: [broken", "rationale": "x"})))
    assert await job.propose("strategy", "spring-promo") is None  # invalid YAML is dropped
    better = {**STRATEGY, "closing_techniques": ["assumptive close", "scarcity: offer ends Friday"]}
    fake.push(Reply(content=json.dumps({"proposed_text": yaml.safe_dump(better), "rationale": "closing"})))
    proposal = await job.propose("strategy", "spring-promo")
    assert proposal is not None and proposal.base_version == "1" and "scarcity" in proposal.diff
    await job.reject(proposal.id, by="admin", note="not now")
    assert strategies["spring-promo"] is base
    fake.push(Reply(content=json.dumps({"proposed_text": yaml.safe_dump(better), "rationale": "closing"})))
    proposal = await job.propose("strategy", "spring-promo")
    await job.approve(proposal.id, by="admin")
    assert "scarcity: offer ends Friday" in strategies["spring-promo"].closing_techniques
    assert [v.version for v in await repo.strategy_versions("spring-promo")] == [1, 2]


async def test_no_model_no_proposal(personas):
    job = ImprovementJob(JsonBrainRepository(), None, personas, {})
    assert await job.run_daily() == []


# --- HTTP API ---------------------------------------------------------------------------------------
@pytest.fixture
async def api(personas, fake, make_llm):
    repo = JsonBrainRepository()
    strategies: dict = {}
    job = ImprovementJob(repo, make_llm(), personas, strategies)
    app = FastAPI()
    app.include_router(build_router(repo, strategies=strategies, improvements=job))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client, repo, strategies


async def test_strategies_api_validates_stores_versions(api):
    client, _, strategies = api
    r = await client.post("/api/v1/strategies", json=STRATEGY)
    assert r.status_code == 201 and r.json()["id"] == "spring-promo" and r.json()["version"] == 1
    r = await client.post("/api/v1/strategies", json={**STRATEGY, "goals": ["new goal"]})
    assert r.json()["version"] == 2 and strategies["spring-promo"].goals == ["new goal"]
    listed = (await client.get("/api/v1/strategies")).json()
    assert [(s["id"], s["version"]) for s in listed] == [("spring-promo", 2)]
    old = (await client.get("/api/v1/strategies/spring-promo", params={"version": 1})).json()
    assert old["strategy"]["goals"] == STRATEGY["goals"]
    assert len((await client.get("/api/v1/strategies/spring-promo/versions")).json()) == 2
    assert (await client.get("/api/v1/strategies/nope")).status_code == 404
    bad = await client.post("/api/v1/strategies", json={**STRATEGY, "persona": {"tone": "x"}})
    assert bad.status_code == 422 and "name" in json.dumps(bad.json()["detail"])
    bad = await client.post("/api/v1/strategies", json={**STRATEGY, "surprise": 1})
    assert bad.status_code == 422


async def test_feedback_api(api):
    client, _, _ = api
    r = await client.post("/api/v1/calls/call-9/feedback", json={"rating": 2, "comment": "too pushy",
                                                                 "tags": ["tone"]})
    assert r.status_code == 201 and r.json()["call_id"] == "call-9"
    assert (await client.post("/api/v1/calls/call-9/feedback", json={"rating": 9})).status_code == 422
    got = (await client.get("/api/v1/calls/call-9/feedback")).json()
    assert [f["comment"] for f in got] == ["too pushy"]


async def test_improvement_api_approve_reject(api, fake, personas):
    client, _, _ = api
    live = personas.get("reception").prompt("en")
    for extra in ("Ask for the email address last.\n", "Spell names back.\n"):
        fake.push(Reply(content=json.dumps({"proposed_text": live + extra, "rationale": "r"})))
    made = (await client.post("/api/v1/improvements/run", json={"target_kind": "persona",
                                                                "target": "reception"})).json()
    assert len(made) == 1 and made[0]["status"] == "pending"
    pending = (await client.get("/api/v1/improvements", params={"status": "pending"})).json()
    assert [p["id"] for p in pending] == [made[0]["id"]]
    r = await client.post(f"/api/v1/improvements/{made[0]['id']}/reject", json={"by": "boss", "note": "no"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert personas.get("reception").prompt("en") == live
    assert (await client.post(f"/api/v1/improvements/{made[0]['id']}/approve", json={})).status_code == 409
    second = (await client.post("/api/v1/improvements/run", json={"target_kind": "persona",
                                                                  "target": "reception"})).json()[0]
    r = await client.post(f"/api/v1/improvements/{second['id']}/approve", json={"by": "boss"})
    assert r.status_code == 200 and personas.get("reception").prompt("en").endswith("Spell names back.\n")
    assert (await client.post("/api/v1/improvements/nope/approve", json={})).status_code == 404


async def test_build_brain_and_reapply(tmp_path, fake):
    settings = Settings(_env_file=None, llm_base_url=fake.base_url, llm_api_key="test-key",
                        personas_dir=ROOT / "personas", strategies_dir=ROOT / "strategies", data_dir=tmp_path,
                        intent_model_role="cheap")
    brain = build_brain(settings)
    assert brain.llm is not None and brain.intents.role == "cheap"
    assert brain.conversation.strategies is brain.strategies and "spring-promo" in brain.strategies
    new = brain.personas.get("sales").model_copy(update={"version": "7"})
    await brain.repository.save_persona_version("sales", new.model_dump())
    await brain.aclose()
    again = build_brain(settings)
    await apply_approved_versions(again)
    assert again.personas.get("sales").version == "7"
    scripted = build_brain(Settings(_env_file=None, personas_dir=ROOT / "personas", data_dir=tmp_path))
    assert scripted.llm is None and scripted.conversation.mode == "scripted"


def test_engine_extras(tmp_path):
    brain = build_brain(Settings(_env_file=None, personas_dir=ROOT / "personas", data_dir=tmp_path))
    assert set(brain.engine_extras()) == {"conversation", "memory"}
