"""The JSON action protocol's pieces that need no model (the model side is in tests/llm)."""

from __future__ import annotations

import json

from switchboard.brain import actions
from switchboard.brain.tools import ToolRegistry


def test_say_streams_out_of_json_split_anywhere():
    reply = json.dumps({"say": 'Hi "Sara" \\ ok\nسلام \u00e9.', "action": {"name": "end_call",
                                                                          "arguments": {"result": "sale"}}},
                       ensure_ascii=True)
    for size in (1, 2, 3, 7):
        ex = actions.SayExtractor()
        out = "".join(ex.feed(reply[i:i + size]) for i in range(0, len(reply), size))
        assert out == 'Hi "Sara" \\ ok\nسلام é.', size
    say, call = actions.parse_reply(reply, call_id="a1")
    assert say.startswith('Hi "Sara"') and call.name == "end_call"
    assert json.loads(call.arguments) == {"result": "sale"}


def test_schema_lists_every_tool_and_null():
    specs = ToolRegistry().specs(["save_details", "end_call"])
    schema = actions.action_schema(specs)
    assert list(schema["properties"]) == ["say", "action"]  # say first: it streams before the action
    names = [c.get("properties", {}).get("name", {}).get("const") for c in schema["properties"]["action"]["anyOf"]]
    assert names == [None, "save_details", "end_call"]
    assert "save_details" in actions.instructions(specs)


def test_every_string_of_the_reply_is_bounded_so_the_json_closes_within_budget():
    schema = actions.action_schema(ToolRegistry().specs(["save_details", "schedule_callback"]), say_max_chars=120)
    assert schema["properties"]["say"]["maxLength"] == 120
    strings = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "string":
                strings.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert len(strings) > 2  # say and the tools' text arguments
    assert all("maxLength" in s or "format" in s or "pattern" in s or "enum" in s for s in strings), strings


def test_a_reply_outside_the_protocol_is_spoken_as_text():
    assert actions.parse_reply("Sure, I can help.", call_id="x") == ("Sure, I can help.", None)
    assert actions.parse_reply('{"say": "ok", "action": null}', call_id="x") == ("ok", None)
