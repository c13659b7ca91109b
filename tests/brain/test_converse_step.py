"""The `converse` step inside the real flow engine, with a scripted call in text mode."""

from __future__ import annotations

from pathlib import Path

from switchboard.brain.converse import ConversationService
from switchboard.brain.personas import PersonaRegistry
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import OperatorPool
from switchboard.engine.services import EngineServices
from switchboard.flows.validate import parse_scenario_file

from .calls import ScriptedCall
from .fake_llm import Reply

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "data" / "reception.yaml"


def scenario():
    parsed = parse_scenario_file(SCENARIO)
    assert parsed.scenario is not None, parsed.errors
    return parsed.scenario


def services(llm=None) -> EngineServices:
    svc = ConversationService(PersonaRegistry.load_dir(ROOT / "personas"), llm=llm)
    return EngineServices(extras={"conversation": svc})


async def test_scripted_reception_to_sales_in_the_engine():
    call = ScriptedCall(["Hello, my name is Ali Rezaei", "what are the prices of your plans", "bye"],
                        hangup_when_done=False)
    out = await FlowEngine(services()).run(call, scenario())
    ctx = out.context
    assert out.result == "inbound_call"
    assert ctx.variables["conversation_status"] == "ended" and ctx.variables["persona"] == "sales"
    assert ctx.variables["name"] == "Ali Rezaei"
    turns = [e for e in ctx.timeline if e.event == "turn"]
    assert [(t.detail["persona"], t.detail["speaker"]) for t in turns if t.detail["speaker"] != "tool"][:6] == [
        ("reception", "agent"), ("reception", "caller"), ("reception", "agent"), ("reception", "caller"),
        ("reception", "system"), ("sales", "agent")]
    assert ctx.last_transcript() == "bye"
    conv = next(e for e in ctx.timeline if e.event == "conversation")
    assert conv.detail["handoffs"][0]["to"] == "sales" and conv.detail["mode"] == "scripted"
    assert ctx.steps_visited == ["start", "talk", "done"]


async def test_memory_records_each_conversation():
    from switchboard.brain.memory import BrainMemory
    from switchboard.brain.repository import JsonBrainRepository

    repo = JsonBrainRepository()
    svc = services()
    svc.extras["memory"] = BrainMemory(repo, None, every_n=1)
    await FlowEngine(svc).run(ScriptedCall(["price please", "bye"], hangup_when_done=False), scenario())
    [record] = repo.conversations
    assert record.personas == ["reception", "sales"] and record.status == "ended"
    assert len(repo.summaries) == 1


async def test_operator_request_goes_to_on_handoff():
    call = ScriptedCall(["I need a human operator please"], hangup_when_done=False)
    out = await FlowEngine(services()).run(call, scenario())
    assert out.context.steps_visited[:3] == ["start", "talk", "transfer"]


async def test_llm_mode_in_the_engine_records_usage(fake, make_llm):
    fake.push(Reply(content="Sure, connecting you to a colleague.",
                    tool_calls=[("transfer_to_operator", {"reason": "wants a human"})]))
    call = ScriptedCall(["put me through to a person"], hangup_when_done=False)
    eng = FlowEngine(services(make_llm()))
    eng.services.operators = OperatorPool()
    out = await eng.run(call, scenario())
    ctx = out.context
    assert ctx.steps_visited[:3] == ["start", "talk", "transfer"]
    assert ctx.usage["llm_requests"] == 1 and ctx.usage["llm_completion_tokens"] > 0
    assert ctx.variables["conversation_status"] == "operator"


async def test_hangup_mid_conversation_keeps_turns():
    call = ScriptedCall(["hello"])  # then the caller hangs up
    out = await FlowEngine(services()).run(call, scenario())
    assert out.result == "hangup"
    assert [e.detail["speaker"] for e in out.context.timeline if e.event == "turn"] == ["agent", "caller", "agent"]


# --- the real simulator, on the virtual clock (what `switchboard simulate` runs) -------------------
CALLER = Path(__file__).parent / "data" / "caller_reception.yaml"


def _simulate(svc_llm=None, *, patient: bool = False, barge: bool = False):
    """`patient` callers wait 6 s before answering; `barge` callers talk over the agent."""
    from switchboard.clock import run_virtual
    from switchboard.simulation import simulate
    from switchboard.telephony.sim.network import SimNetwork
    from switchboard.telephony.sim.script import load_caller_file

    caller = load_caller_file(CALLER)
    for reply in caller.caller.replies:
        if patient:
            reply.delay = 6.0
        reply.barge_in = barge
    engine = FlowEngine(services(svc_llm))
    return run_virtual(simulate(engine, SimNetwork(), scenario(), caller, inbound=True))


def _turns(ctx):
    return [(e.detail["persona"], e.detail["speaker"]) for e in ctx.timeline
            if e.event == "turn" and e.detail["speaker"] in ("agent", "caller")]


def test_simulator_scripted_multi_persona():
    ctx = _simulate()
    assert ctx.result == "inbound_call" and ctx.variables["persona"] == "sales"
    assert ("reception", "agent") in _turns(ctx) and ("sales", "agent") in _turns(ctx)
    conv = next(e for e in ctx.timeline if e.event == "conversation")
    assert conv.detail["objections"] == ["too_expensive"] and conv.detail["status"] == "ended"


def test_simulator_llm_multi_persona_on_virtual_clock(fake_server):
    from switchboard.brain.llm import LLMClient

    fake_server.script.clear()
    fake_server.requests.clear()
    fake_server.push(
        Reply(content="Hello Ali! Let me connect you to sales.", delay=0.3,
              tool_calls=[("handoff", {"persona": "sales", "summary": "wants prices"})]),
        Reply(content="Hi, Omid from sales. The basic plan is 490 thousand a month."),
        Reply(content="I understand. There is a free trial too.", chunk_delay=0.05),
        Reply(content="Goodbye!", tool_calls=[("end_call", {"result": "completed"})]))
    llm = LLMClient(base_url=fake_server.base_url, api_key="test-key", model_critical="m", model_cheap="m",
                    timeout=2.0)
    ctx = _simulate(llm, patient=True)
    turns = [e for e in ctx.timeline if e.event == "turn"]
    # A real 0.3 s wait for the model must not become a (virtual) timeout.
    assert not [t for t in turns if t.detail.get("kind") == "llm_error"]
    assert ctx.variables["conversation_status"] == "ended" and ctx.variables["persona"] == "sales"
    assert ctx.usage["llm_requests"] == 4
    said = [(t.detail["persona"], t.detail["text"]) for t in turns if t.detail["speaker"] == "agent"]
    assert said[1:3] == [("reception", "Hello Ali! Let me connect you to sales."),
                         ("sales", "Hi, Omid from sales. The basic plan is 490 thousand a month.")]
    assert not any(t.detail.get("interrupted") for t in turns)


def test_simulator_barge_in_drops_the_rest_and_the_tool_calls(fake_server):
    """A simulated caller who barges in (after 0.3 s) talks over the agent: only the first sentence is
    heard, and the handoff the model asked for in that reply is not acted on."""
    from switchboard.brain.llm import LLMClient

    fake_server.script.clear()
    fake_server.requests.clear()
    fake_server.push(
        Reply(content="Hello Ali! Let me connect you to sales.",
              tool_calls=[("handoff", {"persona": "sales", "summary": "wants prices"})]),
        Reply(content="Sure. The basic plan is 490 thousand a month."),
        Reply(content="I see."), Reply(content="Bye!", tool_calls=[("end_call", {"result": "completed"})]))
    llm = LLMClient(base_url=fake_server.base_url, api_key="test-key", model_critical="m", model_cheap="m")
    ctx = _simulate(llm, barge=True)
    turns = [e for e in ctx.timeline if e.event == "turn" and e.detail["speaker"] == "agent"]
    assert turns[1].detail["text"] == "Hello Ali!" and turns[1].detail["interrupted"] is True
    assert ctx.variables["persona"] == "reception"
    assert fake_server.requests[1]["messages"][-2] == {"role": "assistant", "content": "Hello Ali! …"}
