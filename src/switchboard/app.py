"""The composition root: builds every service from `Settings` and wires them together.

Nothing imports this module but the CLI; everything else receives what it needs as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.engine.context import CallContext
from switchboard.engine.engine import FlowEngine
from switchboard.engine.operators import Operator, OperatorPool
from switchboard.engine.services import EngineServices
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.schema import Scenario
from switchboard.observability.logging import setup_from_settings
from switchboard.settings import Settings
from switchboard.simulation import DEFAULT_OPERATORS, FlowTestResult, run_flow_test, simulate
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import CallerFile

if TYPE_CHECKING:
    from switchboard.dialer.followups import FollowUps
    from switchboard.dialer.loop import Dialer
    from switchboard.panel.outbox import OutboxDeliverer
    from switchboard.store import Store
    from switchboard.telephony.backend import TelephonyBackend
    from switchboard.brain.services import Brain
    from switchboard.speech.service import SpeechService
    from switchboard.voice.early import EarlyTranscripts
    from switchboard.voice.runtime import VoiceRuntime
    from switchboard.telephony.webrtc.backend import WebRTCBackend
    from fastapi import APIRouter

log = logging.getLogger(__name__)


def load_settings_for_cli() -> Settings:
    """Settings for a CLI command: a bad setting ends the command with one line per problem on
    stderr (exit code 2), never a traceback; warnings (old names mapped, unknown names) are logged."""
    import sys

    from switchboard.settings import SettingsError, load_settings

    try:
        loaded = load_settings()
    except SettingsError as exc:
        for line in exc.lines:
            sys.stderr.write(f"switchboard: bad setting: {line}\n")
        raise SystemExit(2) from None
    settings = loaded.settings
    setup_from_settings(settings)
    for warning in loaded.warnings:
        log.warning("settings: %s", warning)
    for note in loaded.notes:
        log.info("settings: %s", note)
    return settings


def build_operator_pool(settings: Settings) -> OperatorPool:
    pool = OperatorPool()
    pool.set_roster(None, "inbound", [Operator(n) for n in settings.split_list(settings.inbound_agents)])
    pool.set_roster(None, "outbound", [Operator(n) for n in settings.split_list(settings.outbound_agents)])
    return pool


def build_speech(settings: Settings) -> "SpeechService":
    from switchboard.observability.metrics import instrument_speech
    from switchboard.speech.service import SpeechService

    return instrument_speech(SpeechService.from_settings(settings))


def build_engine(settings: Settings, *, speech: "SpeechService | None" = None,
                 brain: "Brain | None" = None, followups: "FollowUps | None" = None,
                 transcriber: "EarlyTranscripts | None" = None) -> FlowEngine:
    """The engine with its services: STT (when audio is on; through `transcriber`, the voice layer's
    early transcripts, when given), the intent classifier and the AI personas (LLM when configured,
    fallback tokens and scripted personas otherwise); call backs and tickets go to `followups`
    (stored and dialed) when given, else stay in memory."""
    from switchboard.brain.services import build_brain
    from switchboard.engine.callbacks import MemoryCallbacks

    stt = transcriber or speech
    brain = brain or build_brain(settings, transcriber=stt,
                                 create_ticket=followups.create_ticket if followups else None,
                                 schedule_callback=followups.schedule_callback if followups else None)
    services = EngineServices(operators=build_operator_pool(settings), operator_timeout=settings.operator_timeout,
                              operator_caller_id=settings.operator_caller_id,
                              max_steps=settings.max_steps_per_call, transcriber=stt,
                              intents=brain.intents, extras={**brain.engine_extras(), "brain": brain},
                              default_language=settings.stt_language or None,
                              callbacks=followups or MemoryCallbacks())
    return FlowEngine(services)


def build_voice(settings: Settings, speech: "SpeechService", *, early: bool = False) -> "VoiceRuntime":
    """The voice layer every streamed call of this process shares: one VAD model (batched), one
    pacer, the built prompt files, the TTS stream, the recordings writer; with `early`, the early
    transcripts (VOICE_EARLY_STT_MS), which the engine must then transcribe through (`build_node`)."""
    from switchboard.speech.registry import build_vad_provider
    from switchboard.voice.early import EarlyTranscripts
    from switchboard.voice.pacing import Pacer
    from switchboard.voice.prompts import PromptLibrary
    from switchboard.voice.recordings import RecordingKeeper
    from switchboard.voice.runtime import VoiceRuntime

    def stream_speech(text: str, language: str | None, voice: str | None):  # type: ignore[no-untyped-def]
        return speech.stream(text, language=language, voice=voice)

    return VoiceRuntime(vad=build_vad_provider(settings), pacer=Pacer(lead=settings.voice_jitter_ms / 1000.0),
                        prompts=PromptLibrary(settings.prompts_wav_dir), speech=stream_speech,
                        recordings=RecordingKeeper(settings.recordings_dir),
                        early=EarlyTranscripts(speech, after=settings.voice_early_stt_ms / 1000.0)
                        if early and settings.voice_early_stt_ms > 0 else None)


def build_network(settings: Settings, *, speech: "SpeechService | None" = None,
                  voice: "VoiceRuntime | None" = None) -> SimNetwork:
    from switchboard.telephony.sim.backend import build_network as sim_network

    if speech is not None and voice is None:
        voice = build_voice(settings, speech)
    return sim_network(settings, speech=speech, voice=voice)


def run_simulation(settings: Settings, scenario: Scenario, caller: CallerFile, *, inbound: bool = False,
                   audio: bool = False, virtual: bool = True) -> CallContext:
    speech = build_speech(settings) if audio else None
    engine = build_engine(settings, speech=speech)

    async def run() -> CallContext:
        voice = build_voice(settings, speech) if speech is not None else None
        try:
            return await simulate(engine, build_network(settings, speech=speech, voice=voice), scenario, caller,
                                  inbound=inbound)
        finally:
            if voice is not None:
                await voice.aclose()

    return run_virtual(run()) if virtual else asyncio.run(run())


def run_flow_tests(settings: Settings, files: list[Path], scenarios_dir: Path) -> list[FlowTestResult]:
    registry = ScenarioRegistry(scenarios_dir)

    async def all_tests() -> list[FlowTestResult]:
        return [await run_flow_test(f, registry, lambda: build_engine(settings),
                                    lambda: build_network(settings)) for f in files]

    return run_virtual(all_tests())


async def test_intents(settings: Settings, scenario_file: Path, data: Path, console: Console, *,
                       show_errors: bool = False) -> int:
    """`switchboard intents test`: the scenario's classifier (LLM when configured, else offline) on a
    labelled TSV. 0 = ran (whatever the accuracy), 1 = bad data file, 2 = bad scenario."""
    from switchboard.brain.evaluation import DatasetError, evaluate, load_tsv
    from switchboard.brain.intents import IntentClassifier
    from switchboard.brain.llm import LLMClient
    from switchboard.flows.validate import parse_scenario_file

    parsed = parse_scenario_file(scenario_file)
    if parsed.scenario is None:
        for error in parsed.errors:
            console.print(str(error), markup=False, highlight=False, style="red")
        return 2
    spec = parsed.scenario.spec.llm
    try:
        rows = load_tsv(data, [*spec.intent_categories, "unknown"])
    except DatasetError as exc:
        console.print(str(exc), markup=False, highlight=False, style="red", soft_wrap=True)
        return 1
    llm = LLMClient.from_settings(settings)
    classifier = IntentClassifier.from_settings(settings, llm)
    try:
        if classifier.semantic is not None:
            await classifier.semantic.warm_up()
        report = await evaluate(classifier, spec, rows)
    finally:
        if llm is not None:
            await llm.aclose()
        if classifier.semantic is not None:
            classifier.semantic.close()
    if show_errors:
        for o in report.outcomes:
            if o.got != o.row.label:
                console.print(f"{data}:{o.row.line}: {o.row.lang} expected {o.row.label}, got {o.got} "
                              f"({o.path}): {o.row.text}", markup=False, highlight=False, soft_wrap=True)
    for line in report.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0


# --- the main job ---------------------------------------------------------------------------------
DEMO_LINES = "02191000001,02191000002"


@dataclass
class Node:
    """Everything one running Switchboard process holds, built from Settings in one place."""

    settings: Settings
    store: "Store"
    registry: ScenarioRegistry
    engine: FlowEngine
    dialer: "Dialer"
    deliverer: "OutboxDeliverer"
    panel: object

    async def close(self) -> None:
        await self.dialer.stop()
        await self.deliverer.stop(flush_timeout=10.0)
        await self.dialer.limiter.aclose()
        await self.dialer.health.aclose()
        close = getattr(self.panel, "aclose", None)
        if close is not None:
            await close()
        await self.store.close()


def build_backend(settings: Settings, *, speech: "SpeechService | None", demo: list | None = None,
                  registry: ScenarioRegistry | None = None, voice: "VoiceRuntime | None" = None) -> "TelephonyBackend":
    """The telephony backend named by TELEPHONY_BACKEND (see `telephony.registry`)."""
    from switchboard.telephony.registry import BackendDeps
    from switchboard.telephony.registry import build_backend as build_named

    if voice is None and speech is not None:
        voice = build_voice(settings, speech)
    return build_named(settings.telephony_backend, BackendDeps(settings, speech=speech, voice=voice,
                                                               scenarios=registry, demo=list(demo or [])))


# --- browser calls (WebRTC) -------------------------------------------------------------------------
def browser_backend(settings: Settings, node: Node, *, speech: "SpeechService",
                    voice: "VoiceRuntime") -> "WebRTCBackend | None":
    """The backend that takes browser calls: the dialer's own with TELEPHONY_BACKEND=webrtc, one
    beside the phone backend with WEBRTC_ENABLED, else none."""
    from switchboard.telephony.registry import BackendDeps, build_backend as build_named
    from switchboard.telephony.webrtc.backend import WebRTCBackend

    if isinstance(node.dialer.backend, WebRTCBackend):
        return node.dialer.backend
    if not settings.webrtc_enabled:
        return None
    backend = build_named("webrtc", BackendDeps(settings, speech=speech, voice=voice, scenarios=node.registry))
    assert isinstance(backend, WebRTCBackend)
    return backend


async def start_browser_calls(webrtc: "WebRTCBackend", dialer: "Dialer") -> None:
    """Browser calls take the inbound path of phone calls (stored, reported, counted), on the
    scenario their token names and off any phone line; the page follows each call's timeline.
    (After `dialer.start()`, which hands a backend the plain inbound path.)"""
    await webrtc.start(lambda call, scenario: dialer.handle_inbound(call, scenario, on_line=False))
    # The page's call is the backend's (`web-…`); the dialer's id for it is kept apart (`in-…`).
    dialer.on_timeline = lambda ctx, entry: webrtc.observe(ctx.variables.get("backend_call_id", ctx.call_id),
                                                           entry.event, entry.detail)


def browser_calls_router(settings: Settings, webrtc: "WebRTCBackend", node: Node) -> "APIRouter":
    """/call, call tokens and offers, on the browser-call backend; who may call is the panel's auth
    (or anyone, for WEBRTC_PUBLIC_TARGETS)."""
    from fastapi import Request

    from switchboard.panel.auth import request_principal
    from switchboard.telephony.webrtc.routes import Caller, build_router
    from switchboard.telephony.webrtc.targets import CallTargets, PersonaInfo
    from switchboard.telephony.webrtc.tokens import CallTokens

    brain = node.engine.services.extras.get("brain")
    registry = node.registry

    def personas() -> list[PersonaInfo]:
        if brain is None:
            return []
        out = []
        for name in brain.personas.names():
            p = brain.personas.get(name)
            out.append(PersonaInfo(p.name, p.display_name or p.name, p.default_language))
        return out

    def scenarios() -> list[Scenario]:
        active = set(registry.active_names())
        return [s for s in registry.all() if s.name in active]

    async def authenticate(request: Request) -> Caller | None:
        """Console users and API tokens; placing a call writes a call record: the `write` scope."""
        principal = await request_principal(request)
        if principal is None:
            return None
        return Caller(principal.name, principal.can("write") and principal.company == settings.company,
                      principal.csrf)

    targets = CallTargets(scenarios, personas, public=settings.split_list(settings.webrtc_public_targets),
                          max_seconds=settings.webrtc_max_call_seconds)
    tokens = CallTokens(ttl=settings.webrtc_token_ttl_seconds,
                        anonymous_per_minute=settings.webrtc_public_tokens_per_minute)
    return build_router(webrtc, targets, tokens, authenticate=authenticate, ice=webrtc.ice,
                        page_sources=webrtc.avatar.page_sources() if webrtc.avatar is not None else None)


async def build_node(settings: Settings, *, speech: "SpeechService | None" = None, demo: list | None = None,
                     virtual_clock: bool = False, backend: "TelephonyBackend | None" = None,
                     voice: "VoiceRuntime | None" = None) -> Node:
    from switchboard.dialer.abandon import AbandonTracker
    from switchboard.dialer.alerts import sms_alerter_from_settings
    from switchboard.dialer.compliance import Compliance, CompliancePolicy
    from switchboard.dialer.dialstring import DialStringTemplate
    from switchboard.dialer.followups import FollowUps
    from switchboard.dialer.health import DialerHealth, HealthAlert
    from switchboard.dialer.limits import bootstrap_lines, build_limiter
    from switchboard.dialer.loop import Dialer
    from switchboard.panel.client import PanelClient
    from switchboard.panel.local import LocalPanel
    from switchboard.engine.results import ResultCatalog
    from switchboard.panel.outbox import OutboxDeliverer, ResultsOutbox, make_sink
    from switchboard.store import open_store

    store = await open_store(settings)
    registry = ScenarioRegistry(settings.scenarios_dir)
    catalog = ResultCatalog(registry.all(), default_retry=settings.retry_delay_seconds)
    engine = build_engine(settings, speech=speech, followups=FollowUps(store, settings),
                          transcriber=voice.early if voice is not None else None)
    # Each process leases contacts (and call backs) under its own name, so several dialers on one
    # PostgreSQL never take each other's.
    owner = f"{socket.gethostname()}-{os.getpid()}"
    local = LocalPanel(store, settings, lease_owner=owner, results=catalog)
    panel = PanelClient.from_settings(settings) if settings.panel_base_url else local
    # Submitting a result wakes the deliverer; the poll only picks up what another process left
    # (on the virtual clock there is no other process: polling through simulated nights is waste).
    deliverer = OutboxDeliverer(store, make_sink(settings, store, local=local),
                                poll_interval=900.0 if virtual_clock else 60.0)
    outbox = ResultsOutbox(store, settings, deliverer)

    async def tell_panel(alert: HealthAlert) -> None:
        await panel.send_alert(alert.state, alert.text(settings.company),
                               {"kind": alert.kind, "reason": alert.reason, "failures": alert.failures})

    health = DialerHealth(settings.fail_alert_threshold, notify=tell_panel, sms=sms_alerter_from_settings(settings),
                          company=settings.company)
    dialer = Dialer(
        settings=settings, panel=panel, store=store, outbox=outbox, registry=registry, engine=engine,
        backend=backend or build_backend(settings, speech=speech, demo=demo, registry=registry, voice=voice),
        limiter=build_limiter(settings, virtual_clock=virtual_clock),
        compliance=Compliance(CompliancePolicy.from_settings(settings, results=catalog), store.dnc.contains),
        health=health,
        abandon=AbandonTracker(wait_limit=settings.abandon_wait_seconds, window=settings.abandon_window_seconds),
        template=DialStringTemplate(settings.dial_string_template),
        lines=bootstrap_lines(settings), results=catalog, lease_owner=owner,
        max_poll=1800.0 if virtual_clock else 60.0)
    return Node(settings, store, registry, engine, dialer, deliverer, panel)


async def seed_contacts(node: Node, people: list[tuple[str, str, dict]], campaign: str) -> int:
    """Put contacts (phone, name, attributes) into the built-in panel's store as a campaign; numbers
    already in that campaign are skipped, invalid ones are logged with the reason."""
    from switchboard.phones import InvalidPhoneNumber, normalize
    from switchboard.store import NewContact

    company, region = node.settings.company, node.settings.default_region
    row = await node.store.campaigns.get_or_create(campaign, company=company)
    fresh, seen = [], set()
    for phone, name, attributes in people:
        try:
            number = normalize(phone, region)
        except InvalidPhoneNumber as exc:
            log.warning("contact %r rejected: %s", phone, exc)
            continue
        if number.e164 not in seen:
            seen.add(number.e164)
            fresh.append(NewContact(phone=phone, phone_e164=number.e164, phone_national=number.national,
                                    name=name, attributes=attributes, company=company, campaign_id=row.id))
    existing = await node.store.contacts.existing_phones([c.phone_e164 for c in fresh], company=company,
                                                         campaign_id=row.id)
    return await node.store.contacts.add_many([c for c in fresh if c.phone_e164 not in existing])


async def seed_static_contacts(node: Node) -> int:
    """`STATIC_CONTACTS` (comma-separated numbers) when there is no external panel."""
    numbers = node.settings.split_list(node.settings.static_contacts)
    if not numbers or node.settings.panel_base_url:
        return 0
    return await seed_contacts(node, [(n, "", {}) for n in numbers], campaign="static contacts")


async def demo_campaign(settings: Settings, console: Console, *, contacts: int, audio: bool,
                        virtual_clock: bool, serve_console: bool = False) -> int:
    """The quick-start job: simulated contacts in the built-in panel's SQLite store, dialed by the
    real dialer (limits, compliance, call backs, outbox) over the simulated phone network; the
    terminal tells the story (`demo.DemoStory`), every call is also logged to the log file."""
    from switchboard.demo import DemoStory, demo_contacts
    from switchboard.dialer.lines import parse_timezone
    from switchboard.observability.logging import console_level

    registry = ScenarioRegistry(settings.scenarios_dir)
    if not registry.get_names():
        console.print(f"[red]no valid scenarios in {settings.scenarios_dir}[/red]")
        for error in registry.last_report.errors:
            console.print(str(error), markup=False, highlight=False)
        return 1
    if not settings.outbound_numbers:
        settings = settings.model_copy(update={"outbound_numbers": DEMO_LINES})
    speech = build_speech(settings) if audio else None
    if speech is not None:
        console.print("loading the offline speech models (Whisper base, Piper, eSpeak NG, Silero VAD) ...")
        await speech.warm_up()
    external = bool(settings.panel_base_url)
    people = [] if external else demo_contacts(contacts, seed=int(clock.now().timestamp()) % 100000)
    voice = build_voice(settings, speech) if speech is not None else None
    if voice is not None:
        await voice.warm_up()
    node = await build_node(settings, speech=speech, demo=people, virtual_clock=virtual_clock, voice=voice)
    operators = [Operator(o.phone, o.id) for o in DEFAULT_OPERATORS]
    node.engine.services.operators.set_roster(None, "outbound", operators)
    node.engine.services.operators.set_roster(None, "inbound", operators)
    story = DemoStory(console, tz=parse_timezone(settings.panel_timezone), catalog=node.dialer.catalog)
    campaign = None
    if external:
        console.print(f"dialing the external panel's contacts ({settings.panel_base_url}) over the simulator")
    else:
        campaign = await node.store.campaigns.get_or_create(f"demo {datetime.now():%Y-%m-%d %H:%M:%S}",
                                                            company=settings.company)
        await seed_contacts(node, [(p.phone, p.name, {"behaviour": p.behaviour}) for p in people],
                            campaign=campaign.name)
        await seed_static_contacts(node)
    # The bar: every contact this run will dial (the new campaign, static contacts, leftovers of an
    # interrupted run) plus the new campaign's contacts already on the do-not-call list.
    blocked = (await node.store.contacts.counts_by_status(settings.company,
                                                          campaign_id=campaign.id)).get("dnc", 0) if campaign else 0
    total = await _open_contacts(node) + blocked
    console.print(f"demo campaign: {total} contacts{f', {blocked} on the do-not-call list (not called)' if blocked else ''}"
                  f"; lines {settings.outbound_numbers}; scenarios {', '.join(registry.get_names())}; starts "
                  f"{story.local(clock.now())} on a {'virtual' if virtual_clock else 'real'} clock", highlight=False)

    async def done() -> int:
        return total - await _open_contacts(node)

    web = await start_console(node, console) if serve_console else None
    console_level(logging.WARNING)  # the story is on the terminal; every INFO line is in the log file
    try:
        await node.deliverer.start()
        await node.dialer.start()
        story.start(total, done)
        node.dialer.on_call_end = story.call_ended
        await node.dialer.run(until_idle=True)
        await node.deliverer.flush(timeout=10.0)
        await story.refresh()
    except BaseException:
        if web is not None:
            web.stop()
        raise
    finally:
        story.stop()
        console_level(logging.NOTSET)
        await node.close()
        if voice is not None:
            await voice.aclose()
    log_file = settings.resolved_log_file()
    story.summary(log_file=str(log_file) if log_file else None, web_console=web is not None or _has_web_console(),
                  panel_url=f"http://{settings.panel_host}:{settings.panel_port}")
    if web is not None:
        from switchboard.web.serve import public_url, until_interrupted

        web.link.detach_dialer()
        console.print(f"campaign finished; the console keeps serving at {public_url(settings)} until Ctrl-C")
        try:
            await until_interrupted()
        finally:
            web.stop()
    return 0


async def _open_contacts(node: Node) -> int:
    counts = await node.store.contacts.counts_by_status(node.settings.company)
    return counts.get("pending", 0) + counts.get("leased", 0)


def _has_web_console() -> bool:
    import importlib.util

    return importlib.util.find_spec("switchboard.web") is not None


async def start_console(node: Node, console: Console):  # type: ignore[no-untyped-def]
    """The demo's console: a real-time server thread beside the virtual-clock campaign (see
    `web.serve`); prints its URL and, on a first start, the one-time login link."""
    from switchboard.web.serve import ConsoleThread, link_node, login_message

    brain = node.engine.services.extras.get("brain")
    link = link_node(registry=node.registry, brain=brain, dialer=node.dialer)
    # The brain's REST router is not mounted here: its objects live on the campaign's loop, which the
    # console's pages reach through `NodeLink` (production serves both on one loop).
    web = ConsoleThread(node.settings, link, list_scenarios=node.registry.get_names)
    try:
        web.start()
    except (OSError, RuntimeError) as exc:
        console.print(f"[yellow]console not served ({exc}); set PANEL_PORT to a free port[/yellow]")
        node.dialer.live = None
        return None
    console.print(login_message(node.settings, web.login_url), highlight=False)
    loop = asyncio.get_running_loop()
    if isinstance(loop, clock.VirtualClockLoop):  # watchable calls; idle gaps still skipped at once
        loop.pace_if = lambda: node.dialer.active_calls > 0
    return web


def run_main(settings: Settings, console: Console, *, contacts: int | None = None, wall_clock: bool = False,
             audio: bool | None = None, serve_console: bool = False) -> int:
    count = contacts if contacts is not None else settings.demo_contacts
    use_audio = settings.sim_audio if audio is None else audio
    from switchboard.telephony.registry import backend_spec

    simulated = backend_spec(settings.telephony_backend).simulated
    virtual = not wall_clock and settings.sim_virtual_clock and simulated
    if not simulated:  # uvloop: every streamed call's 50 frames a second each way go through the loop
        return run_server_loop(serve(settings, console))
    coro = demo_campaign(settings, console, contacts=count, audio=use_audio, virtual_clock=virtual,
                         serve_console=serve_console)
    if not virtual:
        return asyncio.run(coro)
    return run_virtual(coro, start=demo_start(settings), real_grace=0.005,
                       speed=settings.demo_speed if serve_console else 0.0)


def demo_start(settings: Settings) -> datetime:
    """10:00 in the contacts' zone (inside calling hours) on the first day after anything an earlier
    run on the same data recorded, so a second run continues the story."""
    from switchboard.demo import demo_day_start
    from switchboard.dialer.lines import parse_timezone

    return demo_day_start(asyncio.run(_last_activity(settings)), parse_timezone(settings.panel_timezone),
                          datetime.now(timezone.utc))


async def _last_activity(settings: Settings) -> datetime | None:
    from switchboard.store import open_store

    store = await open_store(settings)
    try:
        return await store.calls.last_activity(company=settings.company)
    finally:
        await store.close()


async def serve(settings: Settings, console: Console) -> int:
    """Production: the built-in panel over HTTP plus the dialer on the configured backend, until
    interrupted (then a graceful stop: no new calls, calls finish, results flushed)."""
    import signal

    import uvicorn

    from switchboard.panel.server import create_panel_app

    if settings.telephony_backend == "asterisk":
        from switchboard.doctor import check_ari

        ari = await check_ari(settings, timeout=min(settings.ari_timeout, 5.0))
        if not ari.ok:  # one line naming the setting, not a traceback after a long timeout
            console.print(f"[red]{ari.line()}[/red]", highlight=False)
            return 1
    from switchboard.telephony.registry import BackendDeps, BackendStartError, backend_spec

    spec = backend_spec(settings.telephony_backend)
    if spec.configure is not None:
        try:
            settings = spec.configure(settings)
        except BackendStartError as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
    speech = build_speech(settings)
    await speech.warm_up()
    voice = build_voice(settings, speech, early=True)
    await voice.warm_up()
    node = await build_node(settings, speech=speech, voice=voice)
    webrtc = browser_backend(settings, node, speech=speech, voice=voice)
    await seed_static_contacts(node)
    if spec.prepare is not None:
        try:
            await spec.prepare(BackendDeps(settings, speech=speech, voice=voice, scenarios=node.registry))
        except BackendStartError as exc:
            console.print(f"[red]{exc}[/red]")
            await node.close()
            await voice.aclose()
            return 1
    from switchboard.panel.local import LocalPanel
    from switchboard.web.serve import first_login, link_node, login_message, restore_overrides

    brain = node.engine.services.extras.get("brain")
    link = link_node(registry=node.registry, brain=brain, dialer=node.dialer)
    await restore_overrides(node.store, settings, link)
    local = node.panel if isinstance(node.panel, LocalPanel) else LocalPanel(node.store, settings,
                                                                             results=node.dialer.catalog)
    app = create_panel_app(node.store, settings, list_scenarios=node.registry.get_names, node=link,
                           console=settings.console_enabled, llm=brain.llm if brain is not None else None,
                           routers=[brain.router()] if brain is not None else [], local=local)
    if spec.routes is not None:  # e.g. /twilio/*: signed by the carrier, not behind the panel's auth
        app.include_router(spec.routes(node.dialer.backend))
    if webrtc is not None:
        app.include_router(browser_calls_router(settings, webrtc, node))
        app.state.browser_calls = True  # the console's navigation offers /call
    server = uvicorn.Server(uvicorn.Config(app, host=settings.panel_host, port=settings.panel_port,
                                           log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.deliverer.start()
    try:
        await node.dialer.start()
    except Exception as exc:  # e.g. the ARI WebSocket refused after the probe passed
        console.print(f"[red]could not start the dialer on {settings.telephony_backend}: "
                      f"{type(exc).__name__}: {exc}[/red]", highlight=False)
        await node.close()
        await voice.aclose()
        return 1
    if webrtc is not None:
        await start_browser_calls(webrtc, node.dialer)
    tasks = [asyncio.create_task(server.serve()), asyncio.create_task(node.dialer.run())]
    if brain is not None:  # proposals for persona/strategy changes, applied only after approval
        from switchboard.brain.services import apply_approved_versions

        await apply_approved_versions(brain)
        await brain.warm_up(node.registry.all())  # intent encoder loaded, examples embedded
        tasks.append(asyncio.create_task(brain.improvements.run_forever(settings.improvement_interval_hours * 3600)))
    console.print(f"switchboard running: backend={settings.telephony_backend}, "
                  f"panel on http://{settings.panel_host}:{settings.panel_port}")
    console.print(login_message(settings, await first_login(node.store, settings)), highlight=False)
    if webrtc is not None:
        console.print(f"browser calls: http://{settings.panel_host}:{settings.panel_port}/call")
    await stop.wait()
    console.print("stopping: no new calls; waiting for calls in progress ...")
    server.should_exit = True
    if webrtc is not None:
        await webrtc.stop()  # browser calls end with their results before the store closes
    await node.close()
    await voice.aclose()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def call_number(settings: Settings, console: Console, number: str, *, scenario: str | None, persona: str | None,
                name: str | None, fields: dict[str, str], url: str | None) -> int:
    """`switchboard call`: through the running node's API when one answers, else from this process
    (the simulator on the virtual clock, or the configured PBX)."""
    import httpx

    base = (url or f"http://{settings.panel_host}:{settings.panel_port}").rstrip("/")
    token = settings.builtin_panel_token.get_secret_value()
    body = {"phone": number, "scenario": scenario, "persona": persona, "name": name, "fields": fields}
    try:
        resp = httpx.post(f"{base}/api/v1/calls", json={k: v for k, v in body.items() if v not in (None, {})},
                          headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=60)
    except httpx.ConnectError:
        if url:
            console.print(f"[red]no Switchboard answers at {base}[/red]")
            return 1
        console.print(f"no Switchboard running at {base}: calling from this process", highlight=False)
        coro = _call_in_process(settings, console, number, scenario=scenario, persona=persona, name=name,
                                fields=fields)
        return run_virtual(coro, real_grace=0.005) if settings.telephony_backend == "sim" else asyncio.run(coro)
    if resp.status_code == 202:
        data = resp.json()
        console.print(f"call {data['call_id']}: {data['scenario']} to {data['phone']} on line {data['line']} "
                      f"(follow it: switchboard calls --phone {data['phone']})", highlight=False)
        return 0
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = resp.text[:300]
    console.print(f"[red]not called (HTTP {resp.status_code}): {detail}[/red]", highlight=False)
    return 1


async def _call_in_process(settings: Settings, console: Console, number: str, *, scenario: str | None,
                           persona: str | None, name: str | None, fields: dict[str, str]) -> int:
    from switchboard.dialer.loop import CallRefused

    speech = voice = None
    if settings.telephony_backend != "sim":
        speech = build_speech(settings)
        await speech.warm_up()
        voice = build_voice(settings, speech, early=True)
        await voice.warm_up()
    elif not settings.outbound_numbers:
        settings = settings.model_copy(update={"outbound_numbers": DEMO_LINES})
    node = await build_node(settings, speech=speech, virtual_clock=settings.telephony_backend == "sim", voice=voice)
    if settings.telephony_backend == "sim":
        operators = [Operator(o.phone, o.id) for o in DEFAULT_OPERATORS]
        node.engine.services.operators.set_roster(None, "outbound", operators)
    try:
        await node.deliverer.start()
        await node.dialer.start()
        try:
            placed = await node.dialer.call_now(number, scenario=scenario, persona=persona, name=name,
                                                attributes=fields, wait=settings.call_now_wait_seconds)
        except CallRefused as exc:
            console.print(f"[red]not called: {exc.reason}[/red]", highlight=False)
            return 1
        console.print(f"call {placed.call_id}: {placed.scenario} to {placed.phone} on line {placed.line}",
                      highlight=False)
        await node.dialer.wait_calls()
        row = await node.store.calls.get(placed.call_id)
        if row is not None:
            console.print(f"result: {row.result} ({row.reason or node.dialer.catalog.get(row.result).display_name})",
                          highlight=False)
    finally:
        await node.close()
        if voice is not None:
            await voice.aclose()
    return 0


async def import_contacts_file(settings: Settings, path: Path, campaign: str | None, console: Console) -> int:
    from switchboard.contacts_import import ImportFileError, import_contacts, print_report
    from switchboard.store import open_store

    store = await open_store(settings)
    try:
        report = await import_contacts(store, path, settings, progress=True, campaign=campaign, console=console)
    except ImportFileError as exc:
        console.print(f"{path}: {exc}", style="red", markup=False, highlight=False)
        return 1
    finally:
        await store.close()
    print_report(report, console)
    return 0 if report.imported or not report.errors else 1


def run_server_loop(coro):  # type: ignore[no-untyped-def]
    """Run a server coroutine on uvloop when it is installed (a faster event loop: `switchboard
    panel`'s HTTP, and the frames of every streamed call in `switchboard run`), else on asyncio's
    own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def serve_panel(settings: Settings, console: Console) -> int:
    """The built-in panel alone over HTTP, until interrupted."""
    import signal

    import uvicorn

    from switchboard.panel.server import create_panel_app
    from switchboard.store import open_store

    from switchboard.brain.services import apply_approved_versions, build_brain
    from switchboard.engine.results import ResultCatalog
    from switchboard.panel.local import LocalPanel
    from switchboard.web.serve import first_login, link_node, login_message

    store = await open_store(settings)
    registry = ScenarioRegistry(settings.scenarios_dir)
    brain = build_brain(settings)
    await apply_approved_versions(brain)
    catalog = ResultCatalog(registry.all(), default_retry=settings.retry_delay_seconds)
    app = create_panel_app(store, settings, list_scenarios=registry.get_names, console=settings.console_enabled,
                           node=link_node(registry=registry, brain=brain), llm=brain.llm, routers=[brain.router()],
                           local=LocalPanel(store, settings, results=catalog))
    server = uvicorn.Server(uvicorn.Config(app, host=settings.panel_host, port=settings.panel_port,
                                           log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    console.print(f"built-in panel on http://{settings.panel_host}:{settings.panel_port}")
    console.print(login_message(settings, await first_login(store, settings)), highlight=False)
    try:
        await server.serve()
    finally:
        await brain.aclose()
        await store.close()
    return 0
