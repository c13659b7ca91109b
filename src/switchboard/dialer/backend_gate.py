"""Dialing waits while the telephony backend cannot place calls (the PBX is down or restarting, its
event stream is cut), and a contact the backend could not even try is given back untouched.

A backend that implements `telephony.faults.Availability` says when it is able to place calls; one
that raises `BackendUnavailable` from `originate` says nothing was attempted. Either way no contact is
consumed, the panel hears once that dialing paused (with the real cause) and once that it resumed.
"""

from __future__ import annotations

import logging
from typing import Any

from switchboard.observability import metrics
from switchboard.telephony.faults import Availability, BackendUnavailable

log = logging.getLogger(__name__)


class BackendGate:
    def __init__(self, backend: object, panel: Any, store: Any) -> None:
        self.backend = backend
        self.panel = panel
        self.store = store
        self.reason = ""  # the real cause while paused, "" while dialing
        self.outages = 0

    @property
    def paused(self) -> bool:
        return bool(self.reason)

    def _unavailable(self) -> str:
        backend = self.backend
        if isinstance(backend, Availability) and not backend.available:
            return backend.unavailable_reason or "telephony backend unavailable"
        return ""

    async def wait(self) -> None:
        """Return when the backend can place calls (at once when it can; the caller races this with
        its stop event). Dialing counts as resumed once a call is placed again (`placed`)."""
        reason = self._unavailable()
        if not reason:
            return
        await self._pause(reason)
        assert isinstance(self.backend, Availability)
        await self.backend.wait_available()

    async def placed(self) -> None:
        """`originate` went through: the backend takes calls again."""
        if self.paused:
            await self._resume()

    async def not_attempted(self, call_id: str, exc: BackendUnavailable) -> None:
        """`originate` refused before trying: forget the call row written before dialing (it was no
        attempt) and pause until the backend is back."""
        await self.store.calls.discard(call_id)
        await self._pause(exc.reason)

    async def _pause(self, reason: str) -> None:
        if self.paused:
            self.reason = reason
            return
        self.reason = reason
        self.outages += 1
        metrics.DIALER_PAUSED.set(1)
        log.error("dialing paused: %s", reason)
        await self._tell("paused", f"dialing paused: telephony unavailable ({reason})", reason)

    async def _resume(self) -> None:
        if not self.paused:
            return
        was, self.reason = self.reason, ""
        metrics.DIALER_PAUSED.set(0)
        log.warning("dialing resumed: telephony available again (was: %s)", was)
        await self._tell("resumed", "dialing resumed: telephony available again", was)

    async def _tell(self, kind: str, message: str, reason: str) -> None:
        try:
            await self.panel.send_alert(kind, message, {"kind": "telephony", "reason": reason})
        except Exception:  # the panel may be down too; the log line above is the record
            log.warning("could not tell the panel that dialing %s", kind, exc_info=True)
