"""Production set-up as an operator meets it, each through the real command line: `switchboard
doctor` (against the ARI double: reachable, credentials, prompts missing until `switchboard prompts
sync` puts the default prompts, built from text, on the PBX), an unreachable ARI at start-up as one
line naming ARI_BASE_URL, and `switchboard calls`."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

from tests.asterisk.double import AriDouble

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "COLUMNS": "200",
           "DATA_DIR": str(tmp_path / "data"), "LOGS_DIR": str(tmp_path / "logs"),
           "RECORDINGS_DIR": str(tmp_path / "recordings"), "TTS_CACHE_DIR": str(tmp_path / "tts"),
           "PROMPTS_WAV_DIR": str(tmp_path / "wav"), "METRICS_ENABLED": "false"}
    env.update(extra)
    return env


async def sb(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_doctor_checks_ari_and_prompts_then_prompts_sync_fixes_them(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    async with AriDouble(scale=0.05, sounds_dir=str(sounds)) as ari:
        env = base_env(tmp_path, TELEPHONY_BACKEND="asterisk", ARI_BASE_URL=ari.base_url, ARI_WS_URL=ari.ws_url,
                       ARI_USERNAME=ari.username, ARI_PASSWORD=ari.password, AST_SOUND_DIR=str(sounds),
                       OUTBOUND_NUMBERS="02150001000", BUILTIN_PANEL_TOKEN="tok")
        code, out = await sb(env, "doctor")
        assert code == 1, out
        assert f"✔ asterisk   ARI at {ari.base_url}: Asterisk 22" in out
        assert "! ari app" in out and "not registered" in out
        assert "✖ prompts" in out and "missing: custom/disclosure, custom/goodby, custom/hello" in out
        assert "switchboard prompts sync" in out
        for name in ("scenarios", "database", "redis", "panel", "llm", "stt", "tts"):
            assert f"✔ {name}" in out, out
        # the shipped default prompts are built from text with the offline TTS and synced
        code, synced = await sb(env, "prompts", "sync", timeout=300)
        assert code == 0, synced
        assert "6 built" in synced and (sounds / "custom" / "hello.wav").exists()
        assert (sounds / "en" / "custom" / "onhold.wav16").exists()
        code, out = await sb(env, "doctor")
        assert code == 0, out
        assert "✔ prompts" in out and "all 6 sound: prompts" in out

        env["ARI_PASSWORD"] = "wrong"
        code, out = await sb(env, "doctor")
        assert code == 1 and "✖ asterisk" in out and "check ARI_USERNAME / ARI_PASSWORD" in out


async def test_unreachable_ari_at_start_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = base_env(tmp_path, TELEPHONY_BACKEND="asterisk", ARI_BASE_URL=f"http://127.0.0.1:{port}/ari",
                   OUTBOUND_NUMBERS="02150001000", PANEL_PORT=str(free_port()))
    started = time.monotonic()
    code, out = await sb(env, "run", timeout=60)
    assert code == 1
    assert time.monotonic() - started < 30
    assert f"cannot reach Asterisk ARI at ARI_BASE_URL=http://127.0.0.1:{port}/ari" in out
    assert "Traceback" not in out


async def test_switchboard_calls_lists_results_and_a_summary(tmp_path: Path) -> None:
    env = base_env(tmp_path, SCENARIOS_DIR=str(ROOT / "scenarios"))
    code, out = await sb(env, "run", "--no-console", "--text", "--contacts", "4", timeout=300)
    assert code == 0, out
    code, listing = await sb(env, "calls", "-n", "50")
    assert code == 0, listing
    assert "newest first" in listing and "out-" in listing and "+98912300000" in listing
    code, summary = await sb(env, "calls", "--summary")
    assert code == 0 and "calls by scenario and result" in summary and "reached" in summary
    code, js = await sb(env, "calls", "--json", "-n", "1")
    import json

    row = json.loads(js.strip().splitlines()[-1])
    assert row["call_id"].startswith(("out-", "ref-")) and "display_name" in row


async def test_text_prompt_sources_are_spoken_by_the_offline_tts(tmp_path: Path) -> None:
    """`<name>.<lang>.txt` is a prompt source: `switchboard prompts build` speaks it with the offline
    TTS into the 8 kHz .wav / 16 kHz .wav16 pair; a recording of the same name wins over the text."""
    import wave

    src = tmp_path / "src"
    (src / "sales").mkdir(parents=True)
    (src / "welcome.fa.txt").write_text("# the greeting\nسلام، خوش آمدید.\n", encoding="utf-8")
    (src / "sales" / "offer.en.txt").write_text("Our spring offer ends on Friday.\n", encoding="utf-8")
    (src / "bye.en.txt").write_text("Goodbye.\n", encoding="utf-8")
    with wave.open(str(src / "bye.wav"), "wb") as w:  # a recording beside the text
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x10\x00" * 8000)
    env = base_env(tmp_path)
    code, out = await sb(env, "prompts", "build", "--src", str(src), "--out", str(tmp_path / "wav"), timeout=300)
    assert code == 0, out
    assert "3 built" in out and "welcome.fa.txt" in out and "sales/offer.en.txt" in out and "bye.wav" in out
    with wave.open(str(tmp_path / "wav" / "welcome.wav")) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1) and w.getnframes() > 8000  # over a second
    assert (tmp_path / "wav" / "sales" / "offer.wav16").exists()
    with wave.open(str(tmp_path / "wav" / "bye.wav")) as w:
        assert w.getnframes() == 8000  # the recording, not the text
