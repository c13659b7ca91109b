"""The /call page end to end: `switchboard run` (TELEPHONY_BACKEND=webrtc, offline speech, scripted
personas) and Debian's Chromium whose fake microphone plays a caller's sentence.

The caller asks for prices: the reception persona greets them, hears it (Silero + Whisper on the
audio that crossed WebRTC), hands them to sales, whose answer the page receives as audio (measured
in the page with WebAudio) and as text; Hang up ends the call and its result is shown and stored.
A second test runs two tabs at once and closes one in the middle of its call: that call still ends
with a stored result, the other goes on to its end, and the server keeps nothing of either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from tests.webrtc.conftest import CHROMIUM, SCREENSHOTS, chromium_args, switchboard_run, until

pytestmark = [pytest.mark.browser, pytest.mark.models]


async def open_call_page(browser, base_url: str, query: str = "", login: str | None = None) -> Page:  # type: ignore[no-untyped-def]
    context = await browser.new_context()
    page = await context.new_page()
    if login:  # a person signs in to the console first (one-time link), then opens /call
        await page.goto(login)
        await page.click("#use-link")
        await page.wait_for_url("**/account**")
        assert await page.locator("nav a[href='/call']").count() == 1  # the console offers browser calls
    await page.goto(f"{base_url}/call{query}")
    await page.wait_for_function("() => !document.getElementById('call').disabled", timeout=15000)
    return page


def no_calls_left(sb, left: int = 0):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (await sb.status())["active_calls"] == left

    return check


async def call_state(page: Page) -> dict:  # type: ignore[type-arg]
    return await page.evaluate("JSON.parse(JSON.stringify(window.switchboardCall))")


async def test_talk_to_reception_get_sales_and_hang_up(tmp_path: Path, caller_sentence_wav: Path,
                                                        require_chromium: None) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with switchboard_run(tmp_path) as sb, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(caller_sentence_wav))
        try:
            page = await open_call_page(browser, sb.base_url, "?scenario=reception", login=sb.login_link())
            assert await page.locator("#target").input_value() == "scenario:reception"
            await page.click("#call")
            # The greeting arrives as audio, and reception is on the line.
            await page.wait_for_function("() => window.switchboardCall.state === 'connected'", timeout=30000)
            await page.wait_for_function("() => window.switchboardCall.agentAudio.loudMs > 1000", timeout=30000)
            await page.wait_for_function("() => window.switchboardCall.persona === 'reception'", timeout=30000)
            await page.screenshot(full_page=True, path=str(SCREENSHOTS / "call-reception.png"))
            # The caller's sentence is heard and transcribed; reception hands over to sales.
            await page.wait_for_function("() => window.switchboardCall.handoffs.length > 0", timeout=90000)
            await page.wait_for_function("() => window.switchboardCall.persona === 'sales'", timeout=30000)
            assert await page.locator("#persona").inner_text() == "Omid (sales)"
            assert "Sara (reception) → Omid (sales)" in await page.locator("#handoffs").inner_text()
            # Sales answers the question: its words reach the page as audio and as text.
            await page.wait_for_function(
                "() => window.switchboardCall.transcript.some(t => t.speaker === 'agent' && /490 thousand/.test(t.text))",
                timeout=60000)
            state = await call_state(page)
            said = [t["text"] for t in state["transcript"] if t["speaker"] == "caller"]
            assert any("price" in s.lower() for s in said), state["transcript"]
            assert state["agentAudio"]["peak"] > 0.05 and state["agentAudio"]["loudMs"] > 4000, state["agentAudio"]
            assert state["mic"]["peak"] > 0.05  # the meter saw the caller's voice
            assert state["turns"] and all(200 <= t["latency"] < 60000 for t in state["turns"]), state["turns"]
            text = await page.locator("#transcript").inner_text()
            assert "You" in text and "Omid (sales)" in text
            await page.screenshot(full_page=True, path=str(SCREENSHOTS / "call-sales.png"))
            await page.click("#hangup")
            await page.wait_for_function("() => window.switchboardCall.result !== null", timeout=30000)
            await page.wait_for_function("() => window.switchboardCall.state === 'ended'", timeout=15000)
            assert await page.locator("#result-value").inner_text() == "hangup"
            await page.screenshot(full_page=True, path=str(SCREENSHOTS / "call-ended.png"))
        finally:
            await browser.close()
        await until(lambda: any(c["result"] for c in sb.stored_calls()), 30)
        stored = [c for c in sb.stored_calls() if c["phone"].startswith("web:")]
        assert len(stored) == 1, stored
        assert stored[0]["phone"] == "web:admin"  # who called, as the console knows them
        call = stored[0]
        assert call["direction"] == "inbound" and call["scenario"] == "reception" and call["result"] == "hangup"
        assert "price" in (call["user_message"] or "").lower()
        await until(no_calls_left(sb), 15)


async def test_two_tabs_at_once_one_closed_mid_call_both_end_with_results_and_leave_nothing(
        tmp_path: Path, caller_sentence_wav: Path, require_chromium: None) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Anonymous callers: the persona is public ("Call us" on a web page), nobody signs in.
    async with switchboard_run(tmp_path, WEBRTC_PUBLIC_TARGETS="persona:reception") as sb, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(caller_sentence_wav))
        try:
            closing = await open_call_page(browser, sb.base_url, "?persona=reception")
            staying = await open_call_page(browser, sb.base_url, "?persona=reception")
            options = await closing.locator("#target option").all_inner_texts()
            assert options == ["Sara (reception)"]  # strangers see only public targets
            await closing.click("#call")
            await staying.click("#call")
            for page in (closing, staying):
                await page.wait_for_function("() => window.switchboardCall.agentAudio.loudMs > 1000", timeout=30000)
            assert (await sb.status())["active_calls"] == 2
            await closing.screenshot(full_page=True, path=str(SCREENSHOTS / "call-before-tab-close.png"))
            await closing.context.close()  # the tab (and its window) goes away mid-call
            await until(lambda: any(c["result"] for c in sb.stored_calls()), 30)
            # The other call goes on: the caller is heard and handed to sales.
            await until(no_calls_left(sb, 1), 15)
            await staying.wait_for_function("() => window.switchboardCall.persona === 'sales'", timeout=90000)
            await staying.click("#hangup")
            await staying.wait_for_function("() => window.switchboardCall.state === 'ended'", timeout=30000)
            assert await staying.locator("#result-value").inner_text() == "hangup"
        finally:
            await browser.close()
        await until(lambda: len([c for c in sb.stored_calls() if c["result"]]) == 2, 30)
        calls = sb.stored_calls()
        assert [(c["phone"], c["scenario"], c["result"]) for c in calls] == \
            [("web:anonymous", "persona.reception", "hangup")] * 2
        # Only the call that went on heard the caller's question.
        assert sorted("price" in (c["user_message"] or "").lower() for c in calls) == [False, True]
        await until(no_calls_left(sb), 15)  # each call lets go of everything once its page is told


async def test_browser_calls_beside_asterisk(tmp_path: Path) -> None:
    """WEBRTC_ENABLED=true: phones on Asterisk, browsers on /call, one process, one store."""
    from tests.asterisk.double import AriDouble
    from tests.webrtc.client import BrowserPeer
    from tests.webrtc.harness import AUTH

    sounds = tmp_path / "sounds"
    sounds.mkdir()
    async with AriDouble(scale=0.05, sounds_dir=str(sounds)) as ari, switchboard_run(
            tmp_path, TELEPHONY_BACKEND="asterisk", WEBRTC_ENABLED="true", ARI_BASE_URL=ari.base_url,
            ARI_WS_URL=ari.ws_url, ARI_USERNAME=ari.username, ARI_PASSWORD=ari.password, ARI_APP_NAME="switchboard",
            AST_SOUND_DIR=str(sounds)) as sb:
        import httpx

        async with httpx.AsyncClient(base_url=sb.base_url, timeout=20) as http:
            minted = await http.post("/api/v1/calls/token", json={"persona": "reception"}, headers=AUTH)
            assert minted.status_code == 201, minted.text
            peer = BrowserPeer()
            await peer.call(http, minted.json()["token"])
            greeting = await peer.wait_event(lambda ev: ev["type"] == "transcript" and ev["speaker"] == "agent", 40)
            assert "Sara from reception" in greeting["text"] and peer.loud_seconds() > 1.0
            await peer.wait_open()
            peer.send({"type": "hangup"})
            result = await peer.wait_event(lambda ev: ev["type"] == "result", 30)
            await peer.close()
        assert result["result"] == "hangup"
        await until(lambda: any(c["phone"] == "web:BUILTIN_PANEL_TOKEN" and c["result"] == "hangup"
                                for c in sb.stored_calls()), 30)
        assert ari.sim.channels == {}  # the browser call never touched the PBX
