"""PBX faults against the ARI double, through the whole node (dialer, built-in panel, store, outbox,
the real AsteriskBackend over real HTTP and WebSocket):

* no origination while the event WebSocket is down: dialing waits, contacts are not consumed;
* a 503 with an HTML page, or any answer that is not ARI, means "PBX unavailable": no contact is
  consumed, dialing pauses until the PBX is back, the real cause is kept (short) and the panel told;
* a playback that fails because the PBX is going down ends as the hang-up that follows;
* the event stream cut 100 times at random moments across every step type;
* the PBX restarting mid-campaign.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from switchboard.store.models import Alert, CallRecord, Contact
from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.call import CallerHangup, DialOutcome
from tests.asterisk.double import assert_no_leaks, until
from tests.hardening.pbx import APP, allocation_failed, html_503, node_over_ari, seed, silence, start_double

CUSTOMERS = [f"0912000{i:04d}" for i in range(1, 13)]
FINAL_OR_RETRY = {"connected_to_operator", "not_interested", "disconnected", "hangup", "missed", "unknown"}


async def rows(node, model):  # type: ignore[no-untyped-def]
    async with node.store.sessions() as s:
        return list((await s.scalars(select(model))).all())


async def run_until_settled(node, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    await asyncio.wait_for(node.dialer.run(until_idle=True), timeout)
    await node.deliverer.flush(timeout=10)


async def test_no_origination_while_the_event_stream_is_down(tmp_path: Path) -> None:
    ari, faults, stream_up = await start_double(tmp_path)
    try:
        async with node_over_ari(tmp_path, ari) as node:
            for n in CUSTOMERS[:4]:
                ari.sim.route(n, "customer-hangup")
            await seed(node, CUSTOMERS[:4])
            await node.deliverer.start()
            await node.dialer.start()
            ari.refuse_ws = True
            await ari.drop_websockets()
            await until(lambda: not node.dialer.backend.available, 5)
            runner = asyncio.create_task(node.dialer.run(until_idle=True))
            await asyncio.sleep(1.5)  # the dialer leases a batch and waits at the gate
            assert stream_up == []  # nothing reached Asterisk
            state = node.dialer.status()
            assert state["telephony_pause"] and "event stream" in state["telephony_pause"]
            assert all(c.attempts == 0 for c in await rows(node, Contact))
            assert await rows(node, CallRecord) == []
            ari.refuse_ws = False
            await asyncio.wait_for(runner, 60)
            await node.deliverer.flush(timeout=10)
            assert stream_up and all(up for _, up in stream_up)  # our event stream was behind every one
            contacts = await rows(node, Contact)
            assert [c.attempts for c in contacts] == [1, 1, 1, 1]
            assert {c.last_result for c in contacts} == {"hangup"}
            kinds = [a.kind for a in await rows(node, Alert)]
            assert kinds.count("paused") == 1 and kinds.count("resumed") == 1
        await assert_no_leaks(ari)
    finally:
        await ari.stop()


@pytest.mark.parametrize("fault", ["html_503", "allocation_failed_while_restarting", "not_json"])
async def test_pbx_unavailable_consumes_no_contact_and_keeps_the_cause(tmp_path: Path, fault: str) -> None:
    ari, faults, stream_up = await start_double(tmp_path)
    try:
        async with node_over_ari(tmp_path, ari) as node:
            for n in CUSTOMERS[:3]:
                ari.sim.route(n, "customer-hangup")
            await seed(node, CUSTOMERS[:3])
            if fault == "html_503":
                faults.down, faults.only = html_503(), {("POST", "/ari/channels")}
            elif fault == "not_json":
                faults.down = html_503()
                faults.down.status, faults.only = 200, {("POST", "/ari/channels")}
            else:  # Asterisk restarting: originate fails and our application is not registered
                faults.down, faults.only = allocation_failed(), {("POST", "/ari/channels")}
            await node.deliverer.start()
            await node.dialer.start()
            if fault == "allocation_failed_while_restarting":
                faults.only |= {("GET", f"/ari/applications/{APP}")}
                faults.down.status = 500
            runner = asyncio.create_task(node.dialer.run(until_idle=True))
            await until(lambda: faults.answered >= 2, 10)
            await asyncio.sleep(1.0)
            contacts = await rows(node, Contact)
            assert all(c.attempts == 0 and c.last_result is None for c in contacts), \
                [(c.attempts, c.last_result) for c in contacts]
            assert await rows(node, CallRecord) == []  # no result was recorded: nothing was attempted
            cause = node.dialer.status()["telephony_pause"]
            assert cause and len(cause) < 400 and "<" not in cause, cause
            if fault == "html_503":
                assert "503" in cause and "Service Unavailable" in cause
            alerts = await rows(node, Alert)
            assert alerts and alerts[0].kind == "paused" and len(alerts[0].message) < 600
            calls_refused = faults.answered
            await asyncio.sleep(3)
            assert faults.answered - calls_refused <= 4, "a PBX that refuses calls is retried with backoff"
            faults.down = None
            await asyncio.wait_for(runner, 90)
            await node.deliverer.flush(timeout=10)
            contacts = await rows(node, Contact)
            assert [c.attempts for c in contacts] == [1, 1, 1]
            assert {a.kind for a in await rows(node, Alert)} >= {"paused", "resumed"}
        await assert_no_leaks(ari)
    finally:
        await ari.stop()


async def test_a_playback_failed_by_a_pbx_going_down_ends_as_the_hangup(tmp_path: Path) -> None:
    from tests.asterisk.conftest import settings_for

    ari, faults, _ = await start_double(tmp_path)
    try:
        backend = AsteriskBackend.from_settings(settings_for(ari, tmp_path), synthesize=silence)
        await backend.start()
        try:
            for case in ("hangup_follows", "channel_gone"):
                ari.sim.route(CUSTOMERS[0], "customer-idle")
                outcome, call = await backend.originate(CUSTOMERS[0], line="02150001000")
                assert outcome is DialOutcome.ANSWERED and call is not None
                ari.sim.missing_sound_seconds = 30.0
                play = asyncio.create_task(call.play("sound:custom/long"))
                await until(lambda: any(p.state == "playing" for p in ari.sim.playbacks.values()), 5)
                pb = next(p for p in ari.sim.playbacks.values() if p.state == "playing")
                channel = ari.sim.channels[call.channel_id]
                # Asterisk shutting down: the playback fails first, the hang-up follows
                pb.state = "failed"
                await ari.sim.emit(channel.app, "PlaybackFinished", playback=pb.json())
                if case == "hangup_follows":
                    await asyncio.sleep(0.1)
                    await ari.sim.hangup(channel, 16)
                else:  # the hang-up never reaches us: the channel is simply gone
                    sender, ari.sim.sender = ari.sim.sender, None
                    await ari.sim.hangup(channel, 16)
                    ari.sim.sender = sender
                with pytest.raises(CallerHangup):
                    await asyncio.wait_for(play, 5)
                ari.sim.missing_sound_seconds = 1.0
            await assert_no_leaks(ari)
        finally:
            await backend.close()
    finally:
        await ari.stop()


CONTEXTS = ["customer-yes", "customer-hangup", "customer-busy", "customer-noanswer", "customer-dtmf", "customer-idle",
            "customer-silent"]


async def chaos(ari, faults, rnd: random.Random, cuts: int, *, stop: asyncio.Event,  # type: ignore[no-untyped-def]
                restart_every: int = 0) -> int:
    """Cut the event stream `cuts` times at random moments (and every `restart_every`th time,
    restart the PBX: channels gone, 503s and no WebSocket for a while)."""
    done = 0
    while done < cuts and not stop.is_set():
        await asyncio.sleep(rnd.uniform(0.02, 0.25))
        done += 1
        if restart_every and done % restart_every == 0:
            ari.refuse_ws = True
            faults.down = html_503()
            await ari.drop_websockets()
            sender, ari.sim.sender = ari.sim.sender, None  # a dying PBX tells nobody
            for ch in list(ari.sim.live_channels()):
                await ari.sim.hangup(ch, 16)
            for bridge in list(ari.sim.bridges.values()):
                await ari.sim.destroy_bridge(bridge)
            ari.sim.live.clear()
            ari.sim.sender = sender
            await asyncio.sleep(rnd.uniform(0.5, 1.5))
            faults.down = None
            ari.refuse_ws = False
            continue
        ari.refuse_ws = rnd.random() < 0.5
        await ari.drop_websockets()
        if ari.refuse_ws:
            await asyncio.sleep(rnd.uniform(0.0, 0.2))
            ari.refuse_ws = False
    return done


@pytest.mark.parametrize("restart_every", [0, 25], ids=["stream_cut_100_times", "pbx_restarts_mid_campaign"])
async def test_event_stream_cut_100_times_across_every_step(tmp_path: Path, restart_every: int) -> None:
    rnd = random.Random(20261129 + restart_every)
    ari, faults, stream_up = await start_double(tmp_path, scale=0.02)
    numbers = [f"0912100{i:04d}" for i in range(14)]
    try:
        async with node_over_ari(tmp_path, ari, max_attempts=5) as node:
            for i, n in enumerate(numbers):
                ari.sim.route(n, CONTEXTS[i % len(CONTEXTS)])
            await seed(node, numbers)
            await node.deliverer.start()
            await node.dialer.start()
            stop = asyncio.Event()
            chaos_task = asyncio.create_task(chaos(ari, faults, rnd, 100, stop=stop, restart_every=restart_every))
            runner = asyncio.create_task(node.dialer.run(until_idle=True))
            try:
                cuts = await asyncio.wait_for(asyncio.shield(chaos_task), 120)
            except TimeoutError:
                chaos_task.print_stack()
                raise
            assert cuts == 100
            await asyncio.wait_for(runner, 180)
            await node.deliverer.flush(timeout=10)

            calls = await rows(node, CallRecord)
            # Dialing waits for the stream; a cut that has not reached us yet can still race one
            # origination out — that one must not count as the contact's attempt.
            charged = {c.id for c in calls}
            blind = [cid for cid, up in stream_up if not up]
            assert not charged & set(blind), "an origination without our event stream was charged"
            assert len(blind) <= 10, f"{len(blind)} originations while the stream was down"
            contacts = await rows(node, Contact)
            results = Counter((c.result or "").split(":", 1)[0] for c in calls)
            assert all(c.result for c in calls), "a call ended without a result"
            assert not any(c.result.startswith("failed:internal_error") for c in calls), results
            assert not any(c.result.startswith("failed:playback") for c in calls), results
            assert all(len(c.reason or "") < 400 for c in calls)
            assert {c.status for c in contacts} <= {"done", "dnc"}, Counter(c.status for c in contacts)
            # a contact is charged only for calls that reached Asterisk
            per_contact = Counter(c.phone_e164 for c in calls)
            for contact in contacts:
                assert contact.attempts == per_contact[contact.phone_e164], contact.phone_e164
            # an origination whose ringing was cut off by the stream going down is not charged either
            assert len(calls) <= len(stream_up)
            assert set(results) <= FINAL_OR_RETRY | {"failed"}, results
            print(f"{cuts} cuts, {len(stream_up)} originations, {len(calls)} charged calls: {dict(results)}; "
                  f"reconnects {node.dialer.backend.stream.connections - 1}")
        await assert_no_leaks(ari, timeout=10)
    finally:
        await ari.stop()
