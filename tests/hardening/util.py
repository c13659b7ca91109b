"""Small helpers shared by the hardening tests."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import httpx

# Fuzz budgets scale with FUZZ_SCALE (CI: 1; a long local hunt: FUZZ_SCALE=50).
FUZZ_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    return max(1, int(n * FUZZ_SCALE))


def fuzz(n: int) -> Any:
    """Hypothesis settings for a fuzz test of `n` examples (times FUZZ_SCALE): derandomized, so CI
    runs the same examples every time and cannot flake; no example database."""
    from hypothesis import HealthCheck, settings

    return settings(max_examples=examples(n), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scenario_text(name: str) -> str:
    """A small valid scenario: entry -> a prompt -> hang up."""
    return (
        "scenario:\n"
        f"  name: {name}\n"
        '  prompts: {hello: "sound:custom/hello"}\n'
        "  flow:\n"
        "    - {step: start, type: entry, next: hello}\n"
        "    - {step: hello, type: play_prompt, prompt: hello, next: end}\n"
        "    - {step: end, type: hangup}\n"
    )


async def wait_http(url: str, proc: asyncio.subprocess.Process | None = None, timeout: float = 60.0) -> None:
    """Until `url` answers (any status); fails early when `proc` exits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if proc is not None and proc.returncode is not None:
                out = await proc.stdout.read() if proc.stdout else b""
                raise AssertionError(f"process exited with {proc.returncode}:\n{out.decode()[-3000:]}")
            try:
                await http.get(url)
                return
            except httpx.HTTPError:
                pass
            if loop.time() > deadline:
                raise AssertionError(f"{url} did not answer in {timeout}s")
            await asyncio.sleep(0.1)
