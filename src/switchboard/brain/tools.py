"""Function-calling tools the AI agents may use, in one registry.

Each tool is a pydantic argument model (its JSON schema goes to the model) plus an async handler.
`execute` never raises: unknown tools, tools the persona may not use, invalid arguments and handler
errors all come back as a JSON error the model reads as the tool message, so a broken CRM cannot
crash a call. Tools that change the conversation itself (handoff, transfer, end) only record an
`Effect`; the conversation runner acts on it after the model's turn.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

EffectKind = Literal["handoff", "transfer", "end"]


@dataclass(slots=True)
class Effect:
    kind: EffectKind
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolContext:
    """What tools see of the conversation; the runner reads `effects` after each model turn."""

    call_id: str
    remote_number: str
    persona: str
    fields: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    allowed_handoffs: list[str] = field(default_factory=list)
    # the strategy's subagents: (agent, request) -> answer; None when the strategy has none
    delegate: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None


@dataclass(slots=True)
class ToolOutcome:
    name: str
    ok: bool
    content: str  # JSON text for the tool message
    effect: Effect | None = None


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LookupContactArgs(_Args):
    phone: str | None = Field(None, description="phone number; default: the caller's number")


class SaveDetailsArgs(_Args):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    service: str | None = Field(None, description="the service the caller is interested in")
    notes: str | None = None


class CreateTicketArgs(_Args):
    subject: str = Field(min_length=1)
    description: str = Field(min_length=1)
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    order_number: str | None = None


class ScheduleCallbackArgs(_Args):
    when: str = Field(min_length=1, description="ISO date-time or a phrase such as 'tomorrow 10:00'")
    reason: str = ""
    phone: str | None = None


class TransferArgs(_Args):
    reason: str = ""
    department: str | None = None


class HandoffArgs(_Args):
    persona: str = Field(description="the persona to hand the caller to")
    summary: str = Field("", description="a short summary of the conversation so far for the next agent")
    reason: str = ""


class DelegateArgs(_Args):
    agent: str = Field(min_length=1, description="the colleague (subagent) to ask")
    request: str = Field(min_length=1, max_length=2000, description="what to ask, with the caller's details")


class EndCallArgs(_Args):
    result: str = Field(min_length=1, description="e.g. completed, sale, not_interested, ticket_created")
    summary: str = ""


CrmLookup = Callable[[str], Awaitable[dict[str, Any] | None]]
TicketSink = Callable[[dict[str, Any]], Awaitable[str]]
CallbackSink = Callable[[dict[str, Any]], Awaitable[str]]
Handler = Callable[[Any, ToolContext], Awaitable[dict[str, Any]]]


@dataclass
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    handler: Handler

    def spec(self) -> dict[str, Any]:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                  "parameters": schema}}


class InMemoryTickets:
    """Default ticket/callback store when nothing else is wired (ids T-0001, CB-0001...)."""

    def __init__(self) -> None:
        self.tickets: list[dict[str, Any]] = []
        self.callbacks: list[dict[str, Any]] = []
        self._t = itertools.count(1)
        self._c = itertools.count(1)

    async def create_ticket(self, ticket: dict[str, Any]) -> str:
        ticket_id = f"T-{next(self._t):04d}"
        self.tickets.append({"id": ticket_id, **ticket})
        return ticket_id

    async def schedule_callback(self, request: dict[str, Any]) -> str:
        cb_id = f"CB-{next(self._c):04d}"
        self.callbacks.append({"id": cb_id, **request})
        return cb_id


class ToolRegistry:
    """The tools, with their side effects behind injected callables (CRM, tickets, callbacks)."""

    def __init__(self, *, crm_lookup: CrmLookup | None = None, create_ticket: TicketSink | None = None,
                 schedule_callback: CallbackSink | None = None) -> None:
        self.memory = InMemoryTickets()
        self.crm_lookup = crm_lookup
        self.ticket_sink = create_ticket or self.memory.create_ticket
        self.callback_sink = schedule_callback or self.memory.schedule_callback
        self._tools: dict[str, Tool] = {}
        for tool in self._builtin():
            self.register(tool)

    def register(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, allowed: list[str] | None = None) -> list[dict[str, Any]]:
        names = allowed if allowed is not None else list(self._tools)
        return [self._tools[n].spec() for n in names if n in self._tools]

    async def execute(self, name: str, arguments: str | dict[str, Any], ctx: ToolContext,
                      allowed: list[str] | None = None) -> ToolOutcome:
        def error(msg: str) -> ToolOutcome:
            return ToolOutcome(name, False, json.dumps({"ok": False, "error": msg}, ensure_ascii=False))

        tool = self._tools.get(name)
        if tool is None:
            return error(f"unknown tool {name!r}")
        if allowed is not None and name not in allowed:
            return error(f"tool {name!r} is not available to this agent")
        try:
            raw = json.loads(arguments) if isinstance(arguments, str) else arguments
            if raw is None or (isinstance(arguments, str) and not arguments.strip()):
                raw = {}
            args = tool.args.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            detail = exc.errors() if isinstance(exc, ValidationError) else str(exc)
            if isinstance(detail, list):
                detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                                   for e in detail)
            return error(f"invalid arguments: {detail}")
        effects_before = len(ctx.effects)
        try:
            result = await tool.handler(args, ctx)
        except Exception as exc:  # noqa: BLE001 - a failing backend is told to the model, not raised
            log.warning("tool %s failed: %s", name, exc)
            del ctx.effects[effects_before:]
            return error(f"{type(exc).__name__}: {exc}")
        effect = ctx.effects[-1] if len(ctx.effects) > effects_before else None
        if "error" in result:
            return ToolOutcome(name, False, json.dumps({"ok": False, **result}, ensure_ascii=False), effect)
        return ToolOutcome(name, True, json.dumps({"ok": True, **result}, ensure_ascii=False, default=str),
                           effect)

    # --- built-in tools ---------------------------------------------------------------------
    def _builtin(self) -> list[Tool]:
        async def lookup_contact(a: LookupContactArgs, ctx: ToolContext) -> dict[str, Any]:
            phone = a.phone or ctx.remote_number
            if self.crm_lookup is None:
                found = ctx.contact if ctx.contact and (not a.phone or a.phone == ctx.remote_number) else None
            else:
                found = await self.crm_lookup(phone)
            return {"found": bool(found), "contact": found or None}

        async def save_details(a: SaveDetailsArgs, ctx: ToolContext) -> dict[str, Any]:
            saved = {k: v for k, v in a.model_dump().items() if v}
            ctx.fields.update(saved)
            return {"saved": saved}

        async def create_ticket(a: CreateTicketArgs, ctx: ToolContext) -> dict[str, Any]:
            ticket = {**a.model_dump(), "call_id": ctx.call_id, "phone": ctx.remote_number,
                      "persona": ctx.persona, "fields": dict(ctx.fields)}
            ticket_id = await self.ticket_sink(ticket)
            ctx.tickets.append({"id": ticket_id, **ticket})
            return {"ticket_id": ticket_id}

        async def schedule_callback(a: ScheduleCallbackArgs, ctx: ToolContext) -> dict[str, Any]:
            request = {**a.model_dump(), "phone": a.phone or ctx.remote_number, "call_id": ctx.call_id}
            cb_id = await self.callback_sink(request)
            ctx.callbacks.append({"id": cb_id, **request})
            return {"callback_id": cb_id, "when": a.when}

        async def transfer(a: TransferArgs, ctx: ToolContext) -> dict[str, Any]:
            ctx.effects.append(Effect("transfer", a.model_dump()))
            return {"transferring": True}

        async def handoff(a: HandoffArgs, ctx: ToolContext) -> dict[str, Any]:
            if a.persona not in ctx.allowed_handoffs:
                return {"error": f"cannot hand off to {a.persona!r}; allowed: {ctx.allowed_handoffs}"}
            ctx.effects.append(Effect("handoff", a.model_dump()))
            return {"handing_off_to": a.persona}

        async def delegate(a: DelegateArgs, ctx: ToolContext) -> dict[str, Any]:
            if ctx.delegate is None:
                return {"error": "no subagents in this conversation"}
            return await ctx.delegate(a.agent, a.request)

        async def end_call(a: EndCallArgs, ctx: ToolContext) -> dict[str, Any]:
            ctx.effects.append(Effect("end", a.model_dump()))
            return {"ending": True, "result": a.result}

        return [
            Tool("lookup_contact", "Look up the caller (or a phone number) in the CRM.", LookupContactArgs,
                 lookup_contact),
            Tool("save_details", "Save details the caller gave: name, phone, email, service, notes.",
                 SaveDetailsArgs, save_details),
            Tool("create_ticket", "Open a support ticket for the caller's problem.", CreateTicketArgs,
                 create_ticket),
            Tool("schedule_callback", "Schedule a call back to the caller.", ScheduleCallbackArgs,
                 schedule_callback),
            Tool("transfer_to_operator", "Transfer the caller to a human operator.", TransferArgs, transfer),
            Tool("handoff", "Hand the caller to another AI agent (persona).", HandoffArgs, handoff),
            Tool("end_call", "End the call with a result once the conversation is finished.", EndCallArgs,
                 end_call),
            Tool("delegate", "Ask a colleague (a subagent of the sales strategy) and get their answer.",
                 DelegateArgs, delegate),
        ]


__all__ = ["CreateTicketArgs", "Effect", "EndCallArgs", "HandoffArgs", "InMemoryTickets", "Tool",
           "ToolContext", "ToolOutcome", "ToolRegistry"]
