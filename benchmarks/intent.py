"""Accuracy and cost of the intent classifier on held-out caller answers, written and spoken.

The data is `tests/brain/data/intents/` for `scenarios/salehi_language.yaml` (yes / no /
number_question / unknown; Persian, English, Arabic; injection attempts among them):
`salehi_dev.tsv` calibrates the encoders' "unknown" threshold, `salehi_heldout.tsv` measures. Every
utterance goes through the project's own `IntentClassifier` with the scenario's settings.

    .venv/bin/python benchmarks/intent.py                 # keywords, USE, e5 on the held-out set
    .venv/bin/python benchmarks/intent.py --calibrate     # threshold sweep on the dev split
    .venv/bin/python benchmarks/intent.py --llama         # + SmolLM2-135M on llama-server (scripts/llama-server.sh)
    .venv/bin/python benchmarks/intent.py --llm-url URL --api-key KEY --model NAME   # + any OpenAI-compatible model
    .venv/bin/python benchmarks/intent.py --spoken        # eSpeak -> 8 kHz mu-law -> VAD -> STT -> classify

Figures on a shared 2-core machine are noisy; run it where nothing else runs for final numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from switchboard.brain.evaluation import Labelled, Report, evaluate, load_tsv  # noqa: E402
from switchboard.brain.fallback import classify_by_tokens  # noqa: E402
from switchboard.brain.intents import IntentClassifier  # noqa: E402
from switchboard.brain.llm import LLMClient  # noqa: E402
from switchboard.brain.semantic import DEFAULT_THRESHOLDS, SemanticClassifier  # noqa: E402
from switchboard.flows.validate import parse_scenario_file  # noqa: E402

DATA = ROOT / "tests" / "brain" / "data" / "intents"
SCENARIO = ROOT / "scenarios" / "salehi_language.yaml"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def summary(name: str, report: Report, extra: str = "") -> None:
    lat = sorted(o.latency * 1000 for o in report.outcomes)
    langs = "  ".join(f"{lang} {ok / n:.1%}" for lang, (ok, n) in report.per_language().items())
    print(f"{name:34s} accuracy {report.accuracy:6.1%}  ({langs})  injections->yes "
          f"{len(report.injections_as('yes'))}  p50 {statistics.median(lat):.1f} ms{extra}")


def scenario_llm():
    parsed = parse_scenario_file(SCENARIO)
    assert parsed.scenario is not None, parsed.errors
    return parsed.scenario.spec


async def written(args: argparse.Namespace) -> None:
    spec = scenario_llm()
    llm_cfg = spec.llm
    rows = load_tsv(DATA / "salehi_heldout.tsv", [*llm_cfg.intent_categories, "unknown"])
    print(f"held-out: {len(rows)} answers, "
          + ", ".join(f"{k} {v}" for k, v in sorted(count(rows, lambda r: r.lang).items())))
    summary("keywords only", await evaluate(IntentClassifier(), llm_cfg, rows))
    for name in args.encoders:
        before = rss_mb()
        started = time.perf_counter()
        sem = SemanticClassifier(name)
        sem.encoder()
        load = time.perf_counter() - started
        clf = IntentClassifier(semantic=sem)
        await evaluate(clf, llm_cfg, rows[:4])  # embeds the scenario's examples once
        per = embed_ms(sem, rows)
        report = await evaluate(clf, llm_cfg, rows)
        summary(f"keywords + {name} (threshold {sem.threshold:.2f})", report,
                f"  embed {per:.1f} ms/utt  load {load:.2f} s  RSS +{rss_mb() - before:.0f} MB")
        sem.close()
    server = None
    url, key, model = args.llm_url, args.api_key, args.model
    if args.llama:
        server = LlamaServer.start()
        url, key, model = server.base_url, "none", "smollm2"
    if url:
        llm = LLMClient(base_url=url, api_key=key, model_critical=model, model_cheap=model,
                        timeout=args.timeout, max_parallel=8, cache_ttl=0)
        try:
            for structured in ("json_schema", "tool"):
                clf = IntentClassifier(llm=llm, default_timeout=args.timeout, structured=structured)
                report = await evaluate(clf, llm_cfg.model_copy(update={"timeout": args.timeout}), rows)
                paths = count(report.outcomes, lambda o: o.path)
                summary(f"llm {model} ({structured})", report, f"  paths {dict(paths)}")
            clf = IntentClassifier(llm=llm, default_timeout=args.timeout,
                                   semantic=SemanticClassifier(args.encoders[0]))
            report = await evaluate(clf, llm_cfg.model_copy(update={"timeout": args.timeout}), rows)
            summary(f"llm {model}, {args.encoders[0]} as fallback", report,
                    f"  paths {dict(count(report.outcomes, lambda o: o.path))}")
        finally:
            await llm.aclose()
            if server is not None:
                server.stop()


def count(items, key) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for item in items:
        out[key(item)] += 1
    return dict(out)


def embed_ms(sem: SemanticClassifier, rows: list[Labelled]) -> float:
    enc = sem.encoder()
    assert enc is not None
    started = time.perf_counter()
    for r in rows:
        enc.embed([r.text])
    return (time.perf_counter() - started) / len(rows) * 1000


def calibrate(args: argparse.Namespace) -> None:
    """Sweep the threshold on the dev split: each row's nearest example is computed once."""
    llm_cfg = scenario_llm().llm
    cats = llm_cfg.intent_categories
    rows = load_tsv(DATA / "salehi_dev.tsv", [*cats, "unknown"])
    for name in args.encoders:
        sem = SemanticClassifier(name, threshold=-1.0)  # always reach the encoder when it would be asked
        decided = [(r, sem.classify_sync(r.text, categories=cats, fallback_tokens=llm_cfg.fallback_tokens,
                                         examples=llm_cfg.examples)) for r in rows]
        results = []
        for step in range(30, 97):
            th = step / 100
            ok = 0
            for r, d in decided:
                intent = d.intent
                if d.decided == "semantic" and d.score is not None and d.score < th:
                    intent = classify_by_tokens(r.text, llm_cfg.fallback_tokens, cats)
                ok += intent == r.label
            results.append((ok / len(rows), th))
        best = max(a for a, _ in results)
        plateau = [th for a, th in results if a == best]
        chosen = plateau[len(plateau) // 2]
        print(f"{name}: dev {len(rows)} answers, best accuracy {best:.1%} for thresholds "
              f"{plateau[0]:.2f}..{plateau[-1]:.2f}; middle {chosen:.2f} (default in semantic.py: "
              f"{DEFAULT_THRESHOLDS.get(name)})")
        sem.close()


async def spoken(args: argparse.Namespace) -> None:
    """Each held-out answer as a call hears it: eSpeak voices it, 8 kHz mu-law, a second of line
    silence before and after, the configured VAD cuts the utterance out (as a streamed call's listen
    does), then `SpeechService.transcribe` (empty-audio rule, enhancement, the STT chosen for the
    language, the scenario's hotwords) and the offline classifier with the scenario's settings.

    The scenario is Persian: its hotwords go with Persian answers; English and Arabic answers stand
    for the same flow written in those languages, which declares no hotwords (Persian ones leaked
    into Arabic transcripts as "نه" and read as "no")."""
    from switchboard.settings import Settings
    from switchboard.speech.audio import concat, silence, through_phone_line
    from switchboard.speech.base import EmptyAudio
    from switchboard.speech.service import SpeechService
    from switchboard.speech.tts.espeak import EspeakTTS

    spec = scenario_llm()
    llm_cfg = spec.llm
    rows = [r for r in load_tsv(DATA / "salehi_heldout.tsv", [*llm_cfg.intent_categories, "unknown"])
            if "injection" not in r.tags and (not args.languages or r.lang in args.languages)]
    if args.limit:
        per: dict[str, int] = defaultdict(int)
        kept = []
        for r in rows:
            if per[r.lang] < args.limit:
                kept.append(r)
                per[r.lang] += 1
        rows = kept
    settings = Settings()  # the node's defaults: what `switchboard run` would build
    speech = SpeechService.from_settings(settings)
    tts = EspeakTTS()
    started = time.perf_counter()
    await speech.warm_up()
    print(f"STT loaded in {time.perf_counter() - started:.2f} s; {len(rows)} spoken answers (no injections): "
          f"eSpeak -> 8 kHz mu-law -> VAD -> speech service (stt {settings.stt_provider}, en "
          f"{settings.stt_provider_en or settings.stt_provider}, enhance {settings.speech_enhance})")
    clf = IntentClassifier.from_settings(settings, None)  # the node's offline classifier (INTENT_ENCODER)
    print(f"classifier: keywords + {settings.intent_encoder} (as `classify_intent` on a node without an LLM)")
    variants = [("hotwords", True)] + ([("no hotwords", False)] if args.compare_hotwords else [])
    line = silence(1.0, 8000)
    for label, use_hotwords in variants:
        results: dict[str, list[bool]] = defaultdict(list)
        stt_ms: list[float] = []
        examples = []
        for r in rows:
            said = through_phone_line(tts.synthesize_sync(r.text, language=r.lang))
            vad = speech.vad(8000)
            ends = [e for e in vad.process(concat([line, said, line, line]).pcm) if e.kind == "end"]
            heard = ends[0].audio if ends and ends[0].audio is not None else said
            hotwords = spec.stt.hotwords if use_hotwords and r.lang == spec.language else []
            try:
                tr = await speech.transcribe(heard, language=r.lang, hotwords=hotwords)
                text = tr.text
                stt_ms.append(tr.latency * 1000)
            except EmptyAudio:
                text = ""
            d = await clf.classify(text, prompt_template=llm_cfg.prompt_template,
                                   categories=llm_cfg.intent_categories, fallback_tokens=llm_cfg.fallback_tokens,
                                   examples=llm_cfg.examples)
            results[r.lang].append(d.intent == r.label)
            if d.intent != r.label and len(examples) < args.show:
                examples.append(f"    {r.lang} {r.label:>15} -> {d.intent:<15} said {r.text!r} heard {text!r}")
        for lang in sorted(results):
            ok = results[lang]
            print(f"spoken {lang} ({label}): {sum(ok)}/{len(ok)} = {sum(ok) / len(ok):.1%}")
        allok = [x for v in results.values() for x in v]
        print(f"spoken all ({label}): {sum(allok)}/{len(allok)} = {sum(allok) / len(allok):.1%}; "
              f"STT p50 {statistics.median(stt_ms):.0f} ms per answer")
        for line_ in examples:
            print(line_)
    for stt in {id(s): s for s in (speech.stt, *speech.stt_by_language.values())}.values():
        close = getattr(stt, "close", None)
        if callable(close):
            close()
    if clf.semantic is not None:
        clf.semantic.close()


class LlamaServer:
    """llama-server (scripts/llama-server.sh) with SmolLM2-135M-Instruct on a free loopback port."""

    def __init__(self, proc: subprocess.Popen, base_url: str) -> None:
        self.proc, self.base_url = proc, base_url

    @classmethod
    def start(cls) -> LlamaServer:
        import socket

        import httpx

        binary = subprocess.run(["bash", str(ROOT / "scripts" / "llama-server.sh")], check=True,
                                capture_output=True, text=True).stdout.strip()
        model = subprocess.run(["bash", str(ROOT / "scripts" / "llama-server.sh"), "model"], check=True,
                               capture_output=True, text=True).stdout.strip()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-c", "8192",
                                 "-np", "8", "-t", str(os.cpu_count() or 2), "--alias", "smollm2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return cls(proc, f"http://127.0.0.1:{port}/v1")
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode}")
            time.sleep(0.5)
        proc.kill()
        raise RuntimeError("llama-server did not become healthy in 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibrate", action="store_true", help="sweep the unknown threshold on the dev split")
    ap.add_argument("--spoken", action="store_true", help="TTS -> 8 kHz mu-law -> STT -> classify, per language")
    ap.add_argument("--compare-hotwords", action="store_true", help="--spoken: also without the hotwords")
    ap.add_argument("--limit", type=int, default=0, help="--spoken: at most N answers per language")
    ap.add_argument("--languages", nargs="*", default=[], help="--spoken: only these languages")
    ap.add_argument("--show", type=int, default=8, help="--spoken: misclassified examples to print")
    ap.add_argument("--encoders", nargs="+", default=["use", "e5"], choices=["use", "e5"])
    ap.add_argument("--llama", action="store_true", help="also SmolLM2-135M-Instruct on a local llama-server")
    ap.add_argument("--llm-url", default="")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    if args.calibrate:
        calibrate(args)
    elif args.spoken:
        asyncio.run(spoken(args))
    else:
        asyncio.run(written(args))


if __name__ == "__main__":
    main()
