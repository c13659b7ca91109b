"""`switchboard prompts build|sync`: prompt audio for Asterisk (see telephony/asterisk/prompts.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

prompts_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Prompt audio for Asterisk: build 8/16 kHz WAVs from assets/audio/src "
                               "(recordings, or text spoken by the offline TTS) and sync them to AST_SOUND_DIR.")
console = Console()
err_console = Console(stderr=True)


def _settings():  # type: ignore[no-untyped-def]
    from switchboard.app import load_settings_for_cli

    return load_settings_for_cli()


def _offline_tts(settings):  # type: ignore[no-untyped-def]
    """The configured TTS (eSpeak NG offline by default) speaking text prompts."""
    from switchboard.speech.registry import build_tts

    engine = build_tts(settings)

    async def synthesize(text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
        return await engine.synthesize(text, language=language or settings.stt_language or None, voice=voice)

    return synthesize


def _build(src: Path, out: Path, force: bool, settings) -> bool:  # type: ignore[no-untyped-def]
    from switchboard.telephony.asterisk.prompts import PromptError, build_prompts

    try:
        report = asyncio.run(build_prompts(src, out, force=force, synthesize=_offline_tts(settings)))
    except PromptError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    for source in report.built:
        console.print(f"built  {escape(str(source.relative_to(src)))}", highlight=False)
    for source, reason in report.failed:
        reason = reason.removeprefix(f"{source}: ")  # the line names the file already
        err_console.print(f"[red]failed {escape(str(source.relative_to(src)))}: {escape(reason)}[/red]")
    console.print(f"{len(report.built)} built, {len(report.up_to_date)} up to date, {len(report.failed)} failed "
                  f"-> {out} (8 kHz .wav, 16 kHz .wav16)", highlight=False)
    return report.ok


@prompts_app.command("build")
def build(
    src: Annotated[Path | None, typer.Option("--src", help="prompt sources (mp3/wav); default PROMPTS_SRC_DIR")]
    = None,
    out: Annotated[Path | None, typer.Option("--out", help="where the WAVs go; default PROMPTS_WAV_DIR")] = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild even when the outputs are newer")] = False,
) -> None:
    """Convert every source to mono 8 kHz <name>.wav and 16 kHz <name>.wav16 (mp3 needs ffmpeg;
    <name>.<lang>.txt is spoken by the offline TTS: the shipped defaults for hello, yes, number,
    goodby, onhold and disclosure)."""
    settings = _settings()
    if not _build(src or settings.prompts_src_dir, out or settings.prompts_wav_dir, force, settings):
        raise typer.Exit(1)


@prompts_app.command("sync")
def sync(
    wav_dir: Annotated[Path | None, typer.Option("--from", help="built prompts; default PROMPTS_WAV_DIR")] = None,
    sound_dir: Annotated[Path | None, typer.Option("--sound-dir", help="Asterisk's sounds folder; default "
                                                                         "AST_SOUND_DIR")] = None,
    build_first: Annotated[bool, typer.Option("--build/--no-build", help="build changed sources first")] = True,
    src: Annotated[Path | None, typer.Option("--src", help="prompt sources for --build; default "
                                                            "PROMPTS_SRC_DIR")] = None,
    tts: Annotated[bool, typer.Option("--tts/--no-tts", help="also synthesize the scenarios' tts: prompts")] = True,
    scenarios: Annotated[Path | None, typer.Option("--scenarios", help="scenario folder for --tts; default "
                                                                        "SCENARIOS_DIR")] = None,
) -> None:
    """Copy the built prompts to AST_SOUND_DIR/custom and AST_SOUND_DIR/en/custom (played as
    sound:custom/<name>), and render the scenarios' tts: prompts once."""
    from switchboard.telephony.asterisk.prompts import (
        PromptError,
        PromptPermissionError,
        SyncReport,
        TextPrompt,
        find_sources,
        render_text_prompts,
        scenario_text_prompts,
        sync_prompts,
    )
    from switchboard.telephony.call import Audio

    settings = _settings()
    wav_dir = wav_dir or settings.prompts_wav_dir
    sound_dir = sound_dir or settings.ast_sound_dir
    src = src or settings.prompts_src_dir
    if build_first and find_sources(src) and not _build(src, wav_dir, False, settings):
        raise typer.Exit(1)
    text_prompts: list[TextPrompt] = []
    if tts:
        from switchboard.flows.registry import ScenarioRegistry

        folder = scenarios or settings.scenarios_dir
        if Path(folder).is_dir():
            registry = ScenarioRegistry(folder)
            text_prompts = scenario_text_prompts(registry.get(n) for n in registry.get_names())

    async def run() -> tuple[SyncReport | None, list[Path]]:
        report = None
        try:
            report = await sync_prompts(wav_dir, sound_dir)
        except PromptPermissionError:
            raise
        except PromptError as exc:
            if not text_prompts:
                raise
            err_console.print(f"[yellow]{escape(str(exc))}[/yellow]")  # still render the tts: prompts
        if not text_prompts:
            return report, []
        from switchboard.speech.registry import build_tts

        engine = build_tts(settings)

        async def synthesize(text: str, language: str | None, voice: str | None) -> Audio:
            return await engine.synthesize(text, language=language or settings.stt_language or None, voice=voice)

        return report, await render_text_prompts(sound_dir, text_prompts, synthesize)

    try:
        report, written = asyncio.run(run())
    except PromptError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    if report is not None:
        console.print(f"{len(report.copied)} files copied, {report.unchanged} unchanged -> "
                      + ", ".join(str(t) for t in report.targets), highlight=False)
    if text_prompts:
        console.print(f"{len(written)} tts: prompts synthesized, {len(text_prompts) - len(written)} already there "
                      f"-> {Path(sound_dir) / 'switchboard'}", highlight=False)
