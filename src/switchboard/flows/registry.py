"""Which scenarios exist, which are active, and which one the next contact or inbound call gets.

Outbound picks are round-robin, or smooth weighted round-robin (nginx's algorithm) when weights are
set, over the enabled outbound scenarios whose `conditions` match the contact. Inbound calls have
their own cursor over scenarios with an `inbound_flow`. A reload keeps the previous good version of
any file that no longer validates; calls in flight hold their own `Scenario` object, so they finish
on the version they started with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard.flows.loader import FlowError
from switchboard.flows.schema import Scenario
from switchboard.flows.validate import scenario_files, validate_directory

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReloadReport:
    loaded: list[str] = field(default_factory=list)
    kept_previous: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[FlowError] = field(default_factory=list)


@dataclass(slots=True)
class EnableReport:
    active: list[str]
    unknown: list[str]


def contact_matches(conditions: dict[str, Any], contact: dict[str, Any] | None) -> bool:
    """Every condition must hold: attribute equals the value, or is one of a list of values."""
    if not conditions:
        return True
    attrs: dict[str, Any] = {}
    if contact:
        attrs.update(contact.get("attributes") or {})
        attrs.update({k: v for k, v in contact.items() if k != "attributes"})
    for key, expected in conditions.items():
        actual = attrs.get(key)
        if isinstance(expected, list):
            if actual not in expected and str(actual) not in [str(e) for e in expected]:
                return False
        elif actual != expected and str(actual) != str(expected):
            return False
    return True


class ScenarioRegistry:
    def __init__(self, scenarios_dir: Path | str) -> None:
        self.scenarios_dir = Path(scenarios_dir)
        self._scenarios: dict[str, Scenario] = {}
        self._by_file: dict[str, str] = {}
        self._enabled: set[str] | None = None  # None = every loaded scenario
        self._rr_out = 0
        self._rr_in = 0
        self._current_weight: dict[str, float] = {}
        self.last_report = self.reload()

    # --- loading ---------------------------------------------------------------------------------
    def reload(self) -> ReloadReport:
        report = ReloadReport()
        results = validate_directory(self.scenarios_dir) if self.scenarios_dir.is_dir() else []
        fresh: dict[str, Scenario] = {}
        by_file: dict[str, str] = {}
        for res in results:
            if res.scenario is not None:
                fresh[res.scenario.name] = res.scenario
                by_file[res.file] = res.scenario.name
                report.loaded.append(res.scenario.name)
                continue
            report.errors.extend(res.errors)
            previous_name = self._by_file.get(res.file)
            if previous_name and previous_name in self._scenarios and previous_name not in fresh:
                fresh[previous_name] = self._scenarios[previous_name]
                by_file[res.file] = previous_name
                report.kept_previous.append(previous_name)
                log.warning("scenario file %s is invalid; keeping the previous version of %s: %s",
                            res.file, previous_name, "; ".join(str(e) for e in res.errors[:3]))
            else:
                log.error("scenario file %s is invalid: %s", res.file, "; ".join(str(e) for e in res.errors))
        report.removed = sorted(set(self._scenarios) - set(fresh))
        self._scenarios = fresh
        self._by_file = by_file
        self.last_report = report
        return report

    @property
    def files(self) -> list[Path]:
        return scenario_files(self.scenarios_dir)

    # --- lookup ----------------------------------------------------------------------------------
    def get(self, name: str) -> Scenario | None:
        return self._scenarios.get(name)

    def get_names(self) -> list[str]:
        return sorted(self._scenarios)

    def all(self) -> list[Scenario]:
        return [self._scenarios[n] for n in self.get_names()]

    def active_names(self) -> list[str]:
        names = self.get_names()
        if self._enabled is None:
            return [n for n in names if self._scenarios[n].spec.enabled]
        return [n for n in names if n in self._enabled]

    def set_enabled(self, names: list[str] | None) -> EnableReport:
        """Activate exactly these scenarios (the panel's `active_scenarios`). An empty list or None
        means every loaded scenario; unknown names are reported, not fatal."""
        if not names:
            self._enabled = None
            return EnableReport(self.active_names(), [])
        unknown = sorted(n for n in names if n not in self._scenarios)
        if unknown:
            log.warning("panel activated unknown scenarios: %s", ", ".join(unknown))
        self._enabled = {n for n in names if n in self._scenarios}
        return EnableReport(self.active_names(), unknown)

    # --- picking ---------------------------------------------------------------------------------
    def _candidates(self, contact: dict[str, Any] | None) -> list[Scenario]:
        return [self._scenarios[n] for n in self.active_names()
                if contact_matches(self._scenarios[n].spec.conditions, contact)]

    def next_scenario(self, contact: dict[str, Any] | None = None) -> Scenario | None:
        candidates = self._candidates(contact)
        if not candidates:
            return None
        if any(s.spec.weight is not None for s in candidates):
            return self._smooth_weighted(candidates)
        pick = candidates[self._rr_out % len(candidates)]
        self._rr_out += 1
        return pick

    def _smooth_weighted(self, candidates: list[Scenario]) -> Scenario:
        total = 0.0
        best: Scenario | None = None
        for s in candidates:
            weight = s.spec.weight if s.spec.weight is not None else 1.0
            total += weight
            self._current_weight[s.name] = self._current_weight.get(s.name, 0.0) + weight
            if best is None or self._current_weight[s.name] > self._current_weight[best.name]:
                best = s
        assert best is not None
        self._current_weight[best.name] -= total
        return best

    def next_inbound_scenario(self) -> Scenario | None:
        candidates = [self._scenarios[n] for n in self.active_names() if self._scenarios[n].has_inbound]
        if not candidates:
            return None
        pick = candidates[self._rr_in % len(candidates)]
        self._rr_in += 1
        return pick
