"""ARI WebSocket listener and the event router.

The router is a set of plain dicts keyed by channel id, bridge id, playback id and recording name;
dispatch is a few dict lookups with no lock (everything runs on one event loop). Handlers are plain
callables that must not block: they resolve futures or put into queues. Waiters are registered before
the REST request that will cause their event, because Asterisk often sends the event first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import connect

from switchboard.telephony.asterisk.models import (
    Event,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisStart,
    parse_event,
)

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 8 * 1024 * 1024  # ARI events are small; a runaway message must not take the memory

Handler = Callable[[Event], None]


class EventRouter:
    """Routes parsed events to whoever registered interest in the ids they carry."""

    def __init__(self) -> None:
        self._channels: dict[str, list[Handler]] = {}
        self._bridges: dict[str, list[Handler]] = {}
        self._playbacks: dict[str, list[Handler]] = {}
        self._recordings: dict[str, list[Handler]] = {}
        self.on_unclaimed_stasis_start: Callable[[StasisStart], None] | None = None
        self.dispatched = 0

    @staticmethod
    def _add(table: dict[str, list[Handler]], key: str, handler: Handler) -> Callable[[], None]:
        table.setdefault(key, []).append(handler)

        def remove() -> None:
            handlers = table.get(key)
            if handlers and handler in handlers:
                handlers.remove(handler)
                if not handlers:
                    del table[key]
        return remove

    def on_channel(self, channel_id: str, handler: Handler) -> Callable[[], None]:
        return self._add(self._channels, channel_id, handler)

    def on_bridge(self, bridge_id: str, handler: Handler) -> Callable[[], None]:
        return self._add(self._bridges, bridge_id, handler)

    def on_playback(self, playback_id: str, handler: Handler) -> Callable[[], None]:
        return self._add(self._playbacks, playback_id, handler)

    def on_recording(self, name: str, handler: Handler) -> Callable[[], None]:
        return self._add(self._recordings, name, handler)

    def has_channel(self, channel_id: str) -> bool:
        return channel_id in self._channels

    def expect(self, kind: str, key: str, predicate: Callable[[Event], bool]) -> asyncio.Future[Event]:
        """A future resolved by the first matching event for `key`; it unregisters itself when done."""
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        table = {"channel": self._channels, "bridge": self._bridges, "playback": self._playbacks,
                 "recording": self._recordings}[kind]

        def handler(event: Event) -> None:
            if not fut.done() and predicate(event):
                fut.set_result(event)

        remove = self._add(table, key, handler)
        fut.add_done_callback(lambda _f: remove())
        return fut

    def dispatch(self, event: Event) -> None:
        self.dispatched += 1
        seen: set[int] = set()

        def run(handlers: list[Handler] | None) -> None:
            for handler in list(handlers or ()):
                if id(handler) in seen:
                    continue
                seen.add(id(handler))
                try:
                    handler(event)
                except Exception:  # a faulty handler must never stop the event stream
                    log.exception("ARI event handler failed for %s", event.type)

        if isinstance(event, (PlaybackStarted, PlaybackFinished)):
            run(self._playbacks.get(event.playback.id))
        elif isinstance(event, (RecordingStarted, RecordingFinished, RecordingFailed)):
            run(self._recordings.get(event.recording.name))
        bridge_id = event.bridge_id()
        if bridge_id:
            run(self._bridges.get(bridge_id))
        claimed = False
        for channel_id in event.channel_ids():
            handlers = self._channels.get(channel_id)
            claimed = claimed or bool(handlers)
            run(handlers)
        if isinstance(event, StasisStart) and not claimed and self.on_unclaimed_stasis_start:
            self.on_unclaimed_stasis_start(event)


def ws_url_from(base_url: str, ws_url: str = "") -> str:
    if ws_url:
        return ws_url.rstrip("/")
    url = base_url.rstrip("/")
    if url.startswith("https://"):
        url = "wss://" + url[len("https://"):]
    elif url.startswith("http://"):
        url = "ws://" + url[len("http://"):]
    return url + "/events"


class AriEventStream:
    """Keeps one WebSocket to `/events?app=...` open, reconnecting with jittered exponential backoff.

    `on_connect(reconnected)` runs (as a task) after every successful connection so the backend can
    reconcile its sessions with what Asterisk still has.
    """

    def __init__(self, url: str, app: str, username: str, password: str, router: EventRouter, *,
                 on_connect: Callable[[bool], Awaitable[None]] | None = None,
                 backoff_initial: float = 0.1, backoff_max: float = 5.0) -> None:
        self.url = f"{url}?{urlencode({'app': app})}"
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self.router = router
        self.on_connect = on_connect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self.connections = 0
        self.disconnections = 0  # how often an established stream was lost (originations compare it)
        self.last_error = "not connected yet"
        self._task: asyncio.Task[None] | None = None
        self._ws: websockets.asyncio.client.ClientConnection | None = None
        self._closing = False
        self._bg: set[asyncio.Task[None]] = set()

    async def start(self, wait: float | None = 10.0) -> None:
        self._task = asyncio.create_task(self._run(), name="ari-events")
        if wait:
            await asyncio.wait_for(self.connected.wait(), wait)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._bg):
            task.cancel()

    async def _run(self) -> None:
        delay = self.backoff_initial
        while not self._closing:
            try:
                async with connect(self.url, additional_headers=self._headers, open_timeout=10,
                                   ping_interval=20, ping_timeout=20, max_size=MAX_EVENT_BYTES) as ws:
                    self._ws = ws
                    self.connections += 1
                    reconnected = self.connections > 1
                    self.last_error = ""
                    self.connected.set()
                    delay = self.backoff_initial
                    log.info("ARI events connected (%s)", "reconnect" if reconnected else "first")
                    if self.on_connect is not None:
                        task = asyncio.create_task(self.on_connect(reconnected))
                        self._bg.add(task)
                        task.add_done_callback(self._bg.discard)
                    async for message in ws:
                        self._handle(message)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                self.last_error = f"ARI event stream: {type(exc).__name__}: {exc}"[:300]
                log.warning("ARI events connection lost: %s", exc)
            except Exception as exc:  # never let one odd message or library error end the listener
                self.last_error = f"ARI event stream: {type(exc).__name__}: {exc}"[:300]
                log.exception("ARI events listener failed; reconnecting")
            finally:
                if self.connected.is_set():
                    self.disconnections += 1
                    self.last_error = self.last_error or "ARI event stream closed"
                self._ws = None
                self.connected.clear()
            if self._closing:
                return
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.backoff_max)

    def _handle(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            log.warning("ARI sent a non-JSON message: %.200r", message)
            return
        event = parse_event(data)
        if event.type == "ApplicationReplaced":
            log.error("another client registered ARI application %s: events stop here", self.url)
        try:
            self.router.dispatch(event)
        except Exception:  # dispatch isolates handlers; this is the net for the router itself
            log.exception("ARI event %s could not be dispatched", event.type)
