"""Limits and error shapes at the built-in panel's HTTP edge, for every route (ours and those other
modules mount): no input may cost unbounded memory or CPU, reach the database in a form it cannot
store, or turn into a 500.

* `BodyLimits` (plain ASGI middleware): a request body over `max_body` bytes is a 413 before it is
  read whole; a JSON body is checked before any route sees it — nesting depth (without recursion),
  integers outside 64 bits, NaN/Infinity, NUL characters and lone surrogates (neither SQLite's nor
  PostgreSQL's text can hold them), array and object sizes — and refused with a 422.
* `install(app)`: every 422 has FastAPI's documented `HTTPValidationError` shape (also when a route
  raises `HTTPException(422, "text")`), never echoes the input back, and every operation documents
  the errors it can answer (401, 404, 405, 409, 413, 422) so the OpenAPI spec tells the truth.
* Reusable bounded types for request models (`Name`, `ShortText`, `Phone`, `Attributes`, `Id`, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from switchboard.panel.bounded import _BAD_CHARS, INT64, MAX_ID

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 1_048_576  # bytes of a JSON or form body
MAX_UPLOAD = 25 * 1024 * 1024  # a multipart upload (the console's contact import takes files up to 20 MB)
MAX_DEPTH = 32  # JSON nesting anywhere in a body
MAX_ITEMS = 10_000  # elements of one JSON array, keys of one object

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


class BodyError(ValueError):
    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def check_json(raw: bytes) -> None:
    """Raise `BodyError` naming where a JSON body breaks a limit; return None when it is fine
    (or not JSON at all: the route's own parsing reports that)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > MAX_DEPTH:
            raise BodyError(["body"], f"JSON nested more than {MAX_DEPTH} levels deep")
        deepest = max(deepest, depth)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(["body"], f"the body is not UTF-8 (byte {exc.start})") from None

    def constant(name: str) -> Any:
        raise BodyError(["body"], f"{name} is not a JSON number")

    try:
        data = json.loads(text, parse_constant=constant)
    except BodyError:
        raise
    except (ValueError, RecursionError):
        return  # malformed JSON: FastAPI answers its own 422 (json_invalid)
    stack: list[tuple[list[str | int], Any]] = [(["body"], data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if _BAD_CHARS.search(value):
                raise BodyError(loc, "text may not contain NUL characters or lone surrogates")
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        elif isinstance(value, int):
            if not -INT64 - 1 <= value <= INT64:
                raise BodyError(loc, "integer outside the 64-bit range")
        elif isinstance(value, list):
            if len(value) > MAX_ITEMS:
                raise BodyError(loc, f"more than {MAX_ITEMS} items")
            stack.extend(([*loc, i], v) for i, v in enumerate(value))
        elif isinstance(value, dict):
            if len(value) > MAX_ITEMS:
                raise BodyError(loc, f"more than {MAX_ITEMS} keys")
            for key, v in value.items():
                if _BAD_CHARS.search(key):
                    raise BodyError(loc, "keys may not contain NUL characters or lone surrogates")
                stack.append(([*loc, key[:100]], v))


def _detail(loc: list[str | int], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


class BodyLimits:
    """Plain ASGI middleware: size limit on every body, content checks on JSON bodies."""

    def __init__(self, app: Any, *, max_body: int = MAX_BODY, max_upload: int = MAX_UPLOAD) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        upload = headers.get("content-type", "").lower().startswith("multipart/form-data")
        limit = self.max_upload if upload else self.max_body  # the console's file imports
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await self._too_large(scope, receive, send, limit)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                # Read (and drop) a little more so an ordinary client sees the 413 rather than a
                # reset connection; beyond that, answer and close.
                seen = len(body)
                body = bytearray()
                while more and seen < 4 * limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    seen += len(message.get("body", b""))
                    more = message.get("more_body", False)
                await self._too_large(scope, receive, send, limit)
                return
        raw = bytes(body)
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if raw and (content_type in ("", "application/json") or content_type.endswith("+json")):
            try:
                check_json(raw)
            except BodyError as exc:
                await JSONResponse(_detail(exc.loc, exc.msg), status_code=422)(scope, receive, send)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = JSONResponse({"detail": f"the request body is larger than {limit} bytes"},
                                status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


# --- error shapes ---------------------------------------------------------------------------------
class ErrorOut(BaseModel):
    """Every error but 422: `{"detail": "what was wrong"}`."""

    detail: str


def _safe(value: Any) -> Any:
    """A loc element that JSON can always encode (no surrogates, bounded)."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "replace").decode("utf-8")[:100]


async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
    # The default handler echoes the input back: a megabyte echoed, or a value JSON cannot encode.
    errors = [{"loc": [_safe(p) for p in e.get("loc", ())], "msg": _safe(e.get("msg", "invalid"))[:300],
               "type": _safe(e.get("type", "value_error"))} for e in exc.errors()[:50]]
    return JSONResponse({"detail": errors}, status_code=422)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the spec documents for `path` (what a client can rely on)."""
    methods: set[str] = set()
    for template, item in app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI, *, max_body: int = MAX_BODY) -> None:
    """Limits and error shapes on `app` (call once, after every router is included)."""
    from fastapi.exception_handlers import http_exception_handler

    app.add_middleware(BodyLimits, max_body=max_body)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 422 and not isinstance(exc.detail, list):
            return JSONResponse(_detail(["request"], _safe(exc.detail)[:500]), status_code=422)
        if exc.status_code == 405:
            # One Allow header for the path (Starlette names only the first route's methods).
            allowed = ", ".join(_allowed_methods(app, request.url.path))
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allowed})
        if isinstance(exc.detail, str) and _BAD_CHARS.search(exc.detail):
            exc.detail = exc.detail.encode("utf-8", "replace").decode("utf-8")
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]

    async def out_of_range(_request: Request, exc: Exception) -> Response:
        # The last net for a number or text a route forgot to bound: the database refuses it, the
        # client hears why (422), never a 500.
        return JSONResponse(_detail(["request"], "a value is out of range for what can be stored"), status_code=422)

    app.add_exception_handler(OverflowError, out_of_range)
    from sqlalchemy.exc import DataError

    app.add_exception_handler(DataError, out_of_range)
    _document_errors(app)


def _document_errors(app: FastAPI) -> None:
    """Add the errors every operation can answer to the OpenAPI spec."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorOut"] = ErrorOut.model_json_schema()
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                responses = op["responses"]
                responses.setdefault("401", {"description": "Missing or wrong credentials", **error})
                responses.setdefault("403", {"description": "Not allowed for this account", **error})
                responses.setdefault("405", {"description": "Method not allowed on this path", **error})
                if "{" in path:
                    responses.setdefault("404", {"description": "No such resource", **error})
                if method in ("post", "put", "patch"):
                    responses.setdefault("409", {"description": "Conflicts with what exists", **error})
                    responses.setdefault("413", {"description": "Request body too large", **error})
                    responses.setdefault("422", {
                        "description": "Validation Error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
                    })
                    components.setdefault("HTTPValidationError", _http_validation_error())
                    components.setdefault("ValidationError", _validation_error_schema())
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _validation_error_schema() -> dict[str, Any]:
    return {"title": "ValidationError", "type": "object", "required": ["loc", "msg", "type"], "properties": {
        "loc": {"title": "Location", "type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"title": "Message", "type": "string"}, "type": {"title": "Error Type", "type": "string"}}}


def _http_validation_error() -> dict[str, Any]:
    return {"title": "HTTPValidationError", "type": "object", "properties": {
        "detail": {"title": "Detail", "type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}}}


# --- path and query parameters ---------------------------------------------------------------------
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
