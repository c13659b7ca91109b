"""Sentence splitting for streamed synthesis (Latin and Perso-Arabic punctuation)."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?؟۔…;؛])\s+|\n+")


def split_sentences(text: str, *, max_chars: int = 240) -> list[str]:
    """Sentences in order; over-long ones are cut at commas/spaces so the first audio comes fast."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text.strip()):
        part = part.strip()
        while len(part) > max_chars:
            cut = max(part.rfind("،", 0, max_chars), part.rfind(",", 0, max_chars),
                      part.rfind(" ", 0, max_chars))
            cut = cut if cut > 0 else max_chars
            out.append(part[:cut + 1].strip())
            part = part[cut + 1:].strip()
        if part:
            out.append(part)
    return out
