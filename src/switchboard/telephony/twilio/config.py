"""The Twilio backend's settings, checked once at start: a missing one is an error that names it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from switchboard.telephony.registry import BackendStartError

MACHINE_DETECTION_MODES = ("Enable", "DetectMessageEnd")


class TwilioConfigError(BackendStartError, ValueError):
    """TELEPHONY_BACKEND=twilio cannot start: the message names the settings to fix."""


def digits(number: str) -> str:
    return re.sub(r"\D", "", number or "")


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    numbers: tuple[str, ...]  # our Twilio numbers, E.164
    public_base_url: str  # https://host[:port][/prefix], no trailing slash
    api_base_url: str = "https://api.twilio.com"
    machine_detection: str = ""  # "" (off) | Enable | DetectMessageEnd
    stream_timeout: float = 10.0
    operator_caller_id: str = ""

    @classmethod
    def from_settings(cls, settings: object) -> TwilioConfig:
        s = settings
        token = s.twilio_auth_token.get_secret_value()  # type: ignore[attr-defined]
        values = {
            "TWILIO_ACCOUNT_SID": s.twilio_account_sid.strip(),  # type: ignore[attr-defined]
            "TWILIO_AUTH_TOKEN": token.strip(),
            "TWILIO_NUMBERS": s.twilio_numbers.strip(),  # type: ignore[attr-defined]
            "TWILIO_PUBLIC_BASE_URL": s.twilio_public_base_url.strip(),  # type: ignore[attr-defined]
        }
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise TwilioConfigError(
                f"TELEPHONY_BACKEND=twilio needs {', '.join(missing)} (see .env.example)")
        base = values["TWILIO_PUBLIC_BASE_URL"].rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
            raise TwilioConfigError(f"TWILIO_PUBLIC_BASE_URL={base!r} must be an https:// URL of this server "
                                    "(scheme and host, optionally a path prefix)")
        numbers = tuple(n.strip() for n in values["TWILIO_NUMBERS"].split(",") if n.strip())
        bad = [n for n in numbers if not re.fullmatch(r"\+[1-9]\d{6,14}", n)]
        if bad:
            raise TwilioConfigError(f"TWILIO_NUMBERS: {', '.join(bad)} not in E.164 (+ and 7-15 digits)")
        amd = s.twilio_machine_detection.strip()  # type: ignore[attr-defined]
        if amd and amd not in MACHINE_DETECTION_MODES:
            raise TwilioConfigError(f"TWILIO_MACHINE_DETECTION={amd!r}: use {' or '.join(MACHINE_DETECTION_MODES)}"
                                    " (empty = off)")
        sid = values["TWILIO_ACCOUNT_SID"]
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
            raise TwilioConfigError("TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits")
        return cls(account_sid=sid, auth_token=values["TWILIO_AUTH_TOKEN"], numbers=numbers,
                   public_base_url=base, api_base_url=s.twilio_api_base_url.rstrip("/"),  # type: ignore[attr-defined]
                   machine_detection=amd, stream_timeout=float(s.twilio_stream_timeout),  # type: ignore[attr-defined]
                   operator_caller_id=getattr(s, "operator_caller_id", ""))

    def url(self, path: str) -> str:
        """The public https URL of one of our routes (what Twilio requests and signs)."""
        return f"{self.public_base_url}{path}"

    def ws_url(self, path: str) -> str:
        """The public wss URL of a WebSocket route."""
        base = self.public_base_url
        if base.startswith("https://"):
            base = "wss://" + base[len("https://"):]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://"):]
        return f"{base}{path}"

    def our_number(self, number: str) -> str | None:
        """The configured number `number` dials to (compared on digits), or None."""
        wanted = digits(number)
        return next((n for n in self.numbers if digits(n) == wanted), None) if wanted else None
