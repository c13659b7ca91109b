"""Bounded pydantic types for what the panel's API and the dialer contract accept: no field may
cost unbounded memory, exceed its database column, or hold what the database cannot store (NUL,
lone surrogates, NaN). Plain pydantic: the dialer's own models (`panel.contract`) use these too."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

INT64 = 2**63 - 1
MAX_ID = INT64
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")  # what no database text column can hold
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # and what no name needs
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


def printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("may not contain control characters (other than tab and line breaks) or lone surrogates")
    return value


def truncated(limit: int) -> BeforeValidator:
    """Free text the dialer itself produces (reasons, what callers said): kept, cut at `limit`."""

    def cut(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) else value

    return BeforeValidator(cut)


Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), AfterValidator(printable)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(printable)]
LongText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(printable)]
Company = Annotated[str, StringConstraints(max_length=100), AfterValidator(printable)]
PhoneText = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                             pattern=r"^[+0-9\u06f0-\u06f9\u0660-\u0669 ()\-.\u200c\u200e\u200f]+$")]
FreeText = Annotated[str, truncated(4000), AfterValidator(printable)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ExternalId = Annotated[int, Field(ge=-INT64 - 1, le=INT64)] | Annotated[str, StringConstraints(max_length=100)]


def external_id_or_none(value: Any) -> int | str | None:
    """`value` when it is a usable panel id (64-bit integer, text up to 100 characters), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -INT64 - 1 <= value <= INT64 else None
    if isinstance(value, str):
        return value if len(value) <= 100 else None
    return None

MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_DEPTH = 4
MAX_ATTRIBUTES_BYTES = 16_384


def _attributes(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form but bounded: at most 100 keys of 100 characters, nested at most 4 deep, 16 KB as
    JSON, no NaN/Infinity (it is stored as JSON and exported)."""
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} keys")
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)) and depth > MAX_ATTRIBUTE_DEPTH:
            raise ValueError(f"nested more than {MAX_ATTRIBUTE_DEPTH} levels deep")
        if isinstance(item, dict):
            for key, child in item.items():
                if len(str(key)) > 100:
                    raise ValueError("names are at most 100 characters")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            printable(item)
    try:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"must be plain JSON ({exc})") from None
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"more than {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    return value


Attributes = Annotated[dict[str, Any], AfterValidator(_attributes)]


def _not_a_number(value: Any) -> Any:
    """A date-time is RFC 3339 text here, as the spec says (pydantic alone would also take 0 or "0.5")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) or isinstance(value, str) and _NUMERIC.match(value):
        raise ValueError("must be a date-time such as 2024-05-01T09:00:00+03:30")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]


class StrictIn(BaseModel):
    """Base of request bodies: unknown fields are refused (a typo is an error, not ignored), and
    booleans and integers must be JSON booleans and integers (`0` is not `false`)."""

    model_config = ConfigDict(extra="forbid", strict=True)
