"""Simulated contacts for the demo campaign: a deterministic mix of the callers a real campaign
meets (interested, not interested, asks where we got the number, silent, opts out, hangs up, busy,
no answer). Each caller answers in the language of the scenario that calls them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from switchboard.telephony.sim.script import AnswerAfter, CallerScript, Reply

BEHAVIOURS: dict[str, dict[str, list[Reply]]] = {
    "interested": {"fa": [Reply(say="بله حتما")], "en": [Reply(say="yes, I'm interested")],
                   "ar": [Reply(say="نعم")]},
    "not interested": {"fa": [Reply(say="نه ممنون")], "en": [Reply(say="no thanks")], "ar": [Reply(say="لا")]},
    "asks about the number": {"fa": [Reply(say="شماره منو از کجا آوردید"), Reply(say="بله")],
                              "en": [Reply(say="where did you get my number?"), Reply(say="no thanks")],
                              "ar": [Reply(say="من أين لكم رقمي"), Reply(say="لا")]},
    "silent": {"*": [Reply(silence=True)]},
    "opt-out": {"en": [Reply(say="please don't call me again")], "fa": [Reply(say="دیگه زنگ نزنید نه")],
                "ar": [Reply(say="لا تتصل بي")]},
}
_FIRST = ["Sara", "Ali", "Maryam", "Reza", "Neda", "John", "Layla", "Omid", "Amir", "Dina"]


@dataclass(slots=True)
class DemoContact:
    phone: str
    name: str
    behaviour: str  # a key of BEHAVIOURS, or "no_answer" / "busy"
    ring_seconds: float
    hangup_after: float | None
    talk_seconds: float

    def as_contact(self) -> dict[str, object]:
        return {"name": self.name, "phone": self.phone, "attributes": {"behaviour": self.behaviour}}

    def script(self, language: str | None) -> CallerScript:
        lang = language or "en"
        if self.behaviour in ("no_answer", "busy"):
            return CallerScript(phone=self.phone, name=self.name, answer=self.behaviour)  # type: ignore[arg-type]
        options = BEHAVIOURS[self.behaviour]
        replies = options.get(lang) or options.get("*") or options["en"]
        return CallerScript(phone=self.phone, name=self.name, language=lang,
                            attributes={"behaviour": self.behaviour},
                            answer=AnswerAfter(after_seconds=self.ring_seconds), replies=list(replies),
                            hangup_after=self.hangup_after, talk_seconds=self.talk_seconds)


def demo_contacts(count: int, seed: int = 7) -> list[DemoContact]:
    rng = random.Random(seed)
    out: list[DemoContact] = []
    kinds = list(BEHAVIOURS)
    for i in range(count):
        roll = rng.random()
        behaviour = "no_answer" if roll < 0.08 else "busy" if roll < 0.13 else rng.choice(kinds)
        out.append(DemoContact(phone=f"0912{3000000 + i:07d}", name=rng.choice(_FIRST), behaviour=behaviour,
                               ring_seconds=round(rng.uniform(1, 6), 1),
                               hangup_after=rng.choice([None, None, None, None, None, 3.0]),
                               talk_seconds=round(rng.uniform(20, 120), 0)))
    return out


def demo_contact_for(number: str) -> DemoContact:
    """A demo behaviour derived from the number itself (same number, same behaviour)."""
    seed = sum((i + 1) * ord(ch) for i, ch in enumerate(number))
    [person] = demo_contacts(1, seed=seed)
    person.phone = number
    return person
