"""Simulated contacts for the demo campaign: a deterministic mix of the callers a real campaign
meets (interested, not interested, asks where we got the number, silent, hangs up, busy, no answer)."""

from __future__ import annotations

import random

from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

_PERSIAN = [
    ("interested", [Reply(say="بله حتما، علاقه دارم")]),
    ("not interested", [Reply(say="نه ممنون، نمیخوام")]),
    ("asks about the number", [Reply(say="شماره منو از کجا آوردید؟"), Reply(say="آره بگید")]),
    ("silent", [Reply(silence=True)]),
]
_ENGLISH = [
    ("interested", [Reply(say="yes, I'm interested")]),
    ("not interested", [Reply(say="no thanks")]),
    ("asks about the number", [Reply(say="where did you get my number?"), Reply(say="no thanks")]),
    ("opt-out", [Reply(say="please don't call me again")]),
]
_FIRST = ["Sara", "Ali", "Maryam", "Reza", "Neda", "John", "Layla", "Omid", "Amir", "Dina"]


def demo_callers(count: int, seed: int = 7) -> list[CallerScript]:
    rng = random.Random(seed)
    out: list[CallerScript] = []
    for i in range(count):
        name = rng.choice(_FIRST)
        phone = f"0912{3000000 + i:07d}"
        roll = rng.random()
        if roll < 0.08:
            out.append(CallerScript(phone=phone, name=name, answer="no_answer"))
            continue
        if roll < 0.13:
            out.append(CallerScript(phone=phone, name=name, answer="busy"))
            continue
        english = rng.random() < 0.5
        label, replies = rng.choice(_ENGLISH if english else _PERSIAN)
        hangup_after = rng.choice([None, None, None, None, 3.0])
        out.append(CallerScript(phone=phone, name=name, language="en" if english else "fa",
                                attributes={"persona": label, "lang": "en" if english else "fa"},
                                answer=AnswerAfter(after_seconds=round(rng.uniform(1, 6), 1)),
                                replies=list(replies), hangup_after=hangup_after,
                                talk_seconds=round(rng.uniform(20, 120), 0)))
    return out
