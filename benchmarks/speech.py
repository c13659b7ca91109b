"""Speech benchmark: load time, memory, latency, real-time factor and WER of the offline engines.

    .venv/bin/python benchmarks/speech.py [--repeats N] [--json out.json]

Clips are generated here (Piper's natural voice and eSpeak), sent through an 8 kHz μ-law phone
line, and transcribed by Whisper base; so figures are reproducible on any machine with the
packages installed. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from switchboard.speech import audio as A
from switchboard.speech.vad import EndpointSettings, SileroVAD, WebRtcVAD
from switchboard.telephony.call import Audio

SHORT = [
    "Yes, I'm interested.",
    "No thanks.",
    "Where did you get my number?",
    "Please call me back tomorrow.",
    "I already have a loan.",
    "How much does it cost?",
    "Take me off your list.",
    "Can I talk to a person?",
]
LONG = [
    ("Hello, I got a message from your company last week about the new savings plan. I would like to "
    "know the monthly fee, whether I can cancel at any time, and if my wife can join the same account."),
    ("I'm driving right now so this is not a good moment. Could you please call me again on Saturday "
    "morning after ten o'clock, or send me the details by text message so I can read them later?"),
    ("To be honest I already pay for a similar service with another bank, and the price you mentioned "
    "sounds higher than what I pay today, so unless there is a discount I am not interested at all."),
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def normalise(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    return re.findall(r"[a-z0-9']+", text)


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) by Levenshtein distance over normalised words."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)], len(ref)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def phone(audio: Audio) -> Audio:
    return A.from_phone_line(A.to_phone_line(audio))


def fmt(x: float, unit: str = "s") -> str:
    if unit == "ms":
        return f"{x * 1000:.1f} ms"
    if unit == "us":
        return f"{x * 1e6:.0f} µs"
    return f"{x:.3f} s"


def bench_tts(name: str, make: Callable[[], Any], repeats: int) -> tuple[dict[str, Any], Any]:
    before = rss_mb()
    tts, load = timed(lambda: make())
    _, first = timed(lambda: tts.synthesize_sync(SHORT[0]))
    rows: dict[str, Any] = {"engine": name, "load_s": round(load + (first if name == "piper" else 0), 3),
                            "rss_mb": round(rss_mb() - before, 1)}
    for label, texts in (("short", SHORT), ("long", LONG)):
        lat, rtf = [], []
        for _ in range(repeats):
            for text in texts:
                audio, t = timed(lambda text=text: tts.synthesize_sync(text))
                lat.append(t)
                rtf.append(t / audio.duration)
        rows[f"{label}_p50_s"] = round(pct(lat, 0.5), 4)
        rows[f"{label}_p95_s"] = round(pct(lat, 0.95), 4)
        rows[f"{label}_rtf"] = round(statistics.mean(rtf), 4)
    return rows, tts


def bench_whisper(clips: dict[str, list[tuple[str, Audio]]], repeats: int, models_dir: Path) -> dict[str, Any]:
    from switchboard.speech.stt.whisper import WhisperSTT

    before = rss_mb()
    stt = WhisperSTT(models_dir, size="base", max_parallel=1)
    _, assemble_and_load = timed(stt.load)
    rows: dict[str, Any] = {"engine": "whisper-base int8", "load_s": round(assemble_and_load, 3),
                            "rss_mb": round(rss_mb() - before, 1)}
    stt.transcribe_sync(clips["piper-short"][0][1], language="en")  # first-call warm-up
    for label, items in clips.items():
        lat, rtf, edits, words = [], [], 0, 0
        for rep in range(repeats if "short" in label else max(1, repeats // 2)):
            for text, audio in items:
                result, t = timed(lambda audio=audio: stt.transcribe_sync(audio, language="en"))
                lat.append(t)
                rtf.append(t / audio.duration)
                if rep == 0:
                    e, n = wer(text, result.text)
                    edits, words = edits + e, words + n
        rows[label] = {"p50_s": round(pct(lat, 0.5), 3), "p95_s": round(pct(lat, 0.95), 3),
                       "rtf": round(statistics.mean(rtf), 3), "wer": round(edits / max(words, 1), 3),
                       "clips": len(items), "mean_clip_s": round(statistics.mean(a.duration for _, a in items), 2)}
    rows["_stt"] = stt
    return rows


def bench_vad(speech: list[Audio]) -> list[dict[str, Any]]:
    out = []
    for name, make in (("silero", lambda: SileroVAD(8000)), ("webrtc", lambda: WebRtcVAD(8000))):
        before = rss_mb()
        vad, load = timed(make)
        stream = A.concat([A.concat([A.silence(1.0, 8000), clip, A.silence(1.5, 8000)]) for clip in speech])
        frames = list(A.frames(stream, 20))
        start = time.perf_counter()
        events = []
        for frame in frames:
            events.extend(vad.process(frame))
        spent = time.perf_counter() - start
        ends = [e for e in events if e.kind == "end"]
        out.append({"engine": name, "load_s": round(load, 4), "rss_mb": round(rss_mb() - before, 1),
                    "per_20ms_frame_us": round(spent / len(frames) * 1e6, 1),
                    "rtf": round(spent / stream.duration, 5),
                    "utterances_found": f"{len(ends)}/{len(speech)}"})
    return out


def bench_endpoint_to_transcript(stt: Any, speech: list[tuple[str, Audio]], end_silence: float) -> dict[str, Any]:
    """Stream each caller answer (real-time pacing assumed) through Silero endpointing, then STT.
    Latency = audio time from the last speech sample to the VAD's end event + STT compute time."""
    delays, stt_times, totals = [], [], []
    for text, clip in speech:
        vad = SileroVAD(8000, settings=EndpointSettings(end_silence=end_silence))
        lead = 1.0
        stream = A.concat([A.silence(lead, 8000), clip, A.silence(3.0, 8000)])
        speech_end = lead + clip.duration
        utterance = None
        end_at = 0.0
        for frame in A.frames(stream, 20):
            for event in vad.process(frame):
                if event.kind == "end":
                    utterance, end_at = event.audio, event.at
            if utterance is not None:
                break
        if utterance is None:
            continue
        _, t = timed(lambda u=utterance: stt.transcribe_sync(u, language="en"))
        delays.append(end_at - speech_end)
        stt_times.append(t)
        totals.append(end_at - speech_end + t)
    return {"end_silence_s": end_silence, "vad_delay_p50_s": round(pct(delays, 0.5), 3),
            "stt_p50_s": round(pct(stt_times, 0.5), 3), "total_p50_s": round(pct(totals, 0.5), 3),
            "total_p95_s": round(pct(totals, 0.95), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from switchboard.speech.tts.espeak import EspeakTTS
    from switchboard.speech.tts.piper import PiperTTS

    print("== TTS (22,050 Hz out; latency per utterance) ==")
    def loaded_espeak() -> EspeakTTS:
        tts = EspeakTTS()
        tts._get_engine()
        return tts

    def loaded_piper() -> PiperTTS:
        tts = PiperTTS()
        tts._get_voice()
        return tts

    espeak_row, espeak = bench_tts("espeak", loaded_espeak, args.repeats)
    piper_row, piper = bench_tts("piper", loaded_piper, args.repeats)
    for row in (espeak_row, piper_row):
        print(f"  {row['engine']:<7} load {fmt(row['load_s'])}  RSS +{row['rss_mb']} MB  "
              f"short p50 {fmt(row['short_p50_s'], 'ms')} p95 {fmt(row['short_p95_s'], 'ms')} "
              f"RTF {row['short_rtf']}  long p50 {fmt(row['long_p50_s'], 'ms')} p95 "
              f"{fmt(row['long_p95_s'], 'ms')} RTF {row['long_rtf']}")

    clips = {
        "piper-short": [(t, phone(A.resample(piper.synthesize_sync(t), 8000))) for t in SHORT],
        "piper-long": [(t, phone(A.resample(piper.synthesize_sync(t), 8000))) for t in LONG],
        "espeak-short": [(t, phone(A.resample(espeak.synthesize_sync(t), 8000))) for t in SHORT],
    }

    print("== STT: Whisper base, clips via 8 kHz μ-law ==")
    with tempfile.TemporaryDirectory() as models:
        stt_rows = bench_whisper(clips, args.repeats, Path(models))
        stt = stt_rows.pop("_stt")
        print(f"  whisper-base int8 assemble+load {fmt(stt_rows['load_s'])}  RSS +{stt_rows['rss_mb']} MB")
        for label in clips:
            r = stt_rows[label]
            print(f"  {label:<13} ({r['clips']} clips, mean {r['mean_clip_s']} s)  p50 {fmt(r['p50_s'])}  "
                  f"p95 {fmt(r['p95_s'])}  RTF {r['rtf']}  WER {r['wer']:.1%}")

        print("== VAD at 8 kHz (20 ms frames in) ==")
        vad_rows = bench_vad([a for _, a in clips["piper-short"]])
        for row in vad_rows:
            print(f"  {row['engine']:<7} load {fmt(row['load_s'], 'ms')}  RSS +{row['rss_mb']} MB  "
                  f"{row['per_20ms_frame_us']} µs per 20 ms frame  RTF {row['rtf']}  "
                  f"utterances {row['utterances_found']}")

        print("== End of speech -> transcript (Silero endpointing + Whisper base) ==")
        e2e = [bench_endpoint_to_transcript(stt, clips["piper-short"], s) for s in (0.4, 0.6)]
        for row in e2e:
            print(f"  end_silence {row['end_silence_s']} s: VAD delay p50 {fmt(row['vad_delay_p50_s'])} + "
                  f"STT p50 {fmt(row['stt_p50_s'])} = p50 {fmt(row['total_p50_s'])}, "
                  f"p95 {fmt(row['total_p95_s'])}")
        stt.close()

    if args.json:
        args.json.write_text(json.dumps({"tts": [espeak_row, piper_row], "stt": stt_rows, "vad": vad_rows,
                                         "endpoint_to_transcript": e2e}, indent=2))


if __name__ == "__main__":
    main()
