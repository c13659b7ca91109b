"""What Vira's STT and TTS share: auth, and reading their error bodies.

Vira answers errors as JSON with a message (sometimes with HTTP 200 and a failure status).
"Empty Audio file" means the upload held no speech — for a call that is the caller hanging up, so
it becomes `EmptyAudio`, not a provider failure. Balance/credit/quota messages are provider failures
that count toward the dialer's alert threshold and are never retried.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from switchboard.speech.base import EmptyAudio, ProviderFailure
from switchboard.speech.http import RETRY, body_json

PROVIDER = "vira"
_QUOTA_WORDS = ("balance", "credit", "quota", "insufficient", "charge", "اعتبار", "موجودی")


def message_of(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                inner = message_of(value)
                if inner:
                    return inner
    return ""


def failure_from_message(message: str, status: int) -> Exception | None:
    lowered = message.lower()
    if "empty audio" in lowered:
        return EmptyAudio(f"{PROVIDER}: {message}")
    if any(word in lowered for word in _QUOTA_WORDS):
        return ProviderFailure(PROVIDER, f"balance/quota: {message}")
    if status in (401, 403):
        return ProviderFailure(PROVIDER, f"authentication failed ({status}): {message}")
    return None


def classify_vira(resp: httpx.Response) -> Exception | str | None:
    if resp.status_code < 400:
        return None
    body = body_json(resp)
    message = message_of(body) or resp.text[:200]
    failure = failure_from_message(message, resp.status_code)
    if failure is not None:
        return failure
    if resp.status_code == 429 or resp.status_code >= 500:
        return RETRY
    return ProviderFailure(PROVIDER, f"HTTP {resp.status_code}: {message}")


def check_body(body: Any) -> None:
    """A 2xx body can still carry a failure (`{"status": "error", "message": ...}`)."""
    if not isinstance(body, dict):
        return
    status = str(body.get("status", "")).lower()
    ok = body.get("success", True) is not False and status not in ("error", "failed", "fail")
    message = message_of(body)
    failure = failure_from_message(message, 200) if message else None
    if failure is not None and (not ok or isinstance(failure, EmptyAudio)):
        raise failure
    if not ok:
        raise ProviderFailure(PROVIDER, message or json.dumps(body)[:200])


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
