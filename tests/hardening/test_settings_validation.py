"""Settings: every bad value stops a command with one line naming the setting (never a traceback),
the names operators already use are read or refused loudly, and an unknown name that looks like
ours is a warning with a suggestion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]

BAD = {
    "PANEL_PORT=notaport": "PANEL_PORT='notaport': Input should be a valid integer",
    "PANEL_PORT=70000": "PANEL_PORT='70000': Input should be less than or equal to 65535",
    "LOG_LEVEL=LOUD": "LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "MAX_ATTEMPTS=-5": "MAX_ATTEMPTS='-5': Input should be greater than or equal to 1",
    "BATCH_SIZE=0": "BATCH_SIZE='0': Input should be greater than or equal to 1",
    "BATCH_SIZE=99999999999999999999999": "BATCH_SIZE='99999999999999999999999': Input should be less than",
    "PANEL_TIMEOUT=nan": "PANEL_TIMEOUT='nan': Input should be a finite number",
    "MAX_ORIGINATIONS_PER_SECOND=inf": "MAX_ORIGINATIONS_PER_SECOND='inf': Input should be a finite number",
    "CALLING_HOURS_START=99:99": "CALLING_HOURS_START='99:99': '99:99' is not a time of day",
    "CALLING_HOURS_END=9am": "CALLING_HOURS_END='9am': '9am' is not a time of day HH:MM",
    "CALLING_HOURS_START=22:00": "CALLING_HOURS_START (22:00) must be before CALLING_HOURS_END (21:00)",
    "PANEL_TIMEZONE=Mars/Olympus": "PANEL_TIMEZONE='Mars/Olympus': timezone must be an offset like +0330",
    "DEFAULT_REGION=XX": "DEFAULT_REGION='XX': must be a two-letter country code",
    "TELEPHONY_BACKEND=carrier-pigeon": "TELEPHONY_BACKEND='carrier-pigeon' is not available; choose one of",
    "DIAL_STRING_TEMPLATE=PJSIP/{number}": "DIAL_STRING_TEMPLATE='PJSIP/{number}': dial string template",
    "ARI_BASE_URL=localhost:8088": "ARI_BASE_URL='localhost:8088': must be empty or a URL starting with http://",
    "DATABASE_URL=mysql://x": "DATABASE_URL='mysql://x': must be empty (SQLite in DATA_DIR)",
    "REDIS_URL=localhost": "REDIS_URL='localhost': must be empty or a URL starting with redis://",
    "COMPANY=": "COMPANY='': String should have at least 1 character",
    "DIALER_DEFAULT_RETRY=3": "DIALER_DEFAULT_RETRY is not a Switchboard setting: set MAX_ATTEMPTS",
    "DEFAULT_CALLER_ID=0215000": "DEFAULT_CALLER_ID is not a Switchboard setting: outbound calls show their line",
}


def env_of(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.split("_", 1)[0] in {"PANEL", "LOG", "MAX", "BATCH", "CALLING", "DEFAULT", "TELEPHONY", "DIAL",
                                     "ARI", "DATABASE", "REDIS", "COMPANY", "DIALER", "SMS", "HTTP", "OPERATOR",
                                     "INBOUND", "OUTBOUND", "STT", "TTS"}:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("pair", sorted(BAD))
def test_each_bad_setting_is_one_line(clean_env: pytest.MonkeyPatch, pair: str) -> None:
    for name, value in env_of([pair]).items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert len(info.value.lines) == 1, info.value.lines
    assert info.value.lines[0].startswith(BAD[pair]), info.value.lines[0]
    assert "\n" not in info.value.lines[0]


def test_several_bad_settings_are_all_reported_at_once(clean_env: pytest.MonkeyPatch) -> None:
    for pair in ("PANEL_PORT=notaport", "LOG_LEVEL=LOUD", "MAX_ATTEMPTS=-5", "BATCH_SIZE=0"):
        name, value = pair.split("=", 1)
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert [line.split("=", 1)[0] for line in info.value.lines] == ["LOG_LEVEL", "PANEL_PORT", "BATCH_SIZE",
                                                                  "MAX_ATTEMPTS"]


def test_the_cli_prints_one_line_per_bad_setting_and_no_traceback(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PANEL_PORT": "notaport",
           "LOG_LEVEL": "LOUD", "MAX_ATTEMPTS": "-5", "BATCH_SIZE": "0"}
    out = subprocess.run([sys.executable, "-m", "switchboard.cli", "panel"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "switchboard: bad setting: LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        "switchboard: bad setting: PANEL_PORT='notaport': Input should be a valid integer, unable to parse "
        "string as an integer",
        "switchboard: bad setting: BATCH_SIZE='0': Input should be greater than or equal to 1",
        "switchboard: bad setting: MAX_ATTEMPTS='-5': Input should be greater than or equal to 1",
    ]


def test_a_bad_value_in_dotenv_is_named_too(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PANEL_PORT=8080\nMAX_CALLS_PER_MINUTE=lots\n", "utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=env_file)
    assert info.value.lines == ["MAX_CALLS_PER_MINUTE='lots': Input should be a valid integer, unable to parse "
                                "string as an integer"]


def test_names_operators_already_use_are_read_as_ours(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DIALER_BATCH_SIZE=20\nSMS_FROM=3000123\n", "utf-8")
    for pair in ("HTTP_TIMEOUT=7.5", "HTTP_MAX_CONNECTIONS=40", "OPERATOR_MOBILE_NUMBERS=09121111111,09122222222",
                 "STT_TIMEOUT=12", "TTS_TIMEOUT=9"):
        name, value = pair.split("=", 1)
        clean_env.setenv(name, value)
    loaded = load_settings(env_file=env_file)
    s = loaded.settings
    assert (s.batch_size, s.sms_sender, s.panel_timeout, s.panel_max_connections) == (20, "3000123", 7.5, 40)
    assert s.inbound_agents == s.outbound_agents == "09121111111,09122222222"
    assert (s.stt_timeout, s.tts_timeout) == (12.0, 9.0)
    assert "DIALER_BATCH_SIZE is read as BATCH_SIZE (its Switchboard name)" in loaded.notes
    assert loaded.warnings == []


def test_timeouts_reach_the_cloud_speech_clients(clean_env: pytest.MonkeyPatch) -> None:
    from switchboard.speech.registry import STT_PROVIDERS, TTS_PROVIDERS

    clean_env.setenv("STT_TIMEOUT", "12")
    clean_env.setenv("TTS_TIMEOUT", "9")
    s = load_settings(env_file=None).settings
    assert STT_PROVIDERS["openai"](s).http.timeout == 12.0  # type: ignore[attr-defined]
    assert TTS_PROVIDERS["openai"](s).http.timeout == 9.0  # type: ignore[attr-defined]


def test_an_old_name_that_disagrees_with_ours_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DIALER_BATCH_SIZE", "20")
    clean_env.setenv("BATCH_SIZE", "30")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert info.value.lines == ["DIALER_BATCH_SIZE='20' and BATCH_SIZE='30' disagree: DIALER_BATCH_SIZE is the old "
                                "name of BATCH_SIZE; keep one of them"]


def test_an_unknown_setting_with_a_known_prefix_gets_a_suggestion(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PANEL_PROT", "80")
    clean_env.setenv("ARI_PASWORD", "x")
    clean_env.setenv("LLM_MODLE_CHEAP", "x")
    clean_env.setenv("TTS_SOMETHING_NEW", "x")
    clean_env.setenv("UNRELATED_THING", "x")  # not our prefix: silence
    loaded = load_settings(env_file=None)
    assert "unknown setting PANEL_PROT is ignored; did you mean PANEL_PORT?" in loaded.warnings
    assert "unknown setting ARI_PASWORD is ignored; did you mean ARI_PASSWORD?" in loaded.warnings
    assert "unknown setting LLM_MODLE_CHEAP is ignored; did you mean LLM_MODEL_CHEAP?" in loaded.warnings
    assert "unknown setting TTS_SOMETHING_NEW is ignored" in loaded.warnings
    assert not any("UNRELATED_THING" in w for w in loaded.warnings)
    assert "ARI_PASWORD" not in repr(loaded.settings)


def test_the_cli_logs_the_suggestion(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PANEL_PROT": "80", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-c", "from switchboard.app import load_settings_for_cli as f; f()"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "unknown setting PANEL_PROT is ignored; did you mean PANEL_PORT?" in out.stderr + out.stdout


def test_a_dotenv_that_is_not_utf8_is_one_line(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"PANEL_PORT=8080\nLOG_LEVEL=\xff\xfe\n")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=env_file)
    assert info.value.lines == [f"{env_file}: line 2 is not UTF-8 text; save the file as UTF-8"]
