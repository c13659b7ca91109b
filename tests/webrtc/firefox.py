"""Debian's Firefox ESR, driven over WebDriver BiDi (the W3C protocol Firefox speaks natively on
`--remote-debugging-port`; Playwright needs its own patched Firefox, which cannot be downloaded
here). Only what the page tests use: navigate, evaluate, click like a user, screenshot."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")

# A fresh profile: fake microphone (Firefox's own test tone), no permission prompt, sound allowed
# to start without a click elsewhere, nothing phoning home.
PREFS = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "permissions.default.microphone": 1,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.cubeb.backend": "alsa",  # with the ALSA null device below: Web Audio runs without a sound card
    "media.cubeb.sandbox": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
}


class BiDiError(RuntimeError):
    pass


class Firefox:
    def __init__(self, ws: Any, proc: asyncio.subprocess.Process) -> None:
        self.ws = ws
        self.proc = proc
        self._ids = itertools.count(1)
        self.context = ""

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if reply.get("id") != msg_id:
                continue  # an event
            if reply.get("type") == "error":
                raise BiDiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
            return reply["result"]  # type: ignore[no-any-return]

    async def goto(self, url: str) -> None:
        await self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("script.evaluate", {"expression": expression, "awaitPromise": True,
                                                      "target": {"context": self.context},
                                                      "resultOwnership": "none"})
        if result.get("type") == "exception":
            raise BiDiError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return _value(result["result"])

    async def wait_for(self, expression: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.evaluate(expression):
            if loop.time() > deadline:
                raise TimeoutError(f"not true within {timeout} s: {expression}")
            await asyncio.sleep(0.2)

    async def click(self, selector: str) -> None:
        """A real pointer click (user activation: the page may start audio)."""
        found = await self.send("script.evaluate", {"expression": f"document.querySelector({selector!r})",
                                                     "awaitPromise": False, "target": {"context": self.context},
                                                     "resultOwnership": "root"})
        element = found["result"]
        if "sharedId" not in element:
            raise BiDiError(f"no element {selector}")
        origin = {"type": "element", "element": {"sharedId": element["sharedId"]}}
        await self.send("input.performActions", {"context": self.context, "actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
                        {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]})

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("browsingContext.captureScreenshot", {"context": self.context, "origin": "document"})
        path.write_bytes(base64.b64decode(shot["data"]))


def _value(remote: dict[str, Any]) -> Any:
    kind = remote.get("type")
    if kind in ("undefined", "null"):
        return None
    if kind in ("string", "number", "boolean"):
        return remote.get("value")
    if kind == "array":
        return [_value(v) for v in remote.get("value", [])]
    if kind == "object":
        return {k: _value(v) for k, v in remote.get("value", [])}
    return remote.get("value")


@contextlib.asynccontextmanager
async def firefox(profile: Path) -> AsyncIterator[Firefox]:
    if FIREFOX is None:
        raise RuntimeError("Debian's firefox-esr is needed (scripts/test-deps.sh installs it)")
    profile.mkdir(parents=True, exist_ok=True)
    # A machine without a sound card: ALSA's null device lets Web Audio run (and be measured).
    (profile / ".asoundrc").write_text("pcm.!default { type null }\nctl.!default { type hw card 0 }\n")
    (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                             for k, v in PREFS.items()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        FIREFOX, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", str(port),
        "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "HOME": str(profile), "MOZ_CRASHREPORTER_DISABLE": "1"})
    try:
        ws = None
        for _ in range(150):
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/session", max_size=64 * 1024 * 1024)
                break
            except OSError:
                await asyncio.sleep(0.2)
        if ws is None:
            raise RuntimeError("Firefox did not open its WebDriver BiDi port")
        browser = Firefox(ws, proc)
        try:
            await browser.send("session.new", {"capabilities": {}})
            tree = await browser.send("browsingContext.getTree", {})
            browser.context = tree["contexts"][0]["context"]
            yield browser
        finally:
            with contextlib.suppress(Exception):
                await browser.send("session.end", {})
            await ws.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
