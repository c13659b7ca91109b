"""Accuracy and latency of the intent classifier on a labelled set of caller utterances.

The set (benchmarks/data/intent_set.py, 210 items: Persian, English, Arabic; paraphrases, fillers,
mixed language, injection attempts) is classified on each path:

* fallback: the scenario's keyword tokens (what runs without an LLM, or when it is slow/out of set);
* llm: the full LLM path (prompt, structured output, parsing) against an OpenAI-compatible server.
  Without --llm-url this is the loopback wire-format double from tests/brain/fake_llm.py, answering
  from the labels but obeying any instruction it finds outside the transcript block: its accuracy
  measures the plumbing and the injection-proof prompt structure, not a model's understanding.
  With --llm-url (GapGPT, OpenAI, Ollama, llama.cpp...) it measures a real model.

    .venv/bin/python benchmarks/intent.py [--llm-url URL --api-key KEY --model NAME] [--timeout 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "data"))
sys.path.insert(0, str(ROOT))

import intent_set

from switchboard.brain.intents import IntentClassifier
from switchboard.brain.llm import LLMClient, Usage

PROMPT = ("The agent asked the caller: 'Would you like to hear about our new internet offer?'. "
          "Categories: yes (wants to hear it), no (declines), callback (asks to be called another time), "
          "stop (asks never to be called again), unknown (anything else).")


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def run_path(name: str, clf: IntentClassifier, items: list[tuple[str, str, str]], timeout: float,
                   concurrency: int = 8) -> dict:
    sem = asyncio.Semaphore(concurrency)
    usage = Usage()
    results: list[tuple[str, str, str, str, float]] = []

    async def one(text: str, label: str, kind: str) -> None:
        async with sem:
            d = await clf.classify(text, prompt_template=PROMPT, categories=intent_set.CATEGORIES,
                                   fallback_tokens=intent_set.FALLBACK_TOKENS, timeout=timeout, usage=usage)
            results.append((kind, label, d.intent, d.path, d.latency))

    started = time.perf_counter()
    await asyncio.gather(*(one(*item) for item in items))
    wall = time.perf_counter() - started
    by_kind: dict[str, list[bool]] = defaultdict(list)
    paths: dict[str, int] = defaultdict(int)
    for kind, label, got, path, _ in results:
        by_kind[kind].append(got == label)
        if "-" in kind:
            by_kind[kind.split("-")[0]].append(got == label)
        paths[path] += 1
    lat = [r[4] * 1000 for r in results]
    correct = sum(r[1] == r[2] for r in results)
    print(f"\n== path: {name}  ({len(results)} utterances, {wall:.2f}s wall, concurrency {concurrency})")
    print(f"accuracy {correct}/{len(results)} = {correct / len(results):.1%}   decided by: {dict(paths)}")
    print(f"latency ms: p50 {pct(lat, 0.5):.2f}  p95 {pct(lat, 0.95):.2f}  max {max(lat):.2f}  "
          f"mean {statistics.mean(lat):.2f}")
    for kind in sorted(by_kind):
        ok = by_kind[kind]
        print(f"  {kind:14s} {sum(ok):3d}/{len(ok):3d} = {sum(ok) / len(ok):6.1%}")
    if usage.requests:
        print(f"tokens: prompt {usage.prompt_tokens}, completion {usage.completion_tokens}, "
              f"requests {usage.requests}")
    misses = [(k, lab, got) for k, lab, got, _, _ in results if lab != got][:6]
    if misses:
        print("  e.g. wrong:", misses)
    return {"accuracy": correct / len(results), "p50_ms": pct(lat, 0.5)}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm-url", default="")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--structured", choices=["json_schema", "tool"], default="json_schema")
    args = ap.parse_args()
    items = intent_set.build()
    counts: dict[str, int] = defaultdict(int)
    for _, label, _ in items:
        counts[label] += 1
    print(f"{len(items)} labelled utterances: {dict(counts)}")

    await run_path("fallback tokens (no LLM)", IntentClassifier(llm=None), items, args.timeout)

    server = None
    url, key, model = args.llm_url, args.api_key, args.model
    if not url:
        from tests.brain.fake_llm import FakeLLM

        labels = {text: label for text, label, _ in items}
        server = FakeLLM(intent_oracle=lambda text, enum: labels.get(text, "unknown")).start()
        url, key, model = server.base_url, "none", "wire-double"
        print("\n(LLM path against the loopback wire-format double: see the module docstring)")
    llm = LLMClient(base_url=url, api_key=key, model_critical=model, model_cheap=model, timeout=args.timeout,
                    max_parallel=8, cache_ttl=0)
    try:
        await run_path(f"llm ({model}, {args.structured})",
                       IntentClassifier(llm=llm, structured=args.structured), items, args.timeout)
        if server is not None:
            # Control: the same double with the caller's words pasted into the instructions (what the
            # delimiting prevents). Only the injection rows should drop.
            import switchboard.brain.intents as intents_mod

            proper = intents_mod.build_messages

            def naive(transcript: str, **kw: object) -> list[dict[str, str]]:
                msgs = proper(transcript, **kw)  # type: ignore[arg-type]
                msgs[0]["content"] += f"\nThe caller said: {transcript}"
                return msgs

            intents_mod.build_messages = naive  # type: ignore[assignment]
            try:
                await run_path("llm, CONTROL with undelimited transcript", IntentClassifier(llm=llm),
                               items, args.timeout)
            finally:
                intents_mod.build_messages = proper
    finally:
        await llm.aclose()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
