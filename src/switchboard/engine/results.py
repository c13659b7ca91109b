"""Call results: the built-in ones panels already expect, the ones a scenario declares for its own
business (`appointment_confirmed`, `desk_unavailable`, ...), and what each one means to the dialer
(final, or retry after a delay), to the panel (the status it reports as) and to reports (whether
the contact was reached, whether it counts as a success).

One `ResultCatalog` answers these questions for the dialer's compliance, the built-in panel's
report-result, exports and the terminal, so a result is classified the same way everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switchboard.flows.schema import Scenario

CONNECTED_TO_OPERATOR = "connected_to_operator"
NOT_INTERESTED = "not_interested"
DISCONNECTED = "disconnected"  # said yes, hung up before the operator answered
HANGUP = "hangup"  # hung up before a usable answer
MISSED = "missed"  # no answer / busy / unreachable
UNKNOWN = "unknown"
INBOUND_CALL = "inbound_call"
CALLBACK_SCHEDULED = "callback_scheduled"  # no operator free: a call back is booked
FAILED_PREFIX = "failed:"

FIXED_RESULTS = (CONNECTED_TO_OPERATOR, NOT_INTERESTED, DISCONNECTED, HANGUP, MISSED, UNKNOWN, INBOUND_CALL,
                 CALLBACK_SCHEDULED)
# The statuses the panel contract knows (`failed` is sent as failed:<reason>).
PANEL_STATUSES = (CONNECTED_TO_OPERATOR, NOT_INTERESTED, DISCONNECTED, HANGUP, MISSED, "failed", UNKNOWN,
                  INBOUND_CALL)
RESULT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}(:[A-Za-z0-9_.-]{1,60})?$")


MAX_RESULT = 100  # the calls.result column and the panel contract's `status`


def failed(reason: str) -> str:
    """`failed:<code>`: the part of `reason` before its first ": " (a PBX's or provider's message
    follows that and belongs in the call's reason, not its result), bounded to the result column."""
    code = " ".join(reason.split(": ", 1)[0].split()) or "unknown"
    return f"{FAILED_PREFIX}{code}"[:MAX_RESULT]


def is_result_name(value: str) -> bool:
    """The shape of a result name (a declared result must still exist in its scenario)."""
    return bool(RESULT_NAME.match(value))


def is_valid_result(value: str) -> bool:
    """A built-in result (declared ones are checked against their scenario by `validate`)."""
    return value in FIXED_RESULTS or (value.startswith(FAILED_PREFIX) and len(value) > len(FAILED_PREFIX))


def is_positive(result: str | None) -> bool:
    return result in (CONNECTED_TO_OPERATOR, DISCONNECTED, INBOUND_CALL)


@dataclass(frozen=True, slots=True)
class ResultDef:
    """What one result means. `retry_after` None on a non-final result = the default retry delay."""

    name: str
    display_name: str
    panel_status: str
    final: bool
    retry_after: float | None = None
    contacted: bool = False
    success: bool = False
    declared_by: str | None = None  # the scenario that declared it; None = built in

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "display_name": self.display_name, "panel_status": self.panel_status,
                "final": self.final, "retry_after": self.retry_after, "contacted": self.contacted,
                "success": self.success, "scenario": self.declared_by}


def _builtin(name: str, display: str, status: str, final: bool, contacted: bool, success: bool = False,
             ) -> ResultDef:
    return ResultDef(name, display, status, final, None, contacted, success)


BUILTIN: dict[str, ResultDef] = {d.name: d for d in (
    _builtin(CONNECTED_TO_OPERATOR, "Connected to an operator", CONNECTED_TO_OPERATOR, True, True, True),
    _builtin(NOT_INTERESTED, "Not interested", NOT_INTERESTED, True, True),
    _builtin(DISCONNECTED, "Hung up waiting for an operator", DISCONNECTED, True, True),
    _builtin(HANGUP, "Hung up", HANGUP, True, True),
    _builtin(MISSED, "No answer", MISSED, False, False),
    _builtin(UNKNOWN, "No clear answer", UNKNOWN, False, True),
    _builtin(INBOUND_CALL, "Inbound call answered", INBOUND_CALL, True, True, True),
    _builtin(CALLBACK_SCHEDULED, "Call back booked", DISCONNECTED, True, True),
    # Names older panels and carriers use.
    _builtin("busy", "Busy", MISSED, False, False),
    _builtin("no_answer", "No answer", MISSED, False, False),
    _builtin("unreachable", "Unreachable", MISSED, False, False),
    _builtin("congestion", "Network congestion", MISSED, False, False),
    _builtin("do_not_call", "On the do-not-call list", NOT_INTERESTED, True, False),
    _builtin("dnc", "On the do-not-call list", NOT_INTERESTED, True, False),
    _builtin("opted_out", "Opted out", NOT_INTERESTED, True, True),
    _builtin("invalid_number", "Invalid number", "failed:invalid_number", True, False),
    # A call a crashed or killed process cut off (dialer/interrupted.py): our failure, not the
    # contact's answer, so it is tried again as soon as its lease allows, not after the retry delay.
    ResultDef("failed:interrupted", "Cut off: Switchboard stopped mid-call", "failed:interrupted", False, 0.0),
)}
# failed:<reason> is retried, except these reasons: retrying cannot change them.
FINAL_FAILURES = frozenset({"do_not_call", "compliance", "invalid_number", "no_scenario"})


class ResultCatalog:
    """Every result a node may record, with its meaning. Declared results are kept per scenario
    (two scenarios may give one name different meanings); a lookup with the scenario finds its
    own declaration first, then any scenario's, then the built-ins."""

    def __init__(self, scenarios: Iterable[Scenario] = (), *, default_retry: float = 1800.0) -> None:
        self.default_retry = default_retry
        self._declared: dict[tuple[str, str], ResultDef] = {}
        self._by_name: dict[str, ResultDef] = {}
        self.update(scenarios)

    def update(self, scenarios: Iterable[Scenario]) -> None:
        """Re-read the declarations (after a scenario reload)."""
        declared: dict[tuple[str, str], ResultDef] = {}
        by_name: dict[str, ResultDef] = {}
        for scenario in scenarios:
            for name, decl in declarations(scenario).items():
                declared[(scenario.name, name)] = decl
                by_name.setdefault(name, decl)
        self._declared, self._by_name = declared, by_name

    def known(self, result: str, scenario: str | None = None) -> bool:
        return self._find(result, scenario) is not None

    def _find(self, result: str, scenario: str | None) -> ResultDef | None:
        if scenario is not None and (scenario, result) in self._declared:
            return self._declared[(scenario, result)]
        if result in BUILTIN:
            return BUILTIN[result]
        if result in self._by_name:
            return self._by_name[result]
        if result.startswith(FAILED_PREFIX) and len(result) > len(FAILED_PREFIX):
            reason = result[len(FAILED_PREFIX):]
            final = reason in FINAL_FAILURES
            return ResultDef(result, f"Failed: {reason.replace('_', ' ')}", result, final, None, False, False)
        if result.lower() in BUILTIN:
            return BUILTIN[result.lower()]
        return None

    def get(self, result: str | None, scenario: str | None = None) -> ResultDef:
        """The meaning of `result`; an unknown name is final, reported as `unknown`."""
        if not result:
            return BUILTIN[UNKNOWN]
        found = self._find(result, scenario)
        if found is not None:
            return found
        return ResultDef(result, result.replace("_", " "), UNKNOWN, True, None, True, False)

    def retry_delay(self, result: str, scenario: str | None = None) -> float | None:
        """Seconds before the contact may be tried again; None when the result is final."""
        d = self.get(result, scenario)
        if d.final:
            return None
        return d.retry_after if d.retry_after is not None else self.default_retry

    def panel_status(self, result: str | None, scenario: str | None = None) -> str:
        return self.get(result, scenario).panel_status

    def all(self) -> list[ResultDef]:
        """Built-ins then declarations, for reports and the API."""
        return [*BUILTIN.values(), *self._declared.values()]


def declarations(scenario: Scenario) -> Mapping[str, ResultDef]:
    """The results `scenario` declares, as `ResultDef`s."""
    out: dict[str, ResultDef] = {}
    for name, decl in (scenario.spec.results or {}).items():
        final = decl.final if decl.final is not None else decl.retry_after is None
        out[name] = ResultDef(name=name, display_name=decl.display_name or name.replace("_", " ").capitalize(),
                              panel_status=decl.panel_status, final=final,
                              retry_after=None if final else decl.retry_after_seconds(),
                              contacted=decl.contacted, success=decl.success, declared_by=scenario.name)
    return out


def with_default_retry(d: ResultDef, seconds: float) -> ResultDef:
    return d if d.final or d.retry_after is not None else replace(d, retry_after=seconds)
