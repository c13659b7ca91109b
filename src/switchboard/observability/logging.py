"""Logging set-up: Rich to the terminal, or JSON lines for log shippers. Secrets never reach logs
because settings hold them as SecretStr and phone numbers are masked by `mask_phone`."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar

from rich.logging import RichHandler


# The call a log line belongs to: set in each call's task (the dialer), so every line logged while
# handling that call, in any module, carries its id.
CALL_ID: ContextVar[str | None] = ContextVar("switchboard_call_id", default=None)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "msg": record.getMessage()}
        call_id = CALL_ID.get()
        if call_id:
            data["call_id"] = call_id
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    if json_lines:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonFormatter())
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=True, console=None)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access", "faster_whisper", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def mask_phone(number: str) -> str:
    """`09123456789` -> `0912***6789`: enough to recognise a call, not to harvest numbers."""
    digits = number.strip()
    if len(digits) <= 6:
        return "***"
    return f"{digits[:4]}***{digits[-4:]}"
