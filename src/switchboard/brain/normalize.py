"""Text normalisation for Persian, Arabic and English caller utterances.

Transcripts and hand-written keyword lists spell the same word in different ways (Arabic ي/ك vs
Persian ی/ک, diacritics, ZWNJ vs space, ۱۲۳ vs 123, punctuation). Matching always compares the
normalised forms of both sides, so this module is the single definition of "the same word".
"""

from __future__ import annotations

import re
import unicodedata

_CHAR_MAP: dict[int, str] = {
    # Arabic letter forms -> Persian ones.
    ord("ي"): "ی", ord("ى"): "ی", ord("ئ"): "ی", ord("ك"): "ک",
    ord("ة"): "ه", ord("ۀ"): "ه", ord("ؤ"): "و",
    ord("أ"): "ا", ord("إ"): "ا", ord("آ"): "ا", ord("ٱ"): "ا",
    # Zero-width joiners/non-joiners and marks: ZWNJ separates morphemes, treat it as a space.
    0x200C: " ", 0x200D: "", 0x200E: "", 0x200F: "", 0xFEFF: "",
    0x0640: "",  # tatweel (kashida)
}
for _i in range(10):
    _CHAR_MAP[0x06F0 + _i] = str(_i)  # Persian digits
    _CHAR_MAP[0x0660 + _i] = str(_i)  # Arabic-Indic digits

_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_SPACES = re.compile(r"\s+")


def _is_separator(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in ("P", "S") or cat in ("Zs", "Cc")


def normalize(text: str) -> str:
    """Canonical form: NFKC, Persian letters, no diacritics, ASCII digits, lower case,
    punctuation/symbols as spaces, single spaces, stripped."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = _DIACRITICS.sub("", text)
    text = text.translate(_CHAR_MAP)
    text = text.casefold()
    text = "".join(" " if _is_separator(ch) else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """The normalised text split into words."""
    norm = normalize(text)
    return norm.split(" ") if norm else []


# Hesitation sounds a transcript keeps ("uh", "um", Persian "اِم", Arabic "اممم"): they carry no
# intent, but a sentence encoder weighs them like words, so "Uh I don't have time for this" fell
# below the threshold that the same answer without "Uh" clears. Compared in normalised form.
FILLERS = frozenset({"uh", "uhh", "uhm", "um", "umm", "er", "erm", "ah", "ahh", "eh", "hm", "hmm", "mm",
                     "mhm", "ام", "امم", "اممم", "اه", "اوم", "ااا", "همم"})


def without_fillers(text: str) -> str:
    """`text` without its hesitation sounds (`FILLERS`), otherwise as written (the encoder embedded
    the examples as written, not normalised); the text itself when it holds nothing else."""
    kept = [w for w in text.split() if normalize(w) not in FILLERS]
    return " ".join(kept) if kept else text


_PERSIAN_ONLY = set("پچژگیک")  # letters Arabic text does not use (ی U+06CC, ک U+06A9)
_ARABIC_ONLY = set("ةيكىأإؤ")


def detect_language(text: str) -> str | None:
    """'fa', 'ar' or 'en' from the script of `text` (None when it cannot tell)."""
    arabic_script = sum(1 for ch in text if "\u0600" <= ch <= "\u06ff")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    if not arabic_script and not latin:
        return None
    if latin > arabic_script:
        return "en"
    persian = sum(1 for ch in text if ch in _PERSIAN_ONLY)
    arabic = sum(1 for ch in text if ch in _ARABIC_ONLY)
    if persian == arabic:
        return None  # words such as "بله" are spelled the same in both
    return "fa" if persian > arabic else "ar"
__all__ = ["FILLERS", "detect_language", "normalize", "without_fillers", "words"]
