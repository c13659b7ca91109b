"""Avatar providers by name (`AVATAR_PROVIDER`), built from `Settings`; empty means none."""

from __future__ import annotations

from collections.abc import Callable

from switchboard.avatar.base import AvatarProvider
from switchboard.settings import Settings


def _tavus(s: Settings) -> AvatarProvider:
    from switchboard.avatar.tavus import TavusAvatar, parse_replicas

    return TavusAvatar(api_key=s.tavus_api_key.get_secret_value(), persona_id=s.tavus_persona_id,
                       replica_id=s.tavus_replica_id, replicas=parse_replicas(s.tavus_replicas),
                       base_url=s.tavus_base_url, daily_js_url=s.tavus_daily_js_url,
                       max_call_seconds=int(s.webrtc_max_call_seconds))


AVATAR_PROVIDERS: dict[str, Callable[[Settings], AvatarProvider]] = {"tavus": _tavus}


def build_avatar(settings: Settings) -> AvatarProvider | None:
    """The configured provider, or None; an unknown name or a missing key is an error at start."""
    name = settings.avatar_provider.strip().lower()
    if not name or name == "none":
        return None
    if name not in AVATAR_PROVIDERS:
        raise ValueError(f"AVATAR_PROVIDER={settings.avatar_provider!r} is unknown (choose: "
                         f"{', '.join(sorted(AVATAR_PROVIDERS))}, or leave it empty)")
    return AVATAR_PROVIDERS[name](settings)
