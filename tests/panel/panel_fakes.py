"""A fake external panel speaking the real contract over HTTP, with switchable failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


@dataclass
class FakePanel:
    fail_next: int = 0  # answer 503 to this many report-result requests
    hold_first_ack: float = 0.0  # apply the first report, then wait this long before answering
    next_batch_body: Any = None  # raw body (str) or JSON-able object for next-batch
    next_batch_status: int = 200
    next_batch_failures: int = 0  # 500s before next_batch_body is served
    next_batch_delay: float = 0.0
    requests: Counter = field(default_factory=Counter)  # key -> requests received
    applied: list[str] = field(default_factory=list)  # keys applied (should be unique)
    bodies: dict[str, dict] = field(default_factory=dict)
    applied_event: asyncio.Event = field(default_factory=asyncio.Event)
    status_codes: list[int] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends a held acknowledgement early

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/api/dialer/report-result")
        async def report(
            request: Request, idempotency_key: str = Header(..., alias="Idempotency-Key")
        ) -> Response:
            self.requests[idempotency_key] += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                self.status_codes.append(503)
                return PlainTextResponse("maintenance", status_code=503)
            if idempotency_key in self.bodies:
                self.status_codes.append(409)
                return JSONResponse({"detail": "already reported"}, status_code=409)
            self.bodies[idempotency_key] = await request.json()
            self.applied.append(idempotency_key)
            self.applied_event.set()
            if self.hold_first_ack and len(self.applied) == 1:
                try:
                    await asyncio.wait_for(self.release.wait(), self.hold_first_ack)
                except TimeoutError:
                    pass
            self.status_codes.append(200)
            return JSONResponse({"ok": True})

        @app.post("/api/dialer/alert")
        async def alert(request: Request) -> dict:
            self.alerts.append(await request.json())
            return {"ok": True}

        @app.get("/api/dialer/next-batch")
        async def next_batch() -> Response:
            if self.next_batch_delay:
                await asyncio.sleep(self.next_batch_delay)
            if self.next_batch_failures > 0:
                self.next_batch_failures -= 1
                return PlainTextResponse("boom", status_code=500)
            body = self.next_batch_body
            if isinstance(body, str):
                return Response(body, status_code=self.next_batch_status, media_type="text/html")
            return JSONResponse(body, status_code=self.next_batch_status)

        return app
