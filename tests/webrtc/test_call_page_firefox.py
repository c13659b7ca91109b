"""The /call page in Debian's Firefox ESR (over WebDriver BiDi): the same page, no browser-specific
code — connect, hear the agent, see its words, hang up, get the result. Firefox's fake microphone is
its test tone (no file of our choosing), so the caller says nothing here; the Chromium tests cover
speech. Without a sound device Firefox's Web Audio stays suspended, so the page measures the agent's
audio from the levels its RTP packets carry (RFC 6464), which is what is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.webrtc.conftest import SCREENSHOTS, switchboard_run, until
from tests.webrtc.firefox import FIREFOX, firefox

pytestmark = [pytest.mark.browser, pytest.mark.models]


async def test_call_page_works_in_firefox(tmp_path: Path) -> None:
    if FIREFOX is None:
        pytest.fail("Debian's firefox-esr is needed (scripts/test-deps.sh installs it)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with switchboard_run(tmp_path, WEBRTC_PUBLIC_TARGETS="persona:reception") as sb, \
            firefox(tmp_path / "firefox") as ff:
        await ff.goto(f"{sb.base_url}/call?persona=reception")
        await ff.wait_for("!document.getElementById('call').disabled", 15)
        await ff.click("#call")
        await ff.wait_for("window.switchboardCall.state === 'connected'", 30)
        await ff.wait_for("window.switchboardCall.agentAudio.loudMs > 1000", 30)
        await ff.wait_for("window.switchboardCall.transcript.some(t => t.speaker === 'agent' && "
                          "/Sara from reception/.test(t.text))", 30)
        assert await ff.evaluate("document.getElementById('persona').textContent") == "Sara (reception)"
        assert await ff.evaluate("window.switchboardCall.agentAudio.peak") > 0.05
        await ff.screenshot(SCREENSHOTS / "call-firefox.png")
        await ff.click("#hangup")
        await ff.wait_for("window.switchboardCall.state === 'ended'", 30)
        assert await ff.evaluate("document.getElementById('result-value').textContent") == "hangup"
    await until(lambda: any(c["result"] == "hangup" for c in sb.stored_calls()), 30)
