"""The JSON "action" protocol: tools for models whose chat template has no tool support.

llama.cpp (and other servers) silently leave `tools` out of the prompt when the model's chat
template cannot render them, so a persona would never call a tool and nothing would notice. For
such servers (`LLMClient.capabilities().tools is False`) each reply is instead one JSON object,
grammar-constrained by a JSON schema (`response_format`), which any model can produce:

    {"say": "what to say to the caller", "action": null}
    {"say": "Let me book that.", "action": {"name": "schedule_callback", "arguments": {...}}}

`say` comes first in the schema (llama.cpp's grammar keeps the schema's property order), so the
spoken text streams out of the JSON as it is generated (`SayExtractor`) and the caller hears the
first sentence before the action is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from switchboard.brain.llm import ToolCall


ARGUMENT_MAX_CHARS = 200  # a tool argument said on a phone call (a name, a time, a note) is short


def _clean(schema: Any, defs: dict[str, Any]) -> Any:
    """A tool's parameter schema without titles; its `$defs` hoisted to the top (refs stay valid).
    Free-text strings get a `maxLength`: the grammar then closes them, so a rambling model cannot
    run the reply past its token budget with the JSON left open."""
    if isinstance(schema, dict):
        for name, sub in (schema.get("$defs") or {}).items():
            defs[name] = _clean(sub, defs)
        out = {k: _clean(v, defs) for k, v in schema.items() if k not in ("title", "$defs")}
        if out.get("type") == "string" and not {"maxLength", "pattern", "format", "enum", "const"} & set(out):
            out["maxLength"] = ARGUMENT_MAX_CHARS
        return out
    if isinstance(schema, list):
        return [_clean(v, defs) for v in schema]
    return schema


def action_schema(tool_specs: Sequence[dict[str, Any]], *, say_max_chars: int = 400) -> dict[str, Any]:
    """The reply schema: `say` (string of at most `say_max_chars`) then `action` (null or one of the
    tools with its arguments). Every string is bounded, so the JSON is complete within a budget."""
    defs: dict[str, Any] = {}
    choices: list[dict[str, Any]] = [{"type": "null"}]
    for spec in tool_specs:
        fn = spec["function"]
        params = _clean(fn.get("parameters") or {"type": "object", "properties": {}}, defs)
        choices.append({"type": "object", "properties": {"name": {"const": fn["name"]}, "arguments": params},
                        "required": ["name", "arguments"], "additionalProperties": False})
    schema: dict[str, Any] = {"type": "object",
                              "properties": {"say": {"type": "string", "maxLength": say_max_chars},
                                             "action": {"anyOf": choices}},
                              "required": ["say", "action"], "additionalProperties": False}
    if defs:
        schema["$defs"] = defs
    return schema


def response_format(tool_specs: Sequence[dict[str, Any]], *, say_max_chars: int = 400) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "reply", "strict": True,
                                                   "schema": action_schema(tool_specs, say_max_chars=say_max_chars)}}


def instructions(tool_specs: Sequence[dict[str, Any]]) -> str:
    """The system note that explains the protocol and lists the tools (the template cannot)."""
    lines = ['Answer every turn with one JSON object: {"say": "<what you say to the caller>", "action": null}.',
             'To use a tool, put it in "action": {"name": "<tool>", "arguments": {...}}; its result comes back '
             'in the next message as [tool result]. Keep "say" short: one or two spoken sentences.',
             "Tools:"]
    for spec in tool_specs:
        fn = spec["function"]
        params = (fn.get("parameters") or {}).get("properties") or {}
        args = ", ".join(f"{k}" + (f" ({v.get('description')})" if isinstance(v, dict) and v.get("description")
                                   else "") for k, v in params.items())
        lines.append(f"- {fn['name']}: {fn.get('description', '').strip()} Arguments: {args or 'none'}.")
    return "\n".join(lines)


def tool_result_message(name: str, content: str) -> dict[str, Any]:
    """A tool's result for a template without a tool role: a user turn, clearly marked as data."""
    return {"role": "user", "content": f"[tool result] {name}: {content}"}


class SayExtractor:
    """Pulls the `say` string out of a streamed JSON reply, character by character."""

    _ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

    def __init__(self) -> None:
        self.raw = ""
        self._pos = 0
        self._state = "seek"  # seek -> in_string -> done
        self._pending = ""  # an escape sequence split across chunks

    def feed(self, chunk: str) -> str:
        """The new characters of `say` that `chunk` completed (may be empty)."""
        self.raw += chunk
        out: list[str] = []
        while self._pos < len(self.raw) and self._state != "done":
            if self._state == "seek":
                head = self.raw[self._pos:]
                at = head.find('"say"')
                if at < 0:
                    return ""
                colon = head.find(":", at + 5)
                quote = head.find('"', colon + 1) if colon >= 0 else -1
                if quote < 0:
                    return ""
                self._pos += quote + 1
                self._state = "in_string"
                continue
            ch = self.raw[self._pos]
            if self._pending:
                seq = self._pending + ch
                if seq[1] == "u":
                    if len(seq) < 6:
                        self._pending = seq
                        self._pos += 1
                        continue
                    try:
                        out.append(chr(int(seq[2:6], 16)))
                    except ValueError:
                        pass
                else:
                    out.append(self._ESCAPES.get(seq[1], seq[1]))
                self._pending = ""
            elif ch == "\\":
                self._pending = ch
            elif ch == '"':
                self._state = "done"
            else:
                out.append(ch)
            self._pos += 1
        return "".join(out)


def parse_reply(raw: str | None, *, call_id: str) -> tuple[str, ToolCall | None]:
    """(what to say, the action as a tool call or None). A reply that is not the protocol's JSON is
    spoken as it is (a model may ignore the format when the server cannot constrain it)."""
    text = (raw or "").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text, None
    if not isinstance(data, dict):
        return text, None
    say = data.get("say")
    say = say.strip() if isinstance(say, str) else ""
    action = data.get("action")
    if isinstance(action, dict) and isinstance(action.get("name"), str) and action["name"]:
        args = action.get("arguments")
        return say, ToolCall(call_id, action["name"],
                             json.dumps(args if isinstance(args, dict) else {}, ensure_ascii=False))
    return say, None


__all__ = ["SayExtractor", "action_schema", "instructions", "parse_reply", "response_format",
           "tool_result_message"]
