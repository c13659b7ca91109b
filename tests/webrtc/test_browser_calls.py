"""Browser calls in one process, the way `switchboard run` wires them (real speech, the real dialer
and store, the panel server on loopback), driven by Python WebRTC peers where a test needs control:
several calls at once that end every way a call can end — the caller hangs up, the tab closes, the
network dies, the agent ends it — each with its result stored and shown, and nothing left behind.
Then every way a request can be wrong gets a 4xx that says why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from switchboard.speech.audio import resample
from switchboard.telephony.webrtc.backend import BrowserCall
from tests.webrtc.client import BrowserPeer
from tests.webrtc.conftest import CALLER_SENTENCE, until
from tests.webrtc.harness import AUTH, served, token

pytestmark = pytest.mark.models


def caller_audio() -> bytes:
    from switchboard.speech.tts.piper import PiperTTS

    return resample(PiperTTS().synthesize_sync(CALLER_SENTENCE), 48000).pcm


def is_agent_line(ev: dict) -> bool:  # type: ignore[type-arg]
    return ev["type"] == "transcript" and ev["speaker"] == "agent"


async def test_several_browser_calls_at_once_end_every_way_with_results_and_leave_nothing(tmp_path: Path) -> None:
    baseline = set(asyncio.all_tasks())
    speech = caller_audio()
    async with served(tmp_path, webrtc_media_timeout=2.0) as sb:
        peers = {name: BrowserPeer() for name in ("hangs_up", "closes_tab", "loses_network", "stays_silent")}
        targets = {"hangs_up": {"scenario": "reception"}, "closes_tab": {"persona": "reception"},
                   "loses_network": {"scenario": "reception"}, "stays_silent": {"persona": "reception"}}
        tokens = {name: await token(sb.http, **targets[name]) for name in peers}
        await asyncio.gather(*(peer.call(sb.http, tokens[name]) for name, peer in peers.items()))
        assert len(sb.webrtc.active) == 4
        server_side: list[BrowserCall] = list(sb.webrtc.active.values())

        async def talk(peer: BrowserPeer) -> None:
            await peer.wait_event(is_agent_line, 40)  # the greeting has been said
            peer.mic.say(speech)
            await peer.wait_event(lambda ev: ev["type"] == "handoff" and ev["to"] == "sales", 90)
            await peer.wait_event(lambda ev: is_agent_line(ev) and "490 thousand" in ev["text"], 60)

        talkers = ("hangs_up", "closes_tab", "loses_network")
        await asyncio.gather(*(talk(peers[n]) for n in talkers))
        for name in talkers:  # the agent's answers reached each caller as sound, not only as text
            assert peers[name].loud_seconds() > 4.0, name
        await peers["hangs_up"].wait_open()
        peers["hangs_up"].send({"type": "hangup"})
        await peers["closes_tab"].pc.close()
        peers["loses_network"].mic.muted = True
        # Each page is told the result, then that the call is over (except those that are gone).
        result = await peers["hangs_up"].wait_event(lambda ev: ev["type"] == "result", 20)
        assert result["result"] == "hangup"
        await peers["hangs_up"].wait_event(lambda ev: ev["type"] == "hangup", 20)
        # Nobody spoke on the fourth call: the agent asks again, says goodbye and ends it.
        silent = await peers["stays_silent"].wait_event(lambda ev: ev["type"] == "result", 60)
        await peers["stays_silent"].wait_event(lambda ev: ev["type"] == "hangup", 20)

        async def results() -> list:  # type: ignore[type-arg]
            page = await sb.node.store.calls.list(direction="inbound", limit=50)  # type: ignore[attr-defined]
            return [c for c in page.items if c.result]

        async def all_four() -> bool:
            return len(await results()) == 4

        await until(all_four, 30)
        rows = await results()
        by_phone = sorted((c.phone, c.scenario, c.result) for c in rows)
        assert all(p == "web:BUILTIN_PANEL_TOKEN" for p, _, _ in by_phone)
        assert sorted(r for _, _, r in by_phone) == sorted(["hangup", "hangup", "hangup", silent["result"]])
        assert sorted(s for _, s, _ in by_phone) == ["persona.reception", "persona.reception", "reception",
                                                      "reception"]
        assert all(any("price" in (t.get("text") or "").lower() for t in (c.transcripts or []))
                   for c in rows if c.result == "hangup")
        await until(lambda: not sb.webrtc.active, 10)
        assert all(bc.peer.pc.connectionState == "closed" for bc in server_side)
        assert all(bc.ended.is_set() for bc in server_side)
        for peer in peers.values():
            await peer.close()
    await asyncio.sleep(0.3)
    left = [t for t in asyncio.all_tasks() if t not in baseline and t is not asyncio.current_task()]
    assert left == [], left


async def test_bad_requests_get_a_4xx_that_says_why(tmp_path: Path) -> None:
    async with served(tmp_path, webrtc_public_targets="persona:reception", webrtc_public_tokens_per_minute=2,
                      webrtc_max_calls=1) as sb:
        http = sb.http
        # Strangers may call only public targets, a few times a minute.
        assert (await http.post("/api/v1/calls/token", json={"persona": "sales"})).status_code == 401
        assert (await http.post("/api/v1/calls/token", json={"scenario": "nowhere"})).status_code == 401
        for _ in range(2):
            assert (await http.post("/api/v1/calls/token", json={"persona": "reception"})).status_code == 201
        limited = await http.post("/api/v1/calls/token", json={"persona": "reception"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        anonymous = (await http.get("/api/v1/webrtc/targets")).json()
        assert [t["name"] for t in anonymous["targets"]] == ["reception"] and not anonymous["signed_in"]
        # Malformed requests.
        both = await http.post("/api/v1/calls/token", json={"persona": "sales", "scenario": "reception"}, headers=AUTH)
        assert both.status_code == 422 and "exactly one" in both.text
        unknown = await http.post("/api/v1/calls/token", json={"persona": "ghost"}, headers=AUTH)
        assert unknown.status_code == 404 and "ghost" in unknown.text
        bogus = await http.post("/api/v1/webrtc/offer", json={"token": "nope", "sdp": "v=0"})
        assert bogus.status_code == 401 and "call token" in bogus.text
        no_audio = await http.post("/api/v1/webrtc/offer", json={"token": await token(http, persona="sales"),
                                                                  "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n"})
        assert no_audio.status_code == 400 and "m=audio" in no_audio.text
        huge = await http.post("/api/v1/webrtc/offer", json={"token": "x", "sdp": "v" * 70000})
        assert huge.status_code == 422
        # A token is spent by its first offer, whatever happened to it.
        peer = BrowserPeer()
        once = await token(http, persona="sales")
        await peer.call(http, once)
        second = BrowserPeer()
        offer = await second.offer()
        reused = await http.post("/api/v1/webrtc/offer", json={"token": once, "sdp": offer.sdp})
        assert reused.status_code == 401
        # Every slot in use: 503 with Retry-After, and the token is not the problem.
        busy = await http.post("/api/v1/webrtc/offer", json={"token": await token(http, persona="sales"),
                                                              "sdp": offer.sdp})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        await peer.wait_open()
        peer.send({"type": "hangup"})
        await peer.wait_event(lambda ev: ev["type"] == "hangup", 30)
        await until(lambda: not sb.webrtc.active, 10)
        await peer.close()
        await second.close()


def onset(pcm48k: bytes) -> float:
    """Seconds from the start of `pcm48k` to the first sound in it."""
    samples = np.frombuffer(pcm48k, dtype="<i2").astype(np.float32) / 32768
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.02)
    return float(loud[0]) * 0.02 if len(loud) else 0.0


async def test_barge_in_over_webrtc_stops_the_agent_and_keeps_the_callers_words(tmp_path: Path) -> None:
    speech = caller_audio()
    async with served(tmp_path) as sb:
        peer = BrowserPeer()
        await peer.call(sb.http, await token(sb.http, persona="reception"))
        # The greeting is playing at the "browser" ...
        await until(lambda: peer.first_loud_at is not None, 30)
        await asyncio.sleep(0.6)
        peer.mic.say(speech)  # ... and the caller talks over it.
        await until(lambda: peer.mic.speech_started_at is not None, 5)
        spoke_at = peer.mic.speech_started_at + onset(speech)
        greeting = await peer.wait_event(lambda ev: is_agent_line(ev) and "Sara from reception" in ev["text"], 30)
        assert greeting["interrupted"], greeting
        await peer.wait_event(lambda ev: ev["type"] == "barge_in", 5)
        # The agent's audio stopped at the browser shortly after the caller started speaking.
        await asyncio.sleep(0.3)
        loud_after = [t for t, rms in peer.received if t > spoke_at and rms > 0.01]
        quiet_from = next((t for t in loud_after if not any(t < u < t + 0.3 for u in loud_after)), spoke_at)
        assert quiet_from - spoke_at < 1.2, f"agent audio went on {quiet_from - spoke_at:.2f} s into the caller's speech"
        # The words that interrupted are not lost: the caller is handed to sales.
        await peer.wait_event(lambda ev: ev["type"] == "handoff" and ev["to"] == "sales", 90)
        caller = next(ev for ev in peer.events if ev["type"] == "transcript" and ev["speaker"] == "caller")
        assert "price" in caller["text"].lower()
        await peer.wait_open()
        peer.send({"type": "hangup"})
        await peer.wait_event(lambda ev: ev["type"] == "hangup", 30)
        await peer.close()
