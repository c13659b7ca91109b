"""The Twilio control plane against the loopback double: signatures, the stream token, inbound and
outbound calls, status callbacks, answering-machine detection, transfers and hang-ups."""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from switchboard.settings import Settings
from switchboard.telephony.call import CallerHangup, DialOutcome
from switchboard.telephony.twilio import twiml
from switchboard.telephony.twilio.config import TwilioConfig, TwilioConfigError
from tests.twilio.double import Callee, Operator
from tests.twilio.harness import ACCOUNT_SID, NUMBERS, PUBLIC, start_harness
from tests.twilio.wire_leg import wire_leg_factory

CUSTOMER = "+14155550100"
OPERATOR = "+14155550199"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def h():
    harness = await start_harness(wire_leg_factory)
    yield harness
    await harness.close()


def _inbound_params(to: str = NUMBERS[0]) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "1" * 32, "From": CUSTOMER, "To": to,
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}


# --- settings ---------------------------------------------------------------------------------------
def test_missing_settings_are_named() -> None:
    with pytest.raises(TwilioConfigError) as err:
        TwilioConfig.from_settings(Settings(_env_file=None, telephony_backend="twilio", twilio_account_sid="",
                                            twilio_numbers="+15005550006"))
    message = str(err.value)
    assert "TWILIO_ACCOUNT_SID" in message and "TWILIO_AUTH_TOKEN" in message
    assert "TWILIO_PUBLIC_BASE_URL" in message and "TWILIO_NUMBERS" not in message
    with pytest.raises(TwilioConfigError, match="E.164"):
        TwilioConfig.from_settings(Settings(_env_file=None, twilio_account_sid=ACCOUNT_SID, twilio_auth_token="x",
                                            twilio_numbers="02191000001", twilio_public_base_url=PUBLIC))
    with pytest.raises(TwilioConfigError, match="TWILIO_MACHINE_DETECTION"):
        TwilioConfig.from_settings(Settings(_env_file=None, twilio_account_sid=ACCOUNT_SID, twilio_auth_token="x",
                                            twilio_numbers=NUMBERS[0], twilio_public_base_url=PUBLIC,
                                            twilio_machine_detection="yes"))


# --- signatures ---------------------------------------------------------------------------------------
async def test_webhooks_need_a_valid_signature(h, caplog) -> None:
    url = f"{PUBLIC}/twilio/voice"
    params = _inbound_params()
    local = f"http://{h.local}/twilio/voice"
    caplog.set_level(logging.WARNING)
    async with httpx.AsyncClient() as http:
        missing = await http.post(local, data=params)
        forged = await http.post(local, data=params, headers={"X-Twilio-Signature": h.double.sign(url, {
            **params, "From": "+10000000000"})})
        wrong_url = await http.post(local, data=params, headers={
            "X-Twilio-Signature": h.double.sign(local, params)})  # signed for the URL we see, not the public one
        status = await http.post(f"http://{h.local}/twilio/status", data={**params, "CallStatus": "completed"},
                                 headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert [missing.status_code, forged.status_code, wrong_url.status_code, status.status_code] == [403] * 4
    assert "X-Twilio-Signature" in missing.json()["detail"]
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 4 and "no X-Twilio-Signature" in rejected[0] and "invalid" in rejected[1]
    assert h.backend.calls == {}  # nothing was started by a forged request
    # Twilio's own (signed) request passes.
    await h.backend.start(lambda call: call.wait_for_hangup(30))
    call = await h.double.incoming_call(CUSTOMER, NUMBERS[0], url)
    await call.wait_media()
    assert h.double.webhook_log[0] == (url, 200)
    await call.hangup()


async def test_a_signed_but_malformed_webhook_is_a_400(h) -> None:
    url = f"{PUBLIC}/twilio/status"
    params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA1", "CallStatus": "exploded"}
    async with httpx.AsyncClient() as http:
        r = await http.post(f"http://{h.local}/twilio/status", data=params,
                            headers={"X-Twilio-Signature": h.double.sign(url, params)})
    assert r.status_code == 400 and "CallStatus" in r.json()["detail"]


# --- inbound ------------------------------------------------------------------------------------------
async def test_inbound_call_gets_a_stream_with_a_one_time_token(h) -> None:
    calls = []

    async def on_inbound(call) -> None:  # type: ignore[no-untyped-def]
        calls.append(call)
        await call.play("sound:custom/hello")
        await call.wait_for_hangup(30)

    await h.backend.start(on_inbound)
    call = await h.double.incoming_call(CUSTOMER, NUMBERS[0], h.voice_url)
    media = await call.wait_media()
    root = ET.fromstring(call.twiml_log[0])
    stream = root.find("Connect/Stream")
    assert stream is not None and stream.get("url") == f"wss://{PUBLIC[8:]}/twilio/media"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert len(params[twiml.STREAM_TOKEN]) >= 32
    while not media.marks_returned:
        await asyncio.sleep(0.05)
    assert media.agent_audio_seconds() > 0.5  # the prompt's audio was played out to the caller
    (ours,) = calls
    assert ours.direction == "inbound" and ours.remote_number == CUSTOMER and ours.line_number == NUMBERS[0]
    # The token was used up: a second stream with it is refused.
    async with ws_connect(media.url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZx", "callSid": call.sid,
                                                              "accountSid": ACCOUNT_SID,
                                                              "customParameters": media.parameters}}))
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1008
    await call.hangup()
    await call.wait_ended()
    for _ in range(100):
        if ours.hung_up:
            break
        await asyncio.sleep(0.05)
    assert ours.hung_up and ours.hung_up_by == "caller"


async def test_stream_without_a_token_is_refused(h, caplog) -> None:
    caplog.set_level(logging.WARNING)
    async with ws_connect(f"ws://{h.local}/twilio/media") as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZx", "callSid": "CAx",
                                                              "accountSid": ACCOUNT_SID, "customParameters": {}}}))
        await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1008 and h.backend.rejected_streams == 1
    assert any("refused" in r.getMessage() for r in caplog.records)


async def test_inbound_to_a_number_we_do_not_serve_is_rejected(h) -> None:
    async def on_inbound(call) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("must not run")

    await h.backend.start(on_inbound)
    call = await h.double.incoming_call(CUSTOMER, "+15005550999", h.voice_url)
    await call.wait_ended()
    assert ET.fromstring(call.twiml_log[0]).find("Reject") is not None and not call.streams


# --- outbound -----------------------------------------------------------------------------------------
async def test_outbound_call_answered_played_and_hung_up(h) -> None:
    await h.backend.start(None)
    result = await h.backend.originate(number=CUSTOMER, dial_string="PJSIP/ignored", line_number=NUMBERS[1],
                                       caller_id=NUMBERS[1], timeout=20, variables={"SWITCHBOARD_CALL_ID": "out-1"})
    assert result.outcome is DialOutcome.ANSWERED and result.call is not None
    call = result.call
    assert call.call_id == "out-1" and call.remote_number == CUSTOMER and call.line_number == NUMBERS[1]
    _, path, form = h.double.rest_log[0]
    assert path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert form["To"] == [CUSTOMER] and form["From"] == [NUMBERS[1]] and form["Timeout"] == ["20"]
    assert form["Url"][0].startswith(f"{PUBLIC}/twilio/voice?o=")
    assert form["StatusCallback"][0].startswith(f"{PUBLIC}/twilio/status?o=")
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert "MachineDetection" not in form
    await call.play("sound:custom/hello")
    dcall = h.double.calls[call.call_sid]
    assert dcall.media.marks_returned == ["m1"]
    await call.hangup()
    await dcall.wait_ended()
    assert dcall.status == "completed" and call.hung_up
    assert h.double.rest_log[-1][2] == {"Status": ["completed"]}
    with pytest.raises(CallerHangup):
        await call.play("sound:custom/goodby")


@pytest.mark.parametrize("answer,outcome", [("busy", DialOutcome.BUSY), ("no-answer", DialOutcome.NO_ANSWER),
                                            ("failed", DialOutcome.FAILED)])
async def test_outbound_final_statuses_map_to_outcomes(h, answer, outcome) -> None:
    h.double.callees[CUSTOMER] = Callee(answer=answer)
    result = await h.backend.originate(number=CUSTOMER, line_number=NUMBERS[0], timeout=10)
    assert result.outcome is outcome and result.call is None
    assert result.reason.startswith(answer)


async def test_outbound_ring_timeout_is_no_answer(h) -> None:
    h.double.callees[CUSTOMER] = Callee(after=30)
    result = await h.backend.originate(number=CUSTOMER, line_number=NUMBERS[0], timeout=1)
    # Twilio's Timeout is at least 5 s; the double rings past it and reports no-answer.
    assert result.outcome is DialOutcome.NO_ANSWER and h.double.rest_log[0][2]["Timeout"] == ["5"]


async def test_outbound_from_a_line_that_is_not_ours_fails_without_a_request(h) -> None:
    result = await h.backend.originate(number=CUSTOMER, line_number="02191000001", timeout=10)
    assert result.outcome is DialOutcome.FAILED and "TWILIO_NUMBERS" in result.reason
    assert h.double.rest_log == []


async def test_rest_errors_are_failures_with_twilio_s_message(h) -> None:
    h.double.numbers = []  # the double no longer knows our number: error 21210
    result = await h.backend.originate(number=CUSTOMER, line_number=NUMBERS[0], timeout=10)
    assert result.outcome is DialOutcome.FAILED and "21210" in result.reason


async def test_answering_machine_detection_maps_to_a_missed_outcome() -> None:
    h = await start_harness(wire_leg_factory, machine_detection="Enable")
    try:
        h.double.callees[CUSTOMER] = Callee(answer="machine")
        h.double.callees["+14155550101"] = Callee(answer="human")
        machine = await h.backend.originate(number=CUSTOMER, line_number=NUMBERS[0], timeout=10)
        human = await h.backend.originate(number="+14155550101", line_number=NUMBERS[0], timeout=10)
        assert h.double.rest_log[0][2]["MachineDetection"] == ["Enable"]
        assert machine.outcome is DialOutcome.NO_ANSWER and machine.reason == "answered_by:machine_start"
        dcall = next(c for c in h.double.calls.values() if c.to == CUSTOMER)
        await dcall.wait_ended()
        assert ET.fromstring(dcall.twiml_log[0]).find("Hangup") is not None and not dcall.streams
        assert human.outcome is DialOutcome.ANSWERED and human.call.answered_by == "human"  # type: ignore[union-attr]
        await human.call.hangup()  # type: ignore[union-attr]
    finally:
        await h.close()


# --- transfers ----------------------------------------------------------------------------------------
async def _answered_call(h):  # type: ignore[no-untyped-def]
    result = await h.backend.originate(number=CUSTOMER, line_number=NUMBERS[0], timeout=10)
    assert result.outcome is DialOutcome.ANSWERED
    await h.double.calls[result.call.call_sid].wait_media()
    return result.call, h.double.calls[result.call.call_sid]


async def test_transfer_answered_dials_with_the_customer_s_caller_id(h) -> None:
    h.double.operators[OPERATOR] = Operator(after=0.3, talk=0.5)
    call, dcall = await _answered_call(h)
    outcome = await call.transfer(OPERATOR, caller_id=CUSTOMER, timeout=20, hold_prompt="sound:custom/onhold")
    assert outcome.answered and outcome.operator_number == OPERATOR
    assert dcall.streams[0].marks_returned == ["m1"]  # the hold prompt played before the dial
    (update,) = [f for _, p, f in h.double.rest_log if p.endswith(f"/Calls/{call.call_sid}.json")]
    dial = ET.fromstring(update["Twiml"][0]).find("Dial")
    assert dial is not None and dial.get("callerId") == CUSTOMER and dial.get("timeout") == "20"
    assert dial.find("Number").text == OPERATOR  # type: ignore[union-attr]
    assert not call.hung_up  # the stream's end for <Dial> is not a hang-up
    # The operator hangs up after talking: the <Dial> action ends the call.
    assert await call.wait_for_hangup(10)
    await dcall.wait_ended()
    assert ET.fromstring(dcall.twiml_log[-1]).find("Hangup") is not None


async def test_a_stream_stopped_before_twilio_answers_the_redirect_is_not_a_hang_up(h) -> None:
    """Twilio may stop the media stream for `<Dial>` before its answer to our call update arrives."""
    h.double.redirect_before_answer = True
    h.double.operators[OPERATOR] = Operator(after=0.3, talk=0.5)
    call, dcall = await _answered_call(h)
    outcome = await call.transfer(OPERATOR, caller_id=CUSTOMER, timeout=20)
    assert dcall.streams[0].closed.is_set()
    assert outcome.answered and not call.hung_up
    assert await call.wait_for_hangup(10)  # the operator hangs up: the <Dial> action ends the call
    await dcall.wait_ended()


async def test_transfer_nobody_answers_resumes_the_flow_on_a_new_stream(h) -> None:
    h.double.operators[OPERATOR] = Operator(answer="no-answer")
    h.double.operators["+14155550198"] = Operator(answer="busy")
    call, dcall = await _answered_call(h)
    outcome = await call.transfer(OPERATOR, caller_id=CUSTOMER, timeout=5)
    assert not outcome.answered and outcome.reason == "no_answer"
    await call.play("sound:custom/goodby")  # the flow's on_failure goes on, on a second stream
    assert len(dcall.streams) == 2 and dcall.streams[1].marks_returned == ["m1"]
    second = await call.transfer("+14155550198", caller_id=CUSTOMER, timeout=5)
    assert not second.answered and second.reason == "busy"
    await call.play("sound:custom/goodby")
    assert call.streams == 3 and not call.hung_up
    await call.hangup()
    await dcall.wait_ended()


async def test_caller_hangs_up_while_the_operator_rings(h) -> None:
    h.double.operators[OPERATOR] = Operator(after=10)
    call, dcall = await _answered_call(h)
    transfer = asyncio.ensure_future(call.transfer(OPERATOR, caller_id=CUSTOMER, timeout=20))
    while not dcall.dials:
        await asyncio.sleep(0.02)
    await dcall.hangup()
    with pytest.raises(CallerHangup):
        await asyncio.wait_for(transfer, 10)
    assert call.hung_up


async def test_dtmf_reaches_the_call(h) -> None:
    call, dcall = await _answered_call(h)
    pending = asyncio.ensure_future(call.record(max_duration=5, max_silence=1))
    await asyncio.sleep(0.2)
    await dcall.media.press("7")
    recording = await pending
    assert recording.dtmf == "7"
    await call.hangup()


async def test_switchboard_run_names_a_missing_twilio_setting_and_exits(tmp_path) -> None:
    """`TELEPHONY_BACKEND=twilio switchboard run` checks its settings before loading anything."""
    import sys
    from pathlib import Path

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TELEPHONY_BACKEND": "twilio",
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_NUMBERS": ",".join(NUMBERS), "DATA_DIR": str(tmp_path / "data")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "run",
                                                cwd=Path(__file__).resolve().parents[2], env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = " ".join(out.decode().split())
    assert proc.returncode == 1, text
    assert "TWILIO_AUTH_TOKEN" in text and "TWILIO_PUBLIC_BASE_URL" in text and "TWILIO_NUMBERS" not in text
    assert not (tmp_path / "data").exists()  # nothing was built
