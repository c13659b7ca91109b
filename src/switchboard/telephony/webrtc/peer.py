"""One browser's peer connection: SDP offer/answer, the audio port, the page's data channel.

The page offers (audio send/receive plus a data channel named `switchboard`); we answer with all
our ICE candidates already in the SDP (aiortc gathers before it answers), so there is no trickle
and no second round trip. Candidates are the host's own addresses, plus STUN/TURN ones when
`WEBRTC_ICE_SERVERS` names servers (needed only across NAT).

From the data channel the page may send `{"type": "hangup"}` and `{"type": "dtmf", "digit": "5"}`;
anything else is ignored (and a frame larger than 1 KiB is dropped unread). The connection ends
the call when ICE/DTLS fail or close, when the caller's audio stops (see `WebRTCPort`) or when the
page says hang up; `close()` releases everything the connection holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel

from switchboard.telephony.webrtc.feed import CallFeed
from switchboard.telephony.webrtc.jitter import release_packets_at_once
from switchboard.telephony.webrtc.port import WebRTCPort

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024
MAX_SDP = 64 * 1024


class OfferError(ValueError):
    """The browser's offer cannot make a call (malformed SDP, no audio); the message says why."""


@dataclass(frozen=True, slots=True)
class IceConfig:
    urls: tuple[str, ...] = ()
    username: str = ""
    credential: str = ""

    def rtc(self) -> RTCConfiguration:
        servers = []
        stun = [u for u in self.urls if u.startswith("stun:")]
        turn = [u for u in self.urls if u.startswith(("turn:", "turns:"))]
        if stun:
            servers.append(RTCIceServer(urls=stun))
        if turn:
            servers.append(RTCIceServer(urls=turn, username=self.username or None,
                                        credential=self.credential or None))
        return RTCConfiguration(iceServers=servers)

    def for_page(self) -> list[dict[str, object]]:
        """What the page's RTCPeerConnection needs (TURN credentials included: it relays through
        the same servers)."""
        out: list[dict[str, object]] = []
        stun = [u for u in self.urls if u.startswith("stun:")]
        turn = [u for u in self.urls if u.startswith(("turn:", "turns:"))]
        if stun:
            out.append({"urls": stun})
        if turn:
            out.append({"urls": turn, "username": self.username, "credential": self.credential})
        return out

    @classmethod
    def parse(cls, urls: str, username: str = "", credential: str = "") -> IceConfig:
        items = tuple(u.strip() for u in urls.split(",") if u.strip())
        bad = [u for u in items if not u.startswith(("stun:", "turn:", "turns:"))]
        if bad:
            raise ValueError(f"WEBRTC_ICE_SERVERS: {bad[0]!r} is not a stun:, turn: or turns: URL")
        return cls(items, username, credential)


class BrowserPeer:
    def __init__(self, port: WebRTCPort, feed: CallFeed, ice: IceConfig | None = None) -> None:
        self.port = port
        self.feed = feed
        self.pc = RTCPeerConnection((ice or IceConfig()).rtc())
        self.connected = asyncio.Event()
        self.channel: RTCDataChannel | None = None
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    async def answer(self, sdp: str, kind: str = "offer") -> RTCSessionDescription:
        """Our answer to the page's offer (its ICE candidates included)."""
        if kind != "offer":
            raise OfferError(f"expected an SDP offer, got {kind!r}")
        if not sdp or len(sdp) > MAX_SDP:
            raise OfferError(f"the SDP offer must be 1..{MAX_SDP} characters")
        if "m=audio" not in sdp:
            raise OfferError("the SDP offer has no audio (m=audio) section: the page must send its microphone")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise OfferError(f"the SDP offer could not be parsed: {exc}") from exc
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise OfferError("the SDP offer has no usable audio section")
        audio[0].sender.replaceTrack(self.port.track)
        release_packets_at_once(audio[0].receiver)  # the caller's audio without aiortc's 80 ms prefetch
        audio[0].direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    # --- events ----------------------------------------------------------------------------------
    def _on_track(self, track) -> None:  # type: ignore[no-untyped-def]
        if track.kind == "audio":
            self.port.receive(track)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self.channel is not None:
            return
        self.channel = channel
        channel.on("open", self.feed.flush)
        channel.on("message", self._on_message)
        self.feed.attach(channel)

    def _on_message(self, message: object) -> None:
        if not isinstance(message, str) or len(message) > MAX_MESSAGE:
            return
        try:
            data = json.loads(message)
        except json.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        if data.get("type") == "hangup":
            self.port.hangup("caller_hangup")
        elif data.get("type") == "dtmf" and isinstance(data.get("digit"), str):
            self.port.dtmf(data["digit"])

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("webrtc: connection %s", state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.port.hangup("connection_lost" if state == "failed" or not self._closed else "normal")

    # --- the end -----------------------------------------------------------------------------------
    def say_goodbye(self, result: dict[str, object] | None = None) -> None:
        """Tell the page the call is over (before the connection closes under it)."""
        self.feed.publish({"type": "hangup", **(result or {})})

    async def close(self) -> None:
        """Close the connection and everything it holds; safe to call many times and concurrently."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._closed = True
        await self.port.close()
        with contextlib.suppress(Exception):
            await self.pc.close()

    @property
    def closed(self) -> bool:
        return self._closed and self.pc.connectionState == "closed"
