"""Consecutive trunk failures pause the real dialer, tell the built-in panel (alerts table), send
an SMS through the Kavenegar provider to a fake Kavenegar server on loopback, and dialing resumes
when `health.resume()` is called."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from switchboard import clock
from switchboard.clock import run_virtual
from switchboard.phones import normalize
from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

from tests.dialer.fake_kavenegar import FakeKavenegar
from tests.e2e.harness import all_calls, dialed, e2e_settings, iran_phones, line, running_node, seed


def test_trunk_failures_pause_alert_and_resume(tmp_path) -> None:  # type: ignore[no-untyped-def]
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    phones = iran_phones(6)
    failing = {normalize(p, "IR").e164: kind for p, kind in zip(phones, ["congestion", "failed", "congestion"])}

    def script(number: str, variables: dict[str, str]) -> CallerScript:
        if number in failing:
            return CallerScript(phone=number, answer=failing[number])  # type: ignore[arg-type]
        return CallerScript(phone=number, answer=AnswerAfter(after_seconds=2), replies=[Reply(say="no thanks")])

    async def campaign() -> None:
        sms = await FakeKavenegar().start()
        settings = e2e_settings(tmp_path, fail_alert_threshold=3, max_attempts=1, sms_admins="09120000001,09120000002",
                                sms_api_key=sms.api_key, sms_provider_url=sms.base_url, sms_sender="10004346")
        try:
            # One line, one call at a time: the three failing contacts (leased first) fail in a row.
            async with running_node(settings, script=script, lines=[line("02191000001", 1, 60, 1000)]) as h:
                await seed(h.store, settings, phones)
                run = asyncio.create_task(h.dialer.run(until_idle=True))
                while not h.dialer.health.paused:
                    assert not run.done()
                    await asyncio.sleep(1)
                paused_at = clock.now()
                await asyncio.sleep(3600)  # an hour of pause: nothing is dialed
                during = dialed(await all_calls(h.store))
                assert len(during) == 3 and all(c.originated_at <= paused_at for c in during)
                assert not run.done()
                await h.dialer.health.resume()
                await run
                calls = dialed(await all_calls(h.store))
                alerts = await _alerts(h.store)
        finally:
            await sms.stop()
        # The panel was told both ways; the admins got one SMS, through Kavenegar's real API shape.
        assert [a.kind for a in alerts] == ["paused", "resumed"]
        assert "3 consecutive trunk failures" in alerts[0].message
        assert alerts[0].details["failures"] == 3
        assert len(sms.requests) == 1
        form = sms.requests[0].form
        assert form["receptor"] == "09120000001,09120000002" and form["sender"] == "10004346"
        assert "PAUSED" in form["message"]
        # The three failures were recorded as trunk failures; the rest was dialed after the resume.
        results = [c.result for c in calls]
        assert results[:3] == ["failed:congestion", "failed:failed", "failed:congestion"]
        assert results[3:] == ["not_interested"] * 3
        assert all((c.originated_at - paused_at).total_seconds() >= 3600 for c in calls[3:])

    run_virtual(campaign(), start=start, real_grace=0.005)


async def _alerts(store):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from switchboard.store.models import Alert

    async with store.sessions() as s:
        return list((await s.scalars(select(Alert).order_by(Alert.id))).all())
