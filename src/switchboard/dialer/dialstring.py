"""The channel string a PBX dials, from a configurable template (`DIAL_STRING_TEMPLATE`).

Placeholders: {customer} (the customer's digits), {line} (the line's digits), {line_last4} (its
last four digits: many trunks route on a line prefix), {trunk}. The default
`PJSIP/{line_last4}{customer}@{trunk}` puts the line's last four digits before the customer's.
"""

from __future__ import annotations

import string
import unicodedata

DEFAULT_TEMPLATE = "PJSIP/{line_last4}{customer}@{trunk}"
PLACEHOLDERS = frozenset({"customer", "line", "line_last4", "trunk"})


def dialable(e164: str, region: str) -> str:
    """A number as a trunk in `region` dials it (what {customer} becomes): nationally with the trunk
    prefix (`+989121234567` -> `09121234567` in IR), a foreign number with the international prefix
    (`+12127365000` -> `0012127365000` from IR)."""
    import phonenumbers

    from switchboard.phones import try_normalize

    parsed = try_normalize(e164, region)
    if parsed is None:
        return e164
    if parsed.region and parsed.region != region.upper():
        return phonenumbers.format_out_of_country_calling_number(phonenumbers.parse(parsed.e164), region.upper())
    return parsed.national_dialing


def digits_of(number: str) -> str:
    """ASCII digits of a phone number; Persian/Arabic-Indic digits are converted, the rest dropped."""
    out = []
    for ch in number:
        if ch.isdigit():
            out.append(str(unicodedata.digit(ch)))
    return "".join(out)


class DialStringTemplate:
    """A validated template; unknown placeholders fail at start-up, not on the first call."""

    def __init__(self, template: str = DEFAULT_TEMPLATE) -> None:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
        unknown = names - PLACEHOLDERS
        if unknown or "" in names:
            raise ValueError(
                f"dial string template {template!r}: unknown placeholder(s) {sorted(unknown) or ['{}']}; "
                f"use {sorted(PLACEHOLDERS)}"
            )
        if "customer" not in names:
            raise ValueError(f"dial string template {template!r} must contain {{customer}}")
        self.template = template

    def render(self, *, line_number: str, customer: str, trunk: str) -> str:
        customer_digits = digits_of(customer)
        if not customer_digits:
            raise ValueError(f"customer number {customer!r} has no digits")
        line_digits = digits_of(line_number)
        return self.template.format(
            customer=customer_digits, line=line_digits, line_last4=line_digits[-4:], trunk=trunk
        )
