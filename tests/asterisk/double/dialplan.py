"""Far-side behaviour of the double: the `[context]` blocks of an Asterisk dialplan file (the same
`far-side-dialplan.conf` the real captures ran), parsed into (app, data) steps."""

from __future__ import annotations

import re
from pathlib import Path

_LINE = re.compile(r"^\s*(?:exten\s*=>\s*[^,]+,\s*1|same\s*=>\s*n)\s*,\s*(\w+)\((.*)\)\s*$")

SHARED_DIALPLAN = Path(__file__).resolve().parents[1] / "data" / "far-side-dialplan.conf"

# Extra far sides for operator legs (not in the captures; same apps, same semantics).
EXTRA_CONTEXTS = """
[operator-answer]
exten => s,1,NoOp(operator-answer)
 same => n,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(600)
 same => n,Hangup()

[operator-answer-then-hangup]
exten => s,1,NoOp(operator-answer-then-hangup)
 same => n,Ringing()
 same => n,Wait(1)
 same => n,Answer()
 same => n,Wait(3)
 same => n,Hangup(16)

[operator-noanswer]
exten => s,1,NoOp(operator-noanswer)
 same => n,Ringing()
 same => n,Wait(600)
 same => n,Hangup()

[operator-busy]
exten => s,1,NoOp(operator-busy)
 same => n,Busy(5)

[customer-idle]
; answers and stays on the line quietly until hung up
exten => s,1,NoOp(customer-idle)
 same => n,Answer()
 same => n,Wait(600)
 same => n,Hangup()
"""


def parse_dialplan(text: str) -> dict[str, list[tuple[str, str]]]:
    contexts: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].rstrip()
        if not line.strip():
            continue
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            name = header.group(1)
            current = None if name == "general" else contexts.setdefault(name, [])
            continue
        match = _LINE.match(line)
        if match and current is not None:
            current.append((match.group(1), match.group(2)))
    return contexts


def default_contexts() -> dict[str, list[tuple[str, str]]]:
    contexts = parse_dialplan(SHARED_DIALPLAN.read_text()) if SHARED_DIALPLAN.exists() else {}
    contexts.update(parse_dialplan(EXTRA_CONTEXTS))
    return contexts
