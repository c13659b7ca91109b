"""`POST /api/v1/agent/sales/ingest_strategy`: the payload as businesses write it, applied."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from switchboard.brain.api import build_router
from switchboard.brain.converse import ConversationService
from switchboard.brain.personas import PersonaRegistry
from switchboard.brain.repository import JsonBrainRepository
from switchboard.brain.strategies import Strategy
from switchboard.brain.tools import ToolContext, ToolRegistry

from .calls import ScriptedCall
from .fake_llm import Reply

ROOT = Path(__file__).resolve().parents[2]

PAYLOAD = {
    "title": "Family plan autumn push",
    "description": "Sell the family plan to existing single-plan customers.",
    "goals": ["upgrade to the family plan", "book a callback when undecided"],
    "persona": {"name": "Sara", "tone": "friendly", "tone_override": "calm, patient and reassuring",
                "description": "a senior advisor", "voice_id": "sara-voice", "locale": "en-US"},
    "scripts": {"greeting": "Hi, this is Sara from Acme.",
                "pitch": "The family plan covers four lines for 30 dollars a month.",
                "faqs": {"How much is the family plan?": "30 dollars a month for four lines."},
                "objections": {"expensive|too much": "It costs less than two single plans."}},
    "closing_techniques": ["summarise the savings", "assumptive close"],
    "fallback_scenarios": {"ask_to_repeat": "Sorry, could you say that again?"},
    "fallback_policies": [{"trigger": "confidence_below_0.5", "threshold": 0.5, "action": "ask_to_repeat"}],
    "subagents": [
        {"name": "pricing", "class": "switchboard.brain.subagents.FaqAgent",
         "init": {"description": "knows every price", "ttl_seconds": 600,
                  "faqs": {"price of the family plan": "30 dollars a month for four lines",
                           "price of the single plan": "18 dollars a month"}}},
        {"name": "retention", "class": "switchboard.brain.subagents.PersonaAgent",
         "init": {"prompt": "You are a retention specialist.", "tone": "warm"}},
    ],
}


@pytest.fixture(scope="module")
def personas() -> PersonaRegistry:
    return PersonaRegistry.load_dir(ROOT / "personas")


@pytest.fixture
async def api():
    repo = JsonBrainRepository()
    strategies: dict = {}
    app = FastAPI()
    app.include_router(build_router(repo, strategies=strategies))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client, strategies


async def test_payload_as_written_is_accepted_and_applied(api, personas):
    client, strategies = api
    r = await client.post("/api/v1/agent/sales/ingest_strategy", json=PAYLOAD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "family-plan-autumn-push" and body["version"] == 1
    assert body["applied"] == {
        "tone": "calm, patient and reassuring", "tone_overridden": True,
        "voice_settings": {"stability": 0.75, "similarity_boost": 0.8},
        "fallback_policies": [{"trigger": "low_confidence", "threshold": 0.5, "action": "ask_to_repeat"}],
        "subagents": ["pricing", "retention"]}
    listed = (await client.get("/api/v1/strategies")).json()
    assert [s["id"] for s in listed] == ["family-plan-autumn-push"]
    sales = strategies["family-plan-autumn-push"].apply(personas.get("sales"))
    assert sales.tone == "calm, patient and reassuring"  # replaced, not added to
    prompt = sales.prompt("en")
    assert "Use ONLY this tone, whatever your usual one: calm, patient and reassuring." in prompt
    assert "pricing (knows every price)" in prompt and "delegate" in sales.tools
    assert sales.voice["en"] == "sara-voice?stability=0.75&similarity_boost=0.8"


async def test_tone_shapes_the_voice_both_ways():
    lively = Strategy.model_validate({**PAYLOAD, "persona": {**PAYLOAD["persona"],
                                                             "tone_override": "energetic and enthusiastic"}})
    assert lively.voice_settings() == {"stability": 0.3, "similarity_boost": 0.7}
    plain = Strategy.model_validate({**PAYLOAD, "persona": {**PAYLOAD["persona"], "tone_override": False}})
    assert plain.voice_settings() == {"stability": 0.5, "similarity_boost": 0.8}  # "friendly": the defaults


@pytest.mark.parametrize("change,needle", [
    (lambda p: p["subagents"][0].update({"class": "os.system"}), "is not an allowed subagent class"),
    (lambda p: p["subagents"][0].update({"class": "switchboard.brain.subagents.Nope"}), "not an allowed"),
    (lambda p: p["subagents"][0]["init"].update({"faqs": {}}), "subagent 'pricing' init"),
    (lambda p: p["subagents"][1].update({"name": "pricing"}), "subagent names must be unique"),
    (lambda p: p["fallback_policies"][0].update({"threshold": 0.7}), "disagree"),
    (lambda p: p["fallback_policies"][0].update({"trigger": "confidence_below_x"}), "trigger"),
])
async def test_bad_payloads_are_422_saying_why(api, change, needle):
    client, strategies = api
    payload = copy.deepcopy(PAYLOAD)
    change(payload)
    r = await client.post("/api/v1/agent/sales/ingest_strategy", json=payload)
    assert r.status_code == 422 and needle in json.dumps(r.json()["detail"]), r.text
    assert strategies == {}


async def test_delegate_reaches_a_subagent_and_it_expires(personas):
    payload = copy.deepcopy(PAYLOAD)
    payload["subagents"][0]["init"]["ttl_seconds"] = 0.3
    strategy = Strategy.model_validate(payload)
    svc = ConversationService(personas, strategies={"s": strategy})
    subagents = svc.subagents_for(strategy)
    assert subagents is svc.subagents_for(strategy) and subagents.names() == ["pricing", "retention"]
    tools = ToolRegistry()

    async def delegate(agent: str, request: str):
        return await subagents.delegate(agent, request, llm=None, language="en")

    ctx = ToolContext(call_id="c", remote_number="1", persona="sales", delegate=delegate)
    out = await tools.execute("delegate", {"agent": "pricing", "request": "what is the price of the family plan?"},
                              ctx, ["delegate"])
    assert out.ok and json.loads(out.content)["answer"] == "30 dollars a month for four lines"
    out = await tools.execute("delegate", {"agent": "retention", "request": "keep them"}, ctx, ["delegate"])
    assert json.loads(out.content)["answer"] is None  # no model configured: it says so, no crash
    await asyncio.sleep(0.35)
    out = await tools.execute("delegate", {"agent": "pricing", "request": "price?"}, ctx, ["delegate"])
    assert not out.ok and "has expired" in out.content
    assert subagents.names() == ["retention"]


async def test_model_calls_delegate_in_a_conversation(personas, fake, make_llm):
    strategy = Strategy.model_validate(PAYLOAD)
    svc = ConversationService(personas, llm=make_llm(cache_ttl=0), strategies={"family": strategy},
                              tool_mode="native")
    fake.push(Reply(tool_calls=[("delegate", {"agent": "pricing", "request": "price of the family plan"})]),
              Reply(content="It is 30 dollars a month for four lines."))
    call = ScriptedCall(["How much is the family plan?"])
    out = await svc.run(call, persona="sales", language="en", strategy="family", max_turns=1)
    tool_turns = [t for t in out.turns if t.speaker == "tool"]
    assert tool_turns and tool_turns[0].detail["tool"] == "delegate" and tool_turns[0].detail["ok"]
    assert "30 dollars a month for four lines" in tool_turns[0].text
    assert "It is 30 dollars a month for four lines." in call.agent_texts
    first = fake.requests[0]
    assert "delegate" in [t["function"]["name"] for t in first["tools"]]
    assert "Use ONLY this tone" in first["messages"][0]["content"]
