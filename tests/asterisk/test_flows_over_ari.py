"""The scenarios' flow tests, run over the ARI backend against the Asterisk double.

The real `scenarios/salehi_language.yaml` runs on the real `FlowEngine` (`app.build_engine`) over the
real `AsteriskBackend` (`app.build_backend`), which talks real ARI over HTTP and WebSocket to the
double. Where the customer's words matter they are English sentences synthesized by Piper: the
customer's side of the call says its next reply as soon as Switchboard starts recording it (as a
person answers a question, however long the STT took), the double records it (snoop channel, half
amplitude, 8 kHz), the backend fetches it over ARI and the real `SpeechService` transcribes it with
Whisper base. The scenario is Persian; its fallback tokens also hold the English words, so the only
change is `stt.language: en` (Whisper base on synthesized Persian is not reliable enough to assert
on). Cases where the audio content does not matter use no STT at all.

After every case nothing may be left on the (simulated) Asterisk: no channel, bridge or recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.app import build_backend, build_engine
from switchboard.engine import results
from switchboard.engine.context import CallContext
from switchboard.engine.engine import FlowEngine
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.schema import Scenario
from switchboard.settings import Settings
from switchboard.simulation import outcome_from_dial
from switchboard.telephony.asterisk.backend import AsteriskBackend, OriginateResult
from switchboard.telephony.asterisk.session import AriCall
from switchboard.telephony.call import Audio, DialOutcome
from tests.asterisk.double import AriDouble, Clip, ari_settings, assert_no_leaks, until

ROOT = Path(__file__).resolve().parents[2]
APP = "switchboard"
SCALE = 0.05  # real seconds per virtual second of the double: the 4.24 s greeting takes 0.21 s
CUSTOMER = "09120000001"
LINE = "02150001000"
OUTBOUND_OPERATOR = "1001"
INBOUND_OPERATOR = "1002"

YES = "Yes, sure. I am interested."
NO = "No, thank you."
WHICH_NUMBER = "Where did you get my number?"

CONTEXTS = {
    # answers and stays on the line; `Customer` makes it speak when it is asked something
    "customer-listens": "exten => s,1,Answer()\n same => n,Wait(600)\n same => n,Hangup()",
    # an inbound caller: the app answers, the caller waits on the line until someone hangs up
    "caller-waits": "exten => s,1,Answer()\n same => n,Wait(600)\n same => n,Hangup()",
    # an operator who answers after 1 s and stays on the line
    "operator-talks": "exten => s,1,Ringing()\n same => n,Wait(1)\n same => n,Answer()\n"
                      " same => n,Wait(600)\n same => n,Hangup()",
}


# --- the rig ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def salehi() -> Scenario:
    registry = ScenarioRegistry(ROOT / "scenarios")
    scenario = registry.get("salehi_language")
    assert scenario is not None, registry.last_report.errors
    return scenario


@pytest.fixture(scope="module")
def salehi_en(salehi: Scenario) -> Scenario:
    """The same flow, prompts and tokens; the customer answers in English."""
    stt = salehi.spec.stt.model_copy(update={"language": "en"})
    return dataclasses.replace(salehi, spec=salehi.spec.model_copy(update={"stt": stt}))


@pytest.fixture(scope="module")
def agrad() -> Scenario:
    registry = ScenarioRegistry(ROOT / "scenarios")
    scenario = registry.get("agrad_marketing")
    assert scenario is not None, registry.last_report.errors
    return scenario


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Whisper is assembled here once; the loaded model is shared by every SpeechService."""
    return tmp_path_factory.mktemp("models")


_VOICE: dict[str, Audio] = {}


async def said(text: str) -> Audio:
    """`text` in Piper's English voice (synthesized once per test session)."""
    if text not in _VOICE:
        from switchboard.speech.tts.piper import PiperTTS

        _VOICE[text] = await PiperTTS().synthesize(text, language="en")
    return _VOICE[text]


class Customer:
    """The customer's side of the call: says its next reply 0.3 s after Switchboard starts recording
    it, whatever the time the engine took before asking (STT runs in real time, the double faster)."""

    def __init__(self, ari: AriDouble, replies: list[Audio]) -> None:
        self.sim = ari.sim
        self.replies = list(replies)
        self.spoken = 0
        previous = self.sim.sender

        async def sender(app: str, event: dict[str, Any]) -> None:
            if previous is not None:
                await previous(app, event)
            if event["type"] == "RecordingStarted":
                self._answer(event["recording"]["target_uri"])

        self.sim.sender = sender

    def _answer(self, target_uri: str) -> None:
        kind, _, target_id = target_uri.partition(":")
        if kind != "channel" or not self.replies:
            return
        snoop = self.sim.channels[target_id]
        source = self.sim._source(self.sim.channels[snoop.snoop_target])
        reply = self.replies.pop(0)
        clip = Clip.from_pcm(reply.pcm, reply.sample_rate)
        start = self.sim.now() + 0.3
        source.segments.append((start, start + clip.duration, clip))
        self.spoken += 1


@dataclasses.dataclass
class Rig:
    ari: AriDouble
    settings: Settings
    engine: FlowEngine
    backend: AsteriskBackend
    inbound: list[CallContext]

    @property
    def sim(self) -> Any:
        return self.ari.sim

    def played(self) -> list[str]:
        return [e["playback"]["media_uri"] for e in self.sim.events if e["type"] == "PlaybackStarted"]

    def operator_legs(self) -> list[Any]:
        return [c for c in self.sim.channels.values() if c.vars.get("SWITCHBOARD_ROLE") == "operator"
                or c.dialstring.endswith("@operators")]


@contextlib.asynccontextmanager
async def running(tmp_path: Path, scenario: Scenario, *, models_dir: Path | None = None) -> AsyncIterator[Rig]:
    """The double, plus the engine and backend built the way `app.py` builds them (with the real
    SpeechService when `models_dir` is given); inbound calls run `scenario`'s inbound flow."""
    sounds = tmp_path / "sounds"
    sounds.mkdir(exist_ok=True)
    async with AriDouble(scale=SCALE, sounds_dir=str(sounds)) as ari:
        for name, body in CONTEXTS.items():
            ari.sim.add_context(name, body)
        for prompt, seconds, freq in (("yes", 1.5, 330.0), ("goodby", 1.2, 280.0), ("number", 2.0, 360.0),
                                      ("disclosure", 2.5, 250.0)):
            ari.sim.add_sound(f"custom/{prompt}", Clip.talk(seconds, freq).samples.tobytes(), 8000)
        settings = ari_settings(ari, tmp_path, app=APP, outbound_agents=OUTBOUND_OPERATOR,
                                inbound_agents=INBOUND_OPERATOR, operator_timeout=20,
                                data_dir=str(tmp_path / "data"), tts_cache_dir=str(tmp_path / "tts"),
                                models_dir=str(models_dir or tmp_path / "models"), stt_model="base")
        speech = None
        if models_dir is not None:
            from switchboard.speech.service import SpeechService

            speech = SpeechService.from_settings(settings)
            await speech.warm_up()
        engine = build_engine(settings, speech=speech)
        backend = build_backend(settings, speech=speech)
        assert isinstance(backend, AsteriskBackend)
        rig = Rig(ari, settings, engine, backend, [])

        async def on_inbound(call: AriCall) -> None:  # what the dialer's inbound handler does
            ctx = engine.new_context(call, scenario)
            rig.inbound.append(ctx)
            await engine.run(call, scenario, ctx)

        await backend.start(on_inbound)
        await ari.wait_ws(APP)
        try:
            yield rig
        finally:
            await backend.close()
            if speech is not None:
                close = getattr(speech.stt, "close", None)
                if callable(close):
                    close()


async def call_out(rig: Rig, scenario: Scenario, context: str, number: str = CUSTOMER,
                   contact: dict[str, Any] | None = None) -> tuple[CallContext, OriginateResult]:
    """One outbound attempt the way the dialer makes it; failed originates get their result from
    the dial outcome (`simulation.outcome_from_dial`), answered ones run the flow."""
    rig.sim.route(number, context)
    dialed = await rig.backend.originate(number=number, dial_string=f"PJSIP/{number}@trunk", line_number=LINE,
                                         caller_id=LINE, timeout=30.0,
                                         variables={"SWITCHBOARD_SCENARIO": scenario.name})
    if dialed.call is None:
        ctx = CallContext(call_id="never-answered", scenario=scenario.name, remote_number=number,
                          line_number=LINE)
        result, reason = outcome_from_dial(dialed.outcome)
        ctx.set_result(result, dialed.reason or reason)
        return ctx, dialed
    ctx = rig.engine.new_context(dialed.call, scenario, contact)
    await asyncio.wait_for(rig.engine.run(dialed.call, scenario, ctx), 60)
    return ctx, dialed


# --- no STT: the audio content does not matter ------------------------------------------------------
@pytest.mark.parametrize("context,outcome,result,detail", [
    ("customer-busy", DialOutcome.BUSY, results.MISSED, "busy"),
    ("customer-congestion", DialOutcome.CONGESTION, "failed:congestion", "failed:congestion"),
    ("customer-noanswer", DialOutcome.NO_ANSWER, results.MISSED, "no_answer"),
])
async def test_failed_originates_get_the_dialers_result(tmp_path: Path, salehi: Scenario, context: str,
                                                        outcome: DialOutcome, result: str, detail: str) -> None:
    async with running(tmp_path, salehi) as rig:
        ctx, dialed = await call_out(rig, salehi, context)
        assert (dialed.outcome, dialed.call, dialed.reason) == (outcome, None, detail)
        assert (ctx.result, ctx.reason) == (result, detail)
        assert not rig.played()  # the flow never ran
        await assert_no_leaks(rig.ari)


async def test_caller_hangs_up_mid_greeting(tmp_path: Path, salehi: Scenario) -> None:
    async with running(tmp_path, salehi) as rig:  # no SpeechService: the flow never reaches STT
        ctx, dialed = await call_out(rig, salehi, "customer-hangup")  # hangs up 2 s into the 4.24 s greeting
        assert dialed.outcome is DialOutcome.ANSWERED
        assert ctx.result == results.HANGUP
        assert ctx.steps_visited == ["start", "play_hello"]
        assert rig.played() == ["sound:custom/hello"]
        assert not ctx.transcripts and not ctx.recordings
        await assert_no_leaks(rig.ari)


async def test_inbound_call_goes_to_the_inbound_operator(tmp_path: Path, salehi: Scenario) -> None:
    async with running(tmp_path, salehi) as rig:
        rig.sim.route(INBOUND_OPERATOR, "operator-answer-then-hangup")  # answers after 1 s, leaves 3 s later
        caller = await rig.sim.inbound_call(caller=CUSTOMER, dialled=LINE, context="caller-waits")
        await until(lambda: bool(rig.inbound) and rig.inbound[0].ended_at is not None, 10)
        ctx = rig.inbound[0]
        assert (ctx.direction, ctx.result, ctx.agent) == ("inbound", results.INBOUND_CALL, INBOUND_OPERATOR)
        assert ctx.steps_visited == ["start", "connect_agent", "result_inbound", "stay"]
        op = rig.operator_legs()[0]
        assert op.caller["number"] == CUSTOMER  # the operator sees who is calling
        assert any(e["type"] == "ChannelEnteredBridge" and e["channel"]["id"] == op.id for e in rig.sim.events)
        await until(lambda: caller.destroyed, 5)  # the customer leg is torn down with the call
        await assert_no_leaks(rig.ari)


async def test_inbound_operator_never_answers(tmp_path: Path, salehi: Scenario) -> None:
    async with running(tmp_path, salehi) as rig:
        rig.sim.route(INBOUND_OPERATOR, "operator-noanswer")  # rings past OPERATOR_TIMEOUT (20 s)
        await rig.sim.inbound_call(caller=CUSTOMER, dialled=LINE, context="caller-waits")
        await until(lambda: bool(rig.inbound) and rig.inbound[0].ended_at is not None, 10)
        ctx = rig.inbound[0]
        assert ctx.result == results.DISCONNECTED and ctx.reason == "no inbound operator"
        assert ctx.steps_visited == ["start", "connect_agent", "result_disconnected", "bye"]
        assert rig.played() and set(rig.played()) == {"sound:custom/onhold"}  # hold music while it rang
        assert not rig.engine.services.operators.is_busy(INBOUND_OPERATOR)
        await assert_no_leaks(rig.ari)


async def test_inbound_to_a_number_that_is_not_ours_is_rejected(tmp_path: Path, salehi: Scenario) -> None:
    async with running(tmp_path, salehi) as rig:
        caller = await rig.sim.inbound_call(caller=CUSTOMER, dialled="02199999999", context="caller-waits")
        await until(lambda: caller.destroyed, 5)
        assert not rig.inbound and rig.backend.rejected_inbound == 1
        await assert_no_leaks(rig.ari)


async def test_websocket_dropped_while_talking_to_the_inbound_operator(tmp_path: Path, salehi: Scenario) -> None:
    async with running(tmp_path, salehi) as rig:
        rig.backend.stream.backoff_initial = rig.backend.stream.backoff_max = 0.05
        rig.sim.route(INBOUND_OPERATOR, "operator-talks")
        caller = await rig.sim.inbound_call(caller=CUSTOMER, dialled=LINE, context="caller-waits")
        await until(lambda: bool(rig.inbound) and "stay" in rig.inbound[0].steps_visited, 10)
        rig.ari.refuse_ws = True
        await rig.ari.drop_websockets()
        await asyncio.sleep(0.3)  # 6 s on the double's clock with nobody listening
        rig.ari.refuse_ws = False
        await rig.ari.wait_ws(APP)
        ctx = rig.inbound[0]
        assert ctx.ended_at is None  # both legs are still up: the call goes on
        await rig.sim.far_hangup(caller, 16)  # the caller says goodbye, heard on the new WebSocket
        await until(lambda: ctx.ended_at is not None, 5)
        assert (ctx.result, ctx.agent) == (results.INBOUND_CALL, INBOUND_OPERATOR)
        await assert_no_leaks(rig.ari)


async def test_customer_gone_while_the_websocket_was_down(tmp_path: Path, salehi: Scenario) -> None:
    async with running(tmp_path, salehi) as rig:
        rig.backend.stream.backoff_initial = rig.backend.stream.backoff_max = 0.05
        rig.sim.route(INBOUND_OPERATOR, "operator-talks")
        caller = await rig.sim.inbound_call(caller=CUSTOMER, dialled=LINE, context="caller-waits")
        await until(lambda: bool(rig.inbound) and "stay" in rig.inbound[0].steps_visited, 10)
        rig.ari.refuse_ws = True
        await rig.ari.drop_websockets()
        await rig.sim.far_hangup(caller, 16)  # nobody hears it
        await asyncio.sleep(0.1)
        rig.ari.refuse_ws = False
        ctx = rig.inbound[0]
        await until(lambda: ctx.ended_at is not None, 5)  # reconciled after the reconnect
        assert ctx.result == results.INBOUND_CALL
        await assert_no_leaks(rig.ari)


# --- with STT: the customer's words decide the route -------------------------------------------------
@pytest.mark.models
async def test_yes_goes_to_the_operator(tmp_path: Path, salehi_en: Scenario, models_dir: Path) -> None:
    async with running(tmp_path, salehi_en, models_dir=models_dir) as rig:
        customer = Customer(rig.ari, [await said(YES)])
        rig.sim.route(OUTBOUND_OPERATOR, "operator-answer-then-hangup")
        in_bridge: list[list[str]] = []
        rig.engine.services.step_observer = lambda step: in_bridge.append(
            sorted(next(iter(rig.sim.bridges.values())).channels)) if step == "talk" else None
        ctx, dialed = await call_out(rig, salehi_en, "customer-listens")
        assert customer.spoken == 1
        assert ctx.result == results.CONNECTED_TO_OPERATOR, ctx.transcripts
        assert ctx.intent == "yes" and "yes" in ctx.transcripts[0]["text"].lower()
        assert ctx.steps_visited == ["start", "play_hello", "record_response", "classify", "route", "handle_yes",
                                     "connect_operator", "talk"]
        assert ctx.agent == OUTBOUND_OPERATOR
        op = rig.operator_legs()[0]
        assert op.caller["number"] == CUSTOMER  # the operator sees the customer's number
        assert in_bridge == [sorted([dialed.call.channel_id, op.id])]  # both in the call's bridge
        assert rig.played()[:2] == ["sound:custom/hello", "sound:custom/yes"]
        assert Path(ctx.recordings[0]).exists()
        await assert_no_leaks(rig.ari)


@pytest.mark.models
async def test_no_says_goodby(tmp_path: Path, salehi_en: Scenario, models_dir: Path) -> None:
    async with running(tmp_path, salehi_en, models_dir=models_dir) as rig:
        Customer(rig.ari, [await said(NO)])
        ctx, _ = await call_out(rig, salehi_en, "customer-listens")
        assert ctx.result == results.NOT_INTERESTED, ctx.transcripts
        assert ctx.intent == "no"
        assert ctx.steps_visited[-3:] == ["handle_no", "play_goodby", "end"]
        assert rig.played() == ["sound:custom/hello", "sound:custom/goodby"]
        assert not rig.operator_legs()
        await assert_no_leaks(rig.ari)


@pytest.mark.models
async def test_number_question_then_second_capture(tmp_path: Path, salehi_en: Scenario, models_dir: Path) -> None:
    async with running(tmp_path, salehi_en, models_dir=models_dir) as rig:
        Customer(rig.ari, [await said(WHICH_NUMBER), await said(NO)])
        ctx, _ = await call_out(rig, salehi_en, "customer-listens")
        assert ctx.result == results.NOT_INTERESTED, ctx.transcripts
        assert ctx.steps_visited == ["start", "play_hello", "record_response", "classify", "route", "handle_number",
                                     "record_again", "classify_again", "route_again", "handle_no", "play_goodby",
                                     "end"]
        assert len(ctx.transcripts) == 2 and "number" in ctx.transcripts[0]["text"].lower()
        assert rig.played() == ["sound:custom/hello", "sound:custom/number", "sound:custom/goodby"]
        assert len(ctx.recordings) == 2
        await assert_no_leaks(rig.ari)


@pytest.mark.models
async def test_operator_never_answers(tmp_path: Path, salehi_en: Scenario, models_dir: Path) -> None:
    async with running(tmp_path, salehi_en, models_dir=models_dir) as rig:
        Customer(rig.ari, [await said(YES)])
        rig.sim.route(OUTBOUND_OPERATOR, "operator-noanswer")
        ctx, _ = await call_out(rig, salehi_en, "customer-listens")
        assert (ctx.result, ctx.reason) == (results.CALLBACK_SCHEDULED, "said yes; no operator free"), \
            ctx.transcripts
        assert ctx.steps_visited[-5:] == ["handle_yes", "connect_operator", "operator_unavailable", "play_goodby",
                                          "end"]
        assert rig.played()[-1] == "sound:custom/goodby" and "sound:custom/onhold" in rig.played()
        assert ctx.agent is None and not rig.engine.services.operators.is_busy(OUTBOUND_OPERATOR)
        await assert_no_leaks(rig.ari)


@pytest.mark.models
async def test_websocket_dropped_mid_call_and_restored(tmp_path: Path, salehi_en: Scenario,
                                                       models_dir: Path) -> None:
    async with running(tmp_path, salehi_en, models_dir=models_dir) as rig:
        rig.backend.stream.backoff_initial = rig.backend.stream.backoff_max = 0.05
        Customer(rig.ari, [await said(YES)])
        rig.sim.route(OUTBOUND_OPERATOR, "operator-answer-then-hangup")

        async def blip() -> None:  # lose the WebSocket while the greeting plays; it comes back later
            await until(lambda: any(e["type"] == "PlaybackStarted" for e in rig.sim.events), 10)
            rig.ari.refuse_ws = True
            await rig.ari.drop_websockets()
            await asyncio.sleep(0.4)  # 8 s of the double's clock: PlaybackFinished is lost
            rig.ari.refuse_ws = False

        task = asyncio.create_task(blip())
        ctx, _ = await call_out(rig, salehi_en, "customer-listens")
        await task
        assert ctx.result == results.CONNECTED_TO_OPERATOR, (ctx.transcripts, ctx.steps_visited)
        assert ctx.steps_visited[:3] == ["start", "play_hello", "record_response"]
        assert any(p.startswith("/ari/playbacks/") for m, p, _ in rig.sim.requests if m == "GET")  # settled
        await assert_no_leaks(rig.ari)


# --- agrad_marketing: spoken (TTS) prompts, written where Asterisk reads them --------------------------
@pytest.mark.models
async def test_agrad_yes_goes_to_an_advisor(tmp_path: Path, agrad: Scenario, models_dir: Path) -> None:
    async with running(tmp_path, agrad, models_dir=models_dir) as rig:
        Customer(rig.ari, [await said("Yes, sure, I would like that.")])
        rig.sim.route(OUTBOUND_OPERATOR, "operator-answer-then-hangup")
        ctx, _ = await call_out(rig, agrad, "customer-listens", contact={"name": "Sara"})
        assert ctx.result == results.CONNECTED_TO_OPERATOR, ctx.transcripts
        assert ctx.steps_visited == ["start", "greet", "listen", "classify", "route", "accepted", "transfer", "talk"]
        played = rig.played()
        assert played[0] == "sound:custom/disclosure"  # the disclosure comes first
        spoken = [uri for uri in played if uri.startswith("sound:switchboard/tts-")]
        assert len(spoken) == 2  # greeting (with the name) and "connecting you"
        for uri in spoken:  # synthesized by the configured TTS into AST_SOUND_DIR
            assert (Path(rig.settings.ast_sound_dir) / f"{uri.removeprefix('sound:')}.wav").exists()
        await assert_no_leaks(rig.ari)


@pytest.mark.models
async def test_agrad_stop_calling_opts_out(tmp_path: Path, agrad: Scenario, models_dir: Path) -> None:
    async with running(tmp_path, agrad, models_dir=models_dir) as rig:
        # Two opt-out phrases, so one misheard word (Whisper base once heard "start calling") still opts out.
        Customer(rig.ari, [await said("Please stop calling me and remove me from your list.")])
        dnc: list[str] = []

        async def add_to_dnc(number: str, reason: str) -> None:
            dnc.append(number)

        rig.engine.services.add_to_dnc = add_to_dnc
        ctx, _ = await call_out(rig, agrad, "customer-listens", contact={"name": "Reza"})
        assert (ctx.result, ctx.reason) == (results.NOT_INTERESTED, "asked not to be called"), ctx.transcripts
        assert ctx.intent == "stop" and set(dnc) == {CUSTOMER}
        assert rig.played()[-1] == "sound:custom/goodby"
        await assert_no_leaks(rig.ari)
