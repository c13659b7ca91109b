"""Turn latency over the browser transport: caller stops speaking -> first agent audio at the peer.

    python benchmarks/turn_latency_browser.py                 # 20 turns, English, Moonshine, eSpeak
    python benchmarks/turn_latency_browser.py --turns 40 --stt-en whisper --tts piper
    python benchmarks/turn_latency_browser.py --calls 4       # four browser calls at once

The real stack in one process, wired as `switchboard run` wires it (`TELEPHONY_BACKEND=webrtc`: the
panel server, the dialer's inbound path, the engine, the reception persona in scripted mode, the
shared batched Silero, STT, TTS) and, on the other side of a real WebRTC connection (ICE, DTLS-SRTP,
Opus, the data channel), a Python peer doing what the /call page does. Each turn the caller asks
"What are your opening hours?" (Piper's voice, 48 kHz into Opus) once the agent has finished its
previous reply; the figure is the time from the last sound of the question leaving the peer to the
first loud 20 ms of the agent's answer arriving back at it — VAD endpointing, STT, the reply, TTS,
pacing, Opus both ways and the network stack included.

(`benchmarks/turn_latency.py` measures Twilio and ARI externalMedia; this script is its browser
transport, kept apart while both land.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from switchboard.speech.audio import resample  # noqa: E402
from tests.webrtc.client import LOUD, BrowserPeer  # noqa: E402
from tests.webrtc.harness import served, token  # noqa: E402

QUESTION = "What are your opening hours?"


def question_audio() -> tuple[bytes, float]:
    """The question at 48 kHz and the offset (s) of its last sound."""
    from switchboard.speech.tts.piper import PiperTTS

    pcm = resample(PiperTTS().synthesize_sync(QUESTION), 48000).pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.02)
    return pcm, (float(loud[-1]) + 1) * 0.02


def is_agent_line(ev: dict) -> bool:  # type: ignore[type-arg]
    return ev["type"] == "transcript" and ev["speaker"] == "agent"


async def one_call(http, turns: int, audio: bytes, last_sound: float) -> list[float]:  # type: ignore[no-untyped-def]
    peer = BrowserPeer()
    await peer.call(http, await token(http, persona="reception"))
    latencies: list[float] = []
    try:
        await peer.wait_event(is_agent_line, 60)  # the greeting is over
        for _ in range(turns):
            await asyncio.sleep(0.5)
            seen = len([ev for ev in peer.events if is_agent_line(ev)])
            peer.mic.say(audio)
            while peer.mic.speech_started_at is None:
                await asyncio.sleep(0.005)
            speech_end = peer.mic.speech_started_at + last_sound
            deadline = time.monotonic() + 60
            first = None
            while first is None and time.monotonic() < deadline:
                first = next((t for t, rms in peer.received if t > speech_end and rms > LOUD), None)
                await asyncio.sleep(0.005)
            if first is None:
                raise RuntimeError("no answer within 60 s")
            latencies.append(first - speech_end)
            await peer.wait_event(lambda ev, n=seen: is_agent_line(ev) and
                                  len([e for e in peer.events if is_agent_line(e)]) > n, 60)
        await peer.wait_open()
        peer.send({"type": "hangup"})
        await peer.wait_event(lambda ev: ev["type"] == "hangup", 30)
    finally:
        await peer.close()
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def stt_times(store) -> list[float]:  # type: ignore[no-untyped-def]
    """Each caller turn's transcription time, from the stored call timelines."""
    out: list[float] = []
    for call in (await store.calls.list(limit=100)).items:
        for event in await store.calls.events(call.id):
            data = event.data
            if event.kind == "turn" and data.get("speaker") == "caller" and data.get("latency") is not None:
                out.append(float(data["latency"]) * 1000)
    return out


async def main(args: argparse.Namespace) -> None:
    audio, last_sound = question_audio()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"stt_provider_en": args.stt_en if args.stt_en != "whisper" else "", "tts_provider": args.tts,
                     "vad_end_silence": args.end_silence}
        async with served(Path(tmp), **overrides) as sb:
            started = time.monotonic()
            per_call = await asyncio.gather(*(one_call(sb.http, args.turns, audio, last_sound)
                                              for _ in range(args.calls)))
            elapsed = time.monotonic() - started
            await asyncio.sleep(1.0)  # the last results reach the store
            stt = await stt_times(sb.node.store)  # type: ignore[attr-defined]
    values = [v * 1000 for call in per_call for v in call]
    print(f"browser (WebRTC) turns: {len(values)} over {args.calls} call(s) in {elapsed:.0f} s; STT en={args.stt_en}, "
          f"TTS={args.tts}, VAD end of speech after {args.end_silence:g} s of silence, scripted reception persona")
    print("per turn (ms): " + " ".join(f"{v:.0f}" for v in sorted(values)))
    if stt:
        print(f"of which STT (from the call timelines): p50 {statistics.median(stt):.0f} ms, p95 {pct(stt, .95):.0f} ms")
    print(f"end of speech -> first agent audio at the peer: p50 {statistics.median(values):.0f} ms, "
          f"p95 {pct(values, .95):.0f} ms, min {min(values):.0f} ms, max {max(values):.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20, help="caller turns per call (>= 20 for the figure)")
    parser.add_argument("--calls", type=int, default=1, help="browser calls at once")
    parser.add_argument("--stt-en", default="moonshine", help="STT for English: moonshine | whisper")
    parser.add_argument("--tts", default="espeak", help="TTS provider: espeak | piper")
    parser.add_argument("--end-silence", type=float, default=0.6, help="VAD_END_SILENCE (s): the endpointing floor")
    asyncio.run(main(parser.parse_args()))
