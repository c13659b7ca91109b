"""The TwiML documents Switchboard answers with, built with the SDK's `VoiceResponse`."""

from __future__ import annotations

import math

from twilio.twiml.voice_response import VoiceResponse

STREAM_TOKEN = "switchboard_token"  # the <Parameter> carrying the one-time stream token
CALL_ID = "switchboard_call_id"


def connect_stream(ws_url: str, *, token: str, call_id: str, parameters: dict[str, str] | None = None) -> str:
    """`<Connect><Stream>`: a bidirectional media stream to our WebSocket; its `start` message
    echoes the parameters, whose one-time token proves the stream belongs to a signed webhook."""
    response = VoiceResponse()
    stream = response.connect().stream(url=ws_url)
    stream.parameter(name=STREAM_TOKEN, value=token)
    stream.parameter(name=CALL_ID, value=call_id)
    for name, value in (parameters or {}).items():
        stream.parameter(name=name, value=value)
    return str(response)


def dial_operator(operator: str, *, caller_id: str, timeout: float, action_url: str, answered_url: str) -> str:
    """`<Dial callerId=…>` to an operator: Twilio rings them and bridges the caller when they answer.
    `answered_url` hears the operator leg's `answered` event (we know at once that someone took
    the call); `action_url` hears how the dial ended (no answer: the flow goes on)."""
    response = VoiceResponse()
    kwargs: dict[str, object] = {"timeout": max(5, min(600, math.ceil(timeout))), "action": action_url,
                                 "method": "POST"}
    if caller_id:
        kwargs["caller_id"] = caller_id
    dial = response.dial(**kwargs)
    dial.number(operator, status_callback_event="answered", status_callback=answered_url,
                status_callback_method="POST")
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def reject(reason: str = "rejected") -> str:
    """Refuse a call before it is answered (a number we do not serve, no capacity)."""
    response = VoiceResponse()
    response.reject(reason=reason)
    return str(response)
