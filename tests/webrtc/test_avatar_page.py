"""The avatar on the /call page: `AVATAR_PROVIDER=tavus` against a loopback double of Tavus (its REST
API as documented, and a stand-in for Daily's browser client that records what the page sends into
the room). The persona's face shows, says every agent sentence (Tavus' `conversation.echo`), changes
with a handoff to a persona with another face, and every conversation is ended with the call. When
Tavus fails, the page stays audio only: the agent's own audio plays."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.webrtc.conftest import CHROMIUM, SCREENSHOTS, chromium_args, switchboard_run, until
from tests.webrtc.tavus_double import TavusDouble
from tests.webrtc.test_call_page import call_state, open_call_page

pytestmark = [pytest.mark.browser, pytest.mark.models]


def tavus_env(tavus: TavusDouble, **extra: str) -> dict[str, str]:
    return {"AVATAR_PROVIDER": "tavus", "TAVUS_API_KEY": tavus.api_key, "TAVUS_BASE_URL": tavus.base_url,
            "TAVUS_PERSONA_ID": "p-echo", "TAVUS_REPLICA_ID": "r-sara", "TAVUS_REPLICAS": "sales=r-omid",
            "TAVUS_DAILY_JS_URL": f"{tavus.base_url}/daily-js", **extra}


def echoes(conv) -> list[str]:  # type: ignore[no-untyped-def]
    return [m["properties"]["text"] for m in conv.messages if m.get("event_type") == "conversation.echo"]


async def test_the_personas_face_speaks_changes_with_the_handoff_and_ends_with_the_call(
        tmp_path: Path, caller_sentence_wav: Path, require_chromium: None) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with TavusDouble() as tavus, switchboard_run(tmp_path, **tavus_env(tavus)) as sb, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(caller_sentence_wav))
        try:
            page = await open_call_page(browser, sb.base_url, "?scenario=reception", login=sb.login_link())
            await page.click("#call")
            await page.wait_for_function("() => window.switchboardCall.avatar.status === 'live'", timeout=30000)
            assert await page.locator("#avatar").is_visible()
            assert await page.locator("#avatar .daily-standin").get_attribute("data-replica") == "r-sara"
            first = tavus.live[0]
            assert (first.replica_id, first.persona_id, first.joined) == ("r-sara", "p-echo", 1)
            await page.screenshot(full_page=True, path=str(SCREENSHOTS / "call-avatar-reception.png"))
            # The caller asks for prices: sales takes over, with its own face.
            await page.wait_for_function("() => window.switchboardCall.persona === 'sales'", timeout=90000)
            await page.wait_for_function(
                "() => document.querySelector('#avatar .daily-standin')?.dataset.replica === 'r-omid'", timeout=30000)
            assert first.status == "ended" and first.left >= 1
            second = tavus.live[0]
            assert second.replica_id == "r-omid"
            await until(lambda: any("490 thousand" in t for t in echoes(second)), 60)
            # From its first sentence on, the face speaks: the agent's own audio is muted.
            assert await page.evaluate("() => document.getElementById('agent-audio').muted")
            assert all(m["message_type"] == "conversation" and m["conversation_id"] == second.id
                       and m["properties"]["modality"] == "text" for m in second.messages
                       if m.get("event_type") == "conversation.echo")
            state = await call_state(page)
            # Every sentence the page echoed reached the room of the face on the line at the time.
            await until(lambda: len(echoes(first)) + len(echoes(second)) == state["avatar"]["echoes"], 10)
            assert state["agentAudio"]["loudMs"] > 2000  # the agent's audio still arrives (for the meter)
            await page.screenshot(full_page=True, path=str(SCREENSHOTS / "call-avatar-sales.png"))
            await page.click("#hangup")
            await page.wait_for_function("() => window.switchboardCall.state === 'ended'", timeout=30000)
            assert not await page.locator("#avatar").is_visible()
        finally:
            await browser.close()
        await until(lambda: not tavus.live, 15)  # no Tavus conversation outlives its call
        assert len(tavus.conversations) == 2


async def test_when_tavus_fails_the_call_is_audio_only(tmp_path: Path, caller_sentence_wav: Path,
                                                       require_chromium: None) -> None:
    async with TavusDouble() as tavus, switchboard_run(tmp_path, **tavus_env(tavus, TAVUS_API_KEY="wrong-key")) \
            as sb, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(caller_sentence_wav))
        try:
            page = await open_call_page(browser, sb.base_url, "?persona=reception", login=sb.login_link())
            await page.click("#call")
            await page.wait_for_function("() => window.switchboardCall.avatar.status === 'unavailable'",
                                         timeout=30000)
            await page.wait_for_function("() => window.switchboardCall.agentAudio.loudMs > 1500", timeout=30000)
            assert not await page.evaluate("() => document.getElementById('agent-audio').muted")
            assert not await page.locator("#avatar").is_visible()
            assert tavus.conversations == {}  # refused: 401
            await page.click("#hangup")
            await page.wait_for_function("() => window.switchboardCall.state === 'ended'", timeout=30000)
        finally:
            await browser.close()
    # Daily's client cannot be loaded (blocked, offline): the page gives the avatar up, audio plays.
    async with TavusDouble() as tavus, \
            switchboard_run(tmp_path / "2", **tavus_env(tavus, TAVUS_DAILY_JS_URL=f"{tavus.base_url}/missing.js")) \
            as sb, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(caller_sentence_wav))
        try:
            page = await open_call_page(browser, sb.base_url, "?persona=reception", login=sb.login_link())
            await page.click("#call")
            await page.wait_for_function("() => window.switchboardCall.avatar.status === 'failed'", timeout=30000)
            await page.wait_for_function("() => window.switchboardCall.agentAudio.loudMs > 1500", timeout=30000)
            assert not await page.evaluate("() => document.getElementById('agent-audio').muted")
            await page.click("#hangup")
            await page.wait_for_function("() => window.switchboardCall.state === 'ended'", timeout=30000)
        finally:
            await browser.close()
        await until(lambda: not tavus.live, 15)  # the conversation the page never joined is ended too
