"""SMS alerts to the admins (`SMS_ADMINS`) when the dialer pauses itself.

`SMSProvider` is the interface; `KavenegarSMS` implements Kavenegar's documented REST API
(https://kavenegar.com/rest.html):

    POST {base}/{API-KEY}/sms/send.json
    Content-Type: application/x-www-form-urlencoded
    receptor=09121234567,09351234567&message=...&sender=10004346     (sender optional)
  -> {"return": {"status": 200, "message": "..."},
      "entries": [{"messageid": 8792343, "status": 1, "receptor": "0912...", ...}]}

Any `return.status` other than 200 (Kavenegar also sets it as the HTTP status: 401 bad key,
418 no credit, 411 bad receptor...) is an `SMSError`. The key sits in the URL path, so this module
never logs the URL; keep the `httpx` logger at WARNING in production for the same reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from switchboard import clock
from switchboard.settings import Settings

log = logging.getLogger(__name__)

KAVENEGAR_BASE_URL = "https://api.kavenegar.com/v1"


class SMSError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"SMS provider error {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class SMSReceipt:
    receptor: str
    message_id: str
    status: int


class SMSProvider(Protocol):
    async def send(self, receptors: Sequence[str], message: str) -> list[SMSReceipt]:
        """Send `message` to every receptor; raises `SMSError` when the provider refuses."""
        ...

    async def aclose(self) -> None: ...


class KavenegarSMS:
    """Kavenegar `sms/send` over httpx; `base_url` points elsewhere in tests or behind a proxy."""

    def __init__(
        self,
        api_key: str,
        *,
        sender: str = "",
        base_url: str = KAVENEGAR_BASE_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("Kavenegar needs an API key (SMS_API_KEY)")
        self._api_key = api_key
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._own_client = client is None

    async def send(self, receptors: Sequence[str], message: str) -> list[SMSReceipt]:
        if not receptors:
            return []
        form = {"receptor": ",".join(receptors), "message": message}
        if self.sender:
            form["sender"] = self.sender
        url = f"{self.base_url}/{self._api_key}/sms/send.json"
        try:
            with clock.real_io():  # a network round-trip takes no simulated time
                response = await self._client.post(url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise SMSError(0, f"request failed: {type(exc).__name__}") from None
        try:
            body = response.json()
            status = int(body["return"]["status"])
            text = str(body["return"].get("message", ""))
        except (ValueError, KeyError, TypeError):
            raise SMSError(response.status_code, "malformed response from Kavenegar") from None
        if status != 200:
            raise SMSError(status, text)
        receipts = []
        for entry in body.get("entries") or []:
            receipts.append(
                SMSReceipt(
                    receptor=str(entry.get("receptor", "")),
                    message_id=str(entry.get("messageid", "")),
                    status=int(entry.get("status", 0)),
                )
            )
        return receipts

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


class SMSAlerter:
    """Sends one alert text to every admin; never raises (an alert must not crash the dialer)."""

    def __init__(self, provider: SMSProvider, admins: Sequence[str]) -> None:
        self.provider = provider
        self.admins = list(admins)

    async def alert(self, message: str) -> bool:
        if not self.admins:
            return False
        try:
            await self.provider.send(self.admins, message)
        except SMSError as exc:
            log.error("SMS alert to %d admin(s) failed: %s", len(self.admins), exc)
            return False
        except Exception:
            log.exception("SMS alert failed")
            return False
        return True


def sms_alerter_from_settings(settings: Settings) -> SMSAlerter | None:
    """`SMS_API_KEY` + `SMS_ADMINS` enable alerts; `SMS_PROVIDER_URL` overrides Kavenegar's base URL."""
    key = settings.sms_api_key.get_secret_value()
    admins = [a.strip() for a in str(settings.sms_admins).split(",") if a.strip()]
    if not key or not admins:
        return None
    provider = KavenegarSMS(
        key, sender=settings.sms_sender, base_url=settings.sms_provider_url or KAVENEGAR_BASE_URL
    )
    return SMSAlerter(provider, admins)
