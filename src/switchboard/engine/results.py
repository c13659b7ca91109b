"""The call results panels already expect, and how a hang-up maps onto them."""

from __future__ import annotations

CONNECTED_TO_OPERATOR = "connected_to_operator"
NOT_INTERESTED = "not_interested"
DISCONNECTED = "disconnected"  # said yes, hung up before the operator answered
HANGUP = "hangup"  # hung up before a usable answer
MISSED = "missed"  # no answer / busy / unreachable
UNKNOWN = "unknown"
INBOUND_CALL = "inbound_call"
FAILED_PREFIX = "failed:"

FIXED_RESULTS = (CONNECTED_TO_OPERATOR, NOT_INTERESTED, DISCONNECTED, HANGUP, MISSED, UNKNOWN, INBOUND_CALL)


def failed(reason: str) -> str:
    return f"{FAILED_PREFIX}{reason}"


def is_valid_result(value: str) -> bool:
    return value in FIXED_RESULTS or (value.startswith(FAILED_PREFIX) and len(value) > len(FAILED_PREFIX))


def is_positive(result: str | None) -> bool:
    return result in (CONNECTED_TO_OPERATOR, DISCONNECTED, INBOUND_CALL)
