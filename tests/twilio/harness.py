"""Our webhook routes on a real loopback server, the backend behind them, and the Twilio double in
front — with Twilio's public view of the server (`TWILIO_PUBLIC_BASE_URL`) mapped to loopback the
way a reverse proxy would, so signatures are checked against the public URL."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from switchboard.telephony.twilio.backend import TwilioBackend
from switchboard.telephony.twilio.call import LegFactory
from switchboard.telephony.twilio.config import TwilioConfig
from tests.twilio.double import TwilioDouble

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-9f8e7d6c"
NUMBERS = ["+15005550006", "+15005550007"]
PUBLIC = "https://switchboard.example.test"


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Harness:
    double: TwilioDouble
    backend: TwilioBackend
    app: FastAPI
    server: uvicorn.Server
    serve: asyncio.Task[None]
    local: str

    @property
    def voice_url(self) -> str:
        return f"{PUBLIC}/twilio/voice"

    async def close(self) -> None:
        await self.backend.stop()
        await self.double.close()
        self.server.should_exit = True
        await asyncio.wait_for(self.serve, 10)


async def start_harness(leg_factory: LegFactory, *, machine_detection: str = "", app: FastAPI | None = None,
                        stream_timeout: float = 10.0) -> Harness:
    sock = free_socket()
    local = f"127.0.0.1:{sock.getsockname()[1]}"

    def reach(url: str) -> str:
        return url.replace(f"https://{PUBLIC[8:]}", f"http://{local}").replace(f"wss://{PUBLIC[8:]}", f"ws://{local}")

    double = TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=NUMBERS, reach=reach,
                          inbound_status_callback=f"{PUBLIC}/twilio/status")
    api = await double.start()
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, numbers=tuple(NUMBERS),
                          public_base_url=PUBLIC, api_base_url=api, machine_detection=machine_detection,
                          stream_timeout=stream_timeout)
    backend = TwilioBackend(config, leg_factory=leg_factory)
    app = app or FastAPI()
    app.include_router(backend.router())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serve = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    return Harness(double, backend, app, server, serve, local)
