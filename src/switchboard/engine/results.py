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


MAX_RESULT = 100  # the calls.result column and the panel contract's `status`


def failed(reason: str) -> str:
    """`failed:<code>`: the part of `reason` before its first ": " (a PBX's or provider's message
    follows that and belongs in the call's reason, not its result), bounded to the result column."""
    code = " ".join(reason.split(": ", 1)[0].split()) or "unknown"
    return f"{FAILED_PREFIX}{code}"[:MAX_RESULT]


def is_valid_result(value: str) -> bool:
    return value in FIXED_RESULTS or (value.startswith(FAILED_PREFIX) and len(value) > len(FAILED_PREFIX))


def is_positive(result: str | None) -> bool:
    return result in (CONNECTED_TO_OPERATOR, DISCONNECTED, INBOUND_CALL)
