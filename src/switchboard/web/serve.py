"""Serving the console beside a running node.

Production (`switchboard run` on a PBX, `switchboard panel`) serves on the node's own event loop.
The demo runs its campaign on the simulator's virtual clock, where time jumps whenever every task
waits, which no HTTP server survives (keep-alive and SSE timers would fire at once); there the
console gets a thread of its own with a real-time loop and its own database connection, reads the
live board through its lock, and changes node objects through `NodeLink.call`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from switchboard import clock
from switchboard.observability.live import LiveBoard, dialer_probe
from switchboard.settings import Settings
from switchboard.web.node import NodeLink

if TYPE_CHECKING:
    from switchboard.store import Store

log = logging.getLogger(__name__)


def public_url(settings: Settings) -> str:
    if settings.console_public_url:
        return settings.console_public_url.rstrip("/")
    host = settings.panel_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{settings.panel_port}"


def link_node(*, registry: Any, brain: Any, dialer: Any = None) -> NodeLink:
    """A `NodeLink` for objects living on the running loop; with a dialer, its live board is fed."""
    live = LiveBoard()
    link = NodeLink(registry=registry, brain=brain, live=live, dialer=dialer)
    link.bind()
    if dialer is not None:
        dialer.live = live
        live.attach(dialer_probe(dialer, now=clock.now))
    return link


async def first_login(store: "Store", settings: Settings) -> str | None:
    """On a first start (no console user yet) create the admin and return a one-time login URL."""
    from switchboard.panel.auth_accounts import AccountService
    from switchboard.store.accounts import AccountsRepo

    boot = await AccountService(AccountsRepo(store.sessions, store.dialect), settings).bootstrap()
    return f"{public_url(settings)}{boot.login_path}" if boot is not None else None


async def restore_overrides(store: "Store", settings: Settings, link: NodeLink) -> None:
    """Settings changed in the console that outlive a restart: the SMS alert recipients."""
    from switchboard.web.pages.admin import SMS_KEY

    saved = await store.kv.get(SMS_KEY.format(company=settings.company))
    alerter = getattr(getattr(link.dialer, "health", None), "sms", None)
    if saved is not None and alerter is not None:
        async def apply() -> None:
            alerter.admins = list(saved)

        await link.call(apply)


def login_message(settings: Settings, login: str | None) -> str:
    base = f"console: {public_url(settings)}"
    if login:
        return f"{base}\n  first sign-in (one-time link, valid {settings.login_link_hours:g} h): {login}"
    return f"{base} (sign in with your console user; `switchboard users link NAME` makes a one-time link)"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now, so a port in use is reported here rather than inside the server thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ConsoleThread:
    """The panel app (API + console) on a real-time loop in a daemon thread, with its own store."""

    def __init__(self, settings: Settings, link: NodeLink, *, list_scenarios: Callable[[], Any],
                 routers: Callable[[], list[Any]] | None = None) -> None:
        self.settings = settings
        self.link = link
        self.list_scenarios = list_scenarios
        self.routers = routers
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.login_url: str | None = None  # the first start's one-time login link

    def start(self, timeout: float = 60.0) -> None:
        sock = bind_socket(self.settings.panel_host, self.settings.panel_port)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="switchboard-console", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the console did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the console failed to start: {self._error}") from self._error

    def _run(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # noqa: BLE001 - reported to the starter or logged
            if not self._started.is_set():
                self._error = exc
                self._started.set()
            else:
                log.exception("the console server stopped with an error")

    async def _serve(self, sock: socket.socket) -> None:
        import uvicorn

        from switchboard.brain.llm import LLMClient
        from switchboard.panel.server import create_panel_app
        from switchboard.store import open_store

        self._loop = asyncio.get_running_loop()
        store = await open_store(self.settings)
        llm = LLMClient.from_settings(self.settings)
        try:
            self.login_url = await first_login(store, self.settings)  # on this thread's real clock
            await restore_overrides(store, self.settings, self.link)
            app = create_panel_app(store, self.settings, list_scenarios=self.list_scenarios, node=self.link,
                                   console=self.settings.console_enabled, llm=llm,
                                   routers=self.routers() if self.routers else [])
            self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                         timeout_graceful_shutdown=2))
            task = asyncio.create_task(self._server.serve(sockets=[sock]))
            while not self._server.started and not task.done():
                await asyncio.sleep(0.02)
            self._started.set()
            await task
        finally:
            if llm is not None:
                await llm.aclose()
            await store.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(setattr, self._server, "should_exit", True)
        if self._thread is not None:
            self._thread.join(timeout)


async def until_interrupted() -> None:
    """Wait for Ctrl-C (or SIGTERM) on the running loop. The wait runs in a thread, so on the
    virtual clock time stands still meanwhile and the console's calls into the node still run."""
    import signal

    loop = asyncio.get_running_loop()
    stop = threading.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            # Not the main thread (tests, an embedding host) or a platform without them: that
            # host's own stop reaches us through task cancellation instead.
            continue
    try:
        await loop.run_in_executor(None, stop.wait)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


__all__ = ["ConsoleThread", "bind_socket", "first_login", "link_node", "login_message", "public_url",
           "until_interrupted"]
