from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from switchboard.brain.converse import ConversationService, extract_fields, split_sentences
from switchboard.brain.personas import PersonaRegistry
from switchboard.brain.strategies import Strategy
from switchboard.brain.tools import ToolRegistry
from switchboard.telephony.call import CallerHangup

from .calls import Barge, ScriptedCall
from .fake_llm import Reply, quota_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def personas() -> PersonaRegistry:
    return PersonaRegistry.load_dir(ROOT / "personas")


def kinds(outcome, speaker="agent"):
    return [(t.persona, t.detail.get("kind")) for t in outcome.turns if t.speaker == speaker]


# --- scripted mode (no LLM) ---------------------------------------------------------------------
async def test_scripted_reception_hands_off_to_sales_with_summary(personas):
    svc = ConversationService(personas, company="Acme")
    call = ScriptedCall(["Hi, my name is Ali Rezaei, my email is ali@example.com",
                         "I'd like to know the prices of your plans",
                         "hmm, that's too expensive",
                         "ok, goodbye"])
    logged = []
    out = await svc.run(call, persona="reception", language="en", on_turn=logged.append)
    assert (out.status, out.result, out.persona, out.mode) == ("ended", "completed", "sales", "scripted")
    assert out.fields["name"] == "Ali Rezaei" and out.fields["email"] == "ali@example.com"
    assert out.fields["service"] == "sales"
    [handoff] = out.handoffs
    assert (handoff["from"], handoff["to"]) == ("reception", "sales")
    assert "prices" in handoff["summary"] and handoff["fields"]["name"] == "Ali Rezaei"
    assert kinds(out) == [("reception", "greeting"), ("reception", "fallback"), ("sales", "announce"),
                          ("sales", "faq"), ("sales", "objection"), ("sales", "goodbye")]
    assert call.agent_texts[2].startswith("Hi, this is Omid from sales")
    assert "490" in call.agent_texts[3]
    assert out.objections == ["too_expensive"]
    assert logged == out.turns  # every turn reported as it happened
    assert {t.persona for t in out.turns if t.speaker == "caller"} == {"reception", "sales"}


async def test_scripted_persian_and_arabic(personas):
    svc = ConversationService(personas)
    call = ScriptedCall(["سلام، قیمت طرح‌ها چقدر است؟", "خداحافظ"])
    out = await svc.run(call, persona="reception", language="fa")
    assert out.persona == "sales" and out.result == "completed"
    assert "۴۹۰" in call.agent_texts[-2] and all(lang == "fa" for _, lang, _ in call.said)
    call = ScriptedCall(["عندي مشكلة في الطلب", "الطلب لم يصل منذ أسبوع", "مع السلامة"])
    out = await svc.run(call, persona="reception", language="en")
    assert out.persona == "complaints" and out.tickets and out.result == "ticket_created"
    assert call.said[-1][1] == "ar"  # switched to the caller's language


async def test_scripted_complaint_opens_ticket(personas):
    tools = ToolRegistry()
    svc = ConversationService(personas, tools=tools)
    call = ScriptedCall(["My internet has not been working since yesterday, order 5521", "no, that's all, goodbye"])
    out = await svc.run(call, persona="complaints", language="en")
    assert (out.status, out.result) == ("ended", "ticket_created")
    [ticket] = tools.memory.tickets
    assert ticket["id"] == "T-0001" and "internet" in ticket["description"]
    assert ticket["phone"] == call.remote_number and ticket["call_id"] == call.call_id
    assert "T-0001" in call.agent_texts[1]
    assert [t.detail.get("tool") for t in out.turns if t.speaker == "tool"] == ["create_ticket", "end_call"]


async def test_scripted_tool_error_is_handled(personas):
    async def broken(ticket):
        raise ConnectionError("ticket system down")

    svc = ConversationService(personas, tools=ToolRegistry(create_ticket=broken))
    call = ScriptedCall(["the device I bought is broken", "goodbye"])
    out = await svc.run(call, persona="complaints", language="en")
    assert out.result == "completed" and out.tickets == []
    tool_turn = next(t for t in out.turns if t.speaker == "tool")
    assert tool_turn.detail["ok"] is False and "ticket system down" in tool_turn.text
    assert kinds(out)[1] == ("complaints", "fallback")  # answered, not crashed


async def test_scripted_operator_request(personas):
    out = await ConversationService(personas).run(ScriptedCall(["I want to talk to a real person"]),
                                                   persona="reception", language="en")
    assert out.status == "operator"


async def test_max_turns(personas):
    call = ScriptedCall(["hmm", "well", "you know", "more"])
    out = await ConversationService(personas).run(call, persona="reception", language="en", max_turns=3)
    assert out.status == "max_turns"
    assert len([t for t in out.turns if t.speaker == "caller"]) == 3 and call.lines == ["more"]


async def test_max_seconds(personas):
    class SlowCall(ScriptedCall):
        async def record(self, **kw):
            await asyncio.sleep(5)
            return await super().record(**kw)

    out = await ConversationService(personas).run(SlowCall(["hello"]), persona="reception", language="en",
                                                   max_seconds=0.3)
    assert out.status == "timeout"


async def test_silence_reprompts_then_ends(personas):
    call = ScriptedCall([None, None], hangup_when_done=False)
    out = await ConversationService(personas).run(call, persona="reception", language="en")
    assert (out.status, out.result) == ("ended", "no_response")
    assert kinds(out) == [("reception", "greeting"), ("reception", "reprompt"), ("reception", "goodbye")]


async def test_hangup_propagates_with_turns_logged(personas):
    logged = []
    with pytest.raises(CallerHangup):
        await ConversationService(personas).run(ScriptedCall(["hello there"]), persona="reception",
                                                language="en", on_turn=logged.append)
    assert [t.speaker for t in logged] == ["agent", "caller", "agent"]


STRATEGY = {
    "title": "Spring promo", "description": "Sell the business plan with the spring discount.",
    "goals": ["close a business plan sale"],
    "persona": {"name": "Omid", "tone": "upbeat", "tone_override": False, "description": "senior advisor",
                "voice_id": "en-us-omid", "locale": "en-US"},
    "scripts": {"greeting": "Hi! Omid here with a spring offer.", "pitch": "20% off the business plan.",
                "faqs": {"does the discount apply to renewals": "Yes, for the first year."},
                "objections": {"competitor|cheaper elsewhere": "We include support that others charge for."}},
    "closing_techniques": ["assumptive close"],
    "fallback_scenarios": {"ask_to_repeat": "Sorry, the line broke up. Say that once more?"},
    "fallback_policies": [{"trigger": "low_confidence", "threshold": 0.5, "action": "ask_to_repeat"}],
}


async def test_strategy_in_scripted_mode_and_low_confidence_policy(personas):
    strategy = Strategy.model_validate(STRATEGY)
    svc = ConversationService(personas, strategies={strategy.slug: strategy})
    call = ScriptedCall(["it's cheaper elsewhere", "does the discount apply to renewals", "bye"])
    out = await svc.run(call, persona="sales", language="en", strategy="spring-promo")
    assert call.agent_texts[:3] == ["Hi! Omid here with a spring offer.",
                                    "We include support that others charge for.", "Yes, for the first year."]
    assert call.said[0][0] and out.result == "completed"
    low = ScriptedCall([("mumble mumble", 0.3), ("bye", 0.9)])
    out = await svc.run(low, persona="sales", language="en", strategy=strategy)
    assert low.agent_texts[1] == "Sorry, the line broke up. Say that once more?"
    assert any(t.detail.get("kind") == "policy" and t.detail.get("trigger") == "low_confidence"
               for t in out.turns if t.speaker == "system")


# --- LLM mode ---------------------------------------------------------------------------------
async def test_llm_reception_to_sales_handoff_and_sale(personas, fake, make_llm):
    fake.push(
        Reply(content="Nice to meet you, Ali. Let me connect you with our sales team.",
              tool_calls=[("save_details", {"name": "Ali", "service": "business plan"}),
                          ("handoff", {"persona": "sales", "summary": "Ali wants the business plan price"})]),
        Reply(content="Hi Ali, this is Omid from sales. The business plan is 1.2 million a month. Shall I set it up?"),
        Reply(content="Wonderful, you're all set!", tool_calls=[("end_call", {"result": "sale"})]),
    )
    svc = ConversationService(personas, llm=make_llm(), company="Acme")
    call = ScriptedCall(["Hi, I'm Ali and I'd like to buy the business plan", "yes please"])
    out = await svc.run(call, persona="reception", language="en")
    assert (out.status, out.result, out.persona, out.mode) == ("ended", "sale", "sales", "llm")
    assert out.fields == {"name": "Ali", "service": "business plan"}
    assert out.handoffs[0]["summary"] == "Ali wants the business plan price"
    # spoken sentence by sentence as the stream arrived
    assert call.agent_texts[1:3] == ["Nice to meet you, Ali.", "Let me connect you with our sales team."]
    assert call.agent_texts[3:6] == ["Hi Ali, this is Omid from sales.",
                                     "The business plan is 1.2 million a month.", "Shall I set it up?"]
    first, announce, last = fake.requests
    assert first["stream"] is True and "Sara, the receptionist of Acme" in first["messages"][0]["content"]
    assert {t["function"]["name"] for t in first["tools"]} == {
        "lookup_contact", "save_details", "handoff", "transfer_to_operator", "schedule_callback", "end_call"}
    assert first["messages"][-1] == {"role": "user", "content": "Hi, I'm Ali and I'd like to buy the business plan"}
    assert "Omid, a sales representative" in announce["messages"][0]["content"]
    note = announce["messages"][1]["content"]
    assert '<summary>"Ali wants the business plan price"</summary>' in note and '"name": "Ali"' in note
    assert last["messages"][-1] == {"role": "user", "content": "yes please"}
    assert last["messages"][-2]["content"].startswith("Hi Ali, this is Omid")
    agent = [(t.persona, t.detail.get("kind")) for t in out.turns if t.speaker == "agent"]
    assert agent == [("reception", "greeting"), ("reception", "reply"), ("sales", "announce"), ("sales", "reply")]
    assert out.usage.requests == 3 and out.usage.completion_tokens > 0
    reply_turn = [t for t in out.turns if t.speaker == "agent"][1]
    assert reply_turn.latency is not None and reply_turn.latency >= 0


async def test_llm_complaint_ticket_and_tool_error_roundtrip(personas, fake, make_llm):
    calls = {"n": 0}

    async def flaky(ticket):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("ticket API timed out")
        return "TCK-77"

    fake.push(
        Reply(tool_calls=[("create_ticket", {"subject": "No internet", "description": "down since yesterday"})]),
        Reply(content="Let me try that again.",
              tool_calls=[("create_ticket", {"subject": "No internet", "description": "down since yesterday"})]),
        Reply(content="I've opened ticket TCK-77 for you.",
              tool_calls=[("end_call", {"result": "ticket_created"})]),
    )
    svc = ConversationService(personas, llm=make_llm(), tools=ToolRegistry(create_ticket=flaky))
    out = await svc.run(ScriptedCall(["my internet is down since yesterday"]), persona="complaints", language="en")
    assert (out.status, out.result) == ("ended", "ticket_created")
    assert [t["id"] for t in out.tickets] == ["TCK-77"]
    tool_msg = fake.requests[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and json.loads(tool_msg["content"]) == {
        "ok": False, "error": "TimeoutError: ticket API timed out"}
    assistant = fake.requests[1]["messages"][-2]
    assert assistant["tool_calls"][0]["function"]["name"] == "create_ticket"
    assert tool_msg["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert json.loads(fake.requests[2]["messages"][-1]["content"])["ticket_id"] == "TCK-77"


async def test_llm_invalid_and_forbidden_tool_calls_answered_to_model(personas, fake, make_llm):
    fake.push(Reply(tool_calls=[("create_ticket", "{not json"), ("delete_database", {}),
                                ("handoff", {"persona": "nobody"})]),
              Reply(content="Sorry about that."))
    svc = ConversationService(personas, llm=make_llm())
    with pytest.raises(CallerHangup):
        await svc.run(call := ScriptedCall(["help"]), persona="reception", language="en")
    assert call.agent_texts[-1] == "Sorry about that."
    msgs = [json.loads(m["content"]) for m in fake.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["ok"] for m in msgs] == [False, False, False]
    assert "not available" in msgs[0]["error"]  # reception may not open tickets
    assert "unknown tool" in msgs[1]["error"] and "cannot hand off" in msgs[2]["error"]


async def test_barge_in_stops_the_rest_of_the_reply(personas, fake, make_llm):
    fake.push(Reply(content="We have three plans. The basic one is cheap. The business one has more. Which one?"),
              Reply(content="Sure, the business plan is 1.2 million."))
    svc = ConversationService(personas, llm=make_llm())
    call = ScriptedCall(["tell me about your plans", Barge("just the business plan price please")])
    turns: list = []
    with pytest.raises(CallerHangup):
        await svc.run(call, persona="sales", language="en", on_turn=turns.append)
    spoken_first_reply = [s for s in call.said if s[0].startswith(("We have", "The basic", "The business one"))]
    assert spoken_first_reply == [("We have three plans.", "en", False)]
    interrupted = [t for t in turns if t.interrupted]
    assert len(interrupted) == 1 and interrupted[0].text == "We have three plans."
    second = fake.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "We have three plans. …"}
    assert second[-1]["content"] == "just the business plan price please"
    assert call.agent_texts[-1] == "Sure, the business plan is 1.2 million."


async def test_llm_quota_error_falls_back_to_scripted_reply(personas, fake, make_llm):
    fake.push(quota_error(), quota_error())
    svc = ConversationService(personas, llm=make_llm())
    call = ScriptedCall(["how much does it cost", "bye"])
    out = await svc.run(call, persona="sales", language="en")
    assert "490" in call.agent_texts[1]
    assert out.provider_failure is not None and "quota" in out.provider_failure.reason
    assert out.result == "completed"


async def test_llm_low_confidence_policy_skips_model(personas, fake, make_llm):
    strategy = Strategy.model_validate(STRATEGY)
    svc = ConversationService(personas, llm=make_llm())
    fake.push(Reply(tool_calls=[("end_call", {"result": "not_interested"})], content="Okay, bye."))
    call = ScriptedCall([("unclear words", 0.2), ("bye", 0.9)])
    out = await svc.run(call, persona="sales", language="en", strategy=strategy)
    assert call.agent_texts[1] == "Sorry, the line broke up. Say that once more?"
    assert len(fake.requests) == 1 and fake.requests[0]["messages"][-1]["content"] == "bye"
    assert "Spring promo" in fake.requests[0]["messages"][0]["content"]
    assert out.result == "not_interested"


def test_split_sentences():
    assert split_sentences("Hello there. How are") == (["Hello there."], "How are")
    assert split_sentences("It costs 1.2 million. ") == (["It costs 1.2 million."], "")
    assert split_sentences("سلام! خوبید؟ ") == (["سلام!", "خوبید؟"], "")
    sentences, rest = split_sentences("word " * 50)
    assert sentences and len(sentences[0]) <= 160 and rest


def test_extract_fields():
    f = extract_fields("Hi, my name is Sara Ahmadi, call me at ۰۹۱۲ ۳۴۵ ۶۷۸۹ or sara@x.ir")
    assert f == {"name": "Sara Ahmadi", "phone": "09123456789", "email": "sara@x.ir"}


async def test_audio_replies_go_through_the_transcriber(personas):
    from switchboard.speech.base import Transcript
    from switchboard.telephony.call import Audio, Recording

    class AudioCall(ScriptedCall):
        async def record(self, **kw):
            rec = await super().record(**kw)
            return Recording(audio=Audio(rec.text.encode(), 8000))

    class Stt:
        def __init__(self):
            self.calls = []

        async def transcribe(self, audio, *, language=None, hotwords=None):
            self.calls.append(language)
            return Transcript(audio.pcm.decode(), language="ar", confidence=0.9, latency=0.0)

    stt = Stt()
    call = AudioCall(["كم السعر", "مع السلامة"])
    out = await ConversationService(personas).run(call, persona="sales", language="en", transcriber=stt)
    assert stt.calls == ["en", "ar"]  # the reply's language becomes the conversation's
    assert call.said[1] == (personas.get("sales").faq[0].answer["ar"], "ar", True)
    assert out.result == "completed"
    no_stt = await ConversationService(personas).run(AudioCall(["hi"]), persona="sales", language="en")
    assert no_stt.status == "failed" and "no transcriber" in no_stt.reason
