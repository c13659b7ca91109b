"""Prompt references as streamed audio: what `play("sound:custom/hello")` sends down an `AudioPort`.

A scenario names its prompts as a PBX does (`sound:custom/hello`), as text (`tts:Hello there`,
`tts/fa:سلام`), or as a WAV file path. On a streamed call there is no PBX to play them, so:

* `sound:custom/<name>` is the prompt built by `switchboard prompts build` into `PROMPTS_WAV_DIR`
  (`<name>.wav` at 8 kHz, `<name>.wav16` at 16 kHz: the one matching the port's rate is taken, so
  nothing is resampled on the way); the same files `prompts sync` copies to Asterisk.
* `tts:` text is synthesized through the TTS cache (each text once, ever).
* a path to a `.wav` file is read as it is.

A prompt that cannot be found is a `CallFailed` naming the file it looked for, never silence.
Decoded prompts stay in a small in-memory cache (prompts repeat on every call).
"""

from __future__ import annotations

import asyncio
import re
import wave
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from switchboard.speech.audio import Audio, read_wav, resample
from switchboard.telephony.call import CallFailed

# A prompt given as text: `tts:Hello there` (TTS default language) or `tts/fa:سلام` (language given).
_TEXT_PROMPT = re.compile(r"^tts(?:/(?P<lang>[A-Za-z]{2,3}(?:[-_][A-Za-z]{2,4})?))?:(?P<text>.*)$", re.DOTALL)
PROMPT_FOLDER = "custom"  # `sound:custom/x` <-> PROMPTS_WAV_DIR/x.wav (where `prompts sync` puts them)


@dataclass(frozen=True, slots=True)
class TextPrompt:
    text: str
    language: str | None = None


def text_prompt(prompt: str) -> TextPrompt | None:
    """The text of a `tts:` prompt (None for a sound, file or URL reference)."""
    match = _TEXT_PROMPT.match(prompt)
    if match is None or not match.group("text").strip():
        return None
    return TextPrompt(match.group("text").strip(), match.group("lang") or None)


Synthesize = Callable[[str, "str | None", "str | None"], Awaitable[Audio]]
"""(text, language, voice) -> the whole utterance (a cached TTS)."""
StreamSpeech = Callable[[str, "str | None", "str | None"], AsyncIterator[Audio]]
"""(text, language, voice) -> audio sentence by sentence as it is synthesized."""


class PromptSource(Protocol):
    """Resolves a non-text prompt reference to audio at `sample_rate`."""

    async def load(self, prompt: str, sample_rate: int) -> Audio: ...


class PromptLibrary:
    """`sound:custom/...` from the built prompts folder and `.wav` paths, decoded once each."""

    def __init__(self, wav_dir: Path, *, cache_size: int = 64) -> None:
        self.wav_dir = Path(wav_dir)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int], Audio] = OrderedDict()

    def candidates(self, prompt: str, sample_rate: int) -> list[Path]:
        """The files that would serve `prompt`, best first (the port's own rate first)."""
        ref = prompt.strip()
        if ref.startswith("sound:"):
            name = ref[len("sound:"):]
            folder, _, rest = name.partition("/")
            if folder != PROMPT_FOLDER or not rest or ".." in Path(rest).parts:
                raise CallFailed(f"prompt {prompt!r}: only sound:{PROMPT_FOLDER}/<name> prompts can be played on a "
                                 f"streamed call (they are the files built into {self.wav_dir})")
            stem = self.wav_dir / rest
            wide, narrow = stem.with_name(stem.name + ".wav16"), stem.with_name(stem.name + ".wav")
            return [wide, narrow] if sample_rate >= 16000 else [narrow, wide]
        if ref.lower().endswith(".wav") and "://" not in ref:
            return [Path(ref.removeprefix("file:"))]
        raise CallFailed(f"prompt {prompt!r} cannot be played on a streamed call: use sound:{PROMPT_FOLDER}/<name>, "
                         "tts:<text> or a .wav file")

    async def load(self, prompt: str, sample_rate: int) -> Audio:
        key = (prompt, sample_rate)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        paths = self.candidates(prompt, sample_rate)
        path = next((p for p in paths if p.is_file()), None)
        if path is None:
            raise CallFailed(f"prompt {prompt!r}: file {paths[0]} not found (run `switchboard prompts build`, "
                             f"or set PROMPTS_WAV_DIR)")
        try:
            audio = await asyncio.to_thread(_read_at, path, sample_rate)
        except (OSError, ValueError, EOFError, wave.Error) as exc:
            raise CallFailed(f"prompt {prompt!r}: cannot read {path}: {exc}") from exc
        self._cache[key] = audio
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return audio


def _read_at(path: Path, sample_rate: int) -> Audio:
    return resample(read_wav(path), sample_rate)
