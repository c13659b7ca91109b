"""The composition root: builds every service from `Settings` and wires them together.

Nothing imports this module but the CLI; everything else receives what it needs as arguments.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from switchboard.clock import run_virtual
from switchboard.engine.context import CallContext
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator, OperatorPool
from switchboard.engine.services import EngineServices
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.schema import Scenario
from switchboard.observability.logging import setup_logging
from switchboard.settings import Settings
from switchboard.simulation import FlowTestResult, run_flow_test, simulate
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerFile

if TYPE_CHECKING:
    from switchboard.brain.services import Brain
    from switchboard.speech.service import SpeechService
    from switchboard.telephony.sim.voice import CallerVoices

log = logging.getLogger(__name__)


def load_settings_for_cli() -> Settings:
    settings = Settings()
    setup_logging(settings.log_level, json_lines=settings.log_json)
    return settings


def build_operator_pool(settings: Settings) -> OperatorPool:
    pool = OperatorPool()
    pool.set_roster(None, "inbound", [Operator(n) for n in settings.split_list(settings.inbound_agents)])
    pool.set_roster(None, "outbound", [Operator(n) for n in settings.split_list(settings.outbound_agents)])
    return pool


def build_speech(settings: Settings) -> "SpeechService":
    from switchboard.speech.service import SpeechService

    return SpeechService.from_settings(settings)


def build_engine(settings: Settings, *, speech: "SpeechService | None" = None,
                 brain: "Brain | None" = None) -> FlowEngine:
    """The engine with its services: STT (when audio is on), the intent classifier and the AI
    personas (LLM when configured, fallback tokens and scripted personas otherwise)."""
    from switchboard.brain.services import build_brain

    brain = brain or build_brain(settings, transcriber=speech)
    services = EngineServices(operators=build_operator_pool(settings), operator_timeout=settings.operator_timeout,
                              operator_caller_id=settings.operator_caller_id,
                              max_steps=settings.max_steps_per_call, transcriber=speech,
                              intents=brain.intents, extras=brain.engine_extras(),
                              default_language=settings.stt_language or None)
    return FlowEngine(services)


def build_caller_voices(speech: "SpeechService") -> "CallerVoices":
    """English callers speak with Piper (Whisper hears it well); others with the configured TTS."""
    from switchboard.speech.tts.piper import PiperTTS
    from switchboard.telephony.sim.voice import CallerVoices

    return CallerVoices(voices={"en": PiperTTS(), "*": speech.tts}, make_vad=speech.vad)


def build_network(settings: Settings, *, speech: "SpeechService | None" = None) -> SimNetwork:
    return SimNetwork(origination_timeout=float(settings.origination_timeout),
                      caller_voice=build_caller_voices(speech) if speech is not None else None)


def run_simulation(settings: Settings, scenario: Scenario, caller: CallerFile, *, inbound: bool = False,
                   audio: bool = False, virtual: bool = True) -> CallContext:
    speech = build_speech(settings) if audio else None
    engine = build_engine(settings, speech=speech)
    network = build_network(settings, speech=speech)
    coro = simulate(engine, network, scenario, caller, inbound=inbound)
    return run_virtual(coro) if virtual else asyncio.run(coro)


def run_flow_tests(settings: Settings, files: list[Path], scenarios_dir: Path) -> list[FlowTestResult]:
    registry = ScenarioRegistry(scenarios_dir)

    async def all_tests() -> list[FlowTestResult]:
        return [await run_flow_test(f, registry, lambda: build_engine(settings),
                                    lambda: build_network(settings)) for f in files]

    return run_virtual(all_tests())


# --- the main job ---------------------------------------------------------------------------------
async def demo_campaign(settings: Settings, console: Console, *, contacts: int, audio: bool) -> int:
    """A campaign of simulated contacts spread over the active scenarios, `max_concurrent_calls` at
    a time, with a progress bar and each call's result as it ends."""
    from switchboard.demo import demo_contacts
    from switchboard.simulation import DEFAULT_OPERATORS

    registry = ScenarioRegistry(settings.scenarios_dir)
    if not registry.get_names():
        console.print(f"[red]no valid scenarios in {settings.scenarios_dir}[/red]")
        for error in registry.last_report.errors:
            console.print(str(error), markup=False, highlight=False)
        return 1
    speech = build_speech(settings) if audio else None
    if speech is not None:
        console.print("loading the offline speech models (Whisper base, Piper, eSpeak NG, Silero VAD) ...")
        await speech.warm_up()
    engine = build_engine(settings, speech=speech)
    network = build_network(settings, speech=speech)
    people = demo_contacts(contacts)
    gate = asyncio.Semaphore(max(1, settings.max_concurrent_calls))
    tally: dict[str, int] = {}

    async def one(progress: Progress, task: int, person) -> None:  # type: ignore[no-untyped-def]
        scenario = registry.next_scenario(person.as_contact())
        if scenario is None:
            return
        caller = person.script(scenario.spec.stt.language or scenario.spec.language)
        async with gate:
            ctx = await simulate(engine, network, scenario, CallerFile(caller=caller, operators=DEFAULT_OPERATORS))
        tally[ctx.result or "unknown"] = tally.get(ctx.result or "unknown", 0) + 1
        said = ctx.transcripts[0]["text"] if ctx.transcripts else "-"
        progress.console.print(f"{caller.phone}  {scenario.name:<18} [bold]{ctx.result:<22}[/bold] "
                               f"intent={ctx.intent or '-':<16} said: {said}", highlight=False)
        progress.advance(task)

    with Progress(TextColumn("[bold]demo campaign"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("calls", total=len(people))
        await asyncio.gather(*(one(progress, task, p) for p in people))
    console.print("results: " + ", ".join(f"{k}={v}" for k, v in sorted(tally.items())))
    return 0


def run_main(settings: Settings, console: Console, *, contacts: int | None = None, wall_clock: bool = False,
             audio: bool | None = None) -> int:
    count = contacts if contacts is not None else settings.demo_contacts
    use_audio = settings.sim_audio if audio is None else audio
    coro = demo_campaign(settings, console, contacts=count, audio=use_audio)
    if wall_clock or not settings.sim_virtual_clock:
        return asyncio.run(coro)
    return run_virtual(coro)
