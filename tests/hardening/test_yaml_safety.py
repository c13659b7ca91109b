"""Hostile scenario files: every one is a clear error naming file, line, column and the rule — never
a hang, a traceback or gigabytes of memory — and one bad file neither stops a server from starting
nor hides the reports of the other files; the last good version of a file keeps running."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from switchboard.cli import app as cli
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.validate import parse_scenario_file, parse_scenario_text, validate_directory
from tests.hardening.util import free_port, scenario_text, wait_http

ROOT = Path(__file__).resolve().parents[2]

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
) + "scenario: *i\n"


def chain(steps: int) -> str:
    lines = ["scenario:", "  name: long_chain", "  flow:", "    - {step: start, type: entry, next: s0}"]
    lines += [f"    - {{step: s{i}, type: goto, target: s{i + 1}}}" for i in range(steps)]
    lines.append(f"    - {{step: s{steps}, type: hangup}}")
    return "\n".join(lines) + "\n"


HOSTILE = {
    # name: (text, rule, line)
    "billion_laughs": (BILLION_LAUGHS, "too-large", 6),  # 9**6 values already
    "deep_flow_nesting": ("scenario:\n  conditions: {a: " + "[" * 20_000 + "]" * 20_000 + "}\n", "too-deep", 2),
    "deep_block_nesting": ("scenario:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(200)), "too-deep", 65),
    "nul_byte": ("scenario:\n  name: a\x00b\n", "invalid-character", 2),
    "escaped_nul": ('scenario:\n  name: "a\\0b"\n', "invalid-character", 2),
    "lone_surrogate": ('scenario:\n  display_name: "\\ud800"\n', "invalid-character", 2),
    "merge_key": ("base: &b {name: x}\nscenario:\n  <<: *b\n  flow: []\n", "merge-key", 3),
    "complex_key_flow": ("scenario:\n  {a: 1}: b\n", "complex-key", 2),
    "complex_key_explicit": ("scenario:\n  ? [a, b]\n  : c\n", "complex-key", 2),
    "alias_as_complex_key": ("x: &k [1]\nscenario:\n  *k : 2\n", "complex-key", 3),
    "recursive_alias": ("scenario: &s\n  flow: [*s]\n", "recursive-alias", 2),
    "undefined_alias": ("scenario:\n  flow: *nothing\n", "unknown-alias", 2),
    "python_tag": ("scenario: !!python/object/apply:os.system [echo pwned]\n", "unsupported-tag", 1),
    "custom_tag": ("scenario:\n  name: !secret x\n", "unsupported-tag", 2),
    "huge_integer": ("scenario:\n  weight: " + "9" * 5000 + "\n", "invalid-value", 2),
    "two_documents": ("scenario: {name: a}\n---\nscenario: {name: b}\n", "multiple-documents", 2),
    "long_scalar": ("scenario:\n  description: " + "x" * 200_000 + "\n", "too-long", 2),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_is_one_clear_error_with_its_position(name: str) -> None:
    text, rule, line = HOSTILE[name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = parse_scenario_text(text, f"{name}.yaml")
    elapsed = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.scenario is None
    assert [e.rule for e in result.errors] == [rule], [str(e) for e in result.errors]
    error = result.errors[0]
    assert (error.file, error.line) == (f"{name}.yaml", line), str(error)
    assert str(error).startswith(f"{name}.yaml:{line}:{error.column}: [{rule}] ")
    assert error.fix
    assert elapsed < 5, f"{name} took {elapsed:.1f}s"
    assert grown_mb < 200, f"{name} grew the process by {grown_mb:.0f} MB"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(50_000_000)  # sparse: 50 MB of NULs
    result = parse_scenario_file(big)
    assert [(e.rule, e.line) for e in result.errors] == [("too-large", 1)]


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"scenario:\n  name: ok\n  display_name: caf\xe9\n")
    [error] = parse_scenario_file(path).errors
    assert (error.rule, error.line) == ("unreadable", 3)


def test_a_valid_10000_step_chain_validates_without_recursion() -> None:
    result = parse_scenario_text(chain(10_000), "chain.yaml")
    assert result.errors == []
    assert result.scenario is not None and len(result.scenario.flow.steps) == 10_002


def test_a_10000_step_loop_without_retry_limit_is_found_without_recursion() -> None:
    text = chain(10_000).replace("- {step: s10000, type: hangup}", "- {step: s10000, type: goto, target: s0}")
    result = parse_scenario_text(text, "loop.yaml")
    assert [e.rule for e in result.errors] == ["unbounded-loop"]
    assert result.errors[0].line == 5  # the loop's first step, s0


def test_thousands_of_mistakes_are_capped_not_printed_whole() -> None:
    lines = ["scenario:", "  name: many", "  flow:", "    - {step: start, type: entry, next: s0}"]
    lines += [f"    - {{step: s{i}, type: goto, target: nowhere{i}}}" for i in range(3000)]
    result = parse_scenario_text("\n".join(lines), "many.yaml")
    assert len(result.errors) == 201
    assert result.errors[-1].rule == "too-many-errors"
    assert "more errors" in result.errors[-1].message


def test_one_bad_file_does_not_hide_the_reports_of_the_others(tmp_path: Path) -> None:
    for name in ("agrad_marketing", "salehi_language"):
        (tmp_path / f"{name}.yaml").write_text((ROOT / "scenarios" / f"{name}.yaml").read_text("utf-8"), "utf-8")
    for name, (text, _rule, _line) in HOSTILE.items():
        (tmp_path / f"{name}.yaml").write_text(text, "utf-8", errors="surrogatepass")
    (tmp_path / "typo.yaml").write_text(scenario_text("typo").replace("next: end", "next: ned"), "utf-8")
    results = {Path(r.file).stem: r for r in validate_directory(tmp_path)}
    assert results["agrad_marketing"].scenario is not None
    assert results["salehi_language"].scenario is not None
    for name, (_text, rule, line) in HOSTILE.items():
        assert [(e.rule, e.line) for e in results[name].errors] == [(rule, line)], name
    assert [e.rule for e in results["typo"].errors] == ["unknown-target", "unreachable-step"]

    out = CliRunner().invoke(cli, ["validate", str(tmp_path)])
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    for name, (_text, rule, line) in HOSTILE.items():
        assert f"{name}.yaml:{line}:" in out.output and f"[{rule}]" in out.output, name
    assert "(agrad_marketing, " in out.output and "(salehi_language, " in out.output
    assert f"{len(HOSTILE) + 1} of {len(HOSTILE) + 3} files have errors" in out.output


def test_a_file_turned_bad_keeps_its_last_good_version_running(tmp_path: Path) -> None:
    path = tmp_path / "keep.yaml"
    path.write_text(scenario_text("keep"), "utf-8")
    registry = ScenarioRegistry(tmp_path)
    good = registry.get("keep")
    assert good is not None
    for text, _rule, _line in HOSTILE.values():
        path.write_text(text, "utf-8", errors="surrogatepass")
        report = registry.reload()
        assert report.kept_previous == ["keep"]
        assert registry.get("keep") is good
        assert registry.active_names() == ["keep"]


async def test_switchboard_panel_starts_and_serves_with_bad_scenario_files(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "good.yaml").write_text(scenario_text("good"), "utf-8")
    for name in ("complex_key_flow", "billion_laughs", "nul_byte", "merge_key", "deep_flow_nesting"):
        (scenarios / f"{name}.yaml").write_text(HOSTILE[name][0], "utf-8")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SCENARIOS_DIR": str(scenarios),
           "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"), "PANEL_PORT": str(port),
           "BUILTIN_PANEL_TOKEN": "tok", "BUILTIN_PANEL_TOKEN_SCOPES": "read", "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "panel", cwd=tmp_path,
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            got = await http.get("/api/v1/scenarios", headers={"Authorization": "Bearer tok"})
        assert got.status_code == 200
        assert [s["name"] for s in got.json()] == ["good"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert "Traceback" not in text
    for name in ("complex_key_flow", "billion_laughs", "nul_byte", "merge_key", "deep_flow_nesting"):
        assert f"{name}.yaml" in text, f"{name} not reported:\n{text[-2000:]}"
