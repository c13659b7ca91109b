"""Console fixtures: a settings folder per test (scenarios copied, so edits never touch the repo),
the console served on loopback from a real-time thread (as the demo serves it), accounts, and one
Debian Chromium per session driven by Playwright (a fresh context per test)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from switchboard.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
PASSWORD = "correct-horse-battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_settings(tmp: Path, **overrides: Any) -> Settings:
    scenarios = tmp / "scenarios"
    if not scenarios.exists():
        shutil.copytree(ROOT / "scenarios", scenarios)
    values: dict[str, Any] = dict(
        data_dir=tmp / "data", logs_dir=tmp / "logs", recordings_dir=tmp / "recordings", scenarios_dir=scenarios,
        personas_dir=ROOT / "personas", strategies_dir=ROOT / "strategies", panel_host="127.0.0.1",
        panel_port=free_port(), outbound_numbers="02191000001,02191000002", login_max_failures=5)
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop in a thread of its own (tests are sync, the server has its
    thread, and Playwright's sync API keeps a loop running in this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _accounts(settings: Settings, work: Any) -> Any:
    from switchboard.panel.auth_accounts import AccountService
    from switchboard.store import open_store
    from switchboard.store.accounts import AccountsRepo

    store = await open_store(settings)
    try:
        return await work(AccountService(AccountsRepo(store.sessions, store.dialect), settings), store)
    finally:
        await store.close()


def add_user(settings: Settings, username: str, role: str, password: str = PASSWORD) -> None:
    async def work(accounts: Any, store: Any) -> None:
        await accounts.create_user(username, role, password)

    run(_accounts(settings, work))


def add_token(settings: Settings, name: str, *scopes: str) -> str:
    async def work(accounts: Any, store: Any) -> str:
        return (await accounts.create_token(name, list(scopes), created_by="tests")).token

    return str(run(_accounts(settings, work)))


def with_store(settings: Settings, work: Any) -> Any:
    async def go() -> Any:
        from switchboard.store import open_store

        store = await open_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    return run(go())


@dataclass
class Served:
    settings: Settings
    base: str
    link: Any  # web.node.NodeLink
    thread: Any  # web.serve.ConsoleThread


@contextlib.contextmanager
def serve_console(settings: Settings, *, brain: bool = True) -> Iterator[Served]:
    """The panel app with the console on loopback, from a real-time thread with its own store."""
    from switchboard.brain.services import build_brain
    from switchboard.flows.registry import ScenarioRegistry
    from switchboard.observability.live import LiveBoard
    from switchboard.web.node import NodeLink
    from switchboard.web.serve import ConsoleThread, public_url

    registry = ScenarioRegistry(settings.scenarios_dir)
    link = NodeLink(registry=registry, brain=build_brain(settings) if brain else None, live=LiveBoard())
    web = ConsoleThread(settings, link, list_scenarios=registry.get_names)
    web.start()
    try:
        yield Served(settings, public_url(settings), link, web)
    finally:
        web.stop()


# --- the browser ----------------------------------------------------------------------------------
def ensure_chromium() -> None:
    """Debian's chromium (Playwright's own browser download does not work offline); installed by
    scripts/test-deps.sh, checked here so a missing browser fails with a clear message."""
    if not os.path.exists(CHROMIUM):
        subprocess.run(["bash", str(ROOT / "scripts" / "test-deps.sh")], check=False)
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module: Playwright's sync API keeps an event loop marked running in
    this thread while it lives, which async tests in other modules must not meet."""
    ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base}/live")
