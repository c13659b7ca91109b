"""Logging set-up: the terminal (Rich, or JSON lines for log shippers) and a rotating log file.

Every line passes one `LogSanitizer` first, whatever module wrote it:
  * phone numbers are masked (`0912***6789`) unless LOG_MASK_PHONES=false;
  * a message longer than LOG_MAX_LINE characters is cut (and says so), so a 5 MB alert text or
    transcript costs microseconds and never floods a terminal or a log shipper;
  * the call id of the call being handled (`CALL_ID`, set by the dialer for each call's task)
    is attached, shown as `[out-…]` in text lines and as `call_id` in JSON lines.
The terminal handler never runs Rich's regex highlighter or markup over messages (user text could
hold anything: a long alert message would freeze the process in the highlighter).
Secrets never reach logs: settings hold them as SecretStr.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.highlighter import NullHighlighter
from rich.logging import RichHandler

if TYPE_CHECKING:
    from switchboard.settings import Settings

# The call a log line belongs to: set in each call's task (the dialer), so every line logged while
# handling that call, in any module, carries its id.
CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("switchboard_call_id", default=None)
call_id_var = CALL_ID

# 8-15 digits, optionally after +, not part of a longer word or number (ids, dates, versions).
_PHONE = re.compile(r"(?<![\w.+\-/])\+?\d{8,15}(?![\w.])")
_NOISY = ("httpx", "httpcore", "uvicorn.access", "faster_whisper", "aiosqlite", "alembic", "asyncio")
_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(call_tag)s %(message)s"

_console: logging.Handler | None = None


def mask_phone(number: str) -> str:
    """`09123456789` -> `0912***6789`: enough to recognise a call, not to harvest numbers."""
    digits = number.strip()
    if len(digits) <= 6:
        return "***"
    return f"{digits[:4]}***{digits[-4:]}"


def mask_phones_in(text: str) -> str:
    """Every phone-number-like run of digits in `text`, masked."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def bound(text: str, limit: int) -> str:
    if limit > 0 and len(text) > limit:
        return f"{text[:limit]}… [{len(text) - limit} more characters cut]"
    return text


class LogSanitizer(logging.Filter):
    """Renders the message once, then cuts it to `max_line`, masks phone numbers and attaches the
    call id. Installed on handlers, so records of every library pass it."""

    def __init__(self, *, mask_phones: bool = True, max_line: int = 2000) -> None:
        super().__init__()
        self.mask_phones = mask_phones
        self.max_line = max_line

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_sanitized", False):
            try:
                message = record.getMessage()
            except Exception:  # a bad format string must not lose the line
                message = f"{record.msg!r} {record.args!r}"
            # Cut before masking so the regex never sees more than max_line characters.
            message = bound(message, self.max_line)
            if self.mask_phones:
                message = mask_phones_in(message)
            record.msg, record.args = message, None
            record._sanitized = True  # type: ignore[attr-defined]
        call_id = getattr(record, "call_id", None) or CALL_ID.get()
        record.call_id = call_id
        record.call_tag = f" [{call_id}]" if call_id else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "msg": record.getMessage()}
        call_id = getattr(record, "call_id", None) or CALL_ID.get()
        if call_id:
            data["call_id"] = call_id
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


_JsonFormatter = JsonFormatter  # the name other modules' tests use


def setup_logging(level: str = "INFO", *, json_lines: bool = False, log_file: Path | str | None = None,
                  mask_phones: bool = True, max_line: int = 2000, max_bytes: int = 10_000_000,
                  backups: int = 5) -> None:
    """Terminal handler (Rich, or JSON lines on stderr) plus, when `log_file` is given, a rotating
    file (`max_bytes` per file, `backups` old files kept) in the same format family."""
    global _console
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, logging.FileHandler):
            old.close()
    sanitizer = LogSanitizer(mask_phones=mask_phones, max_line=max_line)
    if json_lines:
        console: logging.Handler = logging.StreamHandler(sys.stderr)
        console.setFormatter(JsonFormatter())
    else:
        # stderr: stdout carries command output (`simulate --json`, `schema`, `calls --json`).
        console = RichHandler(show_path=False, rich_tracebacks=True, console=Console(stderr=True), markup=False,
                              highlighter=NullHighlighter(), keywords=[])
    console.addFilter(sanitizer)
    root.addHandler(console)
    _console = console
    if log_file:
        path = Path(log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                           encoding="utf-8")
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write the log file %s: %s", path, exc)
        else:
            handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_TEXT_FORMAT))
            handler.addFilter(sanitizer)
            root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup_from_settings(settings: Settings) -> None:
    """`setup_logging` with the LOG_* settings (LOG_LEVEL, LOG_JSON, LOG_FILE, LOG_MASK_PHONES, ...)."""
    setup_logging(settings.log_level, json_lines=settings.log_json, log_file=settings.resolved_log_file(),
                  mask_phones=settings.log_mask_phones, max_line=settings.log_max_line,
                  max_bytes=settings.log_file_max_bytes, backups=settings.log_file_backups)


def console_level(level: int) -> None:
    """Raise or lower what reaches the terminal only (the file keeps every line): the demo shows
    its own story there and leaves INFO lines to the log file."""
    if _console is not None:
        _console.setLevel(level)
