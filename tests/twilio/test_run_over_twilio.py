"""`TELEPHONY_BACKEND=twilio switchboard run` as a real process, with the Twilio double as Twilio.

The production path end to end: `switchboard contacts import` fills the built-in panel, `switchboard
run` loads the offline speech stack, builds the streamed prompts, serves the panel API and Twilio's
webhooks and media WebSocket on one port, and its dialer places calls through the double's REST API.
The double plays the phone network: customers who answer and really speak (Piper, as 20 ms μ-law
frames in real time), operators who answer `<Dial>`, and people who call our Twilio numbers.
Every shipped scenario runs outbound, every scenario with an inbound flow runs inbound; results are
read back through the panel API. Then SIGTERM: a graceful stop.

As in the other speech tests, salehi_language listens in English (`stt.language: en`): Whisper base
on synthesized Persian is not reliable enough to assert on. Nothing else in the scenarios changes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.speech import audio as A
from switchboard.speech.tts.piper import PiperTTS
from tests.twilio.double import Callee, DoubleCall, Operator, TwilioDouble
from tests.twilio.harness import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, PUBLIC

pytestmark = [pytest.mark.models, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
OUTBOUND_OPERATORS = ["+14155550191", "+14155550192", "+14155550193"]
INBOUND_OPERATORS = ["+14155550194", "+14155550195"]
CUSTOMERS = ["+14155550101", "+14155550102", "+14155550103", "+14155550104"]  # one outbound call per scenario
CALLERS = ["+14155550151", "+14155550152"]  # one inbound call per scenario with an inbound flow
TOKEN = "run-over-twilio-token"

# What a person says to each scenario, and the result it must end with.
WORDS = {
    "salehi_language": "Yes, sure, I am interested.",
    "agrad_marketing": "Please do not call me again.",
    "reception": "I would like to talk to a real person please.",
    "clinic_reminder": "Yes, sure. I will be there.",
}
OUTBOUND_RESULTS = {"salehi_language": "connected_to_operator", "agrad_marketing": "not_interested",
                    "reception": "connected_to_operator", "clinic_reminder": "appointment_confirmed"}
INBOUND_RESULTS = {"salehi_language": "inbound_call", "reception": "inbound_call"}
# Loud agent audio to hear before answering (a whole greeting, not a pause inside it): salehi's
# hello prompt, agrad's disclosure prompt then its spoken greeting, reception's spoken greeting.
GREETING = {"salehi_language": 4.0, "agrad_marketing": 4.0, "reception": 2.5, "clinic_reminder": 4.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Panel:
    """The running process's panel API, as an operator's tools would read it."""

    def __init__(self, port: int) -> None:
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15,
                                      headers={"Authorization": f"Bearer {TOKEN}"})

    async def up(self) -> bool:
        try:
            return (await self.http.get("/api/v1/dialer")).status_code == 200
        except httpx.HTTPError:
            return False

    async def calls(self, direction: str, phone: str | None = None) -> list[dict[str, Any]]:
        params = {"direction": direction, "limit": 50} | ({"phone": phone} if phone else {})
        response = await self.http.get("/api/v1/calls", params=params)
        response.raise_for_status()
        return response.json()["items"]

    async def scenario_of(self, direction: str, phone: str) -> str:
        """The scenario Switchboard runs on the call with `phone` (its row is written first)."""
        for _ in range(100):
            rows = await self.calls(direction, phone)
            if rows and rows[0]["scenario"]:
                return str(rows[0]["scenario"])
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {direction} call row for {phone}")

    async def finished(self, direction: str, count: int) -> bool:
        rows = await self.calls(direction)
        return len(rows) >= count and all(r["result"] for r in rows)


def person(panel: Panel, direction: str, phone: str, words: dict[str, A.Audio],
           heard: dict[str, str]) -> Callable[[DoubleCall], Awaitable[None]]:
    """A customer or caller: finds out (from the panel) which scenario reached them, waits for its
    greeting, answers with that scenario's words, then stays on the line."""

    async def script(call: DoubleCall) -> None:
        scenario = await panel.scenario_of(direction, phone)
        heard[phone] = scenario
        if direction == "inbound" and scenario == "salehi_language":
            return  # straight to an operator: nothing to say
        await call.media.wait_agent_spoke(min_audio=GREETING[scenario], timeout=120)
        await call.media.say_and_wait(words[scenario])

    return script


async def test_switchboard_run_on_twilio_runs_every_shipped_scenario_inbound_and_outbound(tmp_path: Path) -> None:
    assert set(SCENARIOS) == set(WORDS), "a scenario was added: say what its callers say here"
    words = {name: A.through_phone_line(await PiperTTS().synthesize(text, language="en"))
             for name, text in WORDS.items()}  # rendered before the calls: callers answer at once
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in SCENARIOS:
        text = (ROOT / "scenarios" / f"{name}.yaml").read_text()
        if name == "salehi_language":
            assert "  stt: {" in text
            text = text.replace("  stt: {", "  stt: {language: en, ", 1)
        (scenarios / f"{name}.yaml").write_text(text)
    contacts = tmp_path / "contacts.csv"  # department=reception: every scenario accepts these contacts
    contacts.write_text("phone,name,department\n" + "".join(f"{n},Sara,reception\n" for n in CUSTOMERS))

    port = free_port()
    local = f"127.0.0.1:{port}"

    def reach(url: str) -> str:  # the reverse proxy in front of TWILIO_PUBLIC_BASE_URL
        return url.replace(f"https://{PUBLIC[8:]}", f"http://{local}").replace(f"wss://{PUBLIC[8:]}", f"ws://{local}")

    double = TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=NUMBERS, reach=reach,
                          inbound_status_callback=f"{PUBLIC}/twilio/status")
    api = await double.start()
    for number in OUTBOUND_OPERATORS + INBOUND_OPERATORS:
        double.operators[number] = Operator(after=0.5, talk=2.0)
    panel = Panel(port)
    heard: dict[str, str] = {}
    for number in CUSTOMERS:
        double.callees[number] = Callee(script=person(panel, "outbound", number, words, heard))

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "TELEPHONY_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_NUMBERS": ",".join(NUMBERS), "TWILIO_PUBLIC_BASE_URL": PUBLIC, "TWILIO_API_BASE_URL": api,
        "OUTBOUND_AGENTS": ",".join(OUTBOUND_OPERATORS), "INBOUND_AGENTS": ",".join(INBOUND_OPERATORS),
        "OPERATOR_TIMEOUT": "10", "MAX_ATTEMPTS": "1", "CALLING_HOURS_START": "00:00", "CALLING_HOURS_END": "23:59",
        "SCENARIOS_DIR": str(scenarios), "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"),
        "RECORDINGS_DIR": str(tmp_path / "recordings"), "TTS_CACHE_DIR": str(tmp_path / "tts"),
        "PROMPTS_WAV_DIR": str(tmp_path / "wav"), "STRATEGIES_DIR": str(tmp_path / "strategies"),
        "PANEL_PORT": str(port), "BUILTIN_PANEL_TOKEN": TOKEN, "BUILTIN_PANEL_TOKEN_SCOPES": "dialer,read,pii",
    }
    imported = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "contacts", "import", str(contacts), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(imported.communicate(), 120)
    assert imported.returncode == 0, out.decode()[-2000:]

    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "run", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = bytearray()

    async def collect() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            output.extend(chunk)

    reader = asyncio.ensure_future(collect())

    def alive_and(check: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            assert proc.returncode is None, f"switchboard run exited early:\n{output.decode()[-3000:]}"
            return await check()
        return probe

    try:
        await until(alive_and(panel.up), 240, "the panel API")
        # Twilio's routes are served by the same server, and only to requests Twilio signed.
        unsigned = await panel.http.post("/twilio/voice", data={"CallSid": "CA1", "AccountSid": ACCOUNT_SID})
        assert unsigned.status_code == 403

        # Outbound: the dialer calls each imported contact on a Twilio line.
        await until(alive_and(lambda: panel.finished("outbound", len(CUSTOMERS))), 420, "the outbound results")
        # Inbound: people call our Twilio numbers.
        rings = [await double.incoming_call(number, NUMBERS[i % len(NUMBERS)], f"{PUBLIC}/twilio/voice",
                                            script=person(panel, "inbound", number, words, heard))
                 for i, number in enumerate(CALLERS)]
        await until(alive_and(lambda: panel.finished("inbound", len(CALLERS))), 300, "the inbound results")
        for ring in rings:
            await ring.wait_ended(60)

        outbound = {r["phone_e164"]: r for r in await panel.calls("outbound")}
        inbound = {r["phone_e164"]: r for r in await panel.calls("inbound")}
        log = output.decode()
        assert sorted(r["scenario"] for r in outbound.values()) == SCENARIOS, log[-3000:]
        assert sorted(r["scenario"] for r in inbound.values()) == sorted(INBOUND_RESULTS), log[-3000:]
        for direction, rows, expected in (("outbound", outbound, OUTBOUND_RESULTS),
                                          ("inbound", inbound, INBOUND_RESULTS)):
            for phone, row in rows.items():
                assert heard[phone] == row["scenario"]
                assert row["result"] == expected[row["scenario"]], (direction, row, log[-3000:])

        # What each scenario did on the wire, as Twilio saw it.
        dcalls = {c.to if c.direction == "outbound-api" else c.from_: c for c in double.calls.values()}
        for phone, dcall in dcalls.items():
            assert dcall.errors == [] and all(s.protocol_errors == [] for s in dcall.streams), (phone, dcall.errors)
            assert dcall.status == "completed"
            assert dcall.streams and dcall.streams[0].played_seconds() > 1.0  # we talked over Media Streams
        for scenario, result in OUTBOUND_RESULTS.items():
            phone = next(p for p, r in outbound.items() if r["scenario"] == scenario)
            row = outbound[phone]
            if result == "connected_to_operator":  # the operator saw the customer's number
                (dial,) = dcalls[phone].dials
                assert dial["callerId"] == phone and dial["number"] == row["operator"] in OUTBOUND_OPERATORS
            else:
                assert not dcalls[phone].dials
        salehi = next(r for r in outbound.values() if r["scenario"] == "salehi_language")
        assert "yes" in (salehi["user_message"] or "").lower() and salehi["intent"] == "yes"
        agrad = next(p for p, r in outbound.items() if r["scenario"] == "agrad_marketing")
        dnc = (await panel.http.get("/api/v1/dnc", params={"limit": 50})).json()
        assert agrad in {item["phone_e164"] for item in dnc["items"]}  # the opt-out was kept
        for phone, row in inbound.items():
            (dial,) = dcalls[phone].dials
            assert dial["callerId"] == phone and dial["number"] in INBOUND_OPERATORS
        detail = (await panel.http.get(f"/api/v1/calls/{salehi['id']}")).json()
        assert any("yes" in str(t).lower() for t in detail["transcripts"])
        state = (await panel.http.get("/api/v1/dialer")).json()
        assert state["contacts"] == {"done": len(CUSTOMERS)}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 90)
        finally:
            await asyncio.gather(reader, return_exceptions=True)
            await panel.http.aclose()
            await double.close()
    log = output.decode()
    assert proc.returncode == 0, log[-3000:]
    assert "switchboard running: backend=twilio" in log and "stopping" in log

