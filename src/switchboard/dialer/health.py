"""The failure threshold: stop dialing when providers keep failing, tell people, resume when fixed.

Consecutive failures are counted per kind (stt, tts, llm, trunk, ...): a working LLM does not hide
an STT account that ran out of balance. When one kind reaches `threshold` (FAIL_ALERT_THRESHOLD)
the gate closes (the dialer loop awaits `wait_running()` before each origination), the panel is
told through an injected async callable, and the admins get an SMS. The gate opens again when an
admin calls `resume()`, when a success of the failing kind is recorded (e.g. an inbound call that
worked), or when the optional `probe` reports the provider healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from switchboard import clock
from switchboard.dialer.alerts import SMSAlerter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthAlert:
    state: Literal["paused", "resumed"]
    kind: str  # the failing provider kind: stt, llm, trunk...
    reason: str  # the last failure's reason, or who resumed
    failures: int
    at: datetime

    def text(self, company: str = "") -> str:
        who = f"[{company}] " if company else ""
        if self.state == "paused":
            return (
                f"{who}Switchboard dialer PAUSED: {self.failures} consecutive {self.kind} failures "
                f"(last: {self.reason}) at {self.at:%Y-%m-%d %H:%M} UTC"
            )
        return f"{who}Switchboard dialer resumed ({self.reason}) at {self.at:%Y-%m-%d %H:%M} UTC"


Notify = Callable[[HealthAlert], Awaitable[None]]
Probe = Callable[[str], Awaitable[bool]]


class DialerHealth:
    def __init__(
        self,
        threshold: int,
        *,
        notify: Notify | None = None,
        sms: SMSAlerter | None = None,
        probe: Probe | None = None,
        probe_interval: float = 60.0,
        company: str = "",
        sms_on_resume: bool = False,
    ) -> None:
        self.threshold = threshold
        self.notify = notify
        self.sms = sms
        self.probe = probe
        self.probe_interval = probe_interval
        self.company = company
        self.sms_on_resume = sms_on_resume
        self._failures: dict[str, int] = {}
        self._running = asyncio.Event()
        self._running.set()
        self._cause: str | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.alerts: list[HealthAlert] = []  # history, newest last (for the panel page and tests)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cause(self) -> str | None:
        return self._cause

    def failures(self, kind: str) -> int:
        return self._failures.get(kind, 0)

    async def wait_running(self) -> None:
        """The gate: returns at once while healthy, else when dialing resumes."""
        await self._running.wait()

    async def record_failure(self, kind: str, reason: str) -> None:
        count = self._failures.get(kind, 0) + 1
        self._failures[kind] = count
        if self.threshold > 0 and count >= self.threshold and not self.paused:
            self._running.clear()
            self._cause = kind
            log.error("dialer paused: %d consecutive %s failures (last: %s)", count, kind, reason)
            await self._announce(HealthAlert("paused", kind, reason, count, clock.now()), sms=True)
            if self.probe is not None:
                self._probe_task = asyncio.ensure_future(self._probe_until_healthy(kind))

    async def record_success(self, kind: str) -> None:
        self._failures[kind] = 0
        if self.paused and self._cause == kind:
            await self.resume(by=f"{kind} recovered")

    async def pause(self, cause: str) -> None:
        """A person closes the gate (the console's Pause); only `resume` opens it again."""
        if self.paused:
            return
        self._running.clear()
        self._cause = cause
        log.warning("dialer %s", cause)

    async def resume(self, by: str = "admin") -> None:
        if not self.paused:
            return
        kind = self._cause or ""
        failures = self._failures.get(kind, 0)
        self._failures.clear()
        self._cause = None
        self._running.set()
        task, self._probe_task = self._probe_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        log.warning("dialer resumed (%s)", by)
        await self._announce(HealthAlert("resumed", kind, by, failures, clock.now()), sms=self.sms_on_resume)

    async def _probe_until_healthy(self, kind: str) -> None:
        assert self.probe is not None
        while self.paused and self._cause == kind:
            await asyncio.sleep(self.probe_interval)
            try:
                healthy = await self.probe(kind)
            except Exception:
                log.exception("health probe for %s failed", kind)
                healthy = False
            if healthy and self.paused and self._cause == kind:
                await self.resume(by=f"probe: {kind} healthy")
                return

    async def _announce(self, alert: HealthAlert, *, sms: bool) -> None:
        self.alerts.append(alert)
        jobs: list[Awaitable[object]] = []
        if self.notify is not None:
            jobs.append(self.notify(alert))
        if sms and self.sms is not None:
            jobs.append(self.sms.alert(alert.text(self.company)))
        for outcome in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log.error("dialer %s alert not delivered: %r", alert.state, outcome)

    async def aclose(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
            self._probe_task = None
