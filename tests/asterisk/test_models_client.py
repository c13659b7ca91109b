"""Event models against every captured event, and the REST client's typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switchboard.telephony.asterisk.client import AriClient, AriError, AriUnavailable
from switchboard.telephony.asterisk.events import EventRouter, ws_url_from
from switchboard.telephony.asterisk.models import (
    EVENT_MODELS,
    ChannelDestroyed,
    Dial,
    GenericEvent,
    PlaybackFinished,
    RecordingFailed,
    StasisStart,
    parse_event,
)
from tests.asterisk.conftest import APP
from tests.asterisk.double import AriDouble

TRACES = Path(__file__).resolve().parent / "data" / "traces"


def captured_events() -> list[dict[str, object]]:
    out = []
    for path in sorted(TRACES.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["kind"] == "ws_event":
                out.append(record["event"])
    return out


def test_every_captured_event_parses_into_its_model() -> None:
    events = captured_events()
    assert len(events) > 200
    for raw in events:
        event = parse_event(raw)
        if raw["type"] in EVENT_MODELS:
            assert type(event).__name__ == raw["type"], raw["type"]
        else:
            assert isinstance(event, GenericEvent) and event.raw == raw
    failed = next(parse_event(e) for e in events if e["type"] == "RecordingFailed")
    assert isinstance(failed, RecordingFailed) and failed.recording.cause == "Cannot record channel while in bridge"
    destroyed = [parse_event(e) for e in events if e["type"] == "ChannelDestroyed"]
    assert {(d.cause, d.cause_txt) for d in destroyed if isinstance(d, ChannelDestroyed)} >= {
        (17, "User busy"), (34, "Circuit/channel congestion"), (19, "User alerting, no answer"), (0, "Unknown")}
    start = next(parse_event(e) for e in events if e["type"] == "StasisStart" and e["args"])
    assert isinstance(start, StasisStart) and start.args == ["outbound", "campaign-42"]


def test_unknown_and_malformed_events_never_crash() -> None:
    assert isinstance(parse_event({"type": "BrandNewEvent", "x": 1}), GenericEvent)
    bad = parse_event({"type": "PlaybackFinished", "playback": "not an object"})
    assert isinstance(bad, GenericEvent) and bad.type == "PlaybackFinished"
    assert isinstance(parse_event(["not", "a", "dict"]), GenericEvent)
    extra = parse_event({"type": "PlaybackFinished", "playback": {"id": "p", "state": "done", "new": 1}})
    assert isinstance(extra, PlaybackFinished) and extra.playback.id == "p"


def test_router_routes_by_id_and_claims_stasis_start() -> None:
    router = EventRouter()
    seen: list[str] = []
    unclaimed: list[str] = []
    router.on_unclaimed_stasis_start = lambda e: unclaimed.append(e.channel.id)
    remove = router.on_channel("c1", lambda e: seen.append(f"c1:{e.type}"))
    router.on_playback("p1", lambda e: seen.append(f"p1:{e.type}"))
    chan = {"id": "c1", "name": "x", "state": "Up"}
    router.dispatch(parse_event({"type": "StasisStart", "args": [], "channel": chan}))
    router.dispatch(parse_event({"type": "StasisStart", "args": [], "channel": {**chan, "id": "c2"}}))
    router.dispatch(parse_event({"type": "PlaybackFinished", "playback": {"id": "p1", "state": "done"}}))
    router.dispatch(parse_event({"type": "Dial", "dialstatus": "BUSY", "peer": chan}))
    remove()
    router.dispatch(parse_event({"type": "StasisEnd", "channel": chan}))
    assert seen == ["c1:StasisStart", "p1:PlaybackFinished", "c1:Dial"]
    assert unclaimed == ["c2"]
    assert isinstance(parse_event({"type": "Dial", "dialstatus": "", "peer": chan}), Dial)


def test_ws_url_is_derived_from_the_base_url() -> None:
    assert ws_url_from("http://pbx:8088/ari") == "ws://pbx:8088/ari/events"
    assert ws_url_from("https://pbx/ari/") == "wss://pbx/ari/events"
    assert ws_url_from("http://x/ari", "ws://y/ari/events") == "ws://y/ari/events"


async def test_client_errors_are_typed_with_status_and_body(ari: AriDouble) -> None:
    client = AriClient(ari.base_url, ari.username, ari.password, app=APP)
    try:
        with pytest.raises(AriError) as err:
            await client.originate("Bogus/123", channel_id="x1")
        assert (err.value.status, err.value.body) == (500, {"error": "Allocation failed"})
        assert err.value.message == "Allocation failed"
        with pytest.raises(AriError) as err:
            await client.answer("does-not-exist")
        assert err.value.not_found and err.value.body == {"message": "Channel not found"}
        with pytest.raises(AriError) as err:
            await client.stored_recording_file("nope")
        assert (err.value.status, err.value.message) == (404, "Recording not found")
        assert await client.list_channels() == [] and await client.list_bridges() == []
        assert (await client.asterisk_info())["system"]["version"] == "22.10.1"
        bad = AriClient(ari.base_url, ari.username, "wrong", app=APP)
        with pytest.raises(AriError) as err:
            await bad.list_channels()
        assert err.value.status == 401
        await bad.aclose()
    finally:
        await client.aclose()
    gone = AriClient("http://127.0.0.1:9/ari", "u", "p", app=APP, timeout=1)
    with pytest.raises(AriUnavailable):
        await gone.list_channels()
    await gone.aclose()


async def test_record_if_exists_fail_gives_409(ari: AriDouble) -> None:
    await ari.wait_ws(APP) if ari.ws_connected(APP) else None
    ari.sim.stored["taken"] = ("wav", b"RIFF")
    client = AriClient(ari.base_url, ari.username, ari.password, app=APP)
    try:
        snoopless = await ari.sim.inbound_call(caller="1", dialled="2", context="customer-idle", app=APP)
        with pytest.raises(AriError) as err:
            await client.record(snoopless.id, "taken", if_exists="fail")
        assert err.value.status == 409
        assert err.value.message == "Recording 'taken' already exists and can not be overwritten"
        await client.hangup(snoopless.id)
    finally:
        await client.aclose()


def test_models_declare_every_property_of_the_swagger_specs() -> None:
    from switchboard.telephony.asterisk import models

    specs: dict[str, dict[str, object]] = {}
    for path in (TRACES.parent / "specs").glob("*.json"):
        specs.update(json.loads(path.read_text()).get("models", {}))
    checked = 0
    for name, spec in specs.items():
        cls = getattr(models, name, None)
        if not (isinstance(cls, type) and issubclass(cls, models._Model)):
            continue
        props = set(spec.get("properties", {}))  # type: ignore[union-attr]
        if spec.get("extends") == "Event" or name in EVENT_MODELS:
            props |= {"type", "application", "timestamp", "asterisk_id"}
        missing = props - set(cls.model_fields)
        assert not missing, f"{name} lacks {sorted(missing)}"
        checked += 1
    assert checked >= 25
