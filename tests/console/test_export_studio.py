"""Exports safe to open in a spreadsheet, and the Strategy Studio's page fetcher (SSRF rules, size
and time limits) and drafts (deterministic, and through an OpenAI-compatible server)."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import load_workbook

from switchboard.web.export import neutralise, xlsx_response
from switchboard.web.studio import FetchRefused, WizardInput, draft_strategy, fetch_page, summarise_html


@pytest.mark.parametrize("value, expected", [
    ("=1+2", "'=1+2"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1,2)", "'@SUM(1,2)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("+989121234567", "+989121234567"),
    ("-3.5", "-3.5"), ("09121234567", "09121234567"), ("سلام", "سلام"), (None, ""), (42, 42),
])
def test_cells_that_could_be_formulas_are_neutralised(value: Any, expected: Any) -> None:
    assert neutralise(value) == expected


def test_xlsx_cells_are_text(tmp_path: Any) -> None:
    async def rows() -> Any:
        yield ["=HYPERLINK(\"http://x\")", "+989121234567", 7]

    async def build() -> bytes:
        response = await xlsx_response("t", ["a", "b", "c"], rows())
        with open(response.path, "rb") as fh:
            return fh.read()

    ws = load_workbook(io.BytesIO(asyncio.run(build()))).active
    a, b, c = next(ws.iter_rows(min_row=2, max_row=2))
    assert (a.value, a.data_type) == ("'=HYPERLINK(\"http://x\")", "s")
    assert (b.value, b.data_type) == ("+989121234567", "s") and c.value == 7


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, headers, body = self.routes.get(self.path, (404, {}, b"no"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = b"<html><head><title>Shop</title></head><body><h2>Delivery?</h2><p>Two days, anywhere in Tehran.</p></body></html>"
    port = server.server_address[1]
    _Handler.routes = {
        "/": (200, {"Content-Type": "text/html"}, page),
        "/big": (200, {"Content-Type": "text/html"}, b"<p>" + b"x" * 5000 + b"</p>"),
        "/pdf": (200, {"Content-Type": "application/pdf"}, b"%PDF"),
        "/hop": (302, {"Location": "/"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
    }
    yield port
    server.shutdown()


def fetch(url: str, allow: set[str], **kw: Any) -> Any:
    return asyncio.run(fetch_page(url, allow_hosts=allow, max_bytes=kw.get("max_bytes", 100_000),
                                  timeout=kw.get("timeout", 5.0)))


def test_fetch_refuses_private_addresses_unless_allowed(site: int) -> None:
    allowed = {f"127.0.0.1:{site}"}
    page = fetch(f"http://127.0.0.1:{site}/", allowed)
    assert page.title == "Shop" and page.answers == {"Delivery?": "Two days, anywhere in Tehran."}
    for url in (f"http://127.0.0.1:{site}/", "http://localhost:9/", "http://10.0.0.8/", "http://[::1]:9/",
                "http://169.254.169.254/latest/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/"):
        with pytest.raises(FetchRefused, match="private or local address"):
            fetch(url, set())
    for url, why in (("file:///etc/passwd", "only http"), ("ftp://example.com/", "only http"),
                     ("http://user:pw@example.com/", "user name or password"), ("http:///x", "no host")):
        with pytest.raises(FetchRefused, match=why):
            fetch(url, set())


def test_fetch_checks_every_redirect_and_limits(site: int) -> None:
    allowed = {f"127.0.0.1:{site}"}
    assert fetch(f"http://127.0.0.1:{site}/hop", allowed).title == "Shop"
    with pytest.raises(FetchRefused, match="private or local address"):
        fetch(f"http://127.0.0.1:{site}/to-metadata", allowed)  # an allowed host cannot redirect inside
    with pytest.raises(FetchRefused, match="redirects"):
        fetch(f"http://127.0.0.1:{site}/loop", allowed)
    with pytest.raises(FetchRefused, match="larger than 1000 bytes"):
        fetch(f"http://127.0.0.1:{site}/big", allowed, max_bytes=1000)
    with pytest.raises(FetchRefused, match="not a web page"):
        fetch(f"http://127.0.0.1:{site}/pdf", allowed)
    with pytest.raises(FetchRefused, match="answered 404"):
        fetch(f"http://127.0.0.1:{site}/missing", allowed)


def test_fetch_times_out() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    port = listener.getsockname()[1]
    try:
        with pytest.raises(FetchRefused, match="within 0.5 s"):
            fetch(f"http://127.0.0.1:{port}/", {f"127.0.0.1:{port}"}, timeout=0.5)
    finally:
        listener.close()


def test_draft_with_an_openai_compatible_server_and_its_fallbacks() -> None:
    from switchboard.brain.llm import LLMClient
    from tests.brain.fake_llm import FakeLLM, Reply, server_error

    summary = summarise_html("https://shop.example/", "<title>Shop</title><h2>Delivery?</h2><p>Two days, anywhere in Tehran.</p>")
    inp = WizardInput("retail", "win back lapsed buyers", "a second order", "Shop", "en")
    answer = {"title": "Shop win-back", "description": "Bring lapsed buyers back.", "goals": ["a second order"],
              "persona": {"name": "Sara", "tone": "warm", "description": "Shop's assistant"},
              "scripts": {"greeting": "Hi, Sara from Shop.", "pitch": "Delivery takes two days in Tehran.",
                          "faqs": {"How fast is delivery?": "Two days in Tehran."}, "objections": {}},
              "closing_techniques": ["offer a discount code"]}
    with FakeLLM() as fake:
        llm = LLMClient(base_url=fake.base_url, model_critical="m", model_cheap="m", timeout=10, max_retries=0)

        async def run() -> Any:
            fake.push(Reply(content=json.dumps(answer)))
            good = await draft_strategy(inp, summary, llm)
            fake.push(Reply(content="not json"))
            bad = await draft_strategy(inp, summary, llm)
            fake.push(server_error())
            down = await draft_strategy(inp, summary, llm)
            await llm.aclose()
            return good, bad, down

        good, bad, down = asyncio.run(run())
    assert good.by_model and good.strategy.title == "Shop win-back" and good.strategy.persona.locale == "en"
    assert "Drafted by the LLM" in good.note
    assert not bad.by_model and "unusable" in bad.note and bad.strategy.title == "Shop — win back lapsed buyers"
    assert not down.by_model and "did not answer" in down.note
    assert bad.strategy.scripts.faqs == {"Delivery?": "Two days, anywhere in Tehran."}
