"""The dialer <-> panel HTTP contract, as pydantic models (the edge: every panel answer is parsed here).

Endpoints (all Bearer-token authenticated, JSON bodies, served by external panels and by the
built-in panel in `switchboard.panel.server`):

* ``GET  /api/dialer/next-batch?size=N&company=C`` -> `NextBatchResponse`
  ``{call_allowed, batch: {batch_id, numbers: [{id, phone_number}]}, active_scenarios: [{id, name}],
  inbound_agents: [{id, phone_number}], outbound_agents: [...], outbound_lines: [{id, phone_number}],
  timezone: "+0330", server_time}``. Legacy panels may send ``active_agents`` (read as
  ``outbound_agents``) and ``active_scenarios`` as plain strings.
* ``POST /api/dialer/register-scenarios`` `RegisterScenariosRequest`
  ``{company, scenarios: [{name, display_name}]}`` (older dialers send plain names: accepted)
* ``POST /api/dialer/register-outbound-lines`` `RegisterOutboundLinesRequest`
  ``{company, lines: [{phone_number, display_name}]}``
* ``POST /api/dialer/report-result`` `ReportResultRequest` ``{company, number_id, phone_number, status,
  reason, attempted_at, agent_id, agent_phone, user_message, scenario_id, outbound_line_id}`` with
  header ``Idempotency-Key``. ``scenario_id`` is the panel's own id of the scenario (from the
  ``active_scenarios`` objects of next-batch; null when the panel gave none). ``status`` is one of
  the statuses below; a scenario's own result (e.g. ``appointment_confirmed``) is sent as the status
  it declares (``panel_status``) with the result's name added as ``outcome``; a call back's call
  adds ``callback_id``. Both fields are left out when empty, so panels that do not know them see
  the body they always did. Inbound calls have no ``number_id`` and are matched by phone number.
  A panel answers 2xx when applied and 2xx or 409 when it has already seen the key; both count as
  delivered. The built-in panel also accepts older bodies: upper-case statuses (``CONNECTED``,
  ``NO_ANSWER``, ``BUSY``...), and ``scenario`` (a name), ``outbound_line`` (a number) and
  ``batch_id`` fields.
* ``POST /api/dialer/alert`` `AlertRequest` ``{company, kind, message, details, at}``: the dialer tells
  the panel it paused or resumed or hit a failure threshold. ``kind`` is one of `ALERT_KINDS`
  (other values are accepted and stored as-is). Panels without this endpoint may answer 404; the
  dialer then only logs and SMSes.

Result statuses (`status`): connected_to_operator, not_interested, disconnected, hangup, missed,
failed:<reason>, unknown, inbound_call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from switchboard.panel.bounded import (
    Attributes,
    Company,
    ExternalId,
    FreeText,
    IsoDatetime,
    ShortText,
    external_id_or_none,
)
from switchboard.phones import InvalidPhoneNumber, normalize

RESULT_STATUSES = (
    "connected_to_operator",
    "not_interested",
    "disconnected",
    "hangup",
    "missed",
    "failed",  # sent as failed:<reason>
    "unknown",
    "inbound_call",
)
ALERT_KINDS = ("paused", "resumed", "failure_threshold", "provider_failure", "info")
# Statuses older panels and dialers send, read as the contract's own (the original kept as outcome).
STATUS_ALIASES = {"connected": "connected_to_operator", "answered": "connected_to_operator",
                  "no_answer": "missed", "noanswer": "missed", "busy": "missed", "unreachable": "missed",
                  "congestion": "missed", "rejected": "not_interested", "declined": "not_interested"}

Id = ExternalId  # a panel's id: an integer within 64 bits or text of at most 100 characters


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class NumberItem(_Model):
    id: Id
    phone_number: str

    @field_validator("phone_number", mode="before")
    @classmethod
    def _phone_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class BatchOut(_Model):
    batch_id: Id | None = None
    numbers: list[NumberItem] = Field(default_factory=list)


class ScenarioRef(_Model):
    id: Id | None = None
    name: str


class AgentRef(_Model):
    id: Id | None = None
    phone_number: str

    @field_validator("phone_number", mode="before")
    @classmethod
    def _phone_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


class LineRef(AgentRef):
    pass


class NextBatchResponse(_Model):
    call_allowed: bool
    batch: BatchOut | None = None
    active_scenarios: list[ScenarioRef] = Field(default_factory=list)
    inbound_agents: list[AgentRef] = Field(default_factory=list)
    outbound_agents: list[AgentRef] = Field(default_factory=list)
    outbound_lines: list[LineRef] = Field(default_factory=list)
    timezone: str | None = None  # the zone of contacts that have none of their own
    server_time: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "active_agents" in data and not data.get("outbound_agents"):
            data["outbound_agents"] = data.pop("active_agents")
        scenarios = data.get("active_scenarios")
        if isinstance(scenarios, list):
            data["active_scenarios"] = [{"name": s} if isinstance(s, str) else s for s in scenarios]
        for key in ("active_scenarios", "inbound_agents", "outbound_agents", "outbound_lines"):
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        from switchboard.dialer.lines import parse_timezone
        from switchboard.panel.tz import parse_offset

        if v is None or not v.strip():
            return None
        try:
            parse_offset(v)  # raises ValueError naming the problem
        except ValueError:
            parse_timezone(v)  # an IANA name ("Asia/Tehran") is a zone too
        return v


class ScenarioRegistration(_Model):
    name: str = Field(min_length=1, max_length=200)
    display_name: ShortText | None = None


class RegisterScenariosRequest(_Model):
    company: Company
    # Older dialers send plain names (["salehi_language", ...]): documented as such in the spec, and
    # read as registrations before validation, so every item is a `ScenarioRegistration` after it.
    scenarios: list[ScenarioRegistration | Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=1000)

    @field_validator("scenarios", mode="before")
    @classmethod
    def _plain_names(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": item} if isinstance(item, str) else item for item in v]
        return v


class OutboundLineRegistration(_Model):
    phone_number: str = Field(min_length=1, max_length=32)
    display_name: ShortText | None = None

    @field_validator("phone_number")
    @classmethod
    def _number(cls, v: str) -> str:
        from switchboard.phones import clean

        if not re.fullmatch(r"\+?[0-9]{2,20}", clean(v)):  # it is dialed from: digits only
            raise ValueError(f"{v[:40]!r} is not a phone number (2 to 20 digits, optional +)")
        return v


class RegisterOutboundLinesRequest(_Model):
    company: Company
    lines: list[OutboundLineRegistration] = Field(max_length=1000)


class ReportResultRequest(_Model):
    # Bounds: `bounded` (the columns these land in; free text the dialer writes is cut, not refused).
    company: Company
    number_id: ExternalId | None = None
    phone_number: str = Field(max_length=64)
    status: str = Field(min_length=1, max_length=100)
    reason: FreeText | None = None
    attempted_at: IsoDatetime
    agent_id: ExternalId | None = None
    agent_phone: str | None = Field(None, max_length=64)
    user_message: FreeText | None = None
    scenario_id: ExternalId | None = None
    outbound_line_id: ExternalId | None = None
    outcome: str | None = Field(None, max_length=100, description="the scenario's own result, when the "
                                                                  "status is what it reports as")
    callback_id: ExternalId | None = None
    # Older dialers' fields, accepted by the built-in panel (never sent).
    scenario: str | None = Field(None, max_length=200)
    outbound_line: str | None = Field(None, max_length=64)
    batch_id: ExternalId | None = None

    @model_serializer(mode="wrap")
    def _omit_empty_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for key in OPTIONAL_REPORT_FIELDS:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _older_bodies(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            return data
        data = dict(data)
        raw = data["status"].strip()
        base, sep, rest = raw.partition(":")
        lowered = base.lower()
        if lowered in STATUS_ALIASES:
            data["status"] = STATUS_ALIASES[lowered]
            if lowered not in ("connected", "answered") and not data.get("outcome"):
                data["outcome"] = lowered
        else:
            data["status"] = lowered + sep + rest
        return data

    @field_validator("attempted_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)  # naive = UTC

    @field_validator("status")
    @classmethod
    def _status(cls, v: str) -> str:
        base = v.split(":", 1)[0]
        if base not in RESULT_STATUSES:
            raise ValueError(f"unknown status {v!r}; expected one of {', '.join(RESULT_STATUSES)}")
        return v


OPTIONAL_REPORT_FIELDS = ("outcome", "callback_id", "scenario", "outbound_line", "batch_id")


class AlertRequest(_Model):
    company: Company
    kind: str = Field(min_length=1, max_length=50)
    message: str = Field(max_length=4000)
    details: Attributes = Field(default_factory=dict)
    at: IsoDatetime | None = None


class Ack(_Model):
    ok: bool = True
    duplicate: bool = False
    detail: str | None = None


# --- parsed view the dialer consumes ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchNumber:
    id: Id
    phone_number: str  # as the panel sent it (echo it back in report-result)
    e164: str
    national: str
    timezone: str | None = None  # from the number's region when unambiguous


@dataclass(frozen=True, slots=True)
class RejectedNumber:
    id: Id | None
    phone_number: str | None
    reason: str


@dataclass(slots=True)
class NextBatch:
    """A next-batch answer checked item by item: bad numbers land in `rejected` with the reason,
    the rest of the batch is kept. `error` is set when the whole answer was unusable (then it is
    "no batch": call_allowed False, no numbers)."""

    call_allowed: bool
    batch_id: Id | None = None
    numbers: list[BatchNumber] = field(default_factory=list)
    rejected: list[RejectedNumber] = field(default_factory=list)
    active_scenarios: list[ScenarioRef] = field(default_factory=list)
    inbound_agents: list[AgentRef] = field(default_factory=list)
    outbound_agents: list[AgentRef] = field(default_factory=list)
    outbound_lines: list[LineRef] = field(default_factory=list)
    timezone: str | None = None  # None: the panel gave no zone
    server_time: datetime | None = None
    error: str | None = None

    @classmethod
    def none(cls, error: str) -> NextBatch:
        return cls(call_allowed=False, error=error)


def describe(exc: ValidationError) -> str:
    """One line naming every bad field, e.g. `batch.numbers.0.id: Field required`."""
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<root>"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def parse_next_batch(data: Any, region: str = "IR") -> NextBatch:
    """Parse a next-batch JSON body. Never raises: a malformed envelope gives `NextBatch.none`,
    a malformed or invalid number is rejected alone."""
    if not isinstance(data, dict):
        return NextBatch.none(f"expected a JSON object, got {type(data).__name__}")
    raw_batch = data.get("batch")
    raw_numbers: list[Any] = []
    envelope = dict(data)
    if isinstance(raw_batch, dict):
        numbers = raw_batch.get("numbers")
        if numbers is not None and not isinstance(numbers, list):
            return NextBatch.none(f"batch.numbers: expected a list, got {type(numbers).__name__}")
        raw_numbers = list(numbers or [])
        envelope["batch"] = {k: v for k, v in raw_batch.items() if k != "numbers"}
    try:
        resp = NextBatchResponse.model_validate(envelope)
    except ValidationError as exc:
        return NextBatch.none(describe(exc))
    out = NextBatch(
        call_allowed=resp.call_allowed,
        batch_id=resp.batch.batch_id if resp.batch else None,
        active_scenarios=resp.active_scenarios,
        inbound_agents=resp.inbound_agents,
        outbound_agents=resp.outbound_agents,
        outbound_lines=resp.outbound_lines,
        timezone=resp.timezone,
        server_time=resp.server_time,
    )
    seen: set[str] = set()
    for index, raw in enumerate(raw_numbers):
        try:
            item = NumberItem.model_validate(raw)
        except ValidationError as exc:
            rid = external_id_or_none(raw.get("id")) if isinstance(raw, dict) else None
            phone = raw.get("phone_number") if isinstance(raw, dict) else None
            out.rejected.append(
                RejectedNumber(
                    rid, None if phone is None else str(phone)[:64], f"numbers[{index}]: {describe(exc)}"
                )
            )
            continue
        try:
            number = normalize(item.phone_number, region)
        except InvalidPhoneNumber as exc:
            out.rejected.append(RejectedNumber(item.id, item.phone_number[:64], exc.detail[:500]))
            continue
        if number.e164 in seen:
            out.rejected.append(RejectedNumber(item.id, item.phone_number, "duplicate number in batch"))
            continue
        seen.add(number.e164)
        out.numbers.append(
            BatchNumber(item.id, item.phone_number, number.e164, number.national, number.timezone)
        )
    return out
