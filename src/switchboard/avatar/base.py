"""The avatar extension point: a face for the persona on the line.

A provider opens an avatar session for a browser call (`start`), may need a new one when a handoff
brings another persona with another face (`switch`), and closes it when the call ends (`end`). What
the page needs to show it travels in `AvatarSession.client` (a provider's own keys, e.g. a room URL);
the page speaks each agent sentence through it, and plays the agent's audio itself whenever the
avatar is absent or fails. A provider raises `AvatarUnavailable` for anything that goes wrong, and
the call goes on with audio only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class AvatarUnavailable(Exception):
    """The provider could not open (or switch) an avatar session; the call stays audio only."""


@dataclass(slots=True)
class AvatarSession:
    provider: str
    session_id: str
    call_id: str
    persona: str
    client: dict[str, Any] = field(default_factory=dict)  # what the page needs (sent as is)

    def for_page(self) -> dict[str, Any]:
        return {"provider": self.provider, "session_id": self.session_id, "persona": self.persona, **self.client}


class AvatarProvider(Protocol):
    name: str

    async def start(self, call_id: str, persona: str) -> AvatarSession: ...

    async def switch(self, session: AvatarSession, persona: str) -> AvatarSession:
        """The session to use after a handoff to `persona` (the same one when its face is the same)."""
        ...

    def page_sources(self) -> dict[str, list[str]]:
        """Origins the page must be allowed to reach for this provider, by CSP directive
        (`script-src`, `connect-src`, `frame-src`)."""
        ...

    async def end(self, session: AvatarSession) -> None:
        """Close the provider's session (never raises: the call is over either way)."""
        ...

    async def aclose(self) -> None: ...
