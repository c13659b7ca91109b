"""Twilio's REST API through the official SDK (`twilio.rest.Client`), on our asyncio loop.

The SDK builds the requests (Calls create / update); `HttpxTwilioClient` sends them with httpx,
already a dependency, and points them at `TWILIO_API_BASE_URL` — Twilio itself, or a loopback
double in tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from switchboard.telephony.twilio.config import TwilioConfig

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"


class TwilioApiError(Exception):
    """A REST request failed: Twilio's error code and message, or the transport failure."""

    def __init__(self, message: str, *, status: int = 0, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class HttpxTwilioClient(AsyncHttpClient):
    """The SDK's async HTTP client contract on httpx, with the API root replaceable."""

    def __init__(self, base_url: str = TWILIO_API, *, timeout: float = 10.0) -> None:
        super().__init__(logging.getLogger("twilio.http"), True, timeout)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(timeout=timeout)

    async def request(self, method: str, uri: str, params: dict[str, object] | None = None,
                      data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                      auth: tuple[str, str] | None = None, timeout: float | None = None,
                      allow_redirects: bool = False) -> Response:
        if uri.startswith(TWILIO_API) and self.base_url != TWILIO_API:
            uri = self.base_url + uri[len(TWILIO_API):]
        response = await self._http.request(method.upper(), uri, params=params, data=data,  # type: ignore[arg-type]
                                            headers=headers, auth=auth, timeout=timeout or self.timeout,
                                            follow_redirects=allow_redirects)
        return Response(response.status_code, response.text, response.headers)

    async def aclose(self) -> None:
        await self._http.aclose()


@dataclass(frozen=True, slots=True)
class CreatedCall:
    sid: str
    status: str


class TwilioRest:
    """The few Calls-resource operations the backend needs, with errors as `TwilioApiError`."""

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self.http = HttpxTwilioClient(config.api_base_url)
        self.client = Client(config.account_sid, config.auth_token, http_client=self.http)

    async def create_call(self, *, to: str, from_: str, url: str, status_callback: str, timeout: int,
                          machine_detection: str = "") -> CreatedCall:
        kwargs: dict[str, Any] = {
            "to": to, "from_": from_, "url": url, "method": "POST", "timeout": timeout,
            "status_callback": status_callback, "status_callback_method": "POST",
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
        }
        if machine_detection:
            kwargs["machine_detection"] = machine_detection
        try:
            call = await self.client.calls.create_async(**kwargs)
        except TwilioRestException as exc:
            raise TwilioApiError(f"{exc.code or exc.status}: {exc.msg}", status=exc.status, code=exc.code) from exc
        except httpx.HTTPError as exc:
            raise TwilioApiError(f"Twilio API unreachable: {type(exc).__name__}: {exc}") from exc
        return CreatedCall(sid=str(call.sid), status=str(call.status))

    async def update_call(self, sid: str, *, twiml: str | None = None, status: str | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if twiml is not None:
            kwargs["twiml"] = twiml
        if status is not None:
            kwargs["status"] = status
        try:
            await self.client.calls(sid).update_async(**kwargs)
        except TwilioRestException as exc:
            raise TwilioApiError(f"{exc.code or exc.status}: {exc.msg}", status=exc.status, code=exc.code) from exc
        except httpx.HTTPError as exc:
            raise TwilioApiError(f"Twilio API unreachable: {type(exc).__name__}: {exc}") from exc

    async def hangup(self, sid: str) -> None:
        """End a live call (`Status=completed`); a call already gone (404 / 21220) is fine."""
        try:
            await self.update_call(sid, status="completed")
        except TwilioApiError as exc:
            if exc.status == 404 or exc.code in (20404, 21220):
                return
            raise

    async def cancel(self, sid: str) -> None:
        """Stop ringing a call that was not answered yet."""
        try:
            await self.update_call(sid, status="canceled")
        except TwilioApiError as exc:
            if exc.status == 404 or exc.code in (20404, 21220):
                return
            raise

    async def aclose(self) -> None:
        await self.http.aclose()
