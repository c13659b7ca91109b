"""Translation in and out of a persona's conversation, against a loopback LibreTranslate double."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.brain.converse import ConversationService
from switchboard.brain.personas import PersonaRegistry
from switchboard.brain.translation import LibreTranslate, Passthrough, TranslationError, translate_or_keep

from .calls import ScriptedCall
from .fake_libretranslate import FakeLibreTranslate
from .fake_llm import Reply

ROOT = Path(__file__).resolve().parents[2]
WORDS = {("fa", "en"): {"قیمت طرح خانوادگی چنده؟": "How much is the family plan?"},
         ("en", "fa"): {"It is 30 dollars a month.": "ماهی ۳۰ دلار است.",
                        "Would you like it?": "آیا مایلید؟"}}


@pytest.fixture
def libre():
    with FakeLibreTranslate(WORDS, api_key="k-1") as server:
        yield server


async def test_client_speaks_the_documented_api(libre):
    tr = await LibreTranslate(libre.base_url, api_key="k-1").translate(
        "قیمت طرح خانوادگی چنده؟", source="fa", target="en")
    assert (tr.text, tr.provider, tr.ok) == ("How much is the family plan?", "libretranslate", True)
    assert tr.latency > 0
    assert libre.requests[-1] == {"q": "قیمت طرح خانوادگی چنده؟", "source": "fa", "target": "en",
                                  "format": "text", "api_key": "k-1"}


async def test_errors_are_typed_and_never_lose_the_text(libre):
    with pytest.raises(TranslationError, match="403: Invalid API key"):
        await LibreTranslate(libre.base_url, api_key="wrong").translate("x", source="fa", target="en")
    libre.fail_with = 429
    kept = await translate_or_keep(LibreTranslate(libre.base_url, api_key="k-1"), "سلام", source="fa", target="en")
    assert (kept.text, kept.ok) == ("سلام", False)
    down = await translate_or_keep(LibreTranslate("http://127.0.0.1:9", timeout=1), "سلام", source="fa", target="en")
    assert (down.text, down.ok) == ("سلام", False)
    same = await translate_or_keep(Passthrough(), "hi", source="en", target="en")
    assert same.provider == "same-language"


async def test_persian_caller_english_model(libre, fake, make_llm):
    personas = PersonaRegistry.load_dir(ROOT / "personas")
    plain = PersonaRegistry()
    plain.replace(personas.get("sales").model_copy(update={"tools": [], "greeting": {}}))
    svc = ConversationService(plain, llm=make_llm(cache_ttl=0), translator=LibreTranslate(libre.base_url, api_key="k-1"),
                              working_language="en")
    fake.push(Reply(content="It is 30 dollars a month. Would you like it?"))
    call = ScriptedCall(["قیمت طرح خانوادگی چنده؟"])
    out = await svc.run(call, persona="sales", language="fa", max_turns=1)
    sent = fake.requests[0]["messages"]
    assert sent[-1] == {"role": "user", "content": "How much is the family plan?"}  # the model reads English
    assert "Always reply in English" in sent[0]["content"]
    assert call.agent_texts == ["ماهی ۳۰ دلار است.", "آیا مایلید؟"]  # the caller hears Persian
    inbound = [t for t in out.turns if t.detail.get("kind") == "translated_in"]
    reply = [t for t in out.turns if t.speaker == "agent"][0]
    assert inbound[0].detail["ok"] and inbound[0].detail["translation_ms"] > 0
    assert reply.detail["translation_ms"] > 0 and reply.language == "fa"
