"""HTTP routes of browser calls, served by the panel server: the `/call` page, call tokens, offers.

* `GET /call` — the page (plain HTML + JS from `web/templates/browser_call.html`, `web/static/call.*`).
* `GET /api/v1/webrtc/targets` — the scenarios and personas this caller may call, the ICE servers.
* `POST /api/v1/calls/token` — `{scenario | persona, language?}` -> a single-use call token.
* `POST /api/v1/webrtc/offer` — `{token, sdp, type: offer}` -> `{sdp, type: answer, call_id}`.

Who may mint a token: a caller the panel authenticates with the right to place calls (a console
user whose role has the `write` scope, or an API token with it) for any target on offer; anyone at
all for the targets listed in `WEBRTC_PUBLIC_TARGETS` (a "Call us" button on a public page), rate
limited per client address. A console session must echo its CSRF token (`x-csrf-token`; the page
gets it from `/api/v1/webrtc/targets`, which only a same-origin page can read). The offer needs
nothing but the token, so a page can be served from anywhere that can reach us.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from switchboard.telephony.webrtc.backend import Busy, WebRTCBackend
from switchboard.telephony.webrtc.peer import MAX_SDP, IceConfig, OfferError
from switchboard.telephony.webrtc.targets import CallTargets
from switchboard.telephony.webrtc.tokens import CallScope, CallTokens, RateLimited, TokenError

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class Caller:
    """Who the panel says is asking (`authenticate` returns None for a stranger)."""

    name: str  # stored with the call as web:<name>
    may_call: bool  # may place calls to any target (else: public targets only, like a stranger)
    csrf: str | None = None  # a cookie session's CSRF token, which its changes must echo


Authenticate = Callable[[Request], Awaitable["Caller | None"]]
"""The panel's view of the request (never raises)."""

STATIC = {"call.js": "text/javascript", "call.css": "text/css"}


def page_policy(extra: Mapping[str, Sequence[str]] | None = None) -> str:
    """The page's Content-Security-Policy: the console's strict one (own scripts and styles only,
    no framing), opened only for what an avatar provider needs."""
    extra = extra or {}

    def directive(name: str, base: str) -> str:
        sources = " ".join(dict.fromkeys([base, *extra.get(name, [])]).keys()).strip()
        return f"{name} {sources or chr(39) + 'none' + chr(39)}"

    return "; ".join([
        "default-src 'self'", "img-src 'self' data:", "media-src 'self'", "style-src 'self'",
        directive("script-src", "'self'"), directive("connect-src", "'self'"), directive("frame-src", ""),
        "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str | None = Field(None, min_length=1, max_length=100)
    persona: str | None = Field(None, min_length=1, max_length=100)
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")

    @model_validator(mode="after")
    def _one_target(self) -> TokenRequest:
        if (self.scenario is None) == (self.persona is None):
            raise ValueError("name exactly one of `scenario` or `persona`")
        return self


class TokenOut(BaseModel):
    token: str
    expires_in: float
    kind: Literal["scenario", "persona"]
    name: str


class OfferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)
    sdp: str = Field(min_length=1, max_length=MAX_SDP)
    type: Literal["offer"] = "offer"


class AnswerOut(BaseModel):
    sdp: str
    type: str
    call_id: str


def _asset(path: str) -> str:
    return (resources.files("switchboard") / "web" / path).read_text(encoding="utf-8")


def build_router(backend: WebRTCBackend, targets: CallTargets, tokens: CallTokens, *,
                 authenticate: Authenticate, ice: IceConfig | None = None,
                 page_sources: Mapping[str, Sequence[str]] | None = None) -> APIRouter:
    router = APIRouter(tags=["browser calls"])
    page_ice = (ice or IceConfig()).for_page()
    policy = page_policy(page_sources)

    @router.get("/call", response_class=HTMLResponse, include_in_schema=False)
    async def call_page() -> HTMLResponse:
        return HTMLResponse(_asset("templates/browser_call.html"),
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": policy})

    @router.get("/call/static/{name}", include_in_schema=False)
    async def call_static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        return Response(_asset(f"static/{name}"), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @router.get("/api/v1/webrtc/targets")
    async def list_targets(request: Request) -> dict[str, object]:
        who = await authenticate(request)
        may_call = who is not None and who.may_call
        return {"signed_in": who is not None, "may_call": may_call, "caller": who.name if who else None,
                "csrf": who.csrf if who else None,
                "targets": [t.as_dict() for t in targets.visible(signed_in=may_call)],
                "ice_servers": page_ice, "active_calls": len(backend.active), "max_calls": backend.max_calls}

    @router.post("/api/v1/calls/token", response_model=TokenOut, status_code=status.HTTP_201_CREATED)
    async def mint_token(body: TokenRequest, request: Request) -> TokenOut:
        kind: Literal["scenario", "persona"] = "scenario" if body.scenario else "persona"
        name = body.scenario or body.persona or ""
        who = await authenticate(request)
        if who is not None and who.csrf is not None:
            sent = request.headers.get("x-csrf-token", "")
            if not sent or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the page")
        target = targets.find(kind, name)
        public = target is not None and targets.is_public(kind, name)
        if who is None and not public:
            # Same answer for "no such target" and "not public": strangers learn nothing.
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in (or send a bearer token) to call this",
                                headers={"WWW-Authenticate": "Bearer"})
        if who is not None and not who.may_call and not public:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{who.name} may not place calls: it needs the "
                                                           "'write' scope")
        if target is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {kind} named {name!r} takes browser calls")
        trusted = who is not None and who.may_call
        client = None if trusted else (request.client.host if request.client else "unknown")
        caller = who.name if who is not None else "anonymous"
        try:
            issued = tokens.mint(CallScope(kind, name, caller, body.language), client=client)
        except RateLimited as exc:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                                headers={"Retry-After": str(int(exc.retry_after))}) from None
        return TokenOut(token=issued.token, expires_in=issued.expires_in, kind=kind, name=name)

    @router.post("/api/v1/webrtc/offer", response_model=AnswerOut)
    async def offer(body: OfferRequest) -> AnswerOut:
        try:
            scope = tokens.consume(body.token)
        except TokenError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
        scenario = targets.scenario_for(scope)
        if scenario is None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{scope.kind} {scope.name!r} no longer takes browser calls")
        first = scope.name if scope.kind == "persona" else targets.first_persona(scenario)
        try:
            answer = await backend.accept(body.sdp, body.type, scope, scenario, persona=first)
        except OfferError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except Busy as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}) from None
        log.info("webrtc: call %s from %s to %s %s", answer.call_id, scope.caller, scope.kind, scope.name)
        return AnswerOut(sdp=answer.sdp, type=answer.type, call_id=answer.call_id)

    return router
