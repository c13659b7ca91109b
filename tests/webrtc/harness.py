"""Browser calls in one process, wired as `switchboard run` wires them (real speech, the real dialer,
store and panel server on loopback): for the tests and `benchmarks/turn_latency_browser.py`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from switchboard.app import browser_calls_router, build_node, build_speech, build_voice, start_browser_calls
from switchboard.panel.server import create_panel_app
from switchboard.settings import Settings
from switchboard.telephony.webrtc.backend import WebRTCBackend

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer tok"}


@dataclass
class Served:
    base_url: str
    webrtc: WebRTCBackend
    node: object
    settings: Settings
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def served(tmp_path: Path, **overrides: object) -> AsyncIterator[Served]:
    settings = Settings(_env_file=None, telephony_backend="webrtc", builtin_panel_token="tok",  # type: ignore[call-arg]
                        builtin_panel_token_scopes="read,write",
                        data_dir=tmp_path / "data", logs_dir=tmp_path / "logs", recordings_dir=tmp_path / "rec",
                        tts_cache_dir=tmp_path / "tts", models_dir=ROOT / ".cache" / "models",
                        scenarios_dir=ROOT / "scenarios", personas_dir=ROOT / "personas",
                        strategies_dir=ROOT / "strategies", stt_language="en", metrics_enabled=False,
                        **overrides)
    speech = build_speech(settings)
    await speech.warm_up()
    voice = build_voice(settings, speech)
    node = await build_node(settings, speech=speech, voice=voice)
    webrtc = node.dialer.backend
    assert isinstance(webrtc, WebRTCBackend)
    app = create_panel_app(node.store, settings, list_scenarios=node.registry.get_names, dialer=node.dialer)
    app.include_router(browser_calls_router(settings, webrtc, node))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await node.deliverer.start()
    await node.dialer.start()
    await start_browser_calls(webrtc, node.dialer)
    while not server.started:
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as http:
            yield Served(base, webrtc, node, settings, http)
    finally:
        server.should_exit = True
        await webrtc.stop()
        await node.close()
        await voice.aclose()
        await serving


async def token(http: httpx.AsyncClient, **target: str) -> str:
    resp = await http.post("/api/v1/calls/token", json=target, headers=AUTH)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])
