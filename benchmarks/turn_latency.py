"""Turn latency: the caller stops speaking -> the first frame of the agent's answer reaches them.

    python benchmarks/turn_latency.py                    # Twilio, ARI externalMedia and the browser
    python benchmarks/turn_latency.py --turns 30 --transport twilio

The whole offline stack on the voice layer: the shared Silero VAD (end of speech after
`--end-silence`), Moonshine tiny for English (`STT_PROVIDER_EN=moonshine`; Whisper base for the
rest), the reception persona answering from its FAQ in scripted mode (the keyword/FAQ reply, no LLM),
and `--tts` (eSpeak NG by default, or Piper) streamed sentence by sentence. The caller speaks real
English questions (Piper, through an 8 kHz μ-law line) in real time and answers 0.4 s after the agent
has finished; it measures from the end of its last speech frame to the arrival of the agent's first
audio frame, over `--turns` turns, and prints p50 / p95 per transport.

* Twilio: a real uvicorn + Starlette WebSocket on loopback (`WS /twilio/media`), the caller speaking
  the documented Media Streams messages (tests/fakes/twilio_media.py).
* ARI: the real `AsteriskBackend` against the ARI double (tests/asterisk/double), in real time; the
  caller's words are played into the bridge and reach us as RTP on the externalMedia channel, the
  agent's frames are timed as they arrive at the double's end of that channel.
* browser: the real `WebRTCBackend` (aiortc: ICE, DTLS-SRTP, Opus both ways, the data channel) and, on
  the other side of a loopback peer connection, a Python WebRTC peer doing what the /call page does
  (tests/webrtc/client.py); the caller's questions go in wideband (48 kHz into Opus, no phone line).
  As on the other transports, the turn runs from the end of the caller's last speech frame to the
  first agent frame that carries sound (above -60 dBFS: the track idles on digital silence), timed
  as the peer decodes it. The peer decodes each packet as it arrives: like the carriers' edges timed
  above, it adds no playout buffer of its own (a real page's, Chromium's NetEq, comes on top, as a
  phone's does after Twilio or Asterisk).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fakes / tests.asterisk.double: the carriers' sides

QUESTIONS = ("What are your opening hours?", "Where are you located?", "When are you open?",
             "What is your address?")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round((len(ordered) - 1) * q)))]


def build(tmp: Path, tts: str, end_silence: float):  # type: ignore[no-untyped-def]
    """Speech, voice layer and the conversation service, as `app.py` wires them."""
    from switchboard.app import build_speech, build_voice
    from switchboard.brain.converse import ConversationService, ListenConfig
    from switchboard.brain.personas import PersonaRegistry
    from switchboard.settings import Settings

    settings = Settings(_env_file=None, stt_provider_en="moonshine", tts_provider=tts,  # type: ignore[call-arg]
                        vad_end_silence=end_silence, tts_cache_dir=tmp / "tts", recordings_dir=tmp / "rec",
                        speech_enhance=False, models_dir=ROOT / ".cache" / "models")
    speech = build_speech(settings)
    voice = build_voice(settings, speech, early=True)  # as `switchboard run` does (VOICE_EARLY_STT_MS)
    service = ConversationService(PersonaRegistry.load_dir(ROOT / "personas"), transcriber=voice.early or speech,
                                  listen=ListenConfig(max_duration=10, max_silence=10))
    return settings, speech, voice, service


async def caller_speech() -> list[bytes]:
    import numpy as np

    from switchboard.speech.audio import through_phone_line
    from switchboard.speech.tts.piper import PiperTTS

    piper = PiperTTS()
    out = []
    for q in QUESTIONS:
        pcm = through_phone_line(await piper.synthesize(q, language="en")).pcm
        frames = np.frombuffer(pcm, dtype="<i2")[: len(pcm) // 320 * 160].reshape(-1, 160).astype(np.float64)
        loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 300)
        out.append(pcm[loud[0] * 320:(loud[-1] + 1) * 320])  # speech from its first to its last frame
    return out


class Turns:
    """The caller's side of the measurement: when it stopped, when the agent's answer arrived."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.agent_last = 0.0  # loop time the agent's latest frame arrived
        self.waiting_since: float | None = None  # end of the caller's speech, awaiting the answer

    def agent_frame(self, now: float) -> None:
        if self.waiting_since is not None:
            self.latencies.append(now - self.waiting_since)
            self.waiting_since = None
        self.agent_last = now

    async def agent_done(self, quiet: float = 0.4) -> None:
        """Wait until the agent has said something and then been quiet for `quiet` seconds."""
        loop = asyncio.get_running_loop()
        while self.agent_last == 0.0 or loop.time() - self.agent_last < quiet or self.waiting_since is not None:
            await asyncio.sleep(0.01)


async def over_twilio(turns: int, tts: str, end_silence: float) -> list[float]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from switchboard.telephony.call import TransferResult
    from switchboard.telephony.twilio.media import TwilioMediaPort
    from tests.fakes.twilio_media import TwilioMediaCaller

    class NoSignalling:  # the benchmark's calls are only their media stream
        async def answer(self) -> None: ...

        async def hangup(self, cause: str) -> None: ...

        async def transfer(self, operator_number: str, *, caller_id: str, timeout: float) -> TransferResult:
            return TransferResult(False, operator_number, "failed")

        async def wait_for_hangup(self, timeout: float | None = None) -> bool:
            return True

    with tempfile.TemporaryDirectory() as tmp:
        settings, speech, voice, service = build(Path(tmp), tts, end_silence)
        await speech.warm_up()
        questions = await caller_speech()
        done = asyncio.Event()

        async def media(websocket) -> None:  # type: ignore[no-untyped-def]
            await websocket.accept()
            port = TwilioMediaPort(websocket)
            await port.handshake()
            call = voice.call(port, NoSignalling(), call_id="turns", direction="inbound", remote_number="+100",
                              line_number="+200", language="en")
            reader = asyncio.ensure_future(port.run())
            with contextlib.suppress(Exception):
                await service.run(call, persona="reception", language="en", max_turns=turns + 5, max_seconds=3600)
            done.set()
            await call.hangup()
            reader.cancel()

        server = uvicorn.Server(uvicorn.Config(Starlette(routes=[WebSocketRoute("/twilio/media", media)]),
                                               host="127.0.0.1", port=0, log_level="error", lifespan="off"))
        serving = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        url = f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/twilio/media"
        measured = Turns()
        caller = TwilioMediaCaller(url, on_agent_frame=measured.agent_frame)
        loop = asyncio.get_running_loop()
        await caller.connect()
        talking = asyncio.ensure_future(caller.silence(3600))  # the line carries silence between turns
        try:
            await measured.agent_done()  # the greeting
            for i in range(turns):
                talking.cancel()
                await caller.speak(questions[i % len(questions)])
                measured.waiting_since = loop.time() + 0.02  # the end of the last speech frame just sent
                talking = asyncio.ensure_future(caller.silence(3600))
                await asyncio.wait_for(measured.agent_done(), 30)
        finally:
            talking.cancel()
            await caller.close()
            server.should_exit = True
            await serving
            await voice.aclose()
    return measured.latencies


async def over_ari(turns: int, tts: str, end_silence: float) -> list[float]:
    from switchboard.telephony.asterisk.backend import AsteriskBackend
    from tests.asterisk.double import AriDouble, ari_settings
    from tests.asterisk.double.sim import Clip

    with tempfile.TemporaryDirectory() as tmp:
        _, speech, voice, service = build(Path(tmp), tts, end_silence)
        await speech.warm_up()
        questions = await caller_speech()
        async with AriDouble(scale=1.0) as ari:
            ari.sim.add_context("listens", "exten => s,1,Answer()\n same => n,Wait(3600)")
            ari.sim.route("09120000001", "listens")
            settings = ari_settings(ari, Path(tmp), app="switchboard")

            async def synthesize(text, language, v):  # type: ignore[no-untyped-def]
                return await speech.synthesize(text, language=language, voice=v)

            backend = AsteriskBackend.from_settings(settings, synthesize=synthesize, voice=voice)
            await backend.start()
            await ari.wait_ws("switchboard")
            measured = Turns()
            loop = asyncio.get_running_loop()
            try:
                _, call = await backend.originate("09120000001", line="02150001000")
                assert call is not None

                async def converse() -> None:
                    async with call.streaming():
                        await service.run(call, persona="reception", language="en", max_turns=turns + 5,
                                          max_seconds=3600)

                talk = asyncio.ensure_future(converse())
                while not any(c.kind == "media" for c in ari.sim.live_channels()):
                    await asyncio.sleep(0.01)
                media = next(c for c in ari.sim.live_channels() if c.kind == "media")
                proto = media.media_transport.get_protocol()
                original = proto.datagram_received

                def tap(data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
                    measured.agent_frame(loop.time())
                    original(data, addr)

                proto.datagram_received = tap
                customer = ari.sim.channels[call.channel_id]
                source = customer.peer or customer
                await measured.agent_done()
                for i in range(turns):
                    clip = Clip.from_pcm(questions[i % len(questions)], 8000)
                    start = ari.sim.now()
                    source.segments.append((start, start + clip.duration, clip))
                    await asyncio.sleep(clip.duration)
                    measured.waiting_since = loop.time()
                    await asyncio.wait_for(measured.agent_done(), 30)
                talk.cancel()
                await asyncio.gather(talk, return_exceptions=True)
                await call.hangup()
            finally:
                await backend.close()
                await voice.aclose()
    return measured.latencies


async def over_browser(turns: int, tts: str, end_silence: float) -> list[float]:
    import numpy as np
    from aiortc import RTCSessionDescription

    from switchboard.speech.audio import resample
    from switchboard.speech.tts.piper import PiperTTS
    from switchboard.telephony.webrtc.backend import WebRTCBackend
    from switchboard.telephony.webrtc.call import BrowserCallFactory
    from switchboard.telephony.webrtc.tokens import CallScope
    from tests.webrtc.client import SOUND, BrowserPeer

    with tempfile.TemporaryDirectory() as tmp:
        _, speech, voice, service = build(Path(tmp), tts, end_silence)
        await speech.warm_up()
        piper = PiperTTS()
        questions = []
        for q in QUESTIONS:  # wideband, from the first to the last loud 20 ms
            pcm = resample(await piper.synthesize(q, language="en"), 48000).pcm
            frames = np.frombuffer(pcm, dtype="<i2")[: len(pcm) // 1920 * 960].reshape(-1, 960).astype(np.float64)
            loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 300)
            questions.append(pcm[loud[0] * 1920:(loud[-1] + 1) * 1920])

        async def converse(call, scenario) -> None:  # type: ignore[no-untyped-def]
            with contextlib.suppress(Exception):
                await service.run(call, persona="reception", language="en", max_turns=turns + 5, max_seconds=3600)

        backend = WebRTCBackend(make_call=BrowserCallFactory(voice))
        await backend.start(converse)
        measured = Turns()
        loop = asyncio.get_running_loop()
        offset = loop.time() - time.monotonic()  # the peer stamps frames on time.monotonic()

        def frame(at: float, rms: float) -> None:
            if rms > SOUND:  # the track carries silence between replies: only sound counts
                measured.agent_frame(at + offset)

        peer = BrowserPeer(on_frame=frame)
        try:
            offer = await peer.offer()
            answer = await backend.accept(offer.sdp, "offer", CallScope("persona", "reception", "bench"), None)
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type=answer.type))
            await asyncio.wait_for(measured.agent_done(), 30)  # the greeting
            for i in range(turns):
                peer.mic.say(questions[i % len(questions)])
                while peer.mic.speech_ended_at is None:
                    await asyncio.sleep(0.005)
                # the end of the last speech frame (handed to the encoder at its start), as for Twilio
                measured.waiting_since = peer.mic.speech_ended_at + 0.02 + offset
                await asyncio.wait_for(measured.agent_done(), 30)
        finally:
            await peer.close()
            await backend.stop()
            await voice.aclose()
    return measured.latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--transport", choices=("twilio", "ari", "browser", "both", "all"), default="all",
                        help="both: twilio and ari; all: the three")
    parser.add_argument("--tts", choices=("espeak", "piper"), default="espeak")
    parser.add_argument("--end-silence", type=float, default=0.3, help="VAD end of speech (seconds of silence)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"turn latency, English, offline: Silero VAD (end of speech {args.end_silence:g} s), Moonshine tiny, "
          f"scripted FAQ reply, {args.tts} TTS; {args.turns} turns per transport; {os.cpu_count()} CPUs", flush=True)
    for name, run in (("twilio", over_twilio), ("ari", over_ari), ("browser", over_browser)):
        if args.transport not in (name, "all") and not (args.transport == "both" and name != "browser"):
            continue
        started = time.perf_counter()
        latencies = asyncio.run(run(args.turns, args.tts, args.end_silence))
        if not latencies:
            print(f"{name}: no turn measured")
            continue
        print(f"{name:<7} caller stops -> first agent frame: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
              f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms "
              f"over {len(latencies)} turns ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
