"""Regenerate assets/audio/src/*.wav (the shipped scenarios' prompts) with the offline TTS voices.

Run once after changing a text in assets/audio/src/TEXTS.md; `switchboard prompts build` converts the
sources to the 8/16 kHz files calls play.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from switchboard.speech import audio as A
from switchboard.speech.tts.espeak import EspeakTTS
from switchboard.speech.tts.piper import PiperTTS

RATE = 16000
PROMPTS: dict[str, list[tuple[str, str]]] = {
    "hello": [("fa", "سلام، از آموزشگاه زبان صالحی تماس می‌گیریم. آیا به دوره‌های زبان انگلیسی علاقه دارید؟")],
    "yes": [("fa", "بسیار عالی. لطفاً گوشی را نگه دارید تا به همکارمان وصل شوید.")],
    "number": [("fa", "شماره شما را از فهرست علاقه‌مندان آموزشگاه داریم. آیا مایل به ثبت نام هستید؟")],
    "goodby": [("en", "Thank you for your time. Goodbye."), ("fa", "ممنون از وقتی که گذاشتید. خدانگهدار.")],
    "onhold": [("en", "Please hold while we connect you."), ("fa", "لطفاً چند لحظه منتظر بمانید.")],
    "disclosure": [("en", "This call is from Agrad and may be recorded for quality.")],
}


async def main() -> None:
    out = Path(__file__).resolve().parent.parent / "assets" / "audio" / "src"
    out.mkdir(parents=True, exist_ok=True)
    english, persian = PiperTTS(), EspeakTTS(default_language="fa")
    for name, parts in PROMPTS.items():
        pieces = []
        for language, text in parts:
            tts = english if language == "en" else persian
            speech = await tts.synthesize(text, language=language)
            pieces += [A.resample(A.normalize(speech), RATE), A.silence(0.25, RATE)]
        A.write_wav(out / f"{name}.wav", A.concat(pieces[:-1]))
        print(f"{name}.wav")


if __name__ == "__main__":
    asyncio.run(main())
