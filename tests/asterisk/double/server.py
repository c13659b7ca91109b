"""The ARI test double's wire side: real HTTP + WebSocket (FastAPI on uvicorn) on 127.0.0.1.

`AriDouble` owns an `AsteriskSim` and serves it as ARI: `/ari/...` REST with Asterisk's status codes
and bodies, `/ari/events?app=` WebSocket with basic auth or `api_key=user:pass`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any, Self
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from tests.asterisk.double.sim import AriHttpError, AsteriskSim, not_found


class _Conn:
    def __init__(self, ws: WebSocket, apps: set[str]) -> None:
        self.ws = ws
        self.apps = apps
        self.lock = asyncio.Lock()
        self.closed = False


class _AuthAndLog:
    """Plain ASGI middleware (cheaper than Starlette's): basic auth or api_key, and a request log."""

    def __init__(self, app: Any, double: AriDouble) -> None:
        self.app = app
        self.double = double

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        if not self.double._authorised(headers, query):
            await JSONResponse({"message": "Authentication required"}, status_code=401)(scope, receive, send)
            return
        status = [0]

        async def send_logged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, receive, send_logged)
        self.double.sim.requests.append((scope["method"], scope["path"], status[0]))


class AriDouble:
    """Start with `async with AriDouble() as ari:`; then point an ARI client at `ari.base_url`."""

    def __init__(self, *, username: str = "switchboard", password: str = "secret", scale: float = 0.02,
                 transmit_silence: bool = True, beep_installed: bool = True, sounds_dir: str | None = None) -> None:
        self.username = username
        self.password = password
        self.sim = AsteriskSim(scale=scale, transmit_silence=transmit_silence, beep_installed=beep_installed,
                               sounds_dir=sounds_dir)
        self.sim.sender = self._send
        self.sim.connected_apps = lambda: {a for c in self._conns for a in c.apps if not c.closed}
        self._conns: list[_Conn] = []
        self.refuse_ws = False
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = self._build()

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ari"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ari/events"

    async def start(self) -> Self:
        config = uvicorn.Config(_AuthAndLog(self.app, self), host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                ws="websockets-sansio", ws_ping_interval=None)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self.drop_websockets()
        await self.sim.close()
        if self._server is not None:
            self._server.should_exit = True
            if self._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drop_websockets(self) -> None:
        """Close every event WebSocket (as a restarting Asterisk or a network blip would)."""
        for conn in list(self._conns):
            conn.closed = True
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001)
        self._conns.clear()

    def ws_connected(self, app: str) -> bool:
        return any(app in c.apps and not c.closed for c in self._conns)

    async def wait_ws(self, app: str, timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not self.ws_connected(app):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(wait(), timeout)

    async def _send(self, app: str, event: dict[str, Any]) -> None:
        text = json.dumps(event)
        for conn in list(self._conns):
            if app in conn.apps and not conn.closed:
                async with conn.lock:
                    try:
                        await conn.ws.send_text(text)
                    except Exception:  # noqa: BLE001 - any send failure means the socket is gone
                        conn.closed = True

    # --- HTTP -----------------------------------------------------------------------------------

    def _authorised(self, headers: Any, query: Any) -> bool:
        key = query.get("api_key")
        if key is not None:
            return key == f"{self.username}:{self.password}"
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                return base64.b64decode(auth[6:]).decode() == f"{self.username}:{self.password}"
            except ValueError:
                return False
        return False

    def _build(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        sim = self.sim
        double = self

        @app.exception_handler(StarletteHTTPException)
        async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
            raw = request.scope.get("raw_path") or b""
            if exc.status_code == 404 and b"/sounds/" in raw and b"%2f" in raw.lower():
                return JSONResponse({"message": "Sound not found"}, status_code=404)
            return JSONResponse({"message": "Resource not found"}, status_code=exc.status_code)

        @app.exception_handler(AriHttpError)
        async def ari_error(_request: Request, exc: AriHttpError) -> Response:
            return JSONResponse(exc.body, status_code=exc.status)

        def q(request: Request) -> dict[str, str]:
            return dict(request.query_params)

        async def body(request: Request) -> dict[str, Any] | None:
            raw = await request.body()
            if not raw:
                return None
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                raise AriHttpError(400, {"message": "Invalid JSON body"}) from None

        def ok(data: Any, status: int = 200) -> Response:
            return JSONResponse(data, status_code=status)

        def no_content() -> Response:
            return Response(status_code=204)

        # asterisk / applications / endpoints / sounds
        @app.get("/ari/asterisk/info")
        async def info() -> Response:
            return ok({"build": {"os": "Linux", "kernel": "double", "machine": "x86_64", "options": "OPTIONAL_API",
                                 "date": "2026-11-22 03:26:58 UTC", "user": "root"},
                       "system": {"version": "22.10.1", "entity_id": "02:fc:00:00:00:01"},
                       "config": {"name": "", "default_language": "en", "setid": {"user": "", "group": ""}},
                       "status": {"startup_time": sim.stamp(), "last_reload_time": sim.stamp()}})

        def app_json(name: str) -> dict[str, Any]:
            return {"name": name, "channel_ids": [c.id for c in sim.live_channels() if c.in_stasis and c.app == name],
                    "bridge_ids": [b.id for b in sim.bridges.values() if b.app == name], "endpoint_ids": [],
                    "device_names": [], "events_allowed": [], "events_disallowed": []}

        @app.get("/ari/applications")
        async def applications() -> Response:
            return ok([app_json(n) for n in sorted(sim.connected_apps())])

        @app.get("/ari/applications/{name}")
        async def application(name: str) -> Response:
            if name not in sim.connected_apps():
                raise not_found("Application")
            return ok(app_json(name))

        @app.get("/ari/endpoints")
        async def endpoints() -> Response:
            return ok([])

        @app.get("/ari/sounds")
        async def sounds() -> Response:
            out = []
            for name in sim.sounds:
                lang, _, sound_id = name.rpartition("/")
                out.append({"id": sound_id, "formats": [{"language": lang or "en", "format": "slin"}]})
            return ok(out)

        @app.get("/ari/sounds/{sound_id}")
        async def sound(sound_id: str) -> Response:
            if sound_id not in {n.rpartition("/")[2] for n in sim.sounds if "/" not in n}:
                raise AriHttpError(404, {"message": "Sound not found"})
            return ok({"id": sound_id, "formats": [{"language": "en", "format": "slin"}]})

        # channels
        @app.get("/ari/channels")
        async def list_channels() -> Response:
            return ok([c.json() for c in sim.live_channels()])

        @app.post("/ari/channels")
        async def originate(request: Request) -> Response:
            return ok(await sim.originate(q(request), await body(request)))

        @app.post("/ari/channels/externalMedia")
        async def external_media(request: Request) -> Response:
            return ok(await sim.external_media(q(request)))

        @app.post("/ari/channels/{channel_id}")
        async def originate_with_id(channel_id: str, request: Request) -> Response:
            return ok(await sim.originate(q(request), await body(request), channel_id=channel_id))

        @app.get("/ari/channels/{channel_id}")
        async def get_channel(channel_id: str) -> Response:
            return ok(sim.get_channel(channel_id).json())

        @app.delete("/ari/channels/{channel_id}")
        async def hangup(channel_id: str, request: Request) -> Response:
            ch = sim.get_channel(channel_id)
            reason = request.query_params.get("reason", "normal")
            if reason not in {"normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
                              "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking",
                              "failure", "answered_elsewhere"}:
                raise AriHttpError(400, {"message": "Invalid reason for hangup provided"})
            await sim.hangup(ch, {"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 19,
                                  "rejected": 21}.get(reason, 16))
            return no_content()

        @app.post("/ari/channels/{channel_id}/answer")
        async def answer(channel_id: str) -> Response:
            await sim.answer(sim.get_channel(channel_id))
            return no_content()

        @app.get("/ari/channels/{channel_id}/variable")
        async def variable(channel_id: str, request: Request) -> Response:
            ch = sim.get_channel(channel_id)
            name = request.query_params.get("variable")
            if not name:
                raise AriHttpError(400, {"message": "Variable name is required"})
            if name not in ch.vars:
                raise AriHttpError(404, {"message": "Provided variable was not found"})
            return ok({"value": ch.vars[name]})

        @app.post("/ari/channels/{channel_id}/play")
        async def play(channel_id: str, request: Request) -> Response:
            return ok(await sim.play(sim.get_channel(channel_id), q(request), None), 201)

        @app.post("/ari/channels/{channel_id}/play/{playback_id}")
        async def play_with_id(channel_id: str, playback_id: str, request: Request) -> Response:
            return ok(await sim.play(sim.get_channel(channel_id), q(request), playback_id), 201)

        @app.post("/ari/channels/{channel_id}/record")
        async def record(channel_id: str, request: Request) -> Response:
            return ok(await sim.record_channel(sim.get_channel(channel_id), q(request)), 201)

        @app.post("/ari/channels/{channel_id}/snoop")
        async def snoop(channel_id: str, request: Request) -> Response:
            return ok(await sim.snoop(sim.get_channel(channel_id), q(request), None))

        @app.post("/ari/channels/{channel_id}/snoop/{snoop_id}")
        async def snoop_with_id(channel_id: str, snoop_id: str, request: Request) -> Response:
            return ok(await sim.snoop(sim.get_channel(channel_id), q(request), snoop_id))

        # bridges
        @app.get("/ari/bridges")
        async def list_bridges() -> Response:
            return ok([b.json() for b in sim.bridges.values()])

        @app.post("/ari/bridges")
        async def create_bridge(request: Request) -> Response:
            apps = sim.connected_apps()
            return ok(await sim.create_bridge(q(request), next(iter(sorted(apps)), "")))

        @app.get("/ari/bridges/{bridge_id}")
        async def get_bridge(bridge_id: str) -> Response:
            return ok(sim.get_bridge(bridge_id).json())

        @app.delete("/ari/bridges/{bridge_id}")
        async def delete_bridge(bridge_id: str) -> Response:
            await sim.destroy_bridge(sim.get_bridge(bridge_id))
            return no_content()

        @app.post("/ari/bridges/{bridge_id}/addChannel")
        async def add_channel(bridge_id: str, request: Request) -> Response:
            bridge = sim.get_bridge(bridge_id)
            for channel_id in request.query_params.get("channel", "").split(","):
                ch = sim.channels.get(channel_id)
                if ch is None or ch.destroyed:
                    raise AriHttpError(400, {"message": "Channel not found"})
                await sim.add_to_bridge(bridge, ch)
            return no_content()

        @app.post("/ari/bridges/{bridge_id}/removeChannel")
        async def remove_channel(bridge_id: str, request: Request) -> Response:
            bridge = sim.get_bridge(bridge_id)
            ch = sim.channels.get(request.query_params.get("channel", ""))
            if ch is None or ch.destroyed:
                raise AriHttpError(400, {"message": "Channel not found"})
            if ch.id not in bridge.channels:
                raise AriHttpError(422, {"message": "Channel not in this bridge"})
            await sim.leave_bridge(ch)
            return no_content()

        @app.post("/ari/bridges/{bridge_id}/record")
        async def record_bridge(bridge_id: str, request: Request) -> Response:
            return ok(await sim.record_bridge(sim.get_bridge(bridge_id), q(request)), 201)

        # playbacks
        @app.get("/ari/playbacks/{playback_id}")
        async def get_playback(playback_id: str) -> Response:
            pb = sim.playbacks.get(playback_id)
            if pb is None:
                raise not_found("Playback")
            return ok(pb.json())

        @app.delete("/ari/playbacks/{playback_id}")
        async def stop_playback(playback_id: str) -> Response:
            pb = sim.playbacks.get(playback_id)
            if pb is None:
                raise not_found("Playback")
            await sim.stop_playback(pb)
            return no_content()

        # recordings
        @app.get("/ari/recordings/live/{name}")
        async def live_recording(name: str) -> Response:
            rec = sim.live.get(name)
            if rec is None:
                raise not_found("Recording")
            return ok(rec.json())

        @app.post("/ari/recordings/live/{name}/stop")
        async def stop_recording(name: str) -> Response:
            await sim.stop_recording(name)
            return no_content()

        @app.get("/ari/recordings/stored")
        async def stored() -> Response:
            return ok([{"name": n, "format": f} for n, (f, _) in sorted(sim.stored.items())])

        @app.get("/ari/recordings/stored/{name}")
        async def stored_one(name: str) -> Response:
            if name not in sim.stored:
                raise not_found("Recording")
            return ok({"name": name, "format": sim.stored[name][0]})

        @app.get("/ari/recordings/stored/{name}/file")
        async def stored_file(name: str) -> Response:
            if name not in sim.stored:
                raise not_found("Recording")
            return Response(sim.stored[name][1], media_type="audio/wav")

        @app.delete("/ari/recordings/stored/{name}")
        async def delete_stored(name: str) -> Response:
            if sim.stored.pop(name, None) is None:
                raise not_found("Recording")
            return no_content()

        # events
        @app.websocket("/ari/events")
        async def events(ws: WebSocket) -> None:
            if double.refuse_ws or not double._authorised(ws.headers, ws.query_params):
                await ws.close(code=1008)
                return
            apps = {a for a in ws.query_params.get("app", "").split(",") if a}
            await ws.accept()
            conn = _Conn(ws, apps)
            double._conns.append(conn)
            try:
                while True:
                    await ws.receive_text()
            except WebSocketDisconnect:
                pass
            finally:
                conn.closed = True
                if conn in double._conns:
                    double._conns.remove(conn)

        return app
