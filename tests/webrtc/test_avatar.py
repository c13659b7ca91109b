"""The Tavus avatar provider against a loopback double of Tavus' REST API: a conversation per call
with the persona's face, a new one when a handoff brings another face, ended when the call ends,
and every failure turned into "audio only" (`AvatarUnavailable`)."""

from __future__ import annotations

import pytest

from switchboard.avatar.base import AvatarUnavailable
from switchboard.avatar.registry import build_avatar
from switchboard.avatar.tavus import TavusAvatar, parse_replicas
from switchboard.settings import Settings
from tests.webrtc.tavus_double import TavusDouble


def provider(double: TavusDouble, **kw: object) -> TavusAvatar:
    args: dict[str, object] = {"api_key": double.api_key, "persona_id": "p-echo", "replica_id": "r-default",
                               "replicas": {"sales": "r-omid"}, "base_url": double.base_url,
                               "daily_js_url": f"{double.base_url}/daily-js"}
    args.update(kw)
    return TavusAvatar(**args)  # type: ignore[arg-type]


async def test_a_call_gets_a_conversation_with_the_personas_face_and_ends_it() -> None:
    async with TavusDouble() as tavus:
        avatar = provider(tavus)
        session = await avatar.start("web-1", "reception")
        conv = tavus.conversations[session.session_id]
        assert conv.replica_id == "r-default" and conv.persona_id == "p-echo"
        assert conv.body["conversation_name"] == "switchboard web-1 reception"
        assert conv.body["properties"]["max_call_duration"] == 1800
        page = session.for_page()
        assert page["conversation_url"] == f"{tavus.base_url}/rooms/{conv.id}"
        assert page["daily_js"].endswith("/daily-js") and page["provider"] == "tavus"
        # A handoff to a persona with its own face: the old conversation ends, a new one starts.
        sales = await avatar.switch(session, "sales")
        assert sales.session_id != session.session_id and sales.call_id == "web-1"
        assert tavus.conversations[session.session_id].status == "ended"
        assert tavus.conversations[sales.session_id].replica_id == "r-omid"
        # Back to a persona with the default face, then the same face again: no churn.
        same = await avatar.switch(await avatar.switch(sales, "complaints"), "reception")
        assert len(tavus.live) == 1 and same.persona == "reception"
        await avatar.end(same)
        assert tavus.live == []
        await avatar.end(same)  # ending twice only logs (Tavus answers 200 again)
        await avatar.aclose()


async def test_failures_leave_the_call_audio_only() -> None:
    async with TavusDouble() as tavus:
        wrong_key = provider(tavus, api_key="nope")
        with pytest.raises(AvatarUnavailable, match="401"):
            await wrong_key.start("web-2", "reception")
        tavus.fail_create = 503
        with pytest.raises(AvatarUnavailable, match="503"):
            await provider(tavus).start("web-2", "reception")
        no_face = provider(tavus, replica_id="", replicas={"sales": "r-omid"})
        tavus.fail_create = None
        with pytest.raises(AvatarUnavailable, match="no Tavus replica"):
            await no_face.start("web-2", "reception")
    unreachable = TavusAvatar(api_key="k", persona_id="p", replica_id="r", base_url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(AvatarUnavailable, match="unreachable"):
        await unreachable.start("web-3", "reception")


def test_configuration_errors_name_the_setting() -> None:
    assert build_avatar(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="AVATAR_PROVIDER='heygen' is unknown"):
        build_avatar(Settings(_env_file=None, avatar_provider="heygen"))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="TAVUS_API_KEY"):
        build_avatar(Settings(_env_file=None, avatar_provider="tavus"))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="TAVUS_PERSONA_ID"):
        build_avatar(Settings(_env_file=None, avatar_provider="tavus", tavus_api_key="k"))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="TAVUS_REPLICAS: 'sales' is not persona=replica_id"):
        parse_replicas("reception=r1,sales")
    ok = build_avatar(Settings(_env_file=None, avatar_provider="tavus", tavus_api_key="k",  # type: ignore[call-arg]
                               tavus_persona_id="p", tavus_replicas="reception=r1, sales=r2"))
    assert isinstance(ok, TavusAvatar) and ok.replica_for("sales") == "r2" and ok.replica_for("other") == ""
