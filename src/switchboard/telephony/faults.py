"""What a telephony backend says when it cannot place a call at all (the PBX is down, restarting, or
its event stream is cut): `BackendUnavailable`. Nothing was attempted, so no contact is consumed; the
dialer gives the contact back and waits until the backend is available again (`wait_available`).

Kept apart from any backend so the dialer can depend on it without knowing one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class BackendUnavailable(Exception):
    """The backend could not even try to place the call; `reason` is the real cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Availability(Protocol):
    """Optional: a backend that can tell whether it is able to place calls now."""

    @property
    def available(self) -> bool: ...

    @property
    def unavailable_reason(self) -> str: ...

    async def wait_available(self) -> None: ...
