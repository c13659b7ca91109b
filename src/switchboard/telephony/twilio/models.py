"""Twilio's webhook requests parsed at the edge, and what their statuses mean for a call.

Field names are Twilio's (form parameters of the voice webhook, the call status callback and the
`<Dial>` action); anything else Twilio sends is kept out of the typed model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from switchboard.telephony.call import DialOutcome

CallStatus = Literal["queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer",
                     "canceled", "failed"]
AnsweredBy = Literal["human", "machine_start", "machine_end_beep", "machine_end_silence",
                     "machine_end_other", "fax", "unknown"]

FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class VoiceRequest(_Form):
    """POST /twilio/voice: a call asks what to do (an inbound call rings, an outbound call answered)."""

    call_sid: str = Field(alias="CallSid", min_length=2, max_length=64)
    account_sid: str = Field(alias="AccountSid", max_length=64)
    from_: str = Field("", alias="From", max_length=64)
    to: str = Field("", alias="To", max_length=64)
    call_status: str = Field("", alias="CallStatus", max_length=32)
    direction: str = Field("", alias="Direction", max_length=32)  # inbound | outbound-api | outbound-dial
    answered_by: AnsweredBy | None = Field(None, alias="AnsweredBy")


class StatusCallback(_Form):
    """POST /twilio/status: call progress (`StatusCallbackEvent`s) and the final status."""

    call_sid: str = Field(alias="CallSid", min_length=2, max_length=64)
    account_sid: str = Field(alias="AccountSid", max_length=64)
    call_status: CallStatus = Field(alias="CallStatus")
    answered_by: AnsweredBy | None = Field(None, alias="AnsweredBy")
    sip_response_code: str = Field("", alias="SipResponseCode", max_length=8)
    call_duration: str = Field("", alias="CallDuration", max_length=16)
    parent_call_sid: str = Field("", alias="ParentCallSid", max_length=64)


class DialAction(_Form):
    """POST /twilio/dial: the `<Dial>` verb ended (the operator leg was not answered, or the bridge ended)."""

    call_sid: str = Field(alias="CallSid", min_length=2, max_length=64)
    account_sid: str = Field(alias="AccountSid", max_length=64)
    dial_call_status: Literal["completed", "answered", "busy", "no-answer", "failed", "canceled"] = Field(
        alias="DialCallStatus")
    dial_call_sid: str = Field("", alias="DialCallSid", max_length=64)


def dial_outcome(status: str) -> DialOutcome:
    """A final status of an outbound call that was never answered, as the dialer's outcome."""
    return {"busy": DialOutcome.BUSY, "no-answer": DialOutcome.NO_ANSWER,
            # canceled: we ended it ourselves before it was answered (ring timeout, shutdown)
            "canceled": DialOutcome.NO_ANSWER, "failed": DialOutcome.FAILED,
            "completed": DialOutcome.NO_ANSWER}.get(status, DialOutcome.FAILED)


def is_machine(answered_by: str | None) -> bool:
    """Answering-machine detection said nobody is there to talk to (a machine or a fax)."""
    return bool(answered_by) and (answered_by.startswith("machine") or answered_by == "fax")  # type: ignore[union-attr]


def transfer_reason(dial_status: str) -> str:
    """A `<Dial>` that ended without an answer, in `TransferResult.reason` words."""
    return {"busy": "busy", "no-answer": "no_answer", "canceled": "no_answer"}.get(dial_status, "failed")
