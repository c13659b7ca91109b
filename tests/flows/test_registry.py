"""The scenario registry: round-robin, smooth weights, conditions, inbound cursor, enable, reload."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from switchboard.flows.registry import ScenarioRegistry

SCENARIO = """\
scenario:
  name: {name}
  {extra}
  prompts: {{hello: "sound:custom/hello"}}
  flow:
    - {{step: start, type: entry, next: hello}}
    - {{step: hello, type: play_prompt, prompt: hello, next: end}}
    - {{step: end, type: hangup}}
"""
INBOUND = """\
  inbound_flow:
    - {step: start, type: entry, next: end}
    - {step: end, type: hangup}
"""


def write(directory: Path, name: str, extra: str = "", inbound: bool = False) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, extra=extra) + (INBOUND if inbound else ""), encoding="utf-8")
    return path


@pytest.fixture
def three(tmp_path: Path) -> Path:
    write(tmp_path, "a", inbound=True)
    write(tmp_path, "b")
    write(tmp_path, "c", inbound=True)
    return tmp_path


def test_round_robin_over_enabled_outbound(three: Path) -> None:
    reg = ScenarioRegistry(three)
    picks = [reg.next_scenario().name for _ in range(6)]  # type: ignore[union-attr]
    assert picks == ["a", "b", "c", "a", "b", "c"]


def test_inbound_has_its_own_cursor_and_only_inbound_scenarios(three: Path) -> None:
    reg = ScenarioRegistry(three)
    reg.next_scenario()
    inbound = [reg.next_inbound_scenario().name for _ in range(4)]  # type: ignore[union-attr]
    assert inbound == ["a", "c", "a", "c"]
    assert reg.next_scenario().name == "b"  # type: ignore[union-attr]


def test_smooth_weighted_round_robin(tmp_path: Path) -> None:
    write(tmp_path, "heavy", extra="weight: 5")
    write(tmp_path, "light", extra="weight: 1")
    write(tmp_path, "mid", extra="weight: 2")
    reg = ScenarioRegistry(tmp_path)
    picks = [reg.next_scenario().name for _ in range(80)]  # type: ignore[union-attr]
    assert Counter(picks) == {"heavy": 50, "mid": 20, "light": 10}
    # Smooth: the heavy scenario never takes more than its share in a row.
    longest = max(len(run) for run in "".join("h" if p == "heavy" else "." for p in picks).split("."))
    assert longest <= 3


def test_conditions_filter_per_contact(tmp_path: Path) -> None:
    write(tmp_path, "tehran", extra="conditions: {city: [Tehran, Karaj]}")
    write(tmp_path, "vip", extra="conditions: {vip: true}")
    write(tmp_path, "anyone")
    reg = ScenarioRegistry(tmp_path)
    names = {reg.next_scenario({"attributes": {"city": "Karaj"}}).name for _ in range(6)}  # type: ignore[union-attr]
    assert names == {"tehran", "anyone"}
    names = {reg.next_scenario({"attributes": {"vip": True}}).name for _ in range(6)}  # type: ignore[union-attr]
    assert names == {"vip", "anyone"}
    assert {reg.next_scenario({}).name for _ in range(4)} == {"anyone"}  # type: ignore[union-attr]


def test_set_enabled_reports_unknown_and_empty_means_all(three: Path) -> None:
    reg = ScenarioRegistry(three)
    report = reg.set_enabled(["b", "zzz"])
    assert report.active == ["b"] and report.unknown == ["zzz"]
    assert {reg.next_scenario().name for _ in range(3)} == {"b"}  # type: ignore[union-attr]
    assert reg.next_inbound_scenario() is None
    assert reg.set_enabled([]).active == ["a", "b", "c"]


def test_reload_keeps_previous_good_version(three: Path) -> None:
    reg = ScenarioRegistry(three)
    old = reg.get("b")
    assert old is not None
    (three / "b.yaml").write_text("scenario:\n  name: b\n  flow: [{step: s, type: nope}]\n", encoding="utf-8")
    report = reg.reload()
    assert report.kept_previous == ["b"]
    assert report.errors and report.errors[0].file.endswith("b.yaml")
    assert reg.get("b") is old  # calls in flight and new calls keep the last good version


def test_reload_picks_up_new_and_removed_files(three: Path) -> None:
    reg = ScenarioRegistry(three)
    in_flight = reg.get("a")
    write(three, "d")
    (three / "c.yaml").unlink()
    report = reg.reload()
    assert "d" in report.loaded and report.removed == ["c"]
    assert reg.get_names() == ["a", "b", "d"]
    assert in_flight is not None and in_flight.name == "a"


def test_reload_new_version_does_not_change_running_object(three: Path) -> None:
    reg = ScenarioRegistry(three)
    before = reg.get("a")
    write(three, "a", extra="display_name: changed", inbound=True)
    reg.reload()
    after = reg.get("a")
    assert before is not None and after is not None
    assert before.version != after.version and before.spec.display_name == ""


def test_shipped_scenarios_load(scenarios_dir: Path, tmp_path: Path) -> None:
    for f in scenarios_dir.glob("*.yaml"):
        shutil.copy(f, tmp_path)
    reg = ScenarioRegistry(tmp_path)
    assert {"salehi_language", "agrad_marketing"} <= set(reg.get_names())
    assert {reg.next_inbound_scenario().name for _ in range(2)} == {"reception", "salehi_language"}  # type: ignore[union-attr]
