"""Regression tests for what reaches the logs (issue 12): user text is bounded before any handler
sees it, phone numbers are masked unless asked otherwise, and the terminal handler never runs a
regex highlighter over user text (40 KB of one repeated character froze the whole panel for seconds,
5 MB for minutes). The implementation is `observability/logging.py` (`LogSanitizer`).

The alert route refusing 40 KB messages (tests/hardening/test_api_limits.py) is the first line; these
hold for every other way user text reaches a log line (transcripts, exceptions, panel answers)."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest

from switchboard.observability import logging as sblog

@pytest.fixture(autouse=True)
def restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _emit(message: str, *args: object) -> float:
    started = time.perf_counter()
    logging.getLogger("switchboard.test").warning(message, *args)
    return time.perf_counter() - started


@pytest.mark.parametrize("size", [40_000, 5_000_000])
def test_a_huge_repeated_line_costs_milliseconds_on_the_terminal(size: int, capsys: pytest.CaptureFixture) -> None:
    sblog.setup_logging("INFO")
    took = _emit("dialer alert [info]: %s", "A" * size)
    err = capsys.readouterr().err
    assert took < 0.5, f"{size} characters took {took:.2f}s in the log handler"
    assert len(err) < 10_000 and "more characters cut" in err


def test_lines_are_bounded_and_phones_masked_in_the_file_and_json(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "app.log"
    sblog.setup_logging("INFO", json_lines=True, log_file=log_file)
    took = _emit("caller %s said %s", "09123456789", "=" * 3_000_000)
    assert took < 0.5
    text = log_file.read_text("utf-8")
    assert "09123456789" not in text and "0912***6789" in text
    assert len(text) < 10_000 and "more characters cut" in text


def test_json_lines_stay_json_and_masked(capsys: pytest.CaptureFixture) -> None:
    sblog.setup_logging("INFO", json_lines=True)
    _emit("originate to +989121234567 failed: %s", "\u202e\x00<script>")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    data = json.loads(line)
    assert "+989121234567" not in data["msg"] and "***" in data["msg"]


def test_masking_can_be_turned_off_when_asked() -> None:
    stream = io.StringIO()
    sblog.setup_logging("INFO", mask_phones=False)
    handler = logging.getLogger().handlers[0]
    formatter_stream = logging.StreamHandler(stream)
    for f in handler.filters:
        formatter_stream.addFilter(f)
    logging.getLogger().addHandler(formatter_stream)
    _emit("call to 09123456789")
    assert "09123456789" in stream.getvalue()
