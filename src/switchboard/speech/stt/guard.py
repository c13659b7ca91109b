"""Guards against decoder loops: Whisper (notably on Persian) can repeat a word or phrase until the
token cap. A caller never says the same phrase four times in a row, so the repeats are cut."""

from __future__ import annotations

import re

_CHAR_RUN = re.compile(r"(.)\1{4,}")


def collapse_repetitions(text: str, *, max_repeats: int = 2, max_ngram: int = 8) -> str:
    """Keep at most `max_repeats` consecutive copies of any 1..`max_ngram`-word phrase, and cap
    runs of one character at 4."""
    text = _CHAR_RUN.sub(lambda m: m.group(1) * 4, text)
    words = text.split()
    changed = True
    while changed:
        changed = False
        for n in range(1, max_ngram + 1):
            i = 0
            out: list[str] = []
            while i < len(words):
                phrase = words[i:i + n]
                reps = 1
                while len(phrase) == n and words[i + reps * n:i + (reps + 1) * n] == phrase:
                    reps += 1
                if reps > max_repeats:
                    out.extend(phrase * max_repeats)
                    i += reps * n
                    changed = True
                else:
                    out.append(words[i])
                    i += 1
            words = out
    return " ".join(words)
