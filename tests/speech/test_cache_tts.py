from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard.speech import audio as A
from switchboard.speech.base import TTS
from switchboard.speech.cache import CachedTTS, cache_key
from switchboard.speech.tts.espeak import EspeakTTS
from switchboard.speech.tts.text import split_sentences
from switchboard.telephony.call import Audio


class CountingTTS:
    """Wraps real eSpeak and counts how often synthesis really ran."""

    def __init__(self, name: str = "espeak") -> None:
        self.name = name
        self.inner = EspeakTTS()
        self.calls = 0

    async def synthesize(self, text: str, *, voice: str | None = None,
                         language: str | None = None) -> Audio:
        self.calls += 1
        return await self.inner.synthesize(text, voice=voice, language=language)

    async def stream(self, text: str, *, voice: str | None = None,
                     language: str | None = None) -> AsyncIterator[Audio]:
        async for chunk in self.inner.stream(text, voice=voice, language=language):
            self.calls += 1
            yield chunk


def test_key_depends_on_every_part() -> None:
    base = cache_key("hello", "v", "en", "espeak")
    assert base == cache_key("hello", "v", "en", "espeak")
    assert len({base, cache_key("hello!", "v", "en", "espeak"), cache_key("hello", "w", "en", "espeak"),
                cache_key("hello", "v", "fa", "espeak"), cache_key("hello", "v", "en", "piper")}) == 5


async def test_cache_hits_after_first_synthesis(tmp_path: Path) -> None:
    inner = CountingTTS()
    tts = CachedTTS(inner, tmp_path)
    assert isinstance(tts, TTS)
    first = await tts.synthesize("Hello there.", language="en")
    second = await tts.synthesize("Hello there.", language="en")
    assert inner.calls == 1 and (tts.hits, tts.misses) == (1, 1)
    assert second.pcm == first.pcm and second.sample_rate == first.sample_rate
    await tts.synthesize("Hello there.", language="fa")
    assert inner.calls == 2
    # a fresh wrapper (new process) still hits the files on disk
    again = CachedTTS(CountingTTS(), tmp_path)
    await again.synthesize("Hello there.", language="en")
    assert again.hits == 1 and len(list(tmp_path.rglob("*.wav"))) == 2


async def test_corrupt_entry_is_rewritten(tmp_path: Path) -> None:
    inner = CountingTTS()
    tts = CachedTTS(inner, tmp_path)
    path = tts.path_for("Broken.", None, "en")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFFgarbage")
    audio = await tts.synthesize("Broken.", language="en")
    assert inner.calls == 1 and A.read_wav(path).pcm == audio.pcm


async def test_stream_is_cached_as_a_whole(tmp_path: Path) -> None:
    inner = CountingTTS()
    tts = CachedTTS(inner, tmp_path)
    text = "First sentence. Second one! Third?"
    chunks = [c async for c in tts.stream(text, language="en")]
    assert len(chunks) == 3 and inner.calls == 3
    replay = [c async for c in tts.stream(text, language="en")]
    assert len(replay) == 1 and inner.calls == 3
    assert replay[0].pcm == A.concat(chunks).pcm


def test_split_sentences() -> None:
    assert split_sentences("Hi. How are you? Fine!") == ["Hi.", "How are you?", "Fine!"]
    assert split_sentences("سلام. حال شما چطور است؟ خوبم") == ["سلام.", "حال شما چطور است؟", "خوبم"]
    long = ", ".join(["word"] * 100)
    parts = split_sentences(long, max_chars=50)
    assert all(len(p) <= 51 for p in parts) and " ".join(parts).count("word") == 100


@pytest.mark.parametrize("language,text", [("en", "Hello, how are you?"), ("fa", "سلام، حال شما چطور است؟"),
                                           ("ar", "مرحبا، كيف حالك؟")])
async def test_espeak_speaks_each_language(espeak: EspeakTTS, language: str, text: str) -> None:
    audio = await espeak.synthesize(text, language=language)
    assert audio.sample_rate == 22050
    assert 0.5 < audio.duration < 4
    assert A.rms(audio) > 0.02


async def test_espeak_stream_and_unknown_voice(espeak: EspeakTTS) -> None:
    chunks = [c async for c in espeak.stream("One. Two. Three.", language="en")]
    assert len(chunks) == 3
    with pytest.raises(ValueError):
        await espeak.synthesize("x", voice="no-such-voice")


@pytest.mark.models
async def test_piper_joe_voice(piper) -> None:  # type: ignore[no-untyped-def]
    audio = await piper.synthesize("Hello, this is a natural voice.")
    assert audio.sample_rate == 22050 and 1.0 < audio.duration < 5 and A.rms(audio) > 0.02
    chunks = [c async for c in piper.stream("First part. Second part.")]
    assert len(chunks) == 2
