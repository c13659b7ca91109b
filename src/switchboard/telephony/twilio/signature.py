"""`X-Twilio-Signature` checks on every webhook, with the official SDK's `RequestValidator`.

Twilio signs the full URL it requested (our public base URL, the path, the query string) followed by
the sorted form parameters, with the account's auth token. Behind a proxy the URL we see is not the
one Twilio used, so it is rebuilt from `TWILIO_PUBLIC_BASE_URL`.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from switchboard.telephony.twilio.config import TwilioConfig

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_FORM_FIELDS = 200  # Twilio sends a few dozen; anything larger is not Twilio


class WebhookSigner:
    """Validates (and, for the test double and our own tools, computes) webhook signatures."""

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self.validator = RequestValidator(config.auth_token)

    def public_url(self, request: Request) -> str:
        url = self.config.url(request.url.path)
        return f"{url}?{request.url.query}" if request.url.query else url

    async def verified_form(self, request: Request) -> FormData:
        """The request's form once its signature checks out; 403 (and a log line) otherwise."""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        try:
            form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
        except Exception as exc:  # malformed body: not a Twilio request either
            log.warning("twilio webhook %s rejected: unreadable form (%s)", request.url.path, exc)
            raise HTTPException(400, "the body must be a form (application/x-www-form-urlencoded)") from exc
        url = self.public_url(request)
        client = request.client.host if request.client else "?"
        if not signature:
            log.warning("twilio webhook %s from %s rejected: no %s header", request.url.path, client,
                        SIGNATURE_HEADER)
            raise HTTPException(403, f"missing {SIGNATURE_HEADER}")
        if not self.validator.validate(url, form, signature):
            log.warning("twilio webhook %s from %s rejected: invalid %s for %s", request.url.path, client,
                        SIGNATURE_HEADER, url)
            raise HTTPException(403, f"invalid {SIGNATURE_HEADER}")
        return form

    def sign(self, url: str, params: dict[str, str]) -> str:
        return self.validator.compute_signature(url, params)
