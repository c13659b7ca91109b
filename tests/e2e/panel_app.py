"""A second Switchboard process acting as the external panel: the built-in panel app
(`create_panel_app`) over its OWN store (DATABASE_URL), served by uvicorn:

    python -m uvicorn tests.e2e.panel_app:app --host 127.0.0.1 --port N

For outage tests the contents of the file named by E2E_PANEL_FLAG switch /api/dialer/* requests:
`down` answers 503 without touching anything; `lost-ack` applies a report-result and then answers
503 (the acknowledgement is lost, so the dialer must retry and the key must make it a no-op);
other requests just get 503 then (a lost next-batch answer would strand its leased contacts until
their lease expires, which is a different test). Each
report-result is logged to E2E_PANEL_LOG as `<mode> <idempotency key>`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from switchboard.panel.server import create_panel_app
from switchboard.settings import Settings
from switchboard.store import Store, open_store


class PanelProcess:
    def __init__(self) -> None:
        self.store: Store | None = None
        self.inner: Any = None
        self.flag = Path(os.environ.get("E2E_PANEL_FLAG", "/nonexistent"))
        self.log = Path(os.environ["E2E_PANEL_LOG"]) if os.environ.get("E2E_PANEL_LOG") else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        mode = self.flag.read_text().strip() if self.flag.exists() else "up"
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/api/dialer/report-result" and self.log is not None:
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            with self.log.open("a") as fh:
                fh.write(f"{mode} {headers.get('idempotency-key', '-')}\n")
        if scope["type"] != "http" or not path.startswith("/api/dialer/") or mode == "up":
            await self.inner(scope, receive, send)
            return
        if mode == "lost-ack" and path == "/api/dialer/report-result":
            async def swallow(message: dict[str, Any]) -> None:
                return None

            await self.inner(scope, receive, swallow)
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"panel under maintenance"})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                settings = Settings(_env_file=None)  # type: ignore[call-arg]
                self.store = await open_store(settings)
                self.inner = create_panel_app(self.store, settings)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.store is not None:
                    await self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = PanelProcess()
