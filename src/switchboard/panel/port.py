"""What the dialer needs from a panel. `PanelClient` (external panel over HTTP) and `LocalPanel`
(the built-in panel in-process) both satisfy it, so the dialer never knows which one it has."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from switchboard.panel.client import DeliveryOutcome
from switchboard.panel.contract import (
    NextBatch,
    OutboundLineRegistration,
    ReportResultRequest,
    ScenarioRegistration,
)


@runtime_checkable
class Panel(Protocol):
    async def next_batch(self, size: int) -> NextBatch: ...

    async def register_scenarios(
        self, scenarios: Sequence[ScenarioRegistration | tuple[str, str]]
    ) -> DeliveryOutcome: ...

    async def register_outbound_lines(
        self, lines: Sequence[OutboundLineRegistration | tuple[str, str]]
    ) -> DeliveryOutcome: ...

    async def report_result(
        self, report: ReportResultRequest, *, idempotency_key: str, retries: int | None = None
    ) -> DeliveryOutcome: ...

    async def send_alert(
        self, kind: str, message: str, details: dict[str, Any] | None = None
    ) -> DeliveryOutcome: ...
