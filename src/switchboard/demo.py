"""Simulated contacts for the demo campaign: a deterministic mix of the callers a real campaign
meets (interested, not interested, asks where we got the number, silent, opts out, hangs up, busy,
no answer). Each caller answers in the language of the scenario that calls them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from switchboard import clock
from switchboard.engine.context import CallContext
from switchboard.engine.results import ResultCatalog
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


# --- the story the demo tells in the terminal ------------------------------------------------------
class DemoStory:
    """The demo's terminal: a progress bar of contacts done out of the campaign's total (with the
    calls made and the virtual time in the contacts' zone), one line per call saying what happened
    and why, and at the end where the results are."""

    def __init__(self, console: Console, *, tz: tzinfo, catalog: ResultCatalog) -> None:
        self.console = console
        self.tz = tz
        self.catalog = catalog
        self.tally: dict[str, int] = {}
        self.calls = 0
        self.progress = Progress(TextColumn("[bold]demo campaign"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total} contacts done"),
                                 TextColumn("· {task.fields[calls]} calls · {task.fields[now]}"),
                                 TimeElapsedColumn(), console=console)
        self._task: TaskID | None = None
        self._count: Callable[[], Awaitable[int]] | None = None
        self._refreshing: set[asyncio.Task[None]] = set()

    def local(self, at: datetime) -> str:
        """`Mon 10:03 UTC+03:30`: a time as the contacts live it."""
        here = at.astimezone(self.tz)
        return f"{here:%a %H:%M} {here.tzname() or ''}".strip()

    def start(self, total: int, done: Callable[[], Awaitable[int]]) -> None:
        self._count = done
        self.progress.start()
        self._task = self.progress.add_task("contacts", total=total, calls=0, now=self.local(clock.now()))

    def stop(self) -> None:
        self.progress.stop()

    async def refresh(self) -> None:
        if self._task is not None and self._count is not None:
            self.progress.update(self._task, completed=await self._count(), calls=self.calls,
                                 now=self.local(clock.now()))

    def call_ended(self, ctx: CallContext) -> None:
        result = ctx.result or "unknown"
        meaning = self.catalog.get(result, ctx.scenario)
        self.tally[result] = self.tally.get(result, 0) + 1
        self.calls += 1
        heard = f' · heard "{ctx.transcripts[0]["text"]}"' if ctx.transcripts else ""
        why = (ctx.reason or meaning.display_name.lower()).replace("_", " ")
        if ctx.agent and not ctx.reason:
            why = f"talked to operator {ctx.agent}"
        phone = ctx.remote_number  # the operator's own terminal: numbers in full (logs mask them)
        self.progress.console.print(Text.assemble(
            f"{self.local(ctx.ended_at or clock.now())}  {phone}  {ctx.scenario:<16} ",
            (f"{result:<22}", "bold"), f" {why}{heard}"))
        task = asyncio.get_running_loop().create_task(self.refresh())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    def summary(self, *, log_file: str | None, web_console: bool, panel_url: str) -> None:
        self.console.print("results: " + ", ".join(f"{k}={v}" for k, v in sorted(self.tally.items())),
                           highlight=False)
        self.console.print("where the results are:", highlight=False)
        self.console.print("  switchboard calls               recent calls, results and why (--summary: per result)",
                           highlight=False)
        self.console.print(f"  switchboard panel               then {panel_url}/api/v1/export/results.csv (the export)"
                           f"{', ' + panel_url + '/ (the console)' if web_console else ''}", highlight=False)
        if log_file:
            self.console.print(f"  {log_file:<31} one line per placed call and per result", highlight=False)


def demo_day_start(last_activity: datetime | None, tz: tzinfo, today: datetime) -> datetime:
    """The demo's virtual clock starts at 10:00 (inside calling hours) in the contacts' zone: today,
    or, when an earlier run on the same data already went past that, the first later day, so a
    second run continues the story instead of rewinding it."""
    local = today.astimezone(tz).replace(hour=10, minute=0, second=0, microsecond=0)
    while last_activity is not None and local <= last_activity.astimezone(tz):
        local += timedelta(days=1)
    return local.astimezone(UTC)
