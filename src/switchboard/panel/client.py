"""`PanelClient`: the dialer's side of the panel contract over HTTP (external panel, or the
built-in one served by uvicorn). Pooled, with timeouts and retries; it never raises into the
dialer: bad answers become "no batch" / an unsuccessful `DeliveryOutcome`, logged with the cause."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel

from switchboard import clock
from switchboard.panel.contract import (
    AlertRequest,
    NextBatch,
    OutboundLineRegistration,
    RegisterOutboundLinesRequest,
    RegisterScenariosRequest,
    ReportResultRequest,
    ScenarioRegistration,
    parse_next_batch,
)
from switchboard.settings import Settings

log = logging.getLogger(__name__)

NEXT_BATCH = "/api/dialer/next-batch"
REGISTER_SCENARIOS = "/api/dialer/register-scenarios"
REGISTER_LINES = "/api/dialer/register-outbound-lines"
REPORT_RESULT = "/api/dialer/report-result"
ALERT = "/api/dialer/alert"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one report: `delivered` (2xx, or 409 = the panel already had the key),
    else `error`; `permanent` marks a 4xx the panel will keep refusing (retry slowly, alert)."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    duplicate: bool = False
    permanent: bool = False


class PanelClient:
    def __init__(
        self,
        base_url: str,
        token: str = "",
        *,
        company: str = "default",
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        region: str = "IR",
        max_connections: int = 20,
        dialer_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "switchboard-dialer"}
        if dialer_id:
            headers["X-Dialer-Id"] = dialer_id  # the built-in panel leases contacts to this owner
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.company = company
        self.region = region
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> PanelClient:
        return cls(
            settings.panel_base_url,
            settings.panel_api_token.get_secret_value(),
            company=settings.company,
            timeout=settings.panel_timeout,
            region=settings.default_region,
            max_connections=settings.panel_max_connections,
            **kw,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PanelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport with retries -----------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, retries: int | None = None, **kw: Any
    ) -> httpx.Response:
        """Retry connect errors, timeouts and 5xx with exponential backoff; return the last
        response (or raise the last transport error) when attempts run out."""
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            try:
                with clock.real_io():  # on the simulator's virtual clock, time stops while we wait
                    resp = await self._http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise
                log.debug("panel %s %s: %s (retrying)", method, path, exc)
            else:
                if resp.status_code < 500 or attempt + 1 >= attempts:
                    return resp
                log.debug("panel %s %s: HTTP %s (retrying)", method, path, resp.status_code)
            await asyncio.sleep(self.backoff * (2**attempt))
        raise AssertionError("unreachable")

    async def _post(
        self,
        path: str,
        model: BaseModel,
        *,
        headers: dict[str, str] | None = None,
        retries: int | None = None,
    ) -> DeliveryOutcome:
        try:
            resp = await self._request(
                "POST", path, json=model.model_dump(mode="json"), headers=headers, retries=retries
            )
        except httpx.HTTPError as exc:
            return DeliveryOutcome(False, None, f"{type(exc).__name__}: {exc}")
        if 200 <= resp.status_code < 300:
            duplicate = False
            try:
                body = resp.json()
                duplicate = bool(isinstance(body, dict) and body.get("duplicate"))
            except ValueError:
                pass
            return DeliveryOutcome(True, resp.status_code, duplicate=duplicate)
        if resp.status_code == 409:
            return DeliveryOutcome(True, 409, duplicate=True)
        error = f"HTTP {resp.status_code}: {resp.text[:300]}"
        return DeliveryOutcome(False, resp.status_code, error, permanent=400 <= resp.status_code < 500)

    # --- the contract ---------------------------------------------------------------------------

    async def next_batch(self, size: int) -> NextBatch:
        """The next batch to dial. Any failure (network, HTTP error, malformed JSON or fields) is
        logged with the cause and returned as "no batch" (`call_allowed=False`, `error` set)."""
        try:
            resp = await self._request("GET", NEXT_BATCH, params={"size": size, "company": self.company})
        except httpx.HTTPError as exc:
            return self._no_batch(f"{type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            return self._no_batch(f"HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            data = resp.json()
        except ValueError as exc:
            return self._no_batch(f"body is not JSON ({exc}): {resp.text[:200]!r}")
        batch = parse_next_batch(data, self.region)
        if batch.error:
            return self._no_batch(f"malformed next-batch response: {batch.error}")
        for rej in batch.rejected:
            log.warning("panel number rejected (id=%s phone=%r): %s", rej.id, rej.phone_number, rej.reason)
        return batch

    def _no_batch(self, error: str) -> NextBatch:
        log.warning("panel next-batch unusable, treating as no batch: %s", error)
        return NextBatch.none(error)

    async def register_scenarios(
        self, scenarios: Sequence[ScenarioRegistration | tuple[str, str]]
    ) -> DeliveryOutcome:
        items = [
            s if isinstance(s, ScenarioRegistration) else ScenarioRegistration(name=s[0], display_name=s[1])
            for s in scenarios
        ]
        out = await self._post(
            REGISTER_SCENARIOS, RegisterScenariosRequest(company=self.company, scenarios=items)
        )
        if not out.delivered:
            log.warning("panel register-scenarios failed: %s", out.error)
        return out

    async def register_outbound_lines(
        self, lines: Sequence[OutboundLineRegistration | tuple[str, str]]
    ) -> DeliveryOutcome:
        items = [
            line
            if isinstance(line, OutboundLineRegistration)
            else OutboundLineRegistration(phone_number=line[0], display_name=line[1])
            for line in lines
        ]
        out = await self._post(
            REGISTER_LINES, RegisterOutboundLinesRequest(company=self.company, lines=items)
        )
        if not out.delivered:
            log.warning("panel register-outbound-lines failed: %s", out.error)
        return out

    async def report_result(
        self, report: ReportResultRequest, *, idempotency_key: str, retries: int | None = None
    ) -> DeliveryOutcome:
        """Deliver one result. Safe to repeat: the panel de-duplicates by `Idempotency-Key`."""
        return await self._post(
            REPORT_RESULT, report, headers={"Idempotency-Key": idempotency_key}, retries=retries
        )

    async def send_alert(
        self, kind: str, message: str, details: dict[str, Any] | None = None
    ) -> DeliveryOutcome:
        req = AlertRequest(
            company=self.company, kind=kind, message=message, details=details or {}, at=clock.now()
        )
        out = await self._post(ALERT, req, retries=1)
        if not out.delivered:
            log.warning("panel alert %s not delivered: %s", kind, out.error)
        return out
