"""An external panel for the dialer's contract tests, in-process on the dialer's (virtual) clock.

It answers with next-batch JSON bodies exactly as an external panel sends them (parsed by the same
`parse_next_batch` the HTTP client uses) and keeps every report-result body as it would arrive on
the wire (`model_dump(mode="json")`). Numbers are leased to the dialer until reported, or until the
lease runs out (a number the dialer deferred comes back later, as with a real panel). The HTTP
transport itself (PanelClient <-> a panel server) is tested in tests/panel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from switchboard import clock
from switchboard.panel.client import DeliveryOutcome
from switchboard.panel.contract import NextBatch, ReportResultRequest, parse_next_batch


@dataclass
class FakeExternalPanel:
    numbers: list[tuple[int, str]]  # (panel id, phone as the panel stores it)
    scenarios: list[dict[str, Any]] = field(default_factory=list)  # [{"id": 41, "name": "..."}]
    inbound_agents: list[dict[str, Any]] = field(default_factory=list)
    outbound_agents: list[dict[str, Any]] = field(default_factory=list)
    timezone: str | None = "+0330"
    clock_offset: timedelta = timedelta(0)  # the panel's server_time minus ours
    per_batch: int = 50
    lease: timedelta = timedelta(minutes=10)
    reports: list[dict[str, Any]] = field(default_factory=list)
    registered_scenarios: list[Any] = field(default_factory=list)
    registered_lines: list[Any] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    done: set[int] = field(default_factory=set)
    _leased: dict[int, datetime] = field(default_factory=dict)

    def body(self, size: int) -> dict[str, Any]:
        now = clock.now()
        free = [(i, p) for i, p in self.numbers if i not in self.done and self._leased.get(i, now) <= now]
        picked = free[: min(size, self.per_batch)]
        for i, _ in picked:
            self._leased[i] = now + self.lease
        data: dict[str, Any] = {
            "call_allowed": True, "batch": {"batch_id": f"b{len(self.reports)}", "numbers": [
                {"id": i, "phone_number": p} for i, p in picked]},
            "active_scenarios": self.scenarios, "inbound_agents": self.inbound_agents,
            "outbound_agents": self.outbound_agents, "server_time": (now + self.clock_offset).isoformat()}
        if self.timezone is not None:
            data["timezone"] = self.timezone
        return data

    # --- the Panel protocol (what PanelClient does over HTTP) --------------------------------------
    async def next_batch(self, size: int) -> NextBatch:
        return parse_next_batch(self.body(size), "IR")

    async def register_scenarios(self, scenarios: Any) -> DeliveryOutcome:
        self.registered_scenarios = list(scenarios)
        return DeliveryOutcome(True, 200)

    async def register_outbound_lines(self, lines: Any) -> DeliveryOutcome:
        self.registered_lines = list(lines)
        return DeliveryOutcome(True, 200)

    async def report_result(self, report: ReportResultRequest, *, idempotency_key: str,
                            retries: int | None = None) -> DeliveryOutcome:
        body = report.model_dump(mode="json")
        self.reports.append(body)
        if body.get("number_id") is not None:
            self.done.add(int(body["number_id"]))
        return DeliveryOutcome(True, 200)

    async def send_alert(self, kind: str, message: str, details: dict[str, Any] | None = None) -> DeliveryOutcome:
        self.alerts.append({"kind": kind, "message": message})
        return DeliveryOutcome(True, 200)


class FakePanelSink:
    """The results outbox delivering to the fake panel (PanelSink does this over HTTP)."""

    def __init__(self, panel: FakeExternalPanel) -> None:
        self.panel = panel

    async def deliver(self, kind: str, payload: dict[str, Any], idempotency_key: str) -> DeliveryOutcome:
        if kind == "alert":
            return DeliveryOutcome(True, 200)
        return await self.panel.report_result(ReportResultRequest.model_validate(payload),
                                              idempotency_key=idempotency_key)
