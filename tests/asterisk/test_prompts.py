"""Prompt assets: `switchboard prompts build|sync` on real files (real ffmpeg for mp3), the
permission-denied message, and `tts:` prompts synthesized once and played over ARI."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from switchboard.cli_prompts import prompts_app
from switchboard.flows.registry import ScenarioRegistry
from switchboard.speech.tts.espeak import EspeakTTS
from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.asterisk.config import TextPrompt, text_prompt, tts_sound_name
from switchboard.telephony.asterisk.prompts import (
    PromptError,
    build_prompts,
    render_text_prompts,
    scenario_text_prompts,
    sync_prompts,
)
from switchboard.telephony.call import Audio, CallFailed, DialOutcome
from tests.asterisk.conftest import settings_for
from tests.asterisk.double import AriDouble, assert_no_leaks

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
runner = CliRunner()


def flat(text: str) -> str:
    """CLI output without Rich's line wrapping."""
    return " ".join(text.split())


def tone(seconds: float, freq: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.5 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono


def write_source_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1] if samples.ndim == 2 else 1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def write_source_mp3(path: Path, seconds: float, freq: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"sine=frequency={freq}:duration={seconds}:sample_rate=44100", "-ac", "2", "-y", str(path)],
                   check=True)
    return path


def read(path: Path) -> tuple[np.ndarray, int, int, int]:
    with wave.open(str(path)) as w:
        return (np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate(), w.getnchannels(),
                w.getsampwidth())


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


def check_outputs(stem: Path, seconds: float, freq: float, min_peak: float = 0.3) -> None:
    for suffix, rate in ((".wav", 8000), (".wav16", 16000)):
        samples, got_rate, channels, width = read(stem.with_name(stem.name + suffix))
        assert (got_rate, channels, width) == (rate, 1, 2)
        assert abs(len(samples) / rate - seconds) < 0.1
        assert abs(dominant_hz(samples, rate) - freq) < 5
        assert np.max(np.abs(samples)) > min_peak * 32767  # level kept


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the CLI's Settings() must not pick up a developer's .env


# --- build ----------------------------------------------------------------------------------------
@needs_ffmpeg
def test_build_converts_mp3_and_wav_to_8k_and_16k_mono(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "wav"
    write_source_mp3(src / "hello.mp3", 1.5, 440.0)
    write_source_wav(src / "sales" / "offer.wav", tone(2.0, 600.0, 44100, channels=2), 44100)
    write_source_wav(src / "narrow.wav", tone(1.0, 300.0, 8000), 8000)
    (src / "notes.txt").write_text("not audio")

    result = runner.invoke(prompts_app, ["build", "--src", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 built, 0 up to date, 0 failed" in flat(result.output)
    check_outputs(out / "hello", 1.5, 440.0, min_peak=0.06)  # ffmpeg's sine source is at 1/8 full scale
    check_outputs(out / "sales" / "offer", 2.0, 600.0)  # folders kept, stereo mixed down
    check_outputs(out / "narrow", 1.0, 300.0)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "hello.wav", "hello.wav16", "narrow.wav", "narrow.wav16", "sales/offer.wav", "sales/offer.wav16"]

    # nothing changed: nothing rebuilt; a touched source is rebuilt; --force rebuilds all
    result = runner.invoke(prompts_app, ["build", "--src", str(src), "--out", str(out)])
    assert "0 built, 3 up to date" in flat(result.output)
    later = (out / "hello.wav").stat().st_mtime + 5
    os.utime(src / "narrow.wav", (later, later))
    result = runner.invoke(prompts_app, ["build", "--src", str(src), "--out", str(out)])
    assert "1 built, 2 up to date" in flat(result.output) and "narrow.wav" in flat(result.output)
    result = runner.invoke(prompts_app, ["build", "--src", str(src), "--out", str(out), "--force"])
    assert "3 built, 0 up to date" in flat(result.output)


@needs_ffmpeg
def test_broken_sources_are_named_and_the_rest_still_built(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "wav"
    write_source_wav(src / "good.wav", tone(1.0, 500.0, 16000), 16000)
    (src / "broken.mp3").write_bytes(b"this is not an mp3 at all" * 10)
    (src / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    report = asyncio.run(build_prompts(src, out))
    assert report.built == [src / "good.wav"]
    failed = dict(report.failed)
    assert set(failed) == {src / "broken.mp3", src / "broken.wav"}
    assert "broken.mp3" in failed[src / "broken.mp3"] and "ffmpeg could not decode" in failed[src / "broken.mp3"]
    assert not (out / "broken.wav").exists()
    result = runner.invoke(prompts_app, ["build", "--src", str(src), "--out", str(out), "--force"])
    assert result.exit_code == 1, result.output
    assert "1 built, 0 up to date, 2 failed" in flat(result.output)
    assert "failed broken.mp3: " in flat(result.output)


def test_mp3_without_ffmpeg_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.mp3").write_bytes(b"ID3" + b"\0" * 100)
    write_source_wav(src / "ok.wav", tone(0.5, 400.0, 8000), 8000)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no ffmpeg on the PATH
    result = runner.invoke(prompts_app, ["build", "--src", str(src), "--out", str(tmp_path / "wav")])
    assert result.exit_code == 1
    assert "needs ffmpeg" in flat(result.output) and "apt-get install ffmpeg" in flat(result.output)
    assert (tmp_path / "wav" / "ok.wav").exists()


def test_build_without_a_source_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(prompts_app, ["build", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "w")])
    assert result.exit_code == 2 and "is not a folder" in flat(result.output)


# --- sync -----------------------------------------------------------------------------------------
def test_sync_copies_to_custom_and_en_custom(tmp_path: Path) -> None:
    src, out, sounds = tmp_path / "src", tmp_path / "wav", tmp_path / "sounds"
    write_source_wav(src / "welcome.wav", tone(1.0, 440.0, 22050), 22050)
    result = runner.invoke(prompts_app, ["sync", "--src", str(src), "--from", str(out), "--sound-dir", str(sounds),
                                         "--no-tts"])
    assert result.exit_code == 0, result.output
    assert "1 built" in flat(result.output) and "4 files copied" in flat(result.output)
    for folder in (sounds / "custom", sounds / "en" / "custom"):
        for name in ("welcome.wav", "welcome.wav16"):
            copy = folder / name
            assert copy.read_bytes() == (out / name).read_bytes()
            assert stat.S_IMODE(copy.stat().st_mode) & 0o044 == 0o044  # Asterisk (another user) can read it
    assert not [p for p in sounds.rglob("*partial*")]
    result = runner.invoke(prompts_app, ["sync", "--src", str(src), "--from", str(out), "--sound-dir", str(sounds),
                                         "--no-tts"])
    assert "0 files copied, 4 unchanged" in flat(result.output)


async def test_sync_without_built_prompts_says_build_first(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="run `switchboard prompts build` first"):
        await sync_prompts(tmp_path / "wav", tmp_path / "sounds")


def test_sync_into_a_folder_we_may_not_write_explains_what_to_do(tmp_path: Path) -> None:
    """A real EACCES: as root (CI containers) the sync runs as `nobody`, else on a read-only folder."""
    base = Path(tempfile.mkdtemp(prefix="prompt-perm-"))
    try:
        os.chmod(base, 0o755)
        out, sounds = base / "wav", base / "sounds"
        write_source_wav(out / "hello.wav", tone(0.5, 440.0, 8000), 8000)
        for p in (out, out / "hello.wav"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        sounds.mkdir(mode=0o755)
        os.chmod(sounds, 0o555)  # nobody but root may write
        code = ("import sys; from switchboard.cli_prompts import prompts_app; "
                f"prompts_app(['sync', '--from', {str(out)!r}, '--sound-dir', {str(sounds)!r}, '--no-build', "
                "'--no-tts'])")
        cmd = [sys.executable, "-c", code]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot drop privileges")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "HOME": str(base)}
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=base, env=env, timeout=60)
        output = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode == 1, output
        assert f"cannot write prompts to {sounds}: permission denied" in output
        assert "AST_SOUND_DIR" in output and "chmod -R g+w" in output
        assert "Traceback" not in output
        assert not list((sounds).rglob("*.wav"))
    finally:
        os.chmod(base / "sounds", 0o755)
        shutil.rmtree(base, ignore_errors=True)


# --- text prompts ---------------------------------------------------------------------------------
def test_text_prompt_convention() -> None:
    assert text_prompt("tts:Hello there") == TextPrompt("Hello there", None)
    assert text_prompt("tts/fa:سلام، خوش آمدید") == TextPrompt("سلام، خوش آمدید", "fa")
    assert text_prompt("tts/en-US:Time: 10:30") == TextPrompt("Time: 10:30", "en-US")
    assert text_prompt("tts:Press 1: sales") == TextPrompt("Press 1: sales", None)
    for other in ("sound:custom/hello", "custom/hello", "https://example.org/a.wav", "tts:", "tts:   ",
                  "recording:x", "/var/lib/asterisk/sounds/custom/hello.wav"):
        assert text_prompt(other) is None
    assert tts_sound_name("Hi", "en", None) != tts_sound_name("Hi", "fa", None)
    assert tts_sound_name("Hi", None, None).startswith("switchboard/tts-")


SCENARIO = """
scenario:
  name: text_prompts
  language: en
  prompts: {hello: "tts:Hello, this is the academy.", bye: "tts/en:Goodbye.", hold: "sound:custom/onhold"}
  flow:
    - {step: start, type: entry, next: greet}
    - {step: greet, type: play_prompt, prompt: hello, next: thanks}
    - {step: thanks, type: play_prompt, prompt: "tts:Thank you for your time.", next: bye}
    - {step: bye, type: play_prompt, prompt: bye, next: end}
    - {step: end, type: hangup}
"""


class CountingTTS:
    def __init__(self) -> None:
        self.inner = EspeakTTS()
        self.texts: list[str] = []

    async def __call__(self, text: str, language: str | None, voice: str | None) -> Audio:
        self.texts.append(text)
        return await self.inner.synthesize(text, language=language or "en", voice=voice)


async def test_scenario_text_prompts_are_rendered_once(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "text.yaml").write_text(SCENARIO, encoding="utf-8")
    registry = ScenarioRegistry(tmp_path / "scenarios")
    scenario = registry.get("text_prompts")
    assert scenario is not None, registry.last_report.errors
    prompts = scenario_text_prompts([scenario])
    assert prompts == [TextPrompt("Hello, this is the academy."), TextPrompt("Goodbye.", "en"),
                       TextPrompt("Thank you for your time.")]
    tts = CountingTTS()
    written = await render_text_prompts(tmp_path / "sounds", prompts, tts)
    assert len(written) == 3 and all(p.exists() and p.with_suffix(".wav16").exists() for p in written)
    assert written[0] == tmp_path / "sounds" / f"{tts_sound_name('Hello, this is the academy.', None, None)}.wav"
    samples, rate, _, _ = read(written[0])
    assert rate == 8000 and len(samples) / rate > 1.0 and np.max(np.abs(samples)) > 3000
    assert await render_text_prompts(tmp_path / "sounds", prompts, tts) == []
    assert len(tts.texts) == 3  # once, ever


async def test_tts_prompt_plays_over_ari_and_is_synthesized_once(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    tts = CountingTTS()
    async with AriDouble(scale=0.05, sounds_dir=str(sounds)) as ari:
        ari.sim.add_context("listens", "exten => s,1,Answer()\n same => n,Wait(600)\n same => n,Hangup()")
        ari.sim.route("09120000001", "listens")
        backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path), synthesize=tts)
        await backend.start()
        try:
            outcome, call = await backend.originate("09120000001", line="02150001000")
            assert outcome is DialOutcome.ANSWERED and call is not None
            for _ in range(2):
                assert (await call.play("tts/en:Your call is important to us.")).completed
            uris = [e["playback"]["media_uri"] for e in ari.sim.events if e["type"] == "PlaybackStarted"]
            name = tts_sound_name("Your call is important to us.", "en", None)
            assert uris == [f"sound:{name}"] * 2
            assert tts.texts == ["Your call is important to us."]
            assert (sounds / f"{name}.wav").exists()
            await call.hangup()
        finally:
            await backend.close()
        await assert_no_leaks(ari)


@needs_ffmpeg
async def test_synced_prompt_plays_on_the_pbx(tmp_path: Path) -> None:
    """Built from an mp3, synced into the sounds folder the double reads, played as sound:custom/<name>."""
    src, out, sounds = tmp_path / "src", tmp_path / "wav", tmp_path / "sounds"
    write_source_mp3(src / "welcome.mp3", 3.0, 440.0)
    assert (await build_prompts(src, out)).ok
    await sync_prompts(out, sounds)
    async with AriDouble(scale=0.05, sounds_dir=str(sounds)) as ari:
        ari.sim.add_context("listens", "exten => s,1,Answer()\n same => n,Wait(600)\n same => n,Hangup()")
        ari.sim.route("09120000001", "listens")
        backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path))
        await backend.start()
        try:
            _, call = await backend.originate("09120000001", line="02150001000")
            assert call is not None
            assert (await call.play("sound:custom/welcome")).completed
            with pytest.raises(CallFailed):  # a prompt that was never synced fails like on Asterisk
                await call.play("sound:custom/missing")
            await call.hangup()
        finally:
            await backend.close()
        await assert_no_leaks(ari)


async def test_prepare_prompts_builds_syncs_and_renders_at_start_up(tmp_path: Path) -> None:
    """What `switchboard run` does with PROMPTS_SYNC_ON_START=true."""
    from switchboard.settings import Settings
    from switchboard.telephony.asterisk.prompts import prepare_prompts

    src = tmp_path / "src"
    write_source_wav(src / "hello.wav", tone(1.0, 440.0, 16000), 16000)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "text.yaml").write_text(SCENARIO, encoding="utf-8")
    registry = ScenarioRegistry(tmp_path / "scenarios")
    settings = Settings(_env_file=None, prompts_src_dir=src, prompts_wav_dir=tmp_path / "wav",  # type: ignore[call-arg]
                        ast_sound_dir=tmp_path / "sounds", prompts_sync_on_start=True)
    tts = CountingTTS()
    build, sync = await prepare_prompts(settings, synthesize=tts,
                                        scenarios=[registry.get(n) for n in registry.get_names()])
    assert build is not None and build.built == [src / "hello.wav"]
    assert (tmp_path / "sounds" / "custom" / "hello.wav").exists()
    assert (tmp_path / "sounds" / "en" / "custom" / "hello.wav16").exists()
    assert len(sync.synthesized) == 3 and len(tts.texts) == 3
    build, sync = await prepare_prompts(settings, synthesize=tts,
                                        scenarios=[registry.get(n) for n in registry.get_names()])
    assert build is not None and build.up_to_date == [src / "hello.wav"] and not build.built
    assert not sync.copied and not sync.synthesized and len(tts.texts) == 3
