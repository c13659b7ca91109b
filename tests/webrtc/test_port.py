"""`WebRTCPort` over a real peer connection (a Python WebRTC peer on the other side): caller audio
arrives as exact 20 ms frames at the voice layer's rate, agent audio reaches the browser paced,
marks follow the audio out, `clear` drops what has not left, the data channel's hang-up and keys
reach the session, a dead network ends the call, and closing leaves nothing running."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from aiortc import RTCSessionDescription

from switchboard.telephony.webrtc.feed import CallFeed
from switchboard.telephony.webrtc.peer import BrowserPeer as ServerPeer
from switchboard.telephony.webrtc.port import WebRTCPort
from tests.webrtc.client import BrowserPeer, pcm48k


class Sink:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.digits: list[str] = []
        self.played: list[int] = []
        self.hangups: list[str] = []
        self.hung_up = asyncio.Event()

    def on_frame(self, pcm: bytes) -> None:
        self.frames.append(pcm)

    def on_dtmf(self, digit: str) -> None:
        self.digits.append(digit)

    def on_played(self, token: int) -> None:
        self.played.append(token)

    def on_hangup(self, cause: str) -> None:
        self.hangups.append(cause)
        self.hung_up.set()


async def connect(rate: int = 16000, media_timeout: float = 8.0) -> tuple[BrowserPeer, ServerPeer, Sink]:
    client = BrowserPeer()
    port = WebRTCPort(rate, media_timeout=media_timeout)
    sink = Sink()
    port.attach(sink)
    server = ServerPeer(port, CallFeed())
    offer = await client.offer()
    answer = await server.answer(offer.sdp, offer.type)
    await client.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type=answer.type))
    await asyncio.wait_for(server.connected.wait(), 10)
    return client, server, sink


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


async def until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def test_caller_audio_arrives_as_20ms_frames_at_the_voice_rate() -> None:
    client, server, sink = await connect(16000)
    try:
        client.mic.say(pcm48k(tone(1.0, 16000), 16000))
        await until(lambda: client.mic.speech_ended_at is not None, 5)
        await asyncio.sleep(0.5)
        assert sink.frames and {len(f) for f in sink.frames} == {640}  # 20 ms of 16 kHz PCM16
        pcm = np.frombuffer(b"".join(sink.frames), dtype="<i2").astype(np.float32) / 32768
        loud = [np.sqrt(np.mean(pcm[i:i + 320] ** 2)) > 0.05 for i in range(0, len(pcm) - 320, 320)]
        assert 0.8 <= sum(loud) * 0.02 <= 1.2, f"{sum(loud) * 0.02:.2f} s of tone heard for 1 s sent"
        spectrum = np.abs(np.fft.rfft(pcm))
        assert abs(np.argmax(spectrum) * 16000 / len(pcm) - 440) < 10  # the tone, at the right pitch
    finally:
        await client.close()
        await server.close()


async def test_agent_audio_is_paced_marks_follow_it_and_clear_drops_the_rest() -> None:
    client, server, sink = await connect(8000)
    port = server.port
    try:
        await asyncio.sleep(0.3)
        audio = tone(0.6, 8000).tobytes()
        for i in range(0, len(audio), 320):  # the voice layer hands over each frame when it is due
            port.send(audio[i:i + 320])
            if i == 0:
                port.mark(1)
            await asyncio.sleep(0.02)
        port.mark(2)
        await until(lambda: 2 in sink.played, 3)
        assert sink.played == [1, 2]
        await asyncio.sleep(0.3)
        heard = client.loud_seconds()
        assert 0.45 <= heard <= 0.75, f"the browser heard {heard:.2f} s of a 0.6 s reply"
        # A whole reply queued at once, then a barge-in: what has not left is dropped at once.
        port.send(tone(2.0, 8000).tobytes())
        port.mark(3)
        await asyncio.sleep(0.3)
        before = client.loud_seconds()
        port.clear()
        assert 3 in sink.played  # outstanding marks count as played after a clear
        await asyncio.sleep(0.5)
        assert client.loud_seconds() - before < 0.15
    finally:
        await client.close()
        await server.close()


async def test_hangup_and_keys_from_the_page() -> None:
    client, server, sink = await connect()
    try:
        await until(lambda: client.channel.readyState == "open", 5)
        client.send({"type": "dtmf", "digit": "5"})
        client.send({"type": "dtmf", "digit": "55"})  # not a key
        client.send({"type": "nonsense"})
        client.channel.send("not json")
        client.send({"type": "hangup"})
        await asyncio.wait_for(sink.hung_up.wait(), 5)
        assert sink.digits == ["5"]
        assert sink.hangups == ["caller_hangup"]
    finally:
        await client.close()
        await server.close()


async def test_a_dead_network_ends_the_call_and_close_leaves_nothing() -> None:
    before = {t for t in asyncio.all_tasks()}
    client, server, sink = await connect(media_timeout=1.0)
    client.mic.muted = True  # packets stop, no goodbye: a pulled cable or a frozen laptop
    started = time.monotonic()
    await asyncio.wait_for(sink.hung_up.wait(), 5)
    assert sink.hangups == ["connection_lost"]
    assert time.monotonic() - started < 2.5
    await server.close()
    await client.close()
    assert server.pc.connectionState == "closed"
    await asyncio.sleep(0.2)
    left = [t for t in asyncio.all_tasks() if t not in before and t is not asyncio.current_task()]
    assert left == [], left


async def test_the_browser_closing_the_connection_ends_the_call() -> None:
    client, server, sink = await connect()
    await client.close()  # the tab went away: DTLS closes, the track ends
    await asyncio.wait_for(sink.hung_up.wait(), 5)
    assert sink.hangups == ["connection_lost"]
    await server.close()
