"""Async ARI REST client: one pooled httpx client, typed methods, typed errors.

Ids (channelId, otherChannelId, playbackId, recording names, snoopId, bridgeId) are always chosen by
the caller, because ARI events often arrive before the REST response that caused them: the caller
registers its waiter first, then calls the method here.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from switchboard.telephony.asterisk.models import (
    Bridge,
    Channel,
    LiveRecording,
    Playback,
    StoredRecording,
    Variable,
)


M = TypeVar("M", bound=BaseModel)


class AriError(Exception):
    """A non-2xx ARI response; `body` is the parsed JSON (`{"error": ...}` or `{"message": ...}`)."""

    def __init__(self, status: int, body: Any, method: str = "", path: str = "") -> None:
        self.status = status
        self.body = body if body is not None else {}
        self.method = method
        self.path = path
        super().__init__(f"ARI {method} {path} -> {status}: {self.message}")

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("error") or self.body.get("message") or self.body)
        return str(self.body)

    @property
    def not_found(self) -> bool:
        return self.status == 404


class AriUnavailable(AriError):
    """Asterisk cannot serve ARI now: unreachable (connection refused, timeout), or answering as a
    PBX that is starting or stopping does (503, a gateway error, an HTML page instead of JSON).
    Nothing was done on the PBX; `message` is the real cause, short enough for a log line."""

    def __init__(self, method: str, path: str, reason: str, status: int = 0) -> None:
        super().__init__(status, {"error": reason}, method, path)


MAX_CAUSE = 200  # characters of a PBX error kept in logs and results (never a whole HTML page)
_UNAVAILABLE = {502, 503, 504}


def short_text(text: str, limit: int = MAX_CAUSE) -> str:
    """An error body as one short line: tags dropped, whitespace collapsed, cut at `limit`."""
    plain = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    return plain if len(plain) <= limit else plain[: limit - 3] + "..."


def _error_for(resp: httpx.Response, method: str, path: str) -> AriError:
    """ARI answers errors as JSON (`{"error": ...}` or `{"message": ...}`); anything else is not ARI
    talking but a PBX (or a proxy) that cannot serve it now."""
    try:
        body = resp.json()
    except (json.JSONDecodeError, ValueError):
        body = None
    reason = resp.reason_phrase or "error"
    if not isinstance(body, dict):
        detail = short_text(resp.text) if resp.text else ""
        cause = f"HTTP {resp.status_code} {reason}" + (f": {detail}" if detail else "") + " (not an ARI answer)"
        return AriUnavailable(method, path, cause, resp.status_code)
    if resp.status_code in _UNAVAILABLE:
        message = short_text(str(body.get("error") or body.get("message") or reason))
        return AriUnavailable(method, path, f"HTTP {resp.status_code}: {message}", resp.status_code)
    return AriError(resp.status_code, {k: short_text(str(v)) if isinstance(v, str) else v for k, v in body.items()},
                    method, path)


def _q(params: Mapping[str, Any]) -> dict[str, str]:
    """Drop unset params; ARI wants booleans as `true`/`false`."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


class AriClient:
    def __init__(self, base_url: str, username: str, password: str, *, app: str,
                 timeout: float = 10.0, max_connections: int = 50) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=httpx.BasicAuth(username, password),
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._pending: set[asyncio.Future[Any]] = set()

    def track(self, task: asyncio.Future[Any]) -> None:
        """A clean-up request still running (deleting a recording on Asterisk): `aclose` waits for it."""
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let tracked clean-ups finish (at most `timeout` s), so nothing is left on the PBX."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    async def aclose(self, drain: float = 10.0) -> None:
        await self.drain(drain)
        for task in list(self._pending):
            task.cancel()
        await self._http.aclose()

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json_body: Any = None) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, params=_q(params or {}), json=json_body)
        except httpx.HTTPError as exc:
            raise AriUnavailable(method, path, short_text(f"{type(exc).__name__}: {exc}")) from exc
        if resp.status_code >= 300:
            raise _error_for(resp, method, path)
        return resp

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self.request(method, path, **kw)
        if not resp.content:
            return None
        try:
            return resp.json()
        except (json.JSONDecodeError, ValueError):
            raise AriUnavailable(method, path, f"HTTP {resp.status_code} with a body that is not JSON: "
                                 f"{short_text(resp.text)}", resp.status_code) from None

    async def _model(self, cls: type[M], method: str, path: str, **kw: Any) -> M:
        """One ARI object; an answer of another shape means something else answered: unavailable."""
        data = await self._json(method, path, **kw)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise AriUnavailable(method, path, f"answer is not an ARI {cls.__name__}: "
                                 f"{short_text(str(exc.errors()[:2]))}") from None

    async def _models(self, cls: type[M], method: str, path: str) -> list[M]:
        data = await self._json(method, path)
        if not isinstance(data, list):
            raise AriUnavailable(method, path, f"answer is not a list of {cls.__name__}")
        try:
            return [cls.model_validate(item) for item in data]
        except ValidationError as exc:
            raise AriUnavailable(method, path, f"answer is not a list of ARI {cls.__name__}: "
                                 f"{short_text(str(exc.errors()[:2]))}") from None

    async def application(self, name: str | None = None) -> dict[str, Any]:
        """GET /applications/{name}: 404 when no WebSocket has registered it (events would be lost)."""
        return dict(await self._json("GET", f"/applications/{name or self.app}"))

    # --- channels -------------------------------------------------------------------------------

    async def originate(self, endpoint: str, *, channel_id: str, other_channel_id: str | None = None,
                        caller_id: str | None = None, timeout: int | None = None,
                        variables: Mapping[str, str] | None = None, app_args: str | None = None,
                        app: str | None = None) -> Channel:
        params = {"endpoint": endpoint, "app": app or self.app, "appArgs": app_args, "callerId": caller_id,
                  "timeout": timeout, "channelId": channel_id, "otherChannelId": other_channel_id}
        body = {"variables": dict(variables)} if variables else None
        return await self._model(Channel, "POST", "/channels", params=params, json_body=body)

    async def get_channel(self, channel_id: str) -> Channel:
        return await self._model(Channel, "GET", f"/channels/{channel_id}")

    async def list_channels(self) -> list[Channel]:
        return await self._models(Channel, "GET", "/channels")

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str | None = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def get_variable(self, channel_id: str, variable: str) -> str:
        data = await self._json("GET", f"/channels/{channel_id}/variable", params={"variable": variable})
        return Variable.model_validate(data).value

    async def play(self, channel_id: str, media: str, *, playback_id: str, lang: str | None = None) -> Playback:
        params = {"media": media, "playbackId": playback_id, "lang": lang}
        return await self._model(Playback, "POST", f"/channels/{channel_id}/play", params=params)

    async def record(self, channel_id: str, name: str, *, format: str = "wav", max_duration: int = 0,
                     max_silence: int = 0, if_exists: str | None = "overwrite", beep: bool | None = False,
                     terminate_on: str | None = "none") -> LiveRecording:
        params = {"name": name, "format": format, "maxDurationSeconds": max_duration,
                  "maxSilenceSeconds": max_silence, "ifExists": if_exists, "beep": beep,
                  "terminateOn": terminate_on}
        return await self._model(LiveRecording, "POST", f"/channels/{channel_id}/record", params=params)

    async def snoop(self, channel_id: str, *, snoop_id: str, spy: str = "in", whisper: str = "none",
                    app_args: str | None = None) -> Channel:
        params = {"spy": spy, "whisper": whisper, "app": self.app, "appArgs": app_args, "snoopId": snoop_id}
        return await self._model(Channel, "POST", f"/channels/{channel_id}/snoop", params=params)

    async def external_media(self, *, channel_id: str, external_host: str, format: str,
                             encapsulation: str = "rtp", transport: str = "udp",
                             direction: str = "both") -> Channel:
        params = {"channelId": channel_id, "app": self.app, "external_host": external_host, "format": format,
                  "encapsulation": encapsulation, "transport": transport, "direction": direction}
        return await self._model(Channel, "POST", "/channels/externalMedia", params=params)

    # --- bridges --------------------------------------------------------------------------------

    async def create_bridge(self, *, bridge_id: str, name: str = "", type: str = "mixing") -> Bridge:
        params = {"type": type, "bridgeId": bridge_id, "name": name or None}
        return await self._model(Bridge, "POST", "/bridges", params=params)

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return await self._model(Bridge, "GET", f"/bridges/{bridge_id}")

    async def list_bridges(self) -> list[Bridge]:
        return await self._models(Bridge, "GET", "/bridges")

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", params={"channel": channel_id})

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel", params={"channel": channel_id})

    async def delete_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def record_bridge(self, bridge_id: str, name: str, *, format: str = "wav", max_duration: int = 0,
                            max_silence: int = 0, if_exists: str | None = "overwrite", beep: bool | None = None,
                            terminate_on: str | None = "none") -> LiveRecording:
        params = {"name": name, "format": format, "maxDurationSeconds": max_duration,
                  "maxSilenceSeconds": max_silence, "ifExists": if_exists, "beep": beep,
                  "terminateOn": terminate_on}
        return await self._model(LiveRecording, "POST", f"/bridges/{bridge_id}/record", params=params)

    # --- playbacks and recordings ---------------------------------------------------------------

    async def get_playback(self, playback_id: str) -> Playback:
        return await self._model(Playback, "GET", f"/playbacks/{playback_id}")

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def get_live_recording(self, name: str) -> LiveRecording:
        return await self._model(LiveRecording, "GET", f"/recordings/live/{name}")

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def get_stored_recording(self, name: str) -> StoredRecording:
        return await self._model(StoredRecording, "GET", f"/recordings/stored/{name}")

    async def list_stored_recordings(self) -> list[StoredRecording]:
        return await self._models(StoredRecording, "GET", "/recordings/stored")

    async def stored_recording_file(self, name: str) -> bytes:
        resp = await self.request("GET", f"/recordings/stored/{name}/file")
        return resp.content

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")

    # --- misc -----------------------------------------------------------------------------------

    async def asterisk_info(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/asterisk/info"))
