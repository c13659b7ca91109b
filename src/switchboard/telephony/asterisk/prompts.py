"""Prompt assets for Asterisk: build phone-ready WAVs from the sources, copy them where Asterisk reads
sounds, and render the scenarios' text (`tts:`) prompts ahead of the first call.

* `build_prompts` converts every source under `PROMPTS_SRC_DIR` (wav directly; mp3 and other
  formats through ffmpeg; `<name>.<lang>.txt` text through the offline TTS) to mono 16-bit
  `<name>.wav` at 8 kHz and `<name>.wav16` at 16 kHz under `PROMPTS_WAV_DIR`, keeping the folder
  layout. Asterisk picks the file that suits the channel's codec. Sources older than their outputs
  are skipped; a recording beats a text of the same name (drop `hello.mp3` next to `hello.fa.txt`).
* `sync_prompts` copies the built files into `AST_SOUND_DIR/custom/` and `AST_SOUND_DIR/en/custom/`
  (Asterisk looks in the channel language's folder first), so `src/hello.mp3` plays as
  `sound:custom/hello`. Every file lands through a temporary name and a rename: Asterisk never
  plays half a file. A folder Switchboard may not write is reported as `PromptPermissionError`
  with what to do about it.
* `render_text_prompts` synthesizes the `tts:` prompts of the scenarios into
  `AST_SOUND_DIR/switchboard/tts-<hash>.wav` (the file `AriCall.speak` would write), once.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import logging
import os
import shutil
import wave
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard.telephony.asterisk.audio import write_tts_sound
from switchboard.telephony.asterisk.config import Synthesize, TextPrompt, text_prompt, tts_sound_name
from switchboard.telephony.call import Audio

log = logging.getLogger(__name__)

WAV_SUFFIXES = frozenset({".wav"})
FFMPEG_SUFFIXES = frozenset({".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac"})
TEXT_SUFFIXES = frozenset({".txt"})  # <name>.<language>.txt: the prompt's words, spoken by the TTS
SOURCE_SUFFIXES = WAV_SUFFIXES | FFMPEG_SUFFIXES | TEXT_SUFFIXES
OUTPUTS = ((8000, ".wav"), (16000, ".wav16"))  # Asterisk's format_wav: .wav is 8 kHz, .wav16 16 kHz
BUILT_SUFFIXES = frozenset(suffix for _, suffix in OUTPUTS)
DEFAULT_FOLDER = "custom"
DEFAULT_LANGUAGES = ("en",)
_DECODE_RATE = 16000


class PromptError(Exception):
    """A prompt could not be built or synced; the message says which and what to do."""


class PromptPermissionError(PromptError):
    """Switchboard may not write where Asterisk reads its sounds."""


@dataclass
class BuildReport:
    built: list[Path] = field(default_factory=list)  # sources converted now
    up_to_date: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class SyncReport:
    targets: list[Path] = field(default_factory=list)
    copied: list[Path] = field(default_factory=list)  # files written under the targets
    unchanged: int = 0
    synthesized: list[Path] = field(default_factory=list)  # tts: prompts rendered now


# --- build ----------------------------------------------------------------------------------------
def _prompt_name(source: Path) -> str:
    """`hello.mp3` -> `hello`; `hello.fa.txt` -> `hello` (the language is the text's, not the name's)."""
    stem = source.with_suffix("")
    return stem.with_suffix("").name if source.suffix.lower() in TEXT_SUFFIXES and stem.suffix else stem.name


_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


def _is_source(path: Path) -> bool:
    """Audio files, and texts named `<name>.<language>.txt` (other .txt files are notes)."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return bool(_LANGUAGE.match(path.with_suffix("").suffix.lstrip(".")))
    return suffix in SOURCE_SUFFIXES


def find_sources(src_dir: Path) -> list[Path]:
    """Every source, one per prompt name: a recording wins over a text of the same name."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        return []
    found = sorted(p for p in src_dir.rglob("*") if p.is_file() and _is_source(p) and not p.name.startswith("."))
    recorded = {(p.parent, _prompt_name(p)) for p in found if p.suffix.lower() not in TEXT_SUFFIXES}
    return [p for p in found if p.suffix.lower() not in TEXT_SUFFIXES or (p.parent, _prompt_name(p)) not in recorded]


def outputs_for(source: Path, src_dir: Path, wav_dir: Path) -> list[tuple[int, Path]]:
    stem = Path(wav_dir) / source.relative_to(src_dir).parent / _prompt_name(source)
    return [(rate, stem.with_name(stem.name + suffix)) for rate, suffix in OUTPUTS]


def text_source(source: Path) -> tuple[str, str | None]:
    """(words, language) of a `<name>.<language>.txt` source; `#` lines are comments."""
    lines = source.read_text(encoding="utf-8").splitlines()
    words = " ".join(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
    language = source.with_suffix("").suffix.lstrip(".") or None
    return words, language


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


async def decode_with_ffmpeg(source: Path, *, rate: int = _DECODE_RATE) -> Audio:
    """Any format ffmpeg reads -> mono PCM16 at `rate` (a subprocess: the event loop never waits)."""
    exe = ffmpeg_path()
    if exe is None:
        raise PromptError(f"{source}: decoding {source.suffix} needs ffmpeg, which is not installed "
                          "(Debian/Ubuntu: apt-get install ffmpeg), or convert it to WAV yourself")
    proc = await asyncio.create_subprocess_exec(
        exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(source), "-vn", "-ac", "1",
        "-ar", str(rate), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise PromptError(f"{source}: ffmpeg could not decode it ({detail[-1] if detail else proc.returncode})")
    if not out:
        raise PromptError(f"{source}: no audio in the file")
    return Audio(out[: len(out) // 2 * 2], rate)


def _read_wav(source: Path) -> Audio:
    from switchboard.speech.audio import read_wav

    return read_wav(source)


async def decode(source: Path) -> Audio:
    """A source file as mono PCM16: WAVs with the speech package's reader (PCM 8/16/32-bit, G.711),
    other WAV encodings and every other format through ffmpeg."""
    if source.suffix.lower() in WAV_SUFFIXES:
        try:
            audio = await asyncio.to_thread(_read_wav, source)
        except (ValueError, EOFError, wave.Error) as exc:
            if ffmpeg_path() is None:
                raise PromptError(f"{source}: unreadable WAV ({exc}); install ffmpeg to convert other "
                                  "WAV encodings, or save it as 16-bit PCM") from exc
            return await decode_with_ffmpeg(source)
        if not audio.pcm:
            raise PromptError(f"{source}: no audio in the file")
        return audio
    return await decode_with_ffmpeg(source)


def _write_outputs(audio: Audio, outputs: list[tuple[int, Path]]) -> None:
    from switchboard.speech.audio import resample, write_wav

    for rate, path in outputs:
        write_wav(path, resample(audio, rate))  # through a temporary file and a rename


def _up_to_date(source: Path, outputs: list[tuple[int, Path]]) -> bool:
    mtime = source.stat().st_mtime
    return all(p.exists() and p.stat().st_mtime >= mtime for _, p in outputs)


async def build_prompts(src_dir: Path, wav_dir: Path, *, force: bool = False, parallel: int = 4,
                        synthesize: Synthesize | None = None) -> BuildReport:
    """Convert every source under `src_dir` into 8 kHz `.wav` and 16 kHz `.wav16` under `wav_dir`;
    text sources are spoken by `synthesize` (the offline TTS)."""
    src_dir, wav_dir = Path(src_dir), Path(wav_dir)
    if not src_dir.is_dir():
        raise PromptError(f"no prompt sources: {src_dir} is not a folder (set PROMPTS_SRC_DIR or --src)")
    report = BuildReport()
    slots = asyncio.Semaphore(max(1, parallel))

    async def one(source: Path) -> None:
        outputs = outputs_for(source, src_dir, wav_dir)
        if not force and _up_to_date(source, outputs):
            report.up_to_date.append(source)
            return
        async with slots:
            try:
                if source.suffix.lower() in TEXT_SUFFIXES:
                    words, language = text_source(source)
                    if not words:
                        raise PromptError(f"{source}: no text in the file")
                    if synthesize is None:
                        raise PromptError(f"{source}: a text prompt needs a TTS to speak it")
                    audio = await synthesize(words, language, None)
                else:
                    audio = await decode(source)
                await asyncio.to_thread(_write_outputs, audio, outputs)
            except PromptError as exc:
                report.failed.append((source, str(exc)))
                return
            except OSError as exc:
                report.failed.append((source, f"{source}: {exc.strerror or exc}"))
                return
        report.built.append(source)
        log.debug("prompt built: %s", source.relative_to(src_dir))

    await asyncio.gather(*(one(s) for s in find_sources(src_dir)))
    for items in (report.built, report.up_to_date):
        items.sort()
    report.failed.sort()
    return report


# --- sync -----------------------------------------------------------------------------------------
def sync_targets(sound_dir: Path, *, folder: str = DEFAULT_FOLDER,
                 languages: Iterable[str] = DEFAULT_LANGUAGES) -> list[Path]:
    """`AST_SOUND_DIR/custom` and its language variants (`AST_SOUND_DIR/en/custom`)."""
    sound_dir = Path(sound_dir)
    return [sound_dir / folder, *(sound_dir / lang / folder for lang in languages)]


def permission_message(path: Path, exc: OSError | None = None) -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "this user"
    return (f"cannot write prompts to {path}: permission denied (running as {user}). Asterisk's sound "
            f"folder usually belongs to the asterisk user. Either run `switchboard prompts sync` as a user "
            f"that may write there, give {user} access (e.g. `sudo usermod -aG asterisk {user}` and "
            f"`sudo chmod -R g+w {path}`), or set AST_SOUND_DIR to a folder Switchboard can write and "
            "Asterisk can read (a shared volume when they run on different hosts).")


def _same(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except FileNotFoundError:
        return False
    return sa.st_size == sb.st_size and sb.st_mtime >= sa.st_mtime


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)  # Asterisk (another user) must be able to read it
        shutil.copystat(source, tmp)
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _sync(wav_dir: Path, targets: list[Path], report: SyncReport) -> None:
    files = sorted(p for p in wav_dir.rglob("*") if p.is_file() and p.suffix in BUILT_SUFFIXES)
    for target_dir in targets:
        for source in files:
            target = target_dir / source.relative_to(wav_dir)
            try:
                if _same(source, target):
                    report.unchanged += 1
                    continue
                _copy(source, target)
            except PermissionError as exc:
                blocked = next((p for p in (target.parent, *target.parents) if p.exists()), target_dir)
                raise PromptPermissionError(permission_message(blocked, exc)) from exc
            report.copied.append(target)


async def sync_prompts(wav_dir: Path, sound_dir: Path, *, folder: str = DEFAULT_FOLDER,
                       languages: Iterable[str] = DEFAULT_LANGUAGES) -> SyncReport:
    """Copy the built prompts into `sound_dir/<folder>` and `sound_dir/<lang>/<folder>`."""
    wav_dir = Path(wav_dir)
    built = wav_dir.is_dir() and any(p.suffix in BUILT_SUFFIXES for p in wav_dir.rglob("*"))
    if not built:
        raise PromptError(f"no built prompts in {wav_dir}: run `switchboard prompts build` first")
    report = SyncReport(targets=sync_targets(sound_dir, folder=folder, languages=languages))
    await asyncio.to_thread(_sync, wav_dir, report.targets, report)
    return report


# --- text prompts ---------------------------------------------------------------------------------
def scenario_text_prompts(scenarios: Iterable[Any]) -> list[TextPrompt]:
    """Every `tts:` prompt the scenarios may play: their `prompts` table, prompts named literally by
    steps, and the disclosure prompt (each once)."""
    seen: dict[TextPrompt, None] = {}
    for scenario in scenarios:
        spec = scenario.spec
        refs = list(spec.prompts.values())
        if spec.disclosure_prompt:
            refs.append(spec.prompts.get(spec.disclosure_prompt, spec.disclosure_prompt))
        for flow in (scenario.flow, scenario.inbound_flow):
            for step in (flow.steps.values() if flow is not None else ()):
                refs.extend(spec.prompts.get(p, p) for _, p in step.prompts_used())
        for ref in refs:
            prompt = text_prompt(ref)
            if prompt is not None:
                seen.setdefault(prompt, None)
    return list(seen)


async def render_text_prompts(sound_dir: Path, prompts: Iterable[TextPrompt], synthesize: Synthesize,
                              *, voice: str | None = None) -> list[Path]:
    """Synthesize each `tts:` prompt not yet under `sound_dir`; returns the files written now."""
    written: list[Path] = []
    for prompt in prompts:
        path = Path(sound_dir) / f"{tts_sound_name(prompt.text, prompt.language, voice)}.wav"
        if path.exists():
            continue
        audio = await synthesize(prompt.text, prompt.language, voice)
        try:
            await asyncio.to_thread(write_tts_sound, path, audio)
        except PermissionError as exc:
            blocked = next((p for p in path.parents if p.exists()), Path(sound_dir))
            raise PromptPermissionError(permission_message(blocked, exc)) from exc
        written.append(path)
    return written


async def prepare_prompts(settings: Any, *, synthesize: Synthesize | None = None,
                          scenarios: Iterable[Any] = ()) -> tuple[BuildReport | None, SyncReport]:
    """Start-up (`PROMPTS_SYNC_ON_START`): build when there are sources, sync what is built, and
    render the scenarios' `tts:` prompts when a synthesizer is given."""
    build = None
    if find_sources(settings.prompts_src_dir):
        build = await build_prompts(settings.prompts_src_dir, settings.prompts_wav_dir, synthesize=synthesize)
        for source, reason in build.failed:
            log.warning("prompt %s not built: %s", source, reason)
    wav_dir = Path(settings.prompts_wav_dir)
    if wav_dir.is_dir() and any(p.suffix in BUILT_SUFFIXES for p in wav_dir.rglob("*")):
        sync = await sync_prompts(wav_dir, settings.ast_sound_dir)
    else:
        sync = SyncReport(targets=sync_targets(settings.ast_sound_dir))
    if synthesize is not None:
        sync.synthesized = await render_text_prompts(settings.ast_sound_dir, scenario_text_prompts(scenarios),
                                                     synthesize)
    return build, sync
