"""Tavus Conversational Video (CVI) as the avatar of a browser call.

Per Tavus' documented REST API (https://docs.tavus.io/api-reference):

* `POST {base}/v2/conversations` with header `x-api-key`, body `{replica_id, persona_id,
  conversation_name, properties: {max_call_duration, participant_left_timeout,
  participant_absent_timeout}}` -> `{conversation_id, conversation_name, conversation_url, status,
  replica_id, persona_id, created_at}`; the replica joins the Daily room at `conversation_url`.
* `POST {base}/v2/conversations/{conversation_id}/end` ends it (billing stops).

Switchboard keeps the conversation itself (its own STT, persona and brain), so the Tavus persona is
an *echo* persona (`pipeline_mode: echo`, created once in Tavus and named by `TAVUS_PERSONA_ID`): the
replica only speaks what it is told. The page joins the room with Daily's client (`daily-js`) and sends
each agent sentence as a `conversation.echo` interaction (`modality: text`) and a barge-in as
`conversation.interrupt` — Tavus' Interactions Protocol, which travels over the room's app messages.
Each Switchboard persona may have its own face (`TAVUS_REPLICAS=reception=r123,sales=r456`); a
handoff to a persona with another face ends the old conversation and opens a new one.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from switchboard.avatar.base import AvatarSession, AvatarUnavailable

log = logging.getLogger(__name__)

DEFAULT_DAILY_JS = "https://unpkg.com/@daily-co/daily-js"


class _Conversation(BaseModel):
    """The fields of Tavus' create-conversation response we rely on (others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    conversation_id: str
    conversation_url: str
    status: str = "active"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def parse_replicas(spec: str) -> dict[str, str]:
    """`reception=r123,sales=r456` -> {persona: replica_id}; a malformed entry is a clear error."""
    out: dict[str, str] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        persona, sep, replica = item.partition("=")
        if not sep or not persona.strip() or not replica.strip():
            raise ValueError(f"TAVUS_REPLICAS: {item!r} is not persona=replica_id")
        out[persona.strip()] = replica.strip()
    return out


class TavusAvatar:
    name = "tavus"

    def __init__(self, *, api_key: str, persona_id: str, replica_id: str = "",
                 replicas: dict[str, str] | None = None, base_url: str = "https://tavusapi.com",
                 daily_js_url: str = DEFAULT_DAILY_JS, max_call_seconds: int = 1800, timeout: float = 10.0,
                 client: httpx.AsyncClient | None = None) -> None:
        if not api_key:
            raise ValueError("AVATAR_PROVIDER=tavus needs TAVUS_API_KEY")
        if not persona_id:
            raise ValueError("AVATAR_PROVIDER=tavus needs TAVUS_PERSONA_ID (a Tavus persona in echo mode)")
        if not replica_id and not replicas:
            raise ValueError("AVATAR_PROVIDER=tavus needs TAVUS_REPLICA_ID or TAVUS_REPLICAS")
        self.base_url = base_url.rstrip("/")
        self.persona_id = persona_id
        self.replica_id = replica_id
        self.replicas = dict(replicas or {})
        self.daily_js_url = daily_js_url
        self.max_call_seconds = max(10, min(int(max_call_seconds), 3600))  # Tavus' maximum is 3600
        self._http = client or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                                 headers={"x-api-key": api_key})

    def page_sources(self) -> dict[str, list[str]]:
        """Daily's client script, its rooms (the replica's iframe: `*.daily.co`) and whatever origin
        Tavus hands rooms out on."""
        origins = sorted({_origin(self.daily_js_url), _origin(self.base_url)} - {""})
        rooms = ["https://*.daily.co", "wss://*.daily.co"]
        return {"script-src": [_origin(self.daily_js_url)], "connect-src": [*origins, *rooms],
                "frame-src": [*origins, "https://*.daily.co"]}

    def replica_for(self, persona: str) -> str:
        return self.replicas.get(persona) or self.replica_id

    async def start(self, call_id: str, persona: str) -> AvatarSession:
        replica = self.replica_for(persona)
        if not replica:
            raise AvatarUnavailable(f"no Tavus replica for persona {persona!r}")
        body: dict[str, Any] = {
            "replica_id": replica, "persona_id": self.persona_id,
            "conversation_name": f"switchboard {call_id} {persona}"[:100],
            "properties": {"max_call_duration": self.max_call_seconds, "participant_left_timeout": 10,
                           "participant_absent_timeout": 60},
        }
        try:
            resp = await self._http.post("/v2/conversations", json=body)
        except httpx.HTTPError as exc:
            raise AvatarUnavailable(f"Tavus unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            raise AvatarUnavailable(f"Tavus refused the conversation: HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            conv = _Conversation.model_validate(resp.json())
        except (ValueError, ValidationError) as exc:
            raise AvatarUnavailable(f"Tavus sent an unexpected answer: {str(exc)[:200]}") from exc
        if conv.status == "ended":
            raise AvatarUnavailable("Tavus ended the conversation at once")
        log.info("avatar: Tavus conversation %s for call %s (%s)", conv.conversation_id, call_id, persona)
        return AvatarSession("tavus", conv.conversation_id, call_id, persona, {
            "conversation_id": conv.conversation_id, "conversation_url": conv.conversation_url,
            "replica_id": replica, "daily_js": self.daily_js_url})

    async def switch(self, session: AvatarSession, persona: str) -> AvatarSession:
        if self.replica_for(persona) == session.client.get("replica_id"):
            session.persona = persona
            return session
        await self.end(session)
        return await self.start(session.call_id, persona)

    async def end(self, session: AvatarSession) -> None:
        try:
            resp = await self._http.post(f"/v2/conversations/{session.session_id}/end")
        except httpx.HTTPError as exc:
            log.warning("avatar: ending Tavus conversation %s failed: %s", session.session_id, exc)
            return
        if resp.status_code >= 400:
            log.warning("avatar: ending Tavus conversation %s: HTTP %s %s", session.session_id,
                        resp.status_code, resp.text[:200])

    async def aclose(self) -> None:
        await self._http.aclose()
