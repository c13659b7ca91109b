"""Fixtures for browser calls: a caller's sentence as a WAV (synthesized at test time with the offline
TTS), Debian's Chromium with a fake microphone playing it, and `switchboard run` as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from switchboard.speech.audio import Audio, resample, write_wav

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]
CALLER_SENTENCE = "Hello. I would like to know your prices, please."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def caller_wav(path: Path, text: str = CALLER_SENTENCE, *, lead: float = 6.0, tail: float = 40.0) -> Path:
    """The caller's sentence (Piper's natural English voice, which Whisper hears well) after `lead`
    seconds of silence — long enough for the agent's greeting — then silence, at 48 kHz."""
    from switchboard.speech.tts.piper import PiperTTS

    speech = resample(PiperTTS().synthesize_sync(text), 48000)
    samples = np.frombuffer(speech.pcm, dtype="<i2")
    pad = lambda seconds: np.zeros(int(seconds * 48000), dtype="<i2")  # noqa: E731
    audio = Audio(np.concatenate([pad(lead), samples, pad(tail)]).tobytes(), 48000)
    return write_wav(path, audio)


@pytest.fixture(scope="session")
def caller_sentence_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return caller_wav(tmp_path_factory.mktemp("caller") / "caller.wav")


def chromium_args(wav: Path) -> list[str]:
    # %noloop: the file plays once, then the fake microphone is silent (a caller who said one thing).
    return [*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}%noloop"]


@pytest.fixture
def require_chromium() -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromedriver") is None:
        pytest.fail("Debian's chromium and chromium-driver are needed (scripts/test-deps.sh installs them)")


@dataclass
class RunningSwitchboard:
    base_url: str
    token: str
    db: Path
    proc: asyncio.subprocess.Process
    output: bytearray

    def stored_calls(self) -> list[dict[str, object]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute("select * from calls order by originated_at")]
            except sqlite3.OperationalError:
                return []

    def login_link(self) -> str:
        """The one-time sign-in link `switchboard run` prints for the first admin."""
        text = self.output.decode(errors="replace")
        found = re.search(r"https?://\S+/login/once/\S+", text)
        assert found, f"no sign-in link in the output: {text[-2000:]}"
        return found.group(0)

    async def status(self) -> dict[str, object]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            resp = await http.get("/api/v1/webrtc/targets", headers={"Authorization": f"Bearer {self.token}"})
            return resp.json()


@contextlib.asynccontextmanager
async def switchboard_run(tmp_path: Path, **extra: str) -> AsyncIterator[RunningSwitchboard]:
    """`switchboard run` with TELEPHONY_BACKEND=webrtc, as a person would start it."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "TELEPHONY_BACKEND": "webrtc", "PANEL_PORT": str(port), "BUILTIN_PANEL_TOKEN": "tok",
        "BUILTIN_PANEL_TOKEN_SCOPES": "read,write",
        "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"),
        "RECORDINGS_DIR": str(tmp_path / "recordings"), "TTS_CACHE_DIR": str(tmp_path / "tts"),
        "MODELS_DIR": str(ROOT / ".cache" / "models"), "STT_LANGUAGE": "en", "LOG_LEVEL": "INFO",
        **extra,
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "run", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output = bytearray()

    async def drain() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(4096):
            output.extend(chunk)

    reader = asyncio.create_task(drain())
    running = RunningSwitchboard(f"http://127.0.0.1:{port}", "tok", tmp_path / "data" / "switchboard.db", proc, output)
    try:
        async with httpx.AsyncClient(base_url=running.base_url, timeout=2) as http:
            for _ in range(600):
                if proc.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        assert proc.returncode is None, "switchboard run exited: " + output.decode(errors="replace")[-3000:]
        for _ in range(50):  # the banner (with the sign-in link) follows the server's start
            if b"browser calls:" in output:
                break
            await asyncio.sleep(0.1)
        yield running
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await reader


async def until(predicate, timeout: float, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)
