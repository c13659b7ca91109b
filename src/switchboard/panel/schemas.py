"""REST shapes of the built-in panel's /api/v1 resources (the dialer contract is in contract.py)."""

from __future__ import annotations

from datetime import datetime
import re
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from switchboard.panel.bounded import Attributes, LongText, Name, PhoneText, ShortText, StrictIn
from switchboard.phones import clean

T = TypeVar("T")

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
SCENARIO_NAME = r"^[A-Za-z0-9_.-]{1,200}$"


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class ContactOut(_Out):
    id: int
    company: str
    campaign_id: int | None
    external_id: str | None
    phone: str
    phone_e164: str
    name: str | None
    attributes: dict[str, Any]
    timezone: str | None
    status: str
    attempts: int
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_result: str | None
    last_reason: str | None


class ContactIn(StrictIn):
    phone: PhoneText
    name: ShortText | None = None
    attributes: Attributes = Field(default_factory=dict)
    timezone: str | None = Field(None, max_length=64, description="+0330-style offset or IANA zone name")
    campaign: Name | None = None


class CallOut(_Out):
    id: str
    direction: str
    scenario: str | None
    contact_id: int | None
    number_id: str | None
    phone: str
    phone_e164: str | None
    line: str | None
    operator: str | None
    originated_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    result: str | None
    reason: str | None
    intent: str | None
    user_message: str | None
    recording_path: str | None
    panel_status: str | None = None  # what the panel was told (a declared result reports as this)
    callback_id: int | None = None  # the call back this call made


class EventOut(_Out):
    seq: int
    at: datetime
    kind: str
    data: dict[str, Any]


class CallDetailOut(CallOut):
    transcripts: list[Any]
    attributes: dict[str, Any]
    events: list[EventOut] = Field(default_factory=list)


class CampaignOut(_Out):
    id: int
    name: str
    active: bool
    scenario: str | None
    calling_hours_start: str | None
    calling_hours_end: str | None
    timezone: str | None
    max_attempts: int | None


def _zone(value: str | None) -> str | None:
    if value is None:
        return None
    from switchboard.panel.tz import parse_offset

    parse_offset(value)  # ValueError names the problem
    return value.strip()


class _CampaignFields(StrictIn):
    scenario: str | None = Field(default=None, pattern=SCENARIO_NAME,
                                 description="a scenario the engine has loaded (GET /api/v1/scenarios)")
    calling_hours_start: str | None = Field(default=None, pattern=HHMM, description="HH:MM, 00:00-23:59")
    calling_hours_end: str | None = Field(default=None, pattern=HHMM, description="HH:MM, after the start")
    timezone: str | None = Field(default=None, max_length=64, description="+0330-style offset or IANA zone name")
    max_attempts: int | None = Field(default=None, ge=1, le=100)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        return _zone(v)

    @model_validator(mode="after")
    def _window(self) -> Any:
        start, end = self.calling_hours_start, self.calling_hours_end
        if start is not None and end is not None and start >= end:
            raise ValueError(f"calling_hours_start {start} must be before calling_hours_end {end}")
        return self


class CampaignIn(_CampaignFields):
    name: Name
    active: bool = True


class CampaignPatch(_CampaignFields):
    """Only the fields sent change; `null` clears a field that may be empty (scenario, hours, zone,
    max attempts). `active` cannot be null."""

    active: bool = Field(default=None, description="true or false; null is refused")  # type: ignore[assignment]


class OperatorOut(_Out):
    id: int
    direction: str
    phone_number: str
    name: str | None
    scenario: str | None
    active: bool


def _dialable(value: str) -> str:
    """An operator or line number: digits (Persian and Arabic digits too) with an optional leading
    `+` and the usual separators; nothing a dial string or a shell could read as syntax."""
    digits = clean(value)
    if not re.fullmatch(r"\+?[0-9]{2,20}", digits):
        raise ValueError(f"{value[:40]!r} is not a phone number or extension (2 to 20 digits, optional +)")
    return value.strip()


class OperatorIn(StrictIn):
    direction: Literal["inbound", "outbound"]
    phone_number: PhoneText
    name: ShortText | None = None
    scenario: str | None = Field(default=None, pattern=SCENARIO_NAME)

    _number = field_validator("phone_number")(classmethod(lambda cls, v: _dialable(v)))


class LineOut(_Out):
    id: int
    phone_number: str
    display_name: str | None
    active: bool
    max_concurrent: int | None
    max_per_minute: int | None
    max_per_day: int | None


class LineIn(StrictIn):
    phone_number: PhoneText
    display_name: ShortText | None = None
    max_concurrent: int | None = Field(default=None, ge=1, le=100_000)
    max_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    max_per_day: int | None = Field(default=None, ge=1, le=1_000_000_000)

    _number = field_validator("phone_number")(classmethod(lambda cls, v: _dialable(v)))


class DncOut(_Out):
    phone_e164: str
    reason: str | None
    source: str | None
    added_at: datetime


class DncIn(StrictIn):
    phone: PhoneText
    reason: LongText | None = None
    source: str | None = Field("api", max_length=100)


class ScenarioOut(BaseModel):
    name: str
    display_name: str | None = None
    registered: bool = False
    active: bool = True


class AlertOut(_Out):
    id: int
    kind: str
    message: str
    details: dict[str, Any]
    created_at: datetime


# --- campaigns: calls placed now, call backs, tickets, results ------------------------------------
_NAME = r"^[A-Za-z0-9_.-]{1,200}$"


class CallNowIn(BaseModel):
    """POST /api/v1/calls: call this number now (through the dialer's limits and compliance)."""

    model_config = ConfigDict(extra="forbid")
    phone: str = Field(min_length=3, max_length=64)
    scenario: str | None = Field(None, pattern=_NAME, description="scenario to run; default: the next one "
                                                                    "whose conditions match the contact")
    persona: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,60}$", description="an AI persona instead "
                                                                                      "of a scenario")
    name: str | None = Field(None, max_length=200)
    fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50,
                                                               description="contact fields ({name} in prompts, "
                                                                           "scenario conditions)")


class SalesStartCallIn(BaseModel):
    """POST /api/v1/agent/sales/start_call (the path sales teams already use)."""

    lead_phone: str = Field(min_length=3, max_length=64)
    lead_name: str | None = Field(None, max_length=200)
    lead_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)


class CallPlacedOut(BaseModel):
    ok: bool = True
    call_id: str
    status: str = "dialing"
    scenario: str
    phone: str
    line: str
    url: str


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(min_length=3, max_length=64)
    at: datetime | None = Field(None, description="when to call (ISO; without a zone: UTC)")
    after_minutes: float | None = Field(None, gt=0, le=43200, description="or: this many minutes from now")
    scenario: str | None = Field(None, pattern=_NAME)
    priority: int = Field(10, ge=-100, le=100)
    reason: str | None = Field(None, max_length=1000)
    name: str | None = Field(None, max_length=200)
    max_attempts: int = Field(3, ge=1, le=20)


class CallbackOut(_Out):
    id: int
    phone: str
    phone_e164: str
    name: str | None
    number_id: str | None
    scenario: str | None
    priority: int
    due_at: datetime
    status: str
    attempts: int
    max_attempts: int
    reason: str | None
    source: str
    call_id: str | None
    last_call_id: str | None
    last_result: str | None
    created_at: datetime


class TicketOut(_Out):
    id: int
    call_id: str | None
    phone: str | None
    persona: str | None
    subject: str
    description: str
    priority: str
    order_number: str | None
    fields: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime


class TicketPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(pattern=r"^(open|closed)$")


class ResultOut(BaseModel):
    name: str
    display_name: str
    panel_status: str
    final: bool
    retry_after: float | None
    contacted: bool
    success: bool
    scenario: str | None


class ResultCountOut(BaseModel):
    scenario: str | None
    result: str
    display_name: str
    panel_status: str
    contacted: bool
    success: bool
    calls: int


class ResultsReportOut(BaseModel):
    calls: int
    contacted: int
    success: int
    contact_rate: float
    success_rate: float
    by_result: list[ResultCountOut]
