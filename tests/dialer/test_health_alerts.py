from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.dialer.alerts import KavenegarSMS, SMSAlerter, SMSError, sms_alerter_from_settings
from switchboard.dialer.health import DialerHealth, HealthAlert
from switchboard.settings import Settings

from .fake_kavenegar import FakeKavenegar

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ADMINS = ["09121111111", "09122222222"]


async def test_kavenegar_send_speaks_the_documented_api() -> None:
    server = await FakeKavenegar().start()
    sms = KavenegarSMS(server.api_key, sender="10004346", base_url=server.base_url)
    try:
        receipts = await sms.send(ADMINS, "سلام: dialer paused")
    finally:
        await sms.aclose()
        await server.stop()
    assert [r.receptor for r in receipts] == ADMINS
    assert all(r.message_id and r.status == 1 for r in receipts)
    (request,) = server.requests
    assert request.method == "POST" and request.path == "/v1/TEST-KEY-123/sms/send.json"
    assert request.form == {
        "receptor": "09121111111,09122222222",
        "message": "سلام: dialer paused",
        "sender": "10004346",
    }


async def test_kavenegar_errors_become_sms_errors() -> None:
    server = await FakeKavenegar(failure=(418, "credit is not enough")).start()
    sms = KavenegarSMS(server.api_key, base_url=server.base_url)
    wrong_key = KavenegarSMS("WRONG", base_url=server.base_url)
    gone_url = server.base_url
    try:
        with pytest.raises(SMSError) as no_credit:
            await sms.send(["0912"], "x")
        with pytest.raises(SMSError) as bad_key:
            await wrong_key.send(["0912"], "x")
        assert "sender" not in server.requests[0].form  # optional: the account's default line
        alerter = SMSAlerter(sms, ADMINS)
        assert await alerter.alert("paused") is False  # logged, never raised
    finally:
        await sms.aclose()
        await wrong_key.aclose()
        await server.stop()
    assert no_credit.value.status == 418 and "credit" in no_credit.value.message
    assert bad_key.value.status == 401
    unreachable = KavenegarSMS("k", base_url=gone_url)
    with pytest.raises(SMSError) as down:
        await unreachable.send(["0912"], "x")
    await unreachable.aclose()
    assert down.value.status == 0


def test_settings_enable_sms_only_with_key_and_admins() -> None:
    assert sms_alerter_from_settings(Settings(sms_api_key=SecretStr(""), sms_admins="0912")) is None
    assert sms_alerter_from_settings(Settings(sms_api_key=SecretStr("k"), sms_admins="")) is None
    alerter = sms_alerter_from_settings(
        Settings(
            sms_api_key=SecretStr("k"), sms_admins="0912, 0935", sms_provider_url="http://127.0.0.1:9/v1"
        )
    )
    assert alerter is not None and alerter.admins == ["0912", "0935"]
    assert isinstance(alerter.provider, KavenegarSMS) and alerter.provider.base_url == "http://127.0.0.1:9/v1"


def test_threshold_pauses_dialing_alerts_panel_and_texts_admins() -> None:
    async def main() -> tuple[list[HealthAlert], FakeKavenegar, list[str]]:
        server = await FakeKavenegar().start()
        panel: list[HealthAlert] = []

        async def notify(alert: HealthAlert) -> None:
            panel.append(alert)

        sms = KavenegarSMS(server.api_key, base_url=server.base_url)
        health = DialerHealth(3, notify=notify, sms=SMSAlerter(sms, ADMINS), company="acme")
        log: list[str] = []

        async def dialer() -> None:
            for i in range(6):
                await health.wait_running()
                log.append(f"dial {i} at {clock.monotonic():.0f}")
                await asyncio.sleep(10)

        task = asyncio.ensure_future(dialer())
        await health.record_failure("stt", "balance is zero")
        await health.record_failure("stt", "balance is zero")
        await health.record_success("stt")  # a success resets the run
        await health.record_failure("stt", "balance is zero")
        await health.record_failure("llm", "quota")  # another kind does not add to stt's run
        await health.record_failure("stt", "balance is zero")
        assert not health.paused
        await asyncio.sleep(15)
        await health.record_failure("stt", "balance is zero")  # third in a row -> pause
        assert health.paused and health.cause == "stt"
        await health.record_failure("stt", "balance is zero")  # no second alert while paused
        await asyncio.sleep(100)
        assert len(log) == 2  # dialing stopped at the gate
        await health.resume(by="admin")
        await task
        await sms.aclose()
        await server.stop()
        return panel, server, log

    panel, server, log = run_virtual(main(), start=START)
    assert [a.state for a in panel] == ["paused", "resumed"]
    assert panel[0].kind == "stt" and panel[0].failures == 3 and panel[0].reason == "balance is zero"
    assert panel[1].reason == "admin"
    (sent,) = server.requests  # one SMS, to both admins, on pause only
    assert sent.form["receptor"] == ",".join(ADMINS)
    assert sent.form["message"].startswith("[acme] Switchboard dialer PAUSED: 3 consecutive stt failures")
    assert log[2] == "dial 2 at 115"  # resumed right when the admin resumed


def test_cause_clearing_resumes_and_probe_resumes() -> None:
    async def main() -> list[str]:
        events: list[str] = []

        async def notify(alert: HealthAlert) -> None:
            events.append(f"{alert.state}:{alert.reason}@{clock.monotonic():.0f}")

        health = DialerHealth(2, notify=notify)
        for _ in range(2):
            await health.record_failure("trunk", "503 from provider")
        assert health.paused
        await health.record_success("llm")  # not the failing kind
        assert health.paused
        await health.record_success("trunk")  # e.g. an inbound call got through
        assert not health.paused

        answers = iter([False, False, True])

        async def probe(kind: str) -> bool:
            return next(answers)

        probed = DialerHealth(1, notify=notify, probe=probe, probe_interval=60)
        await probed.record_failure("llm", "quota exceeded")
        assert probed.paused
        await asyncio.wait_for(probed.wait_running(), timeout=1000)
        await probed.aclose()
        await health.aclose()
        return events

    assert run_virtual(main(), start=START) == [
        "paused:503 from provider@0",
        "resumed:trunk recovered@0",
        "paused:quota exceeded@0",
        "resumed:probe: llm healthy@180",
    ]


def test_alert_delivery_failures_do_not_stop_the_pause() -> None:
    async def main() -> tuple[bool, int]:
        server = await FakeKavenegar(failure=(418, "credit is not enough")).start()

        async def broken_panel(alert: HealthAlert) -> None:
            raise ConnectionError("panel down")

        sms = KavenegarSMS(server.api_key, base_url=server.base_url)
        health = DialerHealth(1, notify=broken_panel, sms=SMSAlerter(sms, ADMINS))
        await health.record_failure("stt", "balance")
        paused = health.paused
        await sms.aclose()
        await server.stop()
        return paused, len(server.requests)

    assert run_virtual(main(), start=START) == (True, 1)


def test_threshold_zero_disables_pausing() -> None:
    async def main() -> bool:
        health = DialerHealth(0)
        for _ in range(50):
            await health.record_failure("stt", "x")
        return health.paused

    assert run_virtual(main()) is False
