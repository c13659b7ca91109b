"""What the page is told, from the engine's timeline: transcript lines, the persona on the line,
handoffs, barge-ins, the result — buffered until the data channel opens, never unbounded."""

from __future__ import annotations

import json

from switchboard.telephony.call import DialOutcome
from switchboard.telephony.webrtc.backend import WebRTCBackend
from switchboard.telephony.webrtc.feed import CallFeed


class Channel:
    def __init__(self) -> None:
        self.readyState = "connecting"
        self.sent: list[dict] = []  # type: ignore[type-arg]

    def send(self, data: str) -> None:
        self.sent.append(json.loads(data))


def test_the_timeline_becomes_page_events_in_order_once_the_channel_opens() -> None:
    feed = CallFeed(display_names={"reception": "Sara (reception)", "sales": "Omid (sales)"})
    channel = Channel()
    feed.attach(channel)
    feed.timeline("step", {"step": "talk"})  # not for the page
    feed.saying("Hello, this is Sara.")
    feed.timeline("turn", {"persona": "reception", "speaker": "agent", "text": "Hello, this is Sara.",
                           "interrupted": True})
    feed.timeline("turn", {"persona": "reception", "speaker": "caller", "text": "I want prices"})
    feed.timeline("turn", {"persona": "reception", "speaker": "tool", "text": "handoff(...)"})
    feed.timeline("turn", {"persona": "reception", "speaker": "system", "text": "handoff reception -> sales",
                           "kind": "handoff", "to": "sales"})
    feed.timeline("turn", {"persona": "sales", "speaker": "agent", "text": "Omid here."})
    feed.timeline("result", {"result": "hangup", "reason": "caller hung up"})
    feed.timeline("call_ended", {"result": "hangup"})
    assert channel.sent == []  # nothing is lost while the channel opens
    channel.readyState = "open"
    feed.flush()
    kinds = [e["type"] for e in channel.sent]
    assert kinds == ["say", "persona", "barge_in", "transcript", "transcript", "handoff", "persona",
                     "transcript", "result", "state"]
    assert channel.sent[1] == {"type": "persona", "persona": "reception", "display_name": "Sara (reception)"}
    assert channel.sent[3]["interrupted"] is True
    assert channel.sent[5] == {"type": "handoff", "from": "reception", "to": "sales",
                               "from_name": "Sara (reception)", "to_name": "Omid (sales)"}
    assert channel.sent[8] == {"type": "result", "result": "hangup", "reason": "caller hung up"}


def test_the_buffer_before_the_channel_opens_is_bounded() -> None:
    feed = CallFeed(max_buffer=10)
    for i in range(100):
        feed.saying(f"sentence {i}")
    channel = Channel()
    channel.readyState = "open"
    feed.attach(channel)
    assert [e["text"] for e in channel.sent] == [f"sentence {i}" for i in range(90, 100)]


async def test_a_browser_backend_cannot_dial_and_says_so_as_a_trunk_failure() -> None:
    backend = WebRTCBackend(make_call=lambda bc: None)  # type: ignore[arg-type,return-value]
    dialed = await backend.originate(number="+989120000000", dial_string="x", line_number="021", caller_id="021",
                                     timeout=5)
    assert dialed.outcome is DialOutcome.FAILED and dialed.call is None and "browsers" in dialed.reason
