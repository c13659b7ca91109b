"""Logs an operator can follow: the dialer's INFO line per placed call and per result in the rotating
LOG_FILE, phone numbers masked unless asked otherwise, every line bounded (a 5 MB message costs
milliseconds, no regex highlighter runs over it), JSON lines carrying the call id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from switchboard.clock import run_virtual
from switchboard.observability import logging as sblog
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

from tests.e2e.harness import all_calls, dialed, e2e_settings, iran_phones, line, running_node, seed


@pytest.fixture(autouse=True)
def restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        if isinstance(h, logging.FileHandler):
            h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def file_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_each_placed_call_and_each_result_is_one_info_line_in_the_log_file(tmp_path: Path) -> None:
    settings = e2e_settings(tmp_path, "e2e_quick")
    sblog.setup_from_settings(settings)
    log_file = settings.resolved_log_file()
    assert log_file == tmp_path / "logs" / "app.log"

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        answer = "busy" if number.endswith("2") else AnswerAfter(after_seconds=2)
        return CallerScript(phone=number, answer=answer, replies=[Reply(say="no")])

    async def campaign() -> list:  # type: ignore[type-arg]
        async with running_node(settings, script=script, lines=[line("02191000001", 2, 30, 1000)]) as h:
            await seed(h.store, settings, iran_phones(3))
            await h.dialer.run(until_idle=True)
            return dialed(await all_calls(h.store))

    calls = run_virtual(campaign(), start=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), real_grace=0.005)
    lines = file_lines(log_file)  # type: ignore[arg-type]
    text = "\n".join(lines)
    for c in calls:
        placed = [ln for ln in lines if f"Placing call {c.id}: scenario=e2e_quick line=0219***0001 to=" in ln]
        ended = [ln for ln in lines if f"Call {c.id} ended: result={c.result} why=" in ln and "duration=" in ln]
        assert len(placed) == 1 and len(ended) == 1, (c.id, text[-2000:])
        assert f"[{c.id}]" in placed[0]  # the call id of the call the line belongs to
        assert re.search(r"to=\+989\*\*\*\d{4}", ended[0]), ended[0]
    assert "ended: result=missed why=busy" in text
    for wanted in ("Loaded scenario e2e_quick from", "(4 outbound steps, 0 inbound steps)",
                   "Registered 1 scenarios with panel", "Active scenarios updated: e2e_quick",
                   "Assigned scenario e2e_quick to contact 1 (+989***0000)"):
        assert wanted in text, wanted
    assert "+989123000000" not in text and "09123000000" not in text  # masked everywhere


def test_numbers_masked_unless_asked_and_lines_bounded_and_rotated(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    sblog.setup_logging("INFO", log_file=log_file, max_line=300, max_bytes=20_000, backups=2)
    log = logging.getLogger("switchboard.test")
    log.info("caller 09123456789 asked to speak to +989121112222 (line 02191000001); ticket T-12345678 at 2026-03-02")
    log.info("x" * 100_000)
    for i in range(200):
        log.info("filler line %d %s", i, "y" * 200)
    first = file_lines(log_file.with_name("app.log.2"))[0] if log_file.with_name("app.log.2").exists() else ""
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated == ["app.log", "app.log.1", "app.log.2"], rotated
    assert all(p.stat().st_size <= 20_000 + 1_000 for p in tmp_path.iterdir())
    assert "0912***6789" in first and "+989***2222" in first and "0219***0001" in first
    assert "09123456789" not in first and "T-12345678" in first and "2026-03-02" in first
    long_line = file_lines(log_file.with_name("app.log.2"))[1]
    assert len(long_line) < 400 and "99700 more characters cut" in long_line

    sblog.setup_logging("INFO", log_file=tmp_path / "clear.log", mask_phones=False)
    logging.getLogger("switchboard.test").info("caller 09123456789")
    assert "caller 09123456789" in (tmp_path / "clear.log").read_text()


@pytest.mark.parametrize("size", [40_000, 5_000_000])
def test_huge_messages_do_not_freeze_the_terminal_handler(size: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Digits, brackets and URLs are what Rich's repr highlighter chews on for seconds; the terminal
    handler runs no highlighter and gets at most LOG_MAX_LINE characters."""
    sblog.setup_logging("INFO", max_line=2000)
    nasty = ("alert: ['0x1f', {1: 2.5e10}] http://a.b/c?d=1 " * (size // 40 + 1))[:size]
    started = time.perf_counter()
    logging.getLogger("switchboard.test").warning("%s", nasty)
    elapsed = time.perf_counter() - started
    out = capsys.readouterr()
    rendered = out.out + out.err
    assert elapsed < 0.5, f"{elapsed:.2f} s to log {size} characters"
    assert "more characters" in rendered and len(rendered) < 8000


def test_json_lines_carry_the_call_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sblog.setup_logging("INFO", json_lines=True, log_file=tmp_path / "app.log")

    async def one_call(call_id: str) -> None:
        sblog.CALL_ID.set(call_id)
        await asyncio.sleep(0)
        logging.getLogger("switchboard.calls").info("inside %s", call_id)

    async def main() -> None:
        await asyncio.gather(one_call("out-aaa"), one_call("out-bbb"))
        logging.getLogger("switchboard.calls").info("outside any call")

    asyncio.run(main())
    rows = [json.loads(line) for line in file_lines(tmp_path / "app.log")]
    assert [(r.get("call_id"), r["msg"]) for r in rows] == [
        ("out-aaa", "inside out-aaa"), ("out-bbb", "inside out-bbb"), (None, "outside any call")]
    assert all(json.loads(line) for line in capsys.readouterr().err.splitlines())


def test_demo_story_lines_say_why_in_the_contacts_zone() -> None:
    """The demo's terminal line for a call: local time with the zone, the number, the result and
    why (`said yes; no operator free`), what the caller said."""
    from datetime import timedelta, timezone

    from switchboard.demo import DemoStory
    from switchboard.engine.context import CallContext
    from switchboard.engine.results import ResultCatalog

    buf = io.StringIO()
    story = DemoStory(Console(file=buf, width=200), tz=timezone(timedelta(hours=3, minutes=30)),
                      catalog=ResultCatalog())
    ctx = CallContext(call_id="out-1", scenario="salehi_language", remote_number="+989123000001")
    ctx.transcripts.append({"text": "بله حتما"})
    ctx.set_result("callback_scheduled", "said yes; no operator free")
    ctx.ended_at = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)

    async def main() -> None:
        story.call_ended(ctx)
        await asyncio.sleep(0)

    asyncio.run(main())
    line = buf.getvalue()
    assert "Mon 10:30 UTC+03:30" in line and "+989123000001" in line and "callback_scheduled" in line
    assert "said yes; no operator free" in line and "بله حتما" in line
