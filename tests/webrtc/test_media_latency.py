"""What keeps a browser turn short, asserted as behaviour (the figures are `benchmarks/turn_latency.py`'s):
each caller packet reaches the decoder as it arrives (no 80 ms prefetch), in order, duplicates and
late ones dropped, and the voice layer as it is decoded (no resampler FIFO lag); agent audio leaves in the very frame it was handed over (no encoder FIFO lag),
at Opus' 48 kHz; `clear()` leaves nothing of the agent's reply queued."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder
from aiortc.rtp import RtpPacket

from switchboard.telephony.webrtc.jitter import PacketBuffer
from switchboard.telephony.webrtc.media import WIRE_RATE, WIRE_SAMPLES, AgentTrack, CallerAudio
from tests.webrtc.test_port import connect, tone


def packet(seq: int, payload: bytes = b"opus") -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 960)
    p._data = payload  # type: ignore[attr-defined]  # what aiortc's depayloader leaves on it
    return p


def test_each_packet_goes_to_the_decoder_as_it_arrives_in_order() -> None:
    buffer = PacketBuffer()
    out = [buffer.add(packet(seq, bytes([seq % 256])))[1] for seq in (10, 11, 11, 9, 13, 12, 14)]
    released = [f.timestamp // 960 if f is not None else None for f in out]
    # 11 twice: a duplicate; 9 and 12 came after a later packet: dropped, never waited for; 13
    # after a lost 12 is not held back either
    assert released == [10, 11, None, None, 13, None, 14]
    assert out[0] is not None and out[0].data == bytes([10])
    assert buffer.dropped == 3


def test_sequence_numbers_wrap_and_a_restarted_sender_is_followed() -> None:
    buffer = PacketBuffer()
    assert all(buffer.add(packet(seq))[1] is not None for seq in (65534, 65535, 0, 1))
    assert buffer.add(packet(65535))[1] is None  # late, across the wrap
    assert buffer.add(packet(40000))[1] is not None  # far from anything recent: a new sequence
    assert buffer.add(packet(40001))[1] is not None


async def test_the_callers_packets_skip_aiortcs_prefetch_on_a_real_connection() -> None:
    client, server, sink = await connect(16000)
    try:
        receiver = next(t.receiver for t in server.pc.getTransceivers() if t.kind == "audio")
        assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, PacketBuffer)  # type: ignore[attr-defined]
        client.mic.say(tone(0.4, 48000).tobytes())
        deadline = asyncio.get_running_loop().time() + 5
        while not any(np.abs(np.frombuffer(f, "<i2")).max() > 3000 for f in sink.frames):
            assert asyncio.get_running_loop().time() < deadline, "the caller's tone never arrived"
            await asyncio.sleep(0.02)
    finally:
        await client.close()
        await server.close()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def test_agent_audio_leaves_in_the_frame_it_is_handed_over() -> None:
    track = AgentTrack(16000, on_played=lambda token: None)
    encoder = OpusEncoder()
    try:
        for _ in range(3):  # the line idles on silence
            frame = await track.recv()
            assert encoder.encode(frame)[0], "aiortc's encoder held a frame back"
            assert rms(frame.to_ndarray()) == 0.0
        track.send(tone(0.02, 16000).tobytes())  # one frame of the agent's reply
        frame = await track.recv()
        assert (frame.sample_rate, frame.samples) == (WIRE_RATE, WIRE_SAMPLES)
        assert rms(frame.to_ndarray()) > 5000, "the agent's frame did not go out in the next frame"
        assert encoder.encode(frame)[0], "aiortc's encoder held the agent's frame back"
        after = (await track.recv()).to_ndarray()
        assert rms(after[:, 200:]) == 0.0  # nothing of it lingers beyond the resampler's few samples
    finally:
        track.stop()


async def test_clear_leaves_nothing_of_the_reply_queued() -> None:
    played: list[int] = []
    track = AgentTrack(16000, on_played=played.append)
    try:
        await track.recv()
        track.send(tone(2.0, 16000).tobytes())
        track.mark(7)
        assert (await track.recv()) is not None and track.queued == 99
        assert track.clear() == 99
        assert played == [7]  # the mark counts as played, as Twilio reports after a clear
        for _ in range(2):
            assert rms((await track.recv()).to_ndarray()[:, 200:]) == 0.0
    finally:
        track.stop()


class StalledTrack:
    """Decoded Opus frames (48 kHz stereo, 20 ms), then nothing: the caller's next packet is not here yet."""

    def __init__(self, frames: list[av.AudioFrame]) -> None:
        self.frames = frames

    async def recv(self) -> av.AudioFrame:
        if self.frames:
            return self.frames.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def decoded(samples: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.repeat(samples, 2)[None, :], format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48000, pts, fractions.Fraction(1, 48000)
    return frame


async def test_each_decoded_packet_reaches_the_voice_layer_without_waiting_for_the_next() -> None:
    speech = tone(0.1, 48000)
    packets = [decoded(speech[i:i + 960], i) for i in range(0, len(speech), 960)]
    caller = CallerAudio(StalledTrack(packets), 16000)  # type: ignore[arg-type]
    got: list[bytes] = []

    async def read() -> None:
        async for frame in caller.frames():
            got.append(frame)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.1)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    # five packets in, five 20 ms frames out: the last one too, with no sixth packet to push it
    assert [len(f) for f in got] == [640] * 5
    assert rms(np.frombuffer(got[-1], "<i2")) > 5000
