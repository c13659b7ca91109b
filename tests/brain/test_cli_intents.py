"""`switchboard intents test` and `simulate --json` as a user runs them (a real process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switchboard.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env={**os.environ, "LLM_BASE_URL": "", "GAPGPT_BASE_URL": "",
                                                       "LOG_LEVEL": "INFO", **env})


def test_intents_test_prints_languages_confusion_and_accuracy_last():
    out = run("intents", "test", "scenarios/salehi_language.yaml", "tests/brain/data/intents/salehi_heldout.tsv")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    m = re.fullmatch(r"accuracy: (\d+\.\d)%", lines[-1])
    assert m and float(m.group(1)) >= 90.0, out.stdout
    text = out.stdout
    for lang in ("fa", "en", "ar"):
        assert re.search(rf"^\s+{lang}\s+\d+/\d+", text, re.M), text
    assert "confusion (rows: expected, columns: classified)" in text
    assert re.search(r"injection attempts \d+/\d+ right, 0 classified yes", text)
    assert "intent encoder" not in text  # the log line went to stderr


def test_intents_test_rejects_a_bad_file_with_its_line(tmp_path):
    bad = tmp_path / "answers.tsv"
    bad.write_text("fa\tyes\tبله\nen\tperhaps\tmaybe\n", encoding="utf-8")
    out = run("intents", "test", "scenarios/salehi_language.yaml", str(bad))
    assert out.returncode == 1
    assert "answers.tsv:2: label 'perhaps' is not one of" in out.stdout


def test_simulate_json_stdout_is_only_json():
    out = run("simulate", "scenarios/salehi_language.yaml", "--caller", "flowtests/callers/yes.yaml", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # nothing but the JSON object on stdout
    assert data["scenario"] == "salehi_language" and data["intent"] == "yes"
