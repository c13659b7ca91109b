"""A loopback double of Tavus' conversational video, for the avatar tests.

REST, as documented at https://docs.tavus.io/api-reference (the parts Switchboard uses):

* `POST /v2/conversations` — header `x-api-key`; JSON body with `replica_id`, `persona_id` and the
  optional `conversation_name`, `properties`…; 200 with `{conversation_id, conversation_name, status:
  "active", conversation_url, replica_id, persona_id, created_at}`; 401 for a wrong key, 400 for a
  body without a persona or a replica.
* `POST /v2/conversations/{id}/end` — 200; 400 `{"error": "Invalid conversation_id"}` when unknown.

The room side: a conversation's `conversation_url` is a Daily room the replica joins. The page talks
to it through Daily's browser client (`daily-js`), loaded from `TAVUS_DAILY_JS_URL`; this double
serves a stand-in for that client at `/daily-js` with the calls the page uses (`createFrame`,
`join`, `on`, `sendAppMessage`, `leave`, `destroy`). Joining reports to the double (so a test knows
the page joined the room of a live conversation), and every app message the page sends — Tavus'
Interactions Protocol: `conversation.echo`, `conversation.interrupt` — is recorded per conversation.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response

DAILY_STANDIN = """
// Stand-in for Daily's browser client, served by the Tavus double (tests only).
(function () {
  function createFrame(parent, props) {
    var handlers = {};
    var el = document.createElement("div");
    el.className = "daily-standin";
    el.style.cssText = "width:100%;height:100%;display:flex;align-items:center;justify-content:center;" +
      "color:#fff;background:#234;font:600 18px system-ui";
    (parent || document.body).appendChild(el);
    var room = null;
    function emit(name, data) { (handlers[name] || []).forEach(function (cb) { cb(data || {}); }); }
    return {
      on: function (name, cb) { (handlers[name] = handlers[name] || []).push(cb); return this; },
      join: function (opts) {
        room = opts.url;
        return fetch(room + "/join", { method: "POST" }).then(function (r) {
          if (!r.ok) { emit("error", { errorMsg: "room closed" }); return; }
          return r.json().then(function (info) {
            el.textContent = "replica " + info.replica_id;
            el.dataset.replica = info.replica_id;
            emit("joined-meeting", {});
          });
        }).catch(function (e) { emit("error", { errorMsg: String(e) }); });
      },
      sendAppMessage: function (message, to) {
        fetch(room + "/app-message", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ message: message, to: to }) });
      },
      leave: function () { if (room) fetch(room + "/leave", { method: "POST" }); emit("left-meeting", {}); room = null; },
      destroy: function () { el.remove(); },
    };
  }
  window.Daily = { createFrame: createFrame };
})();
"""


@dataclass
class Conversation:
    id: str
    replica_id: str
    persona_id: str
    body: dict[str, Any]
    status: str = "active"
    joined: int = 0
    left: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)


class TavusDouble:
    def __init__(self, api_key: str = "tavus-test-key") -> None:
        self.api_key = api_key
        self.conversations: dict[str, Conversation] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_create: int | None = None  # answer POST /v2/conversations with this status
        self.base_url = ""
        self.app = self._build()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> list[Conversation]:
        return [c for c in self.conversations.values() if c.status == "active"]

    def _build(self) -> FastAPI:
        app = FastAPI()
        app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])

        @app.post("/v2/conversations")
        async def create(request: Request, x_api_key: str | None = Header(None)) -> Response:
            self.requests.append(("POST", "/v2/conversations"))
            if x_api_key != self.api_key:
                return JSONResponse({"message": "Invalid access token"}, status_code=401)
            if self.fail_create is not None:
                return JSONResponse({"error": "Internal server error"}, status_code=self.fail_create)
            body = await request.json()
            if not isinstance(body, dict) or not body.get("persona_id") or not body.get("replica_id"):
                return JSONResponse({"error": "replica_id and persona_id are required"}, status_code=400)
            cid = "c" + uuid.uuid4().hex[:10]
            conv = Conversation(cid, body["replica_id"], body["persona_id"], body)
            self.conversations[cid] = conv
            return JSONResponse({
                "conversation_id": cid, "conversation_name": body.get("conversation_name", ""), "status": "active",
                "conversation_url": f"{self.base_url}/rooms/{cid}", "replica_id": conv.replica_id,
                "persona_id": conv.persona_id, "created_at": datetime.now(timezone.utc).isoformat()})

        @app.post("/v2/conversations/{cid}/end")
        async def end(cid: str, x_api_key: str | None = Header(None)) -> Response:
            self.requests.append(("POST", f"/v2/conversations/{cid}/end"))
            if x_api_key != self.api_key:
                return JSONResponse({"message": "Invalid access token"}, status_code=401)
            conv = self.conversations.get(cid)
            if conv is None:
                return JSONResponse({"error": "Invalid conversation_id"}, status_code=400)
            conv.status = "ended"
            return Response(status_code=200)

        @app.get("/daily-js")
        async def daily_js() -> Response:
            return Response(DAILY_STANDIN, media_type="text/javascript")

        @app.post("/rooms/{cid}/join")
        async def join(cid: str) -> Response:
            conv = self.conversations.get(cid)
            if conv is None or conv.status != "active":
                return JSONResponse({"error": "no such room"}, status_code=404)
            conv.joined += 1
            return JSONResponse({"replica_id": conv.replica_id})

        @app.post("/rooms/{cid}/app-message")
        async def app_message(cid: str, request: Request) -> Response:
            conv = self.conversations.get(cid)
            if conv is not None:
                conv.messages.append((await request.json())["message"])
            return Response(status_code=204)

        @app.post("/rooms/{cid}/leave")
        async def leave(cid: str) -> Response:
            conv = self.conversations.get(cid)
            if conv is not None:
                conv.left += 1
            return Response(status_code=204)

        return app

    async def __aenter__(self) -> TavusDouble:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
