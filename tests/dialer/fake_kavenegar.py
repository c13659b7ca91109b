"""A Kavenegar `sms/send.json` server on loopback, speaking plain HTTP/1.1 over asyncio streams."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs


@dataclass
class SentRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeKavenegar:
    api_key: str = "TEST-KEY-123"
    # Set to e.g. (418, "credit is not enough") to make the server refuse like Kavenegar does.
    failure: tuple[int, str] | None = None
    requests: list[SentRequest] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _next_id: int = 8792343

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    async def start(self) -> FakeKavenegar:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode("latin-1").strip()
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
                self.requests.append(SentRequest(method, path, headers, form))
                status, payload = self._respond(method, path, headers, form)
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=utf-8\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode("latin-1")
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _respond(
        self, method: str, path: str, headers: dict[str, str], form: dict[str, str]
    ) -> tuple[int, dict]:  # type: ignore[type-arg]
        if method != "POST" or path != f"/v1/{self.api_key}/sms/send.json":
            return 401, {"return": {"status": 401, "message": "invalid API key"}, "entries": None}
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"return": {"status": 400, "message": "bad content type"}, "entries": None}
        if not form.get("receptor") or not form.get("message"):
            return 400, {
                "return": {"status": 400, "message": "receptor and message are required"},
                "entries": None,
            }
        if self.failure is not None:
            code, text = self.failure
            return code, {"return": {"status": code, "message": text}, "entries": None}
        entries = []
        for receptor in form["receptor"].split(","):
            self._next_id += 1
            entries.append(
                {
                    "messageid": self._next_id,
                    "message": form["message"],
                    "status": 1,
                    "statustext": "queued",
                    "sender": form.get("sender", "10004346"),
                    "receptor": receptor,
                    "date": 1356619709,
                    "cost": 120,
                }
            )
        return 200, {"return": {"status": 200, "message": "approved"}, "entries": entries}
