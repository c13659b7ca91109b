"""AriCall / AsteriskBackend against the ARI double: the Call API over real HTTP + WebSocket."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.asterisk.session import AriCall
from switchboard.telephony.call import Audio, Call, CallerHangup, DialOutcome
from tests.asterisk.conftest import APP, settings_for
from tests.asterisk.double import AriDouble, assert_no_leaks, until

CUSTOMER = "09120000001"
LINE = "02150001000"

# Far sides with generous margins so request latency never races the scripted timeline.
CONTEXTS = {
    "says-yes": "exten => s,1,Answer()\n same => n,Wait(6)\n same => n,Playback(custom/reply)\n"
                " same => n,Wait(60)\n same => n,Hangup()",
    "talks-now": "exten => s,1,Answer()\n same => n,Wait(1)\n same => n,Playback(custom/reply)\n"
                 " same => n,Wait(600)\n same => n,Hangup()",
    "hangs-up-at-3": "exten => s,1,Answer()\n same => n,Wait(3)\n same => n,Hangup(16)",
    "dtmf-later": "exten => s,1,Answer()\n same => n,Wait(6)\n same => n,SendDTMF(1#,250)\n"
                  " same => n,Wait(600)\n same => n,Hangup()",
}


async def assert_clean(ari: AriDouble) -> None:
    await assert_no_leaks(ari)


@pytest.fixture(autouse=True)
def contexts(ari: AriDouble) -> None:
    for name, body in CONTEXTS.items():
        ari.sim.add_context(name, body)


async def dial(backend: AsteriskBackend, ari: AriDouble, context: str, number: str = CUSTOMER) -> AriCall:
    ari.sim.route(number, context)
    outcome, call = await backend.originate(number, line=LINE)
    assert outcome is DialOutcome.ANSWERED and call is not None
    return call


def peak(audio: Audio) -> int:
    return int(np.max(np.abs(np.frombuffer(audio.pcm, dtype="<i2")))) if audio.pcm else 0


async def test_outbound_call_plays_records_and_leaves_nothing(backend: AsteriskBackend, ari: AriDouble,
                                                             tmp_path: Path) -> None:
    call = await dial(backend, ari, "says-yes")
    assert isinstance(call, Call)
    assert call.direction == "outbound" and call.remote_number == CUSTOMER and call.line_number == LINE
    far = ari.sim.channels[call.channel_id]
    assert far.caller["number"] == LINE and far.vars["SWITCHBOARD_CALL_ID"] == call.call_id
    assert ari.sim.bridges[call.bridge_id].channels == [call.channel_id]  # bridge-centric from the start

    result = await call.play("sound:custom/hello")
    assert result.completed
    recording = await call.record(max_duration=10, max_silence=3)
    assert recording.audio is not None and 2.0 < recording.audio.duration < 6.0
    # ARI halves the amplitude; the backend normalises back to speech level
    original = Path(recording.path or "")
    with wave.open(str(original)) as w:
        raw_peak = int(np.max(np.abs(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"))))
    assert raw_peak < 0.6 * 32767 and peak(recording.audio) > 0.85 * 32767
    assert (original.parent / original.name.replace(".wav", ".normalised.wav")).exists()
    assert original.is_relative_to(tmp_path / "recordings")
    assert not ari.sim.stored  # deleted on Asterisk after fetching
    assert not any(c.kind == "snoop" for c in ari.sim.live_channels())

    await call.hangup()
    assert call.hung_up
    with pytest.raises(CallerHangup):
        await call.play("sound:custom/hello")
    await assert_clean(ari)


async def test_bridge_record_mode_records_the_bridge(ari: AriDouble, tmp_path: Path) -> None:
    backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path, ari_record_mode="bridge"))
    await backend.start()
    try:
        call = await dial(backend, ari, "talks-now")
        recording = await call.record(max_duration=8, max_silence=2)
        assert recording.audio is not None and recording.audio.duration > 2.0
        assert peak(recording.audio) > 0.85 * 32767
        assert any(path == f"/ari/bridges/{call.bridge_id}/record" for _, path, _ in ari.sim.requests)
        await call.hangup()
        await assert_clean(ari)
    finally:
        await backend.close()


async def test_caller_hangs_up_mid_playback(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "hangs-up-at-3")
    with pytest.raises(CallerHangup):
        await call.play("sound:custom/hello")  # 4.24 s, the caller leaves at 3 s
    assert call.hung_up
    assert await call.wait_for_hangup(timeout=1)
    with pytest.raises(CallerHangup):
        await call.record(max_duration=5, max_silence=2)
    await assert_clean(ari)


async def test_caller_hangs_up_mid_recording(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "hangs-up-at-3")
    with pytest.raises(CallerHangup):
        await call.record(max_duration=20, max_silence=0)
    await assert_clean(ari)


@pytest.mark.parametrize("context,outcome,detail", [
    ("customer-busy", DialOutcome.BUSY, "busy"),
    ("customer-congestion", DialOutcome.CONGESTION, "failed:congestion"),
    ("customer-noanswer", DialOutcome.NO_ANSWER, "no_answer"),
])
async def test_failed_originates(backend: AsteriskBackend, ari: AriDouble, context: str,
                                 outcome: DialOutcome, detail: str) -> None:
    ari.sim.route(CUSTOMER, context)
    result = await backend.originate(CUSTOMER, line=LINE, timeout=5)
    got_outcome, call = result
    assert (got_outcome, call, result.detail) == (outcome, None, detail)
    assert not backend.sessions
    await assert_clean(ari)


async def test_failed_originate_on_local_channels_uses_far_half_cause(backend: AsteriskBackend,
                                                                      ari: AriDouble) -> None:
    # Local channels: the ;1 half reports cause 0, the ;2 half the real cause (README fact 5)
    result = await backend.originate("Local/s@customer-busy", line=LINE)
    assert (result.outcome, result.detail, result.cause) == (DialOutcome.BUSY, "busy", 17)
    result = await backend.originate("Local/s@customer-congestion", line=LINE)
    assert (result.outcome, result.cause) == (DialOutcome.CONGESTION, 34)
    await assert_clean(ari)


async def test_bad_endpoint_is_a_failed_originate(backend: AsteriskBackend, ari: AriDouble) -> None:
    result = await backend.originate("Bogus/123", line=LINE)
    assert (result.outcome, result.call, result.detail) == (DialOutcome.FAILED, None, "failed:Allocation failed")
    await assert_clean(ari)


async def test_watchdog_ends_an_originate_that_never_reports(ari: AriDouble, tmp_path: Path) -> None:
    backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path, origination_timeout=600))
    backend.config.watchdog_grace = 0.3
    backend.stream.backoff_initial = backend.stream.backoff_max = 0.05
    await backend.start()
    try:
        ari.sim.route(CUSTOMER, "operator-noanswer")  # rings for 600 s
        task = asyncio.create_task(backend.originate(CUSTOMER, line=LINE, timeout=1))
        result = await asyncio.wait_for(task, 5)
        # timeout=1 (virtual) is enforced by Asterisk: no answer
        assert result.outcome is DialOutcome.NO_ANSWER
        # now lose every event while the stream stays up: the watchdog must end the attempt and
        # hang the channel up (with the stream down nothing is originated at all: tests/hardening)
        sender = ari.sim.sender
        ari.sim.sender = None  # the double emits nothing
        ari.sim.enforce_ring_timeout = False  # it keeps ringing, and we hear nothing about it
        result = await asyncio.wait_for(backend.originate(CUSTOMER, line=LINE, timeout=1), 5)
        assert (result.outcome, result.detail) == (DialOutcome.FAILED, "failed:watchdog")
        ari.sim.sender = sender
        await assert_clean(ari)  # the watchdog hung the ringing channel up
    finally:
        await backend.close()


async def test_transfer_answered_then_operator_hangs_up(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "customer-idle")
    ari.sim.route("1001", "operator-answer-then-hangup")
    result = await call.transfer("1001", caller_id="", timeout=10, hold_prompt="sound:custom/onhold")
    assert result.answered and result.operator_number == "1001"
    op = next(c for c in ari.sim.live_channels() if c.dialstring == "1001@operators")
    assert op.caller["number"] == CUSTOMER  # the operator sees the customer's number
    assert sorted(ari.sim.bridges[call.bridge_id].channels) == sorted([call.channel_id, op.id])
    assert any(p.endswith("/play") for _, p, _ in ari.sim.requests)  # the hold prompt played while ringing
    assert not ari.sim.playbacks  # and stopped once answered
    # the operator hangs up after 3 s: the whole call is torn down
    assert await call.wait_for_hangup(timeout=5)
    assert call.hangup_signal.cause == "operator_hangup"
    await assert_clean(ari)


async def test_transfer_operator_never_answers(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "customer-idle")
    ari.sim.route("1002", "operator-noanswer")
    result = await call.transfer("1002", caller_id="5550000", timeout=3, hold_prompt="sound:custom/onhold")
    assert (result.answered, result.reason) == (False, "no_answer")
    assert not call.hung_up
    assert (await call.play("sound:custom/reply")).completed  # the flow goes on (on_failure)
    assert [c.id for c in ari.sim.live_channels()] == [call.channel_id]
    await call.hangup()
    await assert_clean(ari)


async def test_transfer_operator_busy(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "customer-idle")
    ari.sim.route("1003", "operator-busy")
    result = await call.transfer("1003", caller_id="", timeout=10)
    assert (result.answered, result.reason) == (False, "busy")
    await call.hangup()
    await assert_clean(ari)


async def test_customer_hangs_up_while_operator_rings(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "hangs-up-at-3")
    ari.sim.route("1004", "operator-noanswer")
    with pytest.raises(CallerHangup):
        await call.transfer("1004", caller_id="", timeout=30, hold_prompt="sound:custom/onhold")
    await assert_clean(ari)


async def test_dtmf_terminates_recording_and_reaches_events(backend: AsteriskBackend, ari: AriDouble) -> None:
    call = await dial(backend, ari, "dtmf-later")
    events: list[str] = []

    async def collect() -> None:
        async for event in call.events():
            events.append(event.kind if event.kind != "dtmf" else f"dtmf:{event.data['digit']}")

    collector = asyncio.create_task(collect())
    recording = await call.record(max_duration=30, max_silence=0, terminate_on="#")
    assert recording.dtmf == "1#"
    assert recording.audio is not None and recording.audio.duration < 12  # ended on '#', not at 30 s
    await call.hangup()
    await asyncio.wait_for(collector, 2)
    assert events[:2] == ["dtmf:1", "dtmf:#"] and events[-1] == "hangup"
    await assert_clean(ari)


async def test_interruptible_playback_stops_on_dtmf(backend: AsteriskBackend, ari: AriDouble) -> None:
    ari.sim.add_context("presses-5", "exten => s,1,Answer()\n same => n,Wait(3)\n same => n,SendDTMF(5,100)\n"
                                     " same => n,Wait(600)")
    call = await dial(backend, ari, "presses-5")
    ari.sim.add_sound("custom/long", b"\x00\x10" * 8000 * 30, 8000)
    result = await call.play("sound:custom/long", interruptible=True)
    assert (result.completed, result.interrupted_by) == (False, "dtmf:5")
    await until(lambda: not ari.sim.playbacks)
    await call.hangup()
    await assert_clean(ari)


async def test_speak_writes_a_wav_asterisk_can_play(ari: AriDouble, tmp_path: Path) -> None:
    calls: list[str] = []

    async def synthesize(text: str, language: str | None, voice: str | None) -> Audio:
        calls.append(text)
        t = np.arange(int(16000 * 1.5)) / 16000
        return Audio((np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes(), 16000)

    backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path), synthesize=synthesize)
    await backend.start()
    try:
        call = await dial(backend, ari, "customer-idle")
        assert (await call.speak("hello there", language="en")).completed
        assert (await call.speak("hello there", language="en")).completed
        assert calls == ["hello there"]  # the second time comes from the file already written
        files = list((Path(ari.sim.sounds_dir or "") / "switchboard").glob("tts-*.wav"))
        assert len(files) == 1
        with wave.open(str(files[0])) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            assert abs(w.getnframes() / 8000 - 1.5) < 0.05
        played = [e for e in ari.sim.events if e["type"] == "PlaybackFinished"]
        assert played[-1]["playback"]["state"] == "done"
        assert played[-1]["playback"]["media_uri"].startswith("sound:switchboard/tts-")
        await call.hangup()
        await assert_clean(ari)
    finally:
        await backend.close()


async def test_websocket_dropped_mid_call_and_restored(backend: AsteriskBackend, ari: AriDouble) -> None:
    backend.stream.backoff_initial = backend.stream.backoff_max = 0.05
    call = await dial(backend, ari, "customer-idle")
    await ari.drop_websockets()
    await until(lambda: backend.stream.connections >= 2 and ari.ws_connected(APP))
    assert not call.hung_up  # the customer is still there: the call continues
    assert (await call.play("sound:custom/reply")).completed
    await call.hangup()
    await assert_clean(ari)


async def test_caller_leaves_while_websocket_is_down(backend: AsteriskBackend, ari: AriDouble) -> None:
    backend.stream.backoff_initial = backend.stream.backoff_max = 0.05
    call = await dial(backend, ari, "hangs-up-at-3")
    ari.refuse_ws = True
    await ari.drop_websockets()
    play = asyncio.create_task(call.play("sound:custom/hello"))
    await asyncio.sleep(0.5)  # 10 virtual seconds: the caller has gone, no event could tell us
    assert not call.hung_up
    ari.refuse_ws = False
    with pytest.raises(CallerHangup):
        await asyncio.wait_for(play, 5)  # reconciliation (GET /channels) ends the call
    assert call.hung_up
    await asyncio.wait_for(call.ended.wait(), 2)
    assert call.call_id not in backend.sessions
    await assert_clean(ari)


async def test_playback_finished_lost_during_gap_is_settled_on_reconnect(backend: AsteriskBackend,
                                                                         ari: AriDouble) -> None:
    backend.stream.backoff_initial = backend.stream.backoff_max = 0.05
    call = await dial(backend, ari, "customer-idle")
    ari.refuse_ws = True
    await ari.drop_websockets()
    play = asyncio.create_task(call.play("sound:custom/reply"))  # 2.7 s, finishes while we are deaf
    await asyncio.sleep(0.2)
    ari.refuse_ws = False
    result = await asyncio.wait_for(play, 5)
    assert result.completed and not call.hung_up
    await call.hangup()
    await assert_clean(ari)


async def test_inbound_call_is_accepted_and_driven(ari: AriDouble, tmp_path: Path) -> None:
    got: asyncio.Queue[AriCall] = asyncio.Queue()

    async def on_inbound(call: AriCall) -> None:
        await call.answer()
        await call.play("sound:custom/hello")
        recording = await call.record(max_duration=10, max_silence=3)
        assert recording.audio is not None and recording.audio.duration > 2
        await call.hangup()
        await got.put(call)

    backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path), on_inbound=on_inbound)
    await backend.start()
    try:
        await ari.wait_ws(APP)
        await ari.sim.inbound_call(caller=CUSTOMER, dialled=LINE,
                                   context="says-yes", app=APP)
        call = await asyncio.wait_for(got.get(), 10)
        assert (call.direction, call.remote_number, call.line_number) == ("inbound", CUSTOMER, LINE)
        await assert_clean(ari)
        # a number that is not one of our lines is rejected
        await ari.sim.inbound_call(caller=CUSTOMER, dialled="09999999999", context="customer-idle", app=APP)
        await until(lambda: backend.rejected_inbound == 1)
        await assert_clean(ari)
    finally:
        await backend.close()


async def test_caller_id_falls_back_to_operator_caller_id(ari: AriDouble, tmp_path: Path) -> None:
    backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path, operator_caller_id="5559999"))
    await backend.start()
    try:
        ari.sim.route("anonymous", "customer-idle")
        _, call = await backend.originate("anonymous", line=LINE, remote_number="")
        assert call is not None
        ari.sim.route("1005", "operator-answer")
        result = await call.transfer("1005", caller_id="", timeout=10)
        assert result.answered
        op = next(c for c in ari.sim.live_channels() if c.dialstring == "1005@operators")
        assert op.caller["number"] == "5559999"
        await call.hangup()
        await assert_clean(ari)
    finally:
        await backend.close()


async def test_backend_speaks_the_telephony_backend_protocol(ari: AriDouble, tmp_path: Path) -> None:
    from switchboard.telephony.backend import DialResult

    inbound: asyncio.Queue[Call] = asyncio.Queue()

    async def on_inbound(call: Call) -> None:
        await inbound.put(call)
        await call.hangup()

    backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path))
    assert backend.name == "asterisk"
    await backend.start(on_inbound)
    try:
        await ari.wait_ws(APP)
        ari.sim.route("10000912", "customer-busy")
        result = await backend.originate(number="0912", dial_string="PJSIP/10000912@trunk",
                                         line_number=LINE, caller_id="5551000", timeout=5)
        assert isinstance(result, DialResult)
        assert (result.outcome, result.call, result.reason) == (DialOutcome.BUSY, None, "busy")
        ari.sim.route("10000913", "customer-idle")
        result = await backend.originate(number="0913", dial_string="PJSIP/10000913@trunk",
                                         line_number=LINE, caller_id="5551000", timeout=5,
                                         variables={"CAMPAIGN": "c1"})
        assert result.outcome is DialOutcome.ANSWERED and isinstance(result.call, AriCall)
        assert (result.call.remote_number, result.call.line_number) == ("0913", LINE)
        far = ari.sim.channels[result.call.channel_id]
        assert far.caller["number"] == "5551000" and far.vars["CAMPAIGN"] == "c1"
        await result.call.hangup()
        await ari.sim.inbound_call(caller=CUSTOMER, dialled="02150002000", context="customer-idle", app=APP)
        call = await asyncio.wait_for(inbound.get(), 5)
        assert call.direction == "inbound"
        await assert_clean(ari)
    finally:
        await backend.stop()


async def test_concurrent_calls_stay_apart(tmp_path: Path) -> None:
    # 20 calls at once: every HTTP request of client and double shares this one process, so run
    # the double's clock slower (1 virtual s = 0.2 s) to keep request latency small next to it.
    async with AriDouble(scale=0.2) as ari:
        ari.sim.add_context("says-yes-late", "exten => s,1,Answer()\n same => n,Wait(9)\n"
                                             " same => n,Playback(custom/reply)\n same => n,Wait(60)")
        backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path))
        await backend.start()
        try:
            async def one(i: int) -> tuple[str, float]:
                call = await dial(backend, ari, "says-yes-late", number=f"0912{i:07d}")
                await call.play("sound:custom/hello")
                recording = await call.record(max_duration=15, max_silence=5)
                await call.hangup()
                assert recording.audio is not None and recording.path
                return recording.path, recording.audio.duration

            results = await asyncio.gather(*(one(i) for i in range(20)))
            assert len({path for path, _ in results}) == 20
            assert all(2.0 < duration < 9.0 for _, duration in results), [d for _, d in results]
            await assert_clean(ari)
        finally:
            await backend.close()


async def test_originate_during_websocket_gap_is_refused_and_a_gap_while_ringing_is_settled(
        backend: AsteriskBackend, ari: AriDouble) -> None:
    from switchboard.telephony.faults import BackendUnavailable

    backend.stream.backoff_initial = backend.stream.backoff_max = 0.05
    ari.refuse_ws = True
    await ari.drop_websockets()
    await until(lambda: not backend.available, 5)
    ari.sim.route(CUSTOMER, "customer-yes")
    # With no application connected, Asterisk would answer the customer and drop the call
    # ("Stasis app not active"): nothing is originated while the event stream is down.
    with pytest.raises(BackendUnavailable):
        await backend.originate(CUSTOMER, line=LINE)
    assert not ari.sim.channels
    ari.refuse_ws = False
    await asyncio.wait_for(backend.wait_available(), 5)
    # The stream breaks while a call rings: Asterisk drops it; reconnecting settles the attempt as
    # "PBX unavailable" (not the 45 s watchdog, and not a result that would use up the contact).
    ari.sim.add_context("rings-then-answers", "exten => s,1,Ringing()\n same => n,Wait(20)\n"
                                              " same => n,Answer()\n same => n,Wait(600)\n same => n,Hangup()")
    ari.sim.route(CUSTOMER, "rings-then-answers")
    attempt = asyncio.create_task(backend.originate(CUSTOMER, line=LINE))
    await until(lambda: bool(backend._originating), 5)
    ari.refuse_ws = True
    await ari.drop_websockets()
    await until(lambda: ari.sim.channels.get(next(iter(backend._originating), ""), None) is not None
                and ari.sim.channels[next(iter(backend._originating))].destroyed, 5)
    ari.refuse_ws = False
    with pytest.raises(BackendUnavailable):
        await asyncio.wait_for(attempt, 5)
    await assert_clean(ari)
