"""Malformed or failing next-batch answers from an external panel never raise into the dialer."""

import logging

import pytest
from panel_fakes import FakePanel

from switchboard.panel.client import PanelClient

GOOD = {"call_allowed": True, "batch": {"batch_id": 1, "numbers": [{"id": 1, "phone_number": "09121234567"}]}}


@pytest.mark.parametrize(
    "body, status, needle",
    [
        ("<html>gateway</html>", 200, "not JSON"),
        ({"batch": {"numbers": []}}, 200, "call_allowed"),
        ({"call_allowed": True, "batch": {"numbers": {"id": 1}}}, 200, "batch.numbers"),
        ({"call_allowed": True, "outbound_lines": [{"id": 1}]}, 200, "outbound_lines.0.phone_number"),
        (["not", "an", "object"], 200, "JSON object"),
        ({"detail": "nope"}, 404, "HTTP 404"),
    ],
)
async def test_malformed_is_no_batch(serve_app, body, status, needle, caplog):
    fake = FakePanel(next_batch_body=body, next_batch_status=status)
    async with serve_app(fake.app()) as url, PanelClient(url, "t", retries=0) as client:
        with caplog.at_level(logging.WARNING, logger="switchboard.panel.client"):
            b = await client.next_batch(10)
    assert b.call_allowed is False and b.numbers == []
    assert needle in b.error
    assert needle in caplog.text  # logged with what was wrong


async def test_5xx_is_retried_then_served(serve_app):
    fake = FakePanel(next_batch_body=GOOD, next_batch_failures=2)
    async with serve_app(fake.app()) as url, PanelClient(url, "t", retries=3, backoff=0.01) as client:
        b = await client.next_batch(10)
    assert b.error is None and [n.e164 for n in b.numbers] == ["+989121234567"]


async def test_persistent_5xx_and_timeouts_and_refused_connections(serve_app):
    fake = FakePanel(next_batch_body=GOOD, next_batch_failures=10)
    async with serve_app(fake.app()) as url:
        async with PanelClient(url, "t", retries=1, backoff=0.01) as client:
            b = await client.next_batch(10)
            assert not b.call_allowed and "HTTP 500" in b.error
        fake.next_batch_failures, fake.next_batch_delay = 0, 1.0
        async with PanelClient(url, "t", retries=0, timeout=0.2) as client:
            b = await client.next_batch(10)
            assert not b.call_allowed and "Timeout" in b.error
    async with PanelClient(url, "t", retries=1, backoff=0.01) as client:  # server gone: refused
        b = await client.next_batch(10)
        assert not b.call_allowed and "ConnectError" in b.error
        out = await client.send_alert("paused", "x")
        assert not out.delivered and not out.permanent
