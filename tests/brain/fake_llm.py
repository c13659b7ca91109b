"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks.

llama-cpp-python ships only as an sdist here (a long C++ build), so this double stands in for a
real server. It speaks the real wire format, used through the real `openai` client:
`POST /v1/chat/completions` JSON bodies (`chat.completion`, `usage`, `tool_calls`), SSE streaming
(`chat.completion.chunk` objects, tool-call argument deltas, a usage-only final chunk when
`stream_options.include_usage` is set, `data: [DONE]`), and error bodies
`{"error": {"message", "type", "param", "code"}}` with 401/429/500 status codes.

Replies come from a script (`push`) or, when the script is empty, from a small rule-based "model":
for a JSON-schema response format it picks an enum value via `intent_oracle`, and it is
deliberately gullible: an instruction such as "ignore your instructions" found anywhere in the
prompt OUTSIDE a `<transcript>` data block is obeyed. A classifier that mixes caller words into
its instructions therefore fails the injection tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class Reply:
    content: str | None = None
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)  # (name, args dict or raw str)
    status: int = 200
    error: dict[str, Any] | None = None
    delay: float = 0.0  # seconds before answering (before the first chunk when streaming)
    chunk_delay: float = 0.0  # seconds between streamed chunks
    headers: dict[str, str] = field(default_factory=dict)
    raw_stream: list[str] | None = None  # streamed verbatim (for malformed-stream tests)


def quota_error() -> Reply:
    return Reply(status=429, error={
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"})


def rate_limit_error(retry_after: str = "0") -> Reply:
    return Reply(status=429, headers={"retry-after": retry_after}, error={
        "message": "Rate limit reached for requests", "type": "requests", "param": None,
        "code": "rate_limit_exceeded"})


def server_error() -> Reply:
    return Reply(status=500, error={
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error", "param": None, "code": None})


def auth_error() -> Reply:
    return Reply(status=401, error={
        "message": "Incorrect API key provided: sk-****. You can find your API key at your account page.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"})


INJECTION = re.compile(r"ignore (all |your |the )?(previous )?instructions|say yes|answer yes|"
                       r"تجاهل التعليمات|دستورات را نادیده", re.IGNORECASE)
TRANSCRIPT_BLOCK = re.compile(r"<transcript>(.*?)</transcript>", re.DOTALL)


def default_oracle(transcript: str, enum: list[str]) -> str:
    low = transcript.lower()
    for value in enum:
        if value.lower() in low:
            return value
    return "unknown" if "unknown" in enum else enum[-1]


def _decode(block: str) -> str:
    try:
        value = json.loads(block)
    except ValueError:
        return block
    return value if isinstance(value, str) else block


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


class FakeLLM:
    """Start with `with FakeLLM() as llm:` (or start()/stop()); point clients at `llm.base_url`."""

    def __init__(self, *, api_key: str | None = None,
                 intent_oracle: Callable[[str, list[str]], str] = default_oracle,
                 responder: Callable[[dict[str, Any]], Reply] | None = None, model: str = "fake-model") -> None:
        self.api_key = api_key
        self.intent_oracle = intent_oracle
        self.responder = responder
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Reply | Callable[[dict[str, Any]], Reply]] = deque()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = self._build_app()

    # --- control ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        self.script.extend(replies)

    def start(self) -> FakeLLM:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve(sockets=[sock])),
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the "model" ------------------------------------------------------------------------
    def model_reply(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        prompt = "\n".join(_text_of(m) for m in messages)
        instructions = TRANSCRIPT_BLOCK.sub(" ", prompt)
        blocks = TRANSCRIPT_BLOCK.findall(_text_of(messages[-1])) if messages else []
        data = _decode(blocks[-1]) if blocks else ""
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema":
            schema = rf.get("json_schema", {}).get("schema", {})
            prop = next(iter(schema.get("properties", {}).items()), ("intent", {}))
            enum = list(prop[1].get("enum", []))
            if INJECTION.search(instructions):
                answer = "yes"  # gullible: obeys instructions it finds outside the data block
            else:
                answer = self.intent_oracle(data or prompt, enum)
            return Reply(content=json.dumps({prop[0]: answer}))
        choice = body.get("tool_choice")
        forced = None
        if isinstance(choice, dict) and choice.get("type") == "function":
            forced = choice["function"]["name"]
        elif choice == "required" and len(body.get("tools") or []) == 1:  # the only tool must be called
            forced = body["tools"][0]["function"]["name"]
        if forced is not None:
            name = forced
            enum = []
            for tool in body.get("tools", []):
                if tool["function"]["name"] == name:
                    props = tool["function"].get("parameters", {}).get("properties", {})
                    first = next(iter(props.items()), ("intent", {}))
                    enum = list(first[1].get("enum", []))
                    answer = "yes" if INJECTION.search(instructions) else self.intent_oracle(data or prompt, enum)
                    return Reply(tool_calls=[(name, {first[0]: answer})])
        last = _text_of(messages[-1]) if messages else ""
        return Reply(content=f"You said: {last[:80]}. How can I help further?")

    # --- HTTP ---------------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Any:
            if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
                return self._error(auth_error())
            body = await request.json()
            self.requests.append(body)
            if self.script:
                item = self.script.popleft()
                reply = item(body) if callable(item) else item
            elif self.responder is not None:
                reply = self.responder(body)
            else:
                reply = self.model_reply(body)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.error is not None:
                return self._error(reply)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return StreamingResponse(self._sse(body, reply, include_usage),
                                         media_type="text/event-stream")
            return JSONResponse(self._completion(body, reply))

        @app.get("/v1/models")
        async def models() -> Any:
            return {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0,
                                                "owned_by": "fake"}]}

        return app

    @staticmethod
    def _error(reply: Reply) -> JSONResponse:
        return JSONResponse({"error": reply.error}, status_code=reply.status, headers=reply.headers)

    @staticmethod
    def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
        prompt = sum(len(_text_of(m).split()) + 4 for m in body.get("messages", []))
        completion = len((reply.content or "").split()) + sum(
            len(json.dumps(a)) // 4 + 1 for _, a in reply.tool_calls)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    @staticmethod
    def _calls(reply: Reply) -> list[dict[str, Any]]:
        return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                 "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                for name, args in reply.tool_calls]

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = self._calls(reply)
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
                "usage": self._usage(body, reply), "system_fingerprint": "fp_fake"}

    async def _sse(self, body: dict[str, Any], reply: Reply, include_usage: bool):  # type: ignore[no-untyped-def]
        if reply.raw_stream is not None:
            for raw in reply.raw_stream:
                yield raw
            return
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = body.get("model", self.model)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": "fp_fake",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in re.findall(r"\S+\s*", reply.content or ""):
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            yield chunk({"content": piece})
        for index, call in enumerate(self._calls(reply)):
            args = call["function"]["arguments"]
            yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": ""}}]})
            for start in range(0, len(args), 7):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[start:start + 7]}}]})
        yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
        if include_usage:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": "fp_fake", "choices": [], "usage": self._usage(body, reply)}
            yield f"data: {json.dumps(obj)}\n\n"
        yield "data: [DONE]\n\n"
