"""Latency a translator adds to a turn: passthrough, and LibreTranslate's HTTP API.

Without --url the HTTP provider is the loopback double of LibreTranslate's documented API
(tests/brain/fake_libretranslate.py): the figure is the client + HTTP + JSON overhead, not a
model's. With --url (a LibreTranslate server) it measures that server.

    .venv/bin/python benchmarks/translation.py [--url http://host:5000 --api-key KEY] [--n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from switchboard.brain.translation import LibreTranslate, Passthrough, translate_or_keep  # noqa: E402

SENTENCES = [("fa", "en", "قیمت طرح خانوادگی چنده؟"), ("ar", "en", "هل يمكنني الدفع شهريا؟"),
             ("en", "fa", "It is 30 dollars a month."), ("en", "ar", "Would you like me to book it for you?")]


async def measure(name: str, translator, n: int) -> None:
    times = []
    for i in range(n):
        source, target, text = SENTENCES[i % len(SENTENCES)]
        tr = await translate_or_keep(translator, text, source=source, target=target)
        assert tr.ok, tr
        times.append(tr.latency * 1000)
    times.sort()
    print(f"{name:40s} n={n}  p50 {statistics.median(times):.2f} ms  p95 {times[int(0.95 * (n - 1))]:.2f} ms")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="")
    ap.add_argument("--api-key", default="")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    await measure("passthrough", Passthrough(), args.n)
    if args.url:
        await measure(f"libretranslate {args.url}", LibreTranslate(args.url, api_key=args.api_key), args.n)
        return
    from tests.brain.fake_libretranslate import FakeLibreTranslate

    with FakeLibreTranslate({}) as double:
        await measure("libretranslate (loopback double)", LibreTranslate(double.base_url), args.n)


if __name__ == "__main__":
    asyncio.run(main())
