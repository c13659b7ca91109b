"""Typed ARI resources and events, following Asterisk 22's Swagger specs (`shared/ari/specs`).

Only the fields the backend reads are strict; every model keeps unknown fields (`extra="allow"`) so a
newer Asterisk never breaks parsing. `parse_event` never raises: an unknown or malformed event becomes
a `GenericEvent` that still carries its raw payload.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- resources ------------------------------------------------------------------------------------


class CallerID(_Model):
    name: str = ""
    number: str = ""


class DialplanCEP(_Model):
    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(_Model):
    id: str
    name: str = ""
    state: str = ""
    protocol_id: str = ""
    caller: CallerID = Field(default_factory=CallerID)
    connected: CallerID = Field(default_factory=CallerID)
    accountcode: str = ""
    dialplan: DialplanCEP = Field(default_factory=DialplanCEP)
    creationtime: str = ""
    language: str = ""
    channelvars: dict[str, Any] | None = None
    caller_rdnis: str | None = None
    tenantid: str | None = None

    @property
    def is_local_far_half(self) -> bool:
        return self.name.startswith("Local/") and self.name.endswith(";2")


class Bridge(_Model):
    id: str
    technology: str = ""
    bridge_type: str = ""
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: list[str] = Field(default_factory=list)
    video_mode: str | None = None
    video_source_id: str | None = None
    creationtime: str = ""
    bridgevars: dict[str, Any] | None = None


class Playback(_Model):
    id: str
    media_uri: str = ""
    next_media_uri: str | None = None
    target_uri: str = ""
    language: str | None = None
    state: str = ""  # queued | playing | continuing | done | failed | canceled


class LiveRecording(_Model):
    name: str
    format: str = ""
    target_uri: str = ""
    state: str = ""  # queued | recording | paused | done | failed | canceled
    duration: int | None = None
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None


class StoredRecording(_Model):
    name: str
    format: str = ""


class Variable(_Model):
    value: str = ""


# --- events ---------------------------------------------------------------------------------------


class Event(_Model):
    """Base of every WebSocket message (`Message` + `Event` in events.json)."""

    type: str
    application: str = ""
    timestamp: str = ""
    asterisk_id: str | None = None

    def channel_ids(self) -> list[str]:
        return []

    def bridge_id(self) -> str | None:
        return None


class GenericEvent(Event):
    """Any event this backend does not model (or could not parse); `raw` keeps the payload."""

    raw: dict[str, Any] = Field(default_factory=dict)


class _ChannelEvent(Event):
    channel: Channel

    def channel_ids(self) -> list[str]:
        return [self.channel.id]


class StasisStart(_ChannelEvent):
    args: list[str] = Field(default_factory=list)
    replace_channel: Channel | None = None


class StasisEnd(_ChannelEvent):
    pass


class ChannelCreated(_ChannelEvent):
    pass


class ChannelStateChange(_ChannelEvent):
    pass


class ChannelDestroyed(_ChannelEvent):
    cause: int = 0
    cause_txt: str = ""
    tech_cause: int | None = None


class ChannelHangupRequest(_ChannelEvent):
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool | None = None


class ChannelDtmfReceived(_ChannelEvent):
    digit: str
    duration_ms: int = 0


class ChannelDialplan(_ChannelEvent):
    dialplan_app: str = ""
    dialplan_app_data: str = ""


class ChannelCallerId(_ChannelEvent):
    caller_presentation: int = 0
    caller_presentation_txt: str = ""


class ChannelConnectedLine(_ChannelEvent):
    pass


class ChannelVarset(Event):
    variable: str
    value: str = ""
    channel: Channel | None = None

    def channel_ids(self) -> list[str]:
        return [self.channel.id] if self.channel else []


class Dial(Event):
    caller: Channel | None = None
    peer: Channel
    forward: str | None = None
    forwarded: Channel | None = None
    dialstring: str | None = None
    dialstatus: str = ""

    def channel_ids(self) -> list[str]:
        ids = [self.peer.id]
        if self.caller is not None:
            ids.append(self.caller.id)
        return ids


class _BridgeEvent(Event):
    bridge: Bridge

    def bridge_id(self) -> str | None:
        return self.bridge.id


class BridgeCreated(_BridgeEvent):
    pass


class BridgeDestroyed(_BridgeEvent):
    pass


class ChannelEnteredBridge(_BridgeEvent):
    channel: Channel | None = None

    def channel_ids(self) -> list[str]:
        return [self.channel.id] if self.channel else []


class ChannelLeftBridge(_BridgeEvent):
    channel: Channel

    def channel_ids(self) -> list[str]:
        return [self.channel.id]


class _PlaybackEvent(Event):
    playback: Playback


class PlaybackStarted(_PlaybackEvent):
    pass


class PlaybackContinuing(_PlaybackEvent):
    pass


class PlaybackFinished(_PlaybackEvent):
    pass


class _RecordingEvent(Event):
    recording: LiveRecording


class RecordingStarted(_RecordingEvent):
    pass


class RecordingFinished(_RecordingEvent):
    pass


class RecordingFailed(_RecordingEvent):
    pass


EVENT_MODELS: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StasisStart, StasisEnd, ChannelCreated, ChannelStateChange, ChannelDestroyed,
        ChannelHangupRequest, ChannelDtmfReceived, ChannelDialplan, ChannelCallerId,
        ChannelConnectedLine, ChannelVarset, Dial, BridgeCreated, BridgeDestroyed,
        ChannelEnteredBridge, ChannelLeftBridge, PlaybackStarted, PlaybackContinuing,
        PlaybackFinished, RecordingStarted, RecordingFinished, RecordingFailed,
    )
}


def parse_event(data: Any) -> Event:
    """Parse one WebSocket message; never raises."""
    if not isinstance(data, dict):
        return GenericEvent(type="Invalid", raw={"value": data})
    kind = str(data.get("type", "Unknown"))
    model = EVENT_MODELS.get(kind)
    if model is not None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            log.warning("ARI event %s did not match its model: %s", kind, exc.errors()[:3])
    return GenericEvent(type=kind, application=str(data.get("application", "")),
                        timestamp=str(data.get("timestamp", "")), raw=data)


# Q.850 causes the backend distinguishes (ChannelDestroyed.cause).
CAUSE_NORMAL = 16
CAUSE_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_REJECTED = 21
CAUSE_CONGESTION = 34
CAUSES_UNREACHABLE = {1, 2, 3, 27, 28, 38}
