"""The Twilio Media Streams port: the documented messages both ways, then turn-taking over a real
loopback WebSocket (Starlette on uvicorn, as the panel serves it) with the shared Silero VAD and a
caller that speaks real (Piper) speech and plays the agent's audio as Twilio does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from switchboard.speech.audio import pcm16_to_ulaw, ulaw_to_pcm16
from switchboard.telephony.twilio.media import MediaStreamError, TwilioMediaPort
from switchboard.voice.port import AudioSink

# The documented message shapes (Media Streams — WebSocket Messages), with a real μ-law payload.
PAYLOAD_PCM = (np.sin(np.arange(160) / 3) * 9000).astype("<i2").tobytes()
PAYLOAD = base64.b64encode(pcm16_to_ulaw(PAYLOAD_PCM)).decode()
CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START = {"event": "start", "sequenceNumber": "1",
         "start": {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                   "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "tracks": ["inbound"],
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                   "customParameters": {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}},
         "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}
MEDIA = {"event": "media", "sequenceNumber": "3",
         "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": PAYLOAD},
         "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}
DTMF = {"event": "dtmf", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "1"}}
MARK = {"event": "mark", "sequenceNumber": "4", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "mark": {"name": "7"}}
STOP = {"event": "stop", "sequenceNumber": "5",
        "stop": {"accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}


@dataclass
class Link:
    """An in-memory text link (what Starlette's WebSocket offers)."""

    incoming: asyncio.Queue = field(default_factory=asyncio.Queue)
    out: list[str] = field(default_factory=list)
    closed: bool = False

    async def send_text(self, data: str) -> None:
        self.out.append(data)

    async def receive_text(self) -> str:
        item = await self.incoming.get()
        if item is None:
            raise ConnectionError("closed")
        return item

    async def close(self, code: int = 1000) -> None:
        self.closed = True
        self.incoming.put_nowait(None)

    def feed(self, *messages: dict | str) -> None:
        for m in messages:
            self.incoming.put_nowait(m if isinstance(m, str) else json.dumps(m))


@dataclass
class Sink(AudioSink):
    frames: list[bytes] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    played: list[int] = field(default_factory=list)
    hangups: list[str] = field(default_factory=list)

    def on_frame(self, pcm: bytes) -> None:
        self.frames.append(pcm)

    def on_dtmf(self, digit: str) -> None:
        self.digits.append(digit)

    def on_played(self, token: int) -> None:
        self.played.append(token)

    def on_hangup(self, cause: str) -> None:
        self.hangups.append(cause)


async def test_documented_messages_from_twilio_reach_the_sink() -> None:
    link, sink = Link(), Sink()
    port = TwilioMediaPort(link)
    port.attach(sink)
    link.feed(CONNECTED, START)
    start = await port.handshake()
    assert start.stream_sid == START["streamSid"] and start.call_sid == START["start"]["callSid"]
    assert start.custom_parameters == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}
    assert port.sample_rate == 8000
    link.feed(MEDIA, "not json", {"event": "media", "media": {"payload": "***"}}, DTMF, MARK, MARK | {"mark": {"name": "x"}},
              STOP)
    await asyncio.wait_for(port.run(), 2)
    assert sink.frames == [ulaw_to_pcm16(base64.b64decode(PAYLOAD))]  # decoded, one 20 ms frame
    assert len(sink.frames[0]) == 320
    assert sink.digits == ["1"] and sink.played == [7]  # marks that are not ours are ignored
    assert sink.hangups == ["normal"]  # stop: the caller is gone


async def test_what_we_send_is_the_documented_shape() -> None:
    link, sink = Link(), Sink()
    port = TwilioMediaPort(link)
    port.attach(sink)
    link.feed(CONNECTED, START)
    await port.handshake()
    port.send(PAYLOAD_PCM)
    port.mark(12)
    port.clear()
    sid = START["streamSid"]
    media, mark, clear = (json.loads(m) for m in link.out)
    assert media == {"event": "media", "streamSid": sid, "media": {"payload": PAYLOAD}}
    assert mark == {"event": "mark", "streamSid": sid, "mark": {"name": "12"}}
    assert clear == {"event": "clear", "streamSid": sid}
    await port.close()
    assert link.closed


async def test_a_start_with_another_media_format_is_refused() -> None:
    link = Link()
    port = TwilioMediaPort(link)
    bad = json.loads(json.dumps(START))
    bad["start"]["mediaFormat"] = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
    link.feed(CONNECTED, bad)
    with pytest.raises(MediaStreamError, match="audio/l16"):
        await port.handshake()
    link.feed({"event": "media"})
    with pytest.raises(MediaStreamError, match="expected 'start'"):
        await TwilioMediaPort(link).handshake()


async def test_a_socket_closed_without_stop_is_a_hangup() -> None:
    link, sink = Link(), Sink()
    port = TwilioMediaPort(link)
    port.attach(sink)
    link.feed(CONNECTED, START)
    await port.handshake()
    link.incoming.put_nowait(None)
    await asyncio.wait_for(port.run(), 2)
    assert sink.hangups == ["normal"]


async def test_writes_that_must_wait_keep_their_order() -> None:
    class SlowLink(Link):
        gate: asyncio.Event = field(default_factory=asyncio.Event)

        async def send_text(self, data: str) -> None:
            if len(self.out) == 1 and not self.gate.is_set():
                await self.gate.wait()  # the socket's buffer is full for a moment
            self.out.append(data)

    link = SlowLink()
    link.gate = asyncio.Event()
    port = TwilioMediaPort(link)
    port.attach(Sink())
    link.feed(CONNECTED, START)
    await port.handshake()
    for i in range(5):
        port.mark(i)
    assert [json.loads(m)["mark"]["name"] for m in link.out] == ["0"]
    link.gate.set()
    await asyncio.sleep(0.01)
    assert [json.loads(m)["mark"]["name"] for m in link.out] == ["0", "1", "2", "3", "4"]


# --- over a real WebSocket ------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def media_server(handler) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """`WS /twilio/media` on a real uvicorn server on loopback; yields its ws:// URL."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    async def endpoint(websocket) -> None:  # type: ignore[no-untyped-def]
        await websocket.accept()
        await handler(websocket)

    app = Starlette(routes=[WebSocketRoute("/twilio/media", endpoint)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/twilio/media"
    finally:
        server.should_exit = True
        await task


_SPEECH: dict[str, bytes] = {}


async def caller_says(text: str) -> bytes:
    """`text` in Piper's voice, as it arrives over a phone line: 8 kHz PCM16 after μ-law."""
    if text not in _SPEECH:
        from switchboard.speech.audio import through_phone_line
        from switchboard.speech.tts.piper import PiperTTS

        _SPEECH[text] = through_phone_line(await PiperTTS().synthesize(text, language="en")).pcm
    return _SPEECH[text]


@pytest.mark.timeout(60)
async def test_turns_over_a_real_media_stream_with_barge_in_and_marks() -> None:
    from switchboard.speech.vad.batch import SileroBatch
    from switchboard.speech.vad.endpointer import EndpointSettings
    from switchboard.voice.pacing import Pacer
    from switchboard.voice.session import VoiceSession
    from tests.fakes.twilio_media import TwilioMediaCaller, loud_frames
    from tests.fakes.voice import ToneSpeech

    question = await caller_says("Hello, I would like to know your opening hours, please.")
    vad = SileroBatch(settings=EndpointSettings(end_silence=0.5))
    pacer = Pacer()
    outcome: dict[str, object] = {}

    async def handler(websocket) -> None:  # type: ignore[no-untyped-def]
        port = TwilioMediaPort(websocket)
        start = await port.handshake()
        outcome["params"] = start.custom_parameters
        session = VoiceSession(port, vad=vad.open(8000), pacer=pacer, speech=ToneSpeech())
        reader = asyncio.ensure_future(port.run())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        outcome["first"] = await session.say("1s of greeting", interruptible=True)
        outcome["first_took"] = loop.time() - t0
        heard = await session.listen(max_duration=10, max_silence=5)
        outcome["heard"] = heard.audio
        t1 = loop.time()
        outcome["second"] = await session.say("5s of a long answer", interruptible=True)
        outcome["second_stopped"] = loop.time() - t1
        outcome["barge_words"] = (await session.listen(max_duration=10, max_silence=5)).audio
        try:
            await session.listen(max_duration=10, max_silence=8)
        except Exception as exc:  # the caller hangs up
            outcome["end"] = type(exc).__name__
        await reader
        await session.close()

    async with media_server(handler) as url:
        caller = TwilioMediaCaller(url, parameters={"token": "t0k"})
        await caller.connect()
        loop = asyncio.get_running_loop()
        await caller.silence(1.4)  # hears the 1 s greeting, then asks
        await caller.speak(question)
        await caller.silence(1.6)  # the answer starts; 1 s into it the caller talks over it
        barge_at = loop.time()
        await caller.speak(question)
        await caller.silence(1.0)
        await caller.stop()
        await asyncio.sleep(0.5)
    assert outcome["params"] == {"token": "t0k"}
    first = outcome["first"]
    assert first.completed and 0.95 < outcome["first_took"] < 1.3  # done when Twilio played it (its mark)
    assert caller.marks_sent_back and caller.marks_sent_back[0] == "1"
    heard = outcome["heard"]
    spoken = loud_frames(question).sum() * 0.02
    assert abs(loud_frames(heard.pcm).sum() * 0.02 - spoken) < 0.25  # the whole question
    second = outcome["second"]
    assert not second.completed and second.interrupted_by == "speech"
    assert len(caller.clears) == 1  # Twilio was told to drop what it still buffered
    assert 0.0 < caller.clears[0] - barge_at < 0.6  # soon after the caller started
    after = [h for h in caller.heard if h.arrived > caller.clears[0] + 0.005]
    assert not after  # nothing more of the answer was sent
    assert abs(loud_frames(outcome["barge_words"].pcm).sum() * 0.02 - spoken) < 0.25  # every word kept
    assert outcome["end"] == "CallerHangup"
    await vad.aclose()
    await pacer.aclose()
