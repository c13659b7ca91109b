"""The console in Debian's Chromium: signing in and out, a call page with its transcript and a
recording that plays, scenario switches and a broken YAML, a contact import with a bad row, an
XLSX export opened with openpyxl, a viewer's masked numbers, the wizard drafting from a loopback
page; and a screenshot of every page under build/screenshots/."""

from __future__ import annotations

import http.server
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import (PASSWORD, ROOT, add_user, console_settings, free_port, serve_console, shot,
                                    sign_in, with_store)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

EVIL = "=HYPERLINK(\"http://evil.example\",\"click\")"


async def seed_calls(store: Any, settings: Any) -> None:
    """Two finished calls as the dialer records them: one IVR call (prompts said, an answer, its
    intent), one AI conversation (turns with persona, latency and tokens), with the caller's
    utterance kept as a real WAV (eSpeak NG speech) and its enhanced copy."""
    from switchboard import clock
    from switchboard.speech.audio import write_wav
    from switchboard.speech.enhance import enhance
    from switchboard.speech.tts.espeak import EspeakTTS
    from switchboard.store import CallData, EventData

    t0 = clock.now() - timedelta(minutes=5)
    ivr = [("call_started", {"at": 0.0}), ("step", {"step": "greet", "type": "say", "at": 2.0}),
           ("said", {"step": "greet", "text": "Hello Layla, this is Agrad.", "at": 4.8}),
           ("step", {"step": "listen", "type": "record", "at": 4.8}),
           ("transcript", {"step": "listen", "text": "yes, I'm interested", "at": 7.9}),
           ("intent", {"step": "classify", "intent": "yes", "path": "fallback", "latency": 0.01, "at": 7.9}),
           ("call_ended", {"result": "connected_to_operator", "at": 40.0})]
    await store.calls.record(
        CallData(id="out-ivr000001", direction="outbound", phone="09127000000", phone_e164="+989127000000",
                 scenario="agrad_marketing", line="02191000001", operator="09122222222", originated_at=t0,
                 answered_at=t0 + timedelta(seconds=2), ended_at=t0 + timedelta(seconds=40),
                 result="connected_to_operator", intent="yes", user_message=EVIL,
                 transcripts=[{"role": "caller", "text": "yes, I'm interested", "step": "listen"}],
                 attributes={"steps": ["greet", "listen"], "intent_path": "fallback", "usage": {},
                             "call_ref": "sim-test-1", "recordings": []}),
        [EventData(t0 + timedelta(seconds=d["at"]), kind, d) for kind, d in ivr])
    turns = [("turn", {"speaker": "agent", "persona": "reception", "text": "Welcome to Agrad, how can I help?",
                       "latency": 0.41, "at": 0.5}),
             ("turn", {"speaker": "caller", "persona": "reception", "text": "I want to buy internet", "at": 3.0}),
             ("turn", {"speaker": "agent", "persona": "sales", "text": "Our home plan is 20 euros a month.",
                       "latency": 0.62, "prompt_tokens": 310, "completion_tokens": 24, "at": 4.1})]
    await store.calls.record(
        CallData(id="in-ai00000001", direction="inbound", phone="09351234567", phone_e164="+989351234567",
                 scenario="reception", line="02191000002", originated_at=t0 + timedelta(seconds=60),
                 answered_at=t0 + timedelta(seconds=60), ended_at=t0 + timedelta(seconds=95), result="inbound_call",
                 attributes={"persona": "sales", "usage": {"llm_prompt_tokens": 310, "llm_completion_tokens": 24,
                                                           "llm_requests": 1}}),
        [EventData(t0 + timedelta(seconds=60 + d["at"]), kind, d) for kind, d in turns])
    audio = await EspeakTTS().synthesize("yes, I'm interested", language="en")
    root = settings.recordings_dir
    write_wav(root / "sim-test-1-listen-0.wav", audio)
    write_wav(root / "enhanced" / "sim-test-1-listen-0.wav", enhance(audio))


async def seed_proposal(settings: Any) -> None:
    from switchboard.brain.memory import unified_diff
    from switchboard.brain.personas import load_persona
    from switchboard.brain.repository import JsonBrainRepository, Proposal

    persona = load_persona(settings.personas_dir / "sales.yaml")
    current = persona.prompt("en")
    proposed = current.rstrip() + "\nBe warm: callers found the agent curt."
    repo = JsonBrainRepository(settings.data_dir / "brain.json")
    await repo.add_proposal(Proposal(target_kind="persona", target="sales", base_version=persona.version,
                                     current_text=current, proposed_text=proposed,
                                     diff=unified_diff(current, proposed, "persona:sales"),
                                     rationale="callers found the agent curt", language="en"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    settings = console_settings(tmp_path)
    add_user(settings, "ann", "admin")
    add_user(settings, "vic", "viewer")
    with_store(settings, lambda store: seed_calls(store, settings))
    with_store(settings, lambda store: seed_proposal(settings))
    with serve_console(settings) as s:
        yield s


def test_sign_in_and_out(page: Any, served: Any) -> None:
    base = served.base
    page.goto(f"{base}/calls")
    assert page.url.startswith(f"{base}/login?next=")
    shot(page, "login")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-form button[type=submit]")
    assert "wrong username or password" in page.inner_text("#login-error")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base}/calls")  # back where they were going
    cookie = next(c for c in page.context.cookies() if c["name"] == "sb_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert page.inner_text("#me") == "ann"
    page.click("#logout")
    page.wait_for_url(f"{base}/login")
    page.goto(f"{base}/live")
    assert page.url.startswith(f"{base}/login")


def test_call_page_transcript_and_recording(page: Any, served: Any) -> None:
    base = served.base
    sign_in(page, base, "ann")
    page.goto(f"{base}/calls")
    shot(page, "calls")
    page.click("tr[data-call='out-ivr000001'] a")
    page.wait_for_url(f"{base}/calls/out-ivr000001")
    transcript = page.inner_text("#transcript")
    assert "Hello Layla, this is Agrad." in transcript and "yes, I'm interested" in transcript
    assert "yes" in page.inner_text("#intents") and "fallback" in page.inner_text("#intents")
    assert "+989127000000" in page.inner_text("#call-phone")
    players = page.locator("#recordings audio")
    assert players.count() == 2  # the original and the enhanced copy
    played = page.evaluate("""async () => {
        const a = document.querySelector('#recordings audio[data-kind=original]');
        a.muted = true; await a.play();
        await new Promise(r => setTimeout(r, 700));
        return {t: a.currentTime, d: a.duration, err: a.error && a.error.code};
    }""")
    assert played["err"] is None and played["t"] > 0.2 and played["d"] > 0.5, played
    shot(page, "call")
    page.fill("#feedback-form textarea[name=comment]", "Good handoff to the operator")
    page.select_option("#feedback-form select[name=rating]", "5")
    page.click("#feedback-form button[type=submit]")
    assert "Feedback saved" in page.inner_text(".flash.ok")
    assert "Good handoff to the operator" in page.inner_text("#feedback ~ p")
    page.goto(f"{base}/calls/in-ai00000001")
    turns = page.inner_text("#transcript")
    assert "sales" in turns and "latency 0.62 s" in turns and "334 tokens" in turns
    shot(page, "call_conversation")
    # A file outside the call's recordings is never served.
    r = page.request.get(f"{base}/calls/out-ivr000001/audio?f=../data/switchboard.db")
    assert r.status == 404


def test_viewer_sees_masked_numbers_and_no_recordings(page: Any, served: Any) -> None:
    base = served.base
    sign_in(page, base, "vic")
    page.goto(f"{base}/calls")
    table = page.inner_text("#calls")
    assert "+989***0000" in table and "+989127000000" not in table
    assert page.locator("#export-xlsx").count() == 0 and page.locator("input[name=phone]").count() == 0
    page.goto(f"{base}/calls/out-ivr000001")
    assert page.inner_text("#call-phone") == "+989***0000"
    assert page.locator("audio").count() == 0 and "does not include recordings" in page.content()
    assert page.request.get(f"{base}/calls/out-ivr000001/audio?f=sim-test-1-listen-0.wav").status == 403
    shot(page, "call_as_viewer")
    page.goto(f"{base}/settings")
    assert "403" in page.inner_text("h1")
    shot(page, "error_403")


def test_xlsx_export_opens_with_openpyxl(page: Any, served: Any, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    base = served.base
    sign_in(page, base, "ann")
    page.goto(f"{base}/calls?scenario=agrad_marketing")
    with page.expect_download() as info:
        page.click("#export-xlsx")
    assert info.value.suggested_filename == "calls.xlsx"
    path = tmp_path / "calls.xlsx"
    info.value.save_as(path)
    ws = load_workbook(path).active
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    assert header[:5] == ("call_id", "direction", "scenario", "persona", "phone")
    assert len(rows) == 2 and rows[1][0] == "out-ivr000001"
    record = dict(zip(header, rows[1]))
    assert record["phone"] == "09127000000" and record["result"] == "connected_to_operator"
    assert record["user_message"] == "'" + EVIL  # a formula arrives as text
    assert all(cell.data_type == "s" for cell in next(ws.iter_rows(min_row=2, max_row=2)) if cell.value is not None
               and isinstance(cell.value, str))
    with page.expect_download() as info:
        page.click("#export-csv")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text


def test_contact_import_with_a_bad_row(page: Any, served: Any, tmp_path: Path) -> None:
    base = served.base
    csv = tmp_path / "contacts.csv"
    csv.write_text("phone,name,plan\n09121110001,Reza,gold\n12,Bad Number,gold\n09121110002,Sara,silver\n"
                   "09121110001,Reza again,gold\n", encoding="utf-8")
    sign_in(page, base, "ann")
    page.goto(f"{base}/contacts")
    page.set_input_files("#import-file", str(csv))
    page.fill("#import-campaign", "spring")
    page.click("#import-submit")
    page.wait_for_url(f"{base}/contacts/import/*")
    assert page.get_attribute("#import-summary", "data-state") == "done"
    assert page.inner_text("#imported") == "2 imported" and page.inner_text("#rejected") == "2 rejected"
    errors = page.inner_text("#import-errors")
    assert "3\tinvalid phone number" in errors and "12" in errors
    assert "5\tduplicate: same number earlier in the file" in errors
    shot(page, "import")
    page.goto(f"{base}/contacts")
    assert "Reza" in page.inner_text("#contacts") and "Sara" in page.inner_text("#contacts")
    shot(page, "contacts")
    page.goto(f"{base}/campaigns")
    assert "spring" in page.inner_text("#campaigns")
    shot(page, "campaigns")
    page.goto(f"{base}/dnc")
    page.fill("#dnc-add input[name=phone]", "09121110002")
    page.click("#dnc-add button")
    assert "+989121110002" in page.inner_text("#dnc")
    shot(page, "dnc")


def _env(settings: Any) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(settings.data_dir.parent), "COLUMNS": "200",
            "DATA_DIR": str(settings.data_dir), "LOGS_DIR": str(settings.logs_dir),
            "SCENARIOS_DIR": str(settings.scenarios_dir), "RECORDINGS_DIR": str(settings.recordings_dir),
            "PERSONAS_DIR": str(settings.personas_dir), "STRATEGIES_DIR": str(settings.strategies_dir)}


def test_scenario_switched_off_gets_no_contacts(page: Any, served: Any) -> None:
    base = served.base
    sign_in(page, base, "ann")
    page.goto(f"{base}/scenarios")
    page.click("button[data-switch='salehi_language']")
    assert "salehi_language switched off" in page.inner_text(".flash.ok")
    assert page.inner_text("tr[data-scenario='salehi_language'] .switch-off") == "off"
    shot(page, "scenarios")
    run = subprocess.run([sys.executable, "-m", "switchboard.cli", "run", "--contacts", "4", "--text",
                          "--no-console"], cwd=ROOT, env={**_env(served.settings), "MAX_ATTEMPTS": "1"},
                         capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stdout + run.stderr
    db = sqlite3.connect(served.settings.data_dir / "switchboard.db")
    dialed = dict(db.execute("select scenario, count(*) from calls where direction='outbound' and line is not null "
                             "and id != 'out-ivr000001' and callback_id is null group by scenario").fetchall())
    assert sum(dialed.values()) == 4 and "salehi_language" not in dialed, dialed  # the other scenarios took them
    # The last scenario switched on cannot be switched off (an empty roster means "all").
    page.goto(f"{base}/scenarios")
    page.click("button[data-switch='reception']")
    assert "reception switched off" in page.inner_text(".flash.ok")
    page.click("button[data-switch='clinic_reminder']")
    assert "clinic_reminder switched off" in page.inner_text(".flash.ok")
    page.click("button[data-switch='agrad_marketing']")
    assert "last scenario switched on" in page.inner_text(".flash.bad")


def test_broken_yaml_shows_errors_inline_and_the_old_version_keeps_running(page: Any, served: Any) -> None:
    base = served.base
    path = served.settings.scenarios_dir / "agrad_marketing.yaml"
    original = path.read_text(encoding="utf-8")
    running = served.link.registry.get("agrad_marketing").version
    sign_in(page, base, "ann")
    page.goto(f"{base}/scenarios/agrad_marketing")
    shot(page, "scenario")
    text = page.input_value("#yaml-text")
    page.fill("#yaml-text", text.replace("next: classify, on_empty: retry", "next: clasify, on_empty: retry"))
    page.click("#save-yaml")
    errors = page.inner_text("#yaml-errors")
    assert "'clasify', which does not exist" in errors and "did you mean 'classify'" in errors
    assert "nothing was saved" in errors and f"version {running} keeps running" in errors
    assert "↑ [unknown-target]" in page.inner_text("#yaml-lines")  # next to its line
    shot(page, "scenario_errors")
    assert path.read_text(encoding="utf-8") == original
    # Broken on disk, then reloaded: the previous version keeps running and the page says why.
    path.write_text(original.replace("flow:\n", "flow: [\n", 1), encoding="utf-8")
    page.goto(f"{base}/scenarios")
    page.click("#reload")
    assert "agrad_marketing kept the previous version" in page.inner_text(".flash.ok")
    row = page.inner_text("tr[data-scenario='agrad_marketing']")
    assert "error" in row and "the previous version keeps running" in row and running in row
    assert served.link.registry.get("agrad_marketing").version == running
    page.goto(f"{base}/scenarios/agrad_marketing")
    assert "line" in page.inner_text("#yaml-errors")
    # A valid edit is saved, reloaded and runs.
    page.fill("#yaml-text", original.replace("Would you like to hear", "Would you like to hear today"))
    page.click("#save-yaml")
    assert "Saved and reloaded" in page.inner_text(".flash.ok")
    assert served.link.registry.get("agrad_marketing").version != running


class _Site(http.server.BaseHTTPRequestHandler):
    PAGE = """<!doctype html><html><head><title>Agrad Fiber | Home internet</title>
    <meta name="description" content="Agrad Fiber brings 100 Mbit/s home internet to Tehran with free installation.">
    <script>document.write('ignore this')</script></head><body>
    <h1>Fast home internet</h1><p>Agrad Fiber connects homes in Tehran with fibre up to 100 Mbit/s.</p>
    <h2>How long does installation take?</h2><p>A technician installs the line within three working days.</p>
    <h2>Plans</h2><p>Monthly plans start at 20 euros, with no contract.</p></body></html>"""

    def do_GET(self) -> None:  # noqa: N802
        body = self.PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_wizard_drafts_from_a_loopback_page(page: Any, tmp_path: Path) -> None:
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    port = site.server_address[1]
    settings = console_settings(tmp_path, studio_fetch_allow_hosts=f"127.0.0.1:{port}")
    add_user(settings, "ann", "admin")
    try:
        with serve_console(settings) as s:
            sign_in(page, s.base, "ann")
            page.goto(f"{s.base}/studio/wizard")
            shot(page, "wizard")
            page.fill("input[name=industry]", "home internet")
            page.fill("input[name=use_case]", "outbound offer")
            page.fill("input[name=goal]", "book an installation")
            page.fill("input[name=url]", f"http://127.0.0.1:{port}/")
            page.click("#draft")
            assert "No LLM is configured" in page.inner_text("#draft-note")
            assert page.inner_text("#page-title") == "Agrad Fiber | Home internet"
            draft = page.input_value("#strategy-yaml")
            assert "Agrad Fiber — outbound offer" in draft and "book an installation" in draft
            assert "How long does installation take?" in draft and "three working days" in draft
            assert "ignore this" not in draft
            shot(page, "wizard_draft")
            page.click("#save-strategy")
            assert "saved and live" in page.inner_text(".flash.ok")
            page.goto(f"{s.base}/studio")
            assert "Agrad Fiber — outbound offer" in page.inner_text("#strategies")
            # Another loopback address is not on the allow list: refused, nothing fetched.
            page.goto(f"{s.base}/studio/wizard")
            for name, value in (("industry", "x" * 3), ("use_case", "y" * 3), ("goal", "z" * 3),
                                ("url", f"http://127.0.0.1:{free_port()}/admin")):
                page.fill(f"input[name={name}]", value)
            page.click("#draft")
            assert "private or local address" in page.inner_text("#wizard-error")
    finally:
        site.shutdown()


def test_every_page_renders(page: Any, served: Any) -> None:
    """Screenshots of the pages the other tests do not open (and a check that each renders)."""
    base = served.base
    sign_in(page, base, "ann")
    shot(page, "live")
    for path, name, marker in [("/reports", "reports", "#report"), ("/reports?group_by=day", "reports_by_day",
                                                                   "#report-chart svg"),
                               ("/reports?group_by=persona", "reports_by_persona", "#report"),
                               ("/studio", "studio", "#personas"), ("/studio/personas/sales", "persona",
                                                                    "#persona-form"),
                               ("/studio/strategies/spring-promo", "strategy", "#strategy-form"),
                               ("/studio/proposals", "proposals", ".proposal"),
                               ("/studio/timeline", "timeline", "#feedback-timeline"),
                               ("/settings", "settings", "#provider-table"), ("/audit", "audit", "#audit"),
                               ("/account", "account", "#password-form")]:
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        assert page.locator(marker).count() >= 1, path
        shot(page, name)
    page.goto(base + "/studio/proposals")
    assert "callers found the agent curt" in page.inner_text(".proposal")
    page.click(".proposal button:has-text('Approve')")
    assert "approved: the change is live" in page.inner_text(".flash.ok")
    assert served.link.brain.personas.get("sales").prompt("en").endswith("callers found the agent curt.")
    page.goto(base + "/reports?group_by=line")
    assert "02191000001" in page.inner_text("#report")
    page.goto(base + "/settings")
    page.fill("#new-token-form input[name=name]", "crm-sync")
    page.check("#new-token-form input[value=read]")
    page.click("#new-token-form button[type=submit]")
    token = page.inner_text("#new-token code")
    assert token.startswith("sbt_")
    page.reload()
    assert page.locator("#new-token").count() == 0  # shown once
    assert os.path.exists(ROOT / "build" / "screenshots" / "settings.png")


def test_live_durations_keep_counting_while_nothing_else_changes(page: Any, served: Any) -> None:
    """A call in progress with no new step or words: the live page is still re-pushed every few
    seconds, so its duration counts up instead of freezing at the last change."""
    served.link.live.dialing("in-live0001", direction="inbound", phone="09351234567", scenario="reception",
                             line="02191000002")
    sign_in(page, served.base, "ann")
    page.wait_for_selector("#live-calls tr[data-call=in-live0001]")
    version = served.link.live.version
    first = page.inner_text("#live-calls tr[data-call=in-live0001] td:nth-child(8)")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = page.inner_text("#live-calls tr[data-call=in-live0001] td:nth-child(8)")
        if now != first:
            break
        time.sleep(0.2)
    assert served.link.live.version == version  # nothing changed on the board meanwhile
    assert now != first, f"the duration stayed at {first}"
