"""Labelled caller answers (`lang<TAB>label<TAB>utterance`) and the accuracy of a scenario's classifier on them.

Used by `switchboard intents test SCENARIO FILE.tsv` and `benchmarks/intent.py`: each line is
classified with the scenario's own settings (prompt, categories, tokens, examples, timeout, model)
through the same `IntentClassifier` a call uses, so the figure is what callers get.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_LINES = 100_000
MAX_UTTERANCE = 2_000


class DatasetError(ValueError):
    """A malformed line: the message names the file, the line and the rule it breaks."""


@dataclass(frozen=True, slots=True)
class Labelled:
    lang: str
    label: str
    text: str
    line: int
    tags: tuple[str, ...] = ()  # from a "# tag" comment on the line before (e.g. injection)


def load_tsv(path: Path, categories: Sequence[str] | None = None) -> list[Labelled]:
    """Rows of `path`. `#` starts a comment; a comment line directly above a row tags it
    ("# injection"). Labels outside `categories` (when given) are an error naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    allowed = set(categories) if categories is not None else None
    rows: list[Labelled] = []
    pending: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        if number > MAX_LINES:
            raise DatasetError(f"{path}:{number}: more than {MAX_LINES} lines")
        line = raw.rstrip("\r")
        if not line.strip():
            pending = ()
            continue
        if line.lstrip().startswith("#"):
            tag = line.lstrip()[1:].strip()
            pending = (tag,) if tag and " " not in tag else ()
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DatasetError(f"{path}:{number}: expected lang<TAB>label<TAB>utterance (3 fields), "
                               f"found {len(parts)}")
        lang, label, utterance = (p.strip() for p in parts)
        if not lang or not label or not utterance:
            raise DatasetError(f"{path}:{number}: empty field (lang, label and utterance are required)")
        if len(utterance) > MAX_UTTERANCE:
            raise DatasetError(f"{path}:{number}: utterance longer than {MAX_UTTERANCE} characters")
        if allowed is not None and label not in allowed:
            raise DatasetError(f"{path}:{number}: label {label!r} is not one of the scenario's "
                               f"categories {sorted(allowed)}")
        rows.append(Labelled(lang, label, utterance, number, pending))
        pending = ()
    if not rows:
        raise DatasetError(f"{path}: no labelled lines")
    return rows


@dataclass
class Outcome:
    row: Labelled
    got: str
    path: str
    latency: float


@dataclass
class Report:
    categories: list[str]
    outcomes: list[Outcome] = field(default_factory=list)
    wall: float = 0.0

    @property
    def accuracy(self) -> float:
        return sum(o.got == o.row.label for o in self.outcomes) / max(1, len(self.outcomes))

    def by(self, key: Any) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for o in self.outcomes:
            for k in key(o):
                out[k][0] += o.got == o.row.label
                out[k][1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}

    def per_language(self) -> dict[str, tuple[int, int]]:
        return self.by(lambda o: [o.row.lang])

    def confusion(self) -> dict[str, Counter[str]]:
        matrix: dict[str, Counter[str]] = {c: Counter() for c in self.categories}
        for o in self.outcomes:
            matrix.setdefault(o.row.label, Counter())[o.got] += 1
        return matrix

    def injections_as(self, intent: str) -> list[Outcome]:
        return [o for o in self.outcomes if "injection" in o.row.tags and o.got == intent]

    def lines(self) -> list[str]:
        """The printed report; the last line is `accuracy: N.N%`."""
        out = [f"{len(self.outcomes)} utterances, {self.wall:.2f} s"]
        for lang, (ok, n) in self.per_language().items():
            out.append(f"  {lang:4s} {ok:4d}/{n:<4d} {ok / n:6.1%}")
        injected = [o for o in self.outcomes if "injection" in o.row.tags]
        if injected:
            ok = sum(o.got == o.row.label for o in injected)
            out.append(f"  injection attempts {ok}/{len(injected)} right, "
                       f"{len(self.injections_as('yes'))} classified yes")
        paths = Counter(o.path for o in self.outcomes)
        out.append("decided by: " + ", ".join(f"{p} {n}" for p, n in paths.most_common()))
        cats = list(self.categories)
        for o in self.outcomes:
            if o.got not in cats:
                cats.append(o.got)
        width = max(8, *(len(c) for c in cats)) + 1
        out.append("confusion (rows: expected, columns: classified)")
        out.append(" " * width + "".join(f"{c:>{width}}" for c in cats))
        for label, row in self.confusion().items():
            out.append(f"{label:<{width}}" + "".join(f"{row.get(c, 0):>{width}}" for c in cats))
        out.append(f"accuracy: {self.accuracy * 100:.1f}%")
        return out


async def evaluate(classifier: Any, llm_config: Any, rows: Sequence[Labelled], *, concurrency: int = 8) -> Report:
    """Classify every row as a `classify_intent` step would with this scenario's `llm` settings."""
    import time

    sem = asyncio.Semaphore(concurrency)
    categories = list(dict.fromkeys([*llm_config.intent_categories, "unknown"]))
    report = Report(categories)
    outcomes: list[Outcome | None] = [None] * len(rows)

    async def one(i: int, row: Labelled) -> None:
        async with sem:
            d = await classifier.classify(
                row.text, prompt_template=llm_config.prompt_template, categories=llm_config.intent_categories,
                fallback_tokens=llm_config.fallback_tokens, examples=llm_config.examples or None,
                timeout=llm_config.timeout, model=llm_config.model)
            outcomes[i] = Outcome(row, d.intent, d.path, d.latency)

    started = time.perf_counter()
    await asyncio.gather(*(one(i, r) for i, r in enumerate(rows)))
    report.wall = time.perf_counter() - started
    report.outcomes = [o for o in outcomes if o is not None]
    return report


__all__ = ["DatasetError", "Labelled", "Outcome", "Report", "evaluate", "load_tsv"]
