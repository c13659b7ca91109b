"""Phone-number normalisation and validation, shared by the dialer, the panel and contact import.

Every number that enters Switchboard (panel batches, CSV/XLSX imports, inbound caller ids, the
do-not-call list) goes through `normalize`, so the same subscriber always has the same key
(E.164) and an invalid number is rejected with a reason instead of being dialed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType, ValidationResult
from phonenumbers import timezone as pn_timezone

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits -> ASCII.
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
# Separators people type or spreadsheets add; bidi marks come from copy-pasted RTL text.
_NOISE = re.compile(r"[\s\-().\u200c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class PhoneErrorReason(str, Enum):
    EMPTY = "empty"
    NOT_A_NUMBER = "not_a_number"
    INVALID_COUNTRY_CODE = "invalid_country_code"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_LENGTH = "invalid_length"
    INVALID_FOR_REGION = "invalid_for_region"


class InvalidPhoneNumber(ValueError):
    """A number that must not be dialed; `reason` is machine-readable, str() is for people."""

    def __init__(self, raw: str, reason: PhoneErrorReason, detail: str = "") -> None:
        self.raw = raw
        self.reason = reason
        self.detail = detail or reason.value.replace("_", " ")
        super().__init__(f"invalid phone number {raw!r}: {self.detail}")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    e164: str  # "+989121234567"
    national: str  # national significant number, "9121234567"
    region: str | None  # "IR"
    timezones: tuple[str, ...] = ()  # IANA zones the number belongs to (may be several)

    @property
    def national_dialing(self) -> str:
        """Digits as dialed inside the country with the trunk prefix where the plan has one
        (IR/GB/...: "09121234567"); NANP and the like have none."""
        number = phonenumbers.parse(self.e164)
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return re.sub(r"\D", "", formatted)

    @property
    def timezone(self) -> str | None:
        return self.timezones[0] if len(self.timezones) == 1 else None


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: PhoneErrorReason.INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: PhoneErrorReason.NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: PhoneErrorReason.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: PhoneErrorReason.TOO_SHORT,
    NumberParseException.TOO_LONG: PhoneErrorReason.TOO_LONG,
}

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: PhoneErrorReason.INVALID_COUNTRY_CODE,
    ValidationResult.TOO_SHORT: PhoneErrorReason.TOO_SHORT,
    ValidationResult.TOO_LONG: PhoneErrorReason.TOO_LONG,
    ValidationResult.INVALID_LENGTH: PhoneErrorReason.INVALID_LENGTH,
}


def clean(raw: str) -> str:
    """ASCII digits and a leading '+' only; '00' international prefix becomes '+'."""
    text = _NOISE.sub("", str(raw).translate(_DIGITS)).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    return text


def normalize(raw: str | int, region: str = "IR") -> PhoneNumber:
    """Parse `raw` in `region` (used when it has no country code) and validate it.

    Raises `InvalidPhoneNumber` with the reason: empty, not a number, too short/long, or a number
    that is possible by length but not valid (unassigned range) for its region.
    """
    raw_text = "" if raw is None else str(raw)
    text = clean(raw_text)
    if not text:
        raise InvalidPhoneNumber(raw_text, PhoneErrorReason.EMPTY)
    if not re.fullmatch(r"\+?\d+", text):
        raise InvalidPhoneNumber(
            raw_text, PhoneErrorReason.NOT_A_NUMBER, "contains characters other than digits"
        )
    try:
        number = phonenumbers.parse(text, region.upper() if region else None)
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, PhoneErrorReason.NOT_A_NUMBER)
        raise InvalidPhoneNumber(raw_text, reason, str(exc._msg)) from None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise InvalidPhoneNumber(raw_text, _POSSIBLE_REASONS.get(possible, PhoneErrorReason.INVALID_LENGTH))
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise InvalidPhoneNumber(raw_text, PhoneErrorReason.TOO_SHORT, "local-only number without area code")
    if not phonenumbers.is_valid_number(number):
        number_region = phonenumbers.region_code_for_number(number) or region
        subscriber = _subscriber_lengths(number_region)
        length = len(phonenumbers.national_significant_number(number))
        if subscriber and length < min(subscriber):
            raise InvalidPhoneNumber(
                raw_text,
                PhoneErrorReason.TOO_SHORT,
                f"too short for a phone or mobile number in {number_region}",
            )
        if subscriber and length > max(subscriber):
            raise InvalidPhoneNumber(
                raw_text,
                PhoneErrorReason.TOO_LONG,
                f"too long for a phone or mobile number in {number_region}",
            )
        raise InvalidPhoneNumber(
            raw_text, PhoneErrorReason.INVALID_FOR_REGION, f"not a valid number for region {number_region}"
        )
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    return PhoneNumber(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        national=phonenumbers.national_significant_number(number),
        region=phonenumbers.region_code_for_number(number),
        timezones=zones,
    )


def _subscriber_lengths(region: str) -> tuple[int, ...]:
    """Lengths of fixed-line and mobile numbers (short codes excluded) in `region`."""
    meta = PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return ()
    lengths: set[int] = set()
    for desc in (meta.fixed_line, meta.mobile):
        if desc is not None and desc.possible_length:
            lengths.update(n for n in desc.possible_length if n > 0)
    return tuple(sorted(lengths))


def try_normalize(raw: str | int, region: str = "IR") -> PhoneNumber | None:
    try:
        return normalize(raw, region)
    except InvalidPhoneNumber:
        return None


def is_mobile(number: PhoneNumber) -> bool:
    kind = phonenumbers.number_type(phonenumbers.parse(number.e164))
    return kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


__all__ = [
    "InvalidPhoneNumber",
    "PhoneErrorReason",
    "PhoneNumber",
    "clean",
    "is_mobile",
    "normalize",
    "try_normalize",
]
