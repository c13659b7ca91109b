"""RTP module: codec, packets, packetiser, jitter buffer, and real UDP endpoints on loopback."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from switchboard.telephony.asterisk.rtp import (
    FORMATS,
    JitterBuffer,
    Packetizer,
    RtpEndpoint,
    RtpPacket,
    rtp_format,
)
from switchboard.speech.audio import pcm16_to_ulaw as ulaw_encode
from switchboard.speech.audio import ulaw_to_pcm16 as ulaw_decode
from tests.asterisk.double.sim import _ulaw_decode_sample, _ulaw_encode_sample


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp * 32767).astype("<i2").tobytes()


def test_ulaw_payloads_use_the_one_g711_codec() -> None:
    """RTP μ-law goes through `speech.audio`'s codec (audioop's tables, checked sample by sample in
    tests/speech); decoding agrees with the double's per-sample reference for every code, and
    encoding lands on the reference's code or, at a segment boundary, its neighbour."""
    fmt = rtp_format("ulaw")
    samples = np.arange(-32768, 32768, 7, dtype="<i2")
    assert fmt.encode(samples.tobytes()) == ulaw_encode(samples.tobytes())
    every_code = bytes(range(256))
    decoded = np.frombuffer(fmt.decode(every_code), dtype="<i2")
    assert list(decoded) == [_ulaw_decode_sample(b) for b in every_code]
    ours = np.frombuffer(ulaw_decode(ulaw_encode(samples.tobytes())), dtype="<i2").astype(np.int32)
    ref = np.array([_ulaw_decode_sample(_ulaw_encode_sample(int(s))) for s in samples], dtype=np.int32)
    step = np.maximum(np.abs(ref) // 8, 16)
    assert np.all(np.abs(ours - ref) <= step)


def test_ulaw_round_trip_error_is_small() -> None:
    pcm = np.frombuffer(tone(0.1, 8000), dtype="<i2").astype(np.int32)
    back = np.frombuffer(ulaw_decode(ulaw_encode(pcm.astype("<i2").tobytes())), dtype="<i2").astype(np.int32)
    assert np.max(np.abs(back - pcm)) <= np.maximum(np.abs(pcm) // 16, 8).max()
    snr = 10 * np.log10(np.sum(pcm ** 2) / np.sum((back - pcm) ** 2))
    assert snr > 30


def test_slin16_is_big_endian_on_the_wire() -> None:
    fmt = rtp_format("slin16")
    pcm = np.array([1, -2, 300], dtype="<i2").tobytes()
    assert fmt.encode(pcm) == np.array([1, -2, 300], dtype=">i2").tobytes()
    assert fmt.decode(fmt.encode(pcm)) == pcm
    with pytest.raises(ValueError):
        rtp_format("opus")


def test_packet_round_trip_and_header_fields() -> None:
    pkt = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True)
    data = pkt.pack()
    assert data[0] == 0x80 and data[1] == 0x80 and len(data) == 12 + 160
    assert RtpPacket.parse(data) == pkt
    with pytest.raises(ValueError):
        RtpPacket.parse(b"\x00" * 12)  # version 0
    with pytest.raises(ValueError):
        RtpPacket.parse(b"\x80\x00")
    # CSRC list, extension and padding are skipped
    ext = bytes([0x80 | 0x10 | 0x20 | 1, 0]) + (7).to_bytes(2, "big") + (8).to_bytes(4, "big") + (9).to_bytes(4, "big")
    ext += b"\x00" * 4 + (0xBEDE).to_bytes(2, "big") + (1).to_bytes(2, "big") + b"\x01\x02\x03\x04"
    ext += b"payload" + b"\x00\x00\x03"
    assert RtpPacket.parse(ext).payload == b"payload"


def test_packetizer_continuity_wraparound_and_talkspurts() -> None:
    fmt = FORMATS["ulaw"]
    p = Packetizer(fmt, ssrc=42)
    p.sequence, p.timestamp = 65534, 2**32 - 160
    frames = p.frames(tone(0.07, 8000))  # 3 whole frames + 10 ms pending
    assert len(frames) == 3 and all(len(f) == 320 for f in frames)
    packets = [p.packet(f) for f in frames]
    assert [x.sequence for x in packets] == [65534, 65535, 0]
    assert [x.timestamp for x in packets] == [2**32 - 160, 0, 160]
    assert [x.marker for x in packets] == [True, False, False]
    assert all(x.ssrc == 42 and len(x.payload) == 160 for x in packets)
    tail = p.frames(b"", flush=True)
    assert len(tail) == 1 and len(tail[0]) == 320
    p.skip(1.0)
    nxt = p.packet(tail[0])
    assert nxt.marker and nxt.timestamp == (320 + 8000) & 0xFFFFFFFF and nxt.sequence == 1


def pkts(seqs: list[int]) -> list[RtpPacket]:
    return [RtpPacket(0, s & 0xFFFF, s * 160, 1, bytes([s % 256]) * 160) for s in seqs]


def test_jitter_buffer_reorders_drops_duplicates_and_late() -> None:
    jb = JitterBuffer(depth=3)
    out: list[RtpPacket | None] = []
    for pkt in pkts([10, 12, 12, 11, 13, 14]):
        jb.push(pkt)
        out += jb.pop_ready()
    jb.push(pkts([9])[0])  # older than what was played: late
    out += jb.pop_ready(drain=True)
    assert [p.sequence for p in out if p] == [10, 11, 12, 13, 14]
    assert (jb.duplicates, jb.late) == (1, 1)


def test_jitter_buffer_conceals_loss_and_wraps() -> None:
    jb = JitterBuffer(depth=3)
    for pkt in pkts([65534, 65535, 1, 2, 3]):  # 0 is lost
        jb.push(pkt)
    out = jb.pop_ready()
    assert [p.sequence if p else None for p in out] == [65534, 65535, None, 1, 2, 3]
    assert jb.lost == 1


async def test_endpoints_exchange_audio_over_loopback_udp() -> None:
    """Frames leave the moment they are handed over (the voice layer paces them) and arrive, in
    order, at the far end's `on_frame`; the RTP clock runs sample by sample within a talkspurt (even
    if a busy loop sends a frame late) and skips ahead with a marker for the next one."""
    fmt = FORMATS["ulaw"]
    a = await RtpEndpoint.open("127.0.0.1", fmt)
    b = await RtpEndpoint.open("127.0.0.1", fmt)
    got: list[bytes] = []
    b.on_frame = got.append
    packets: list[RtpPacket] = []
    original = b.datagram_received

    def tap(data: bytes, addr: tuple[str, int]) -> None:
        packets.append(RtpPacket.parse(data))
        original(data, addr)

    b.datagram_received = tap  # type: ignore[method-assign]
    try:
        a.remote = b.local_address
        audio = tone(1.0, 8000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, i in enumerate(range(0, len(audio), 320)):  # paced as the voice layer does
            await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))
            a.send(audio[i:i + 320])
        a.end_talkspurt()  # the playback is over (the voice layer's mark)
        await asyncio.sleep(0.5)
        a.send(audio[:320])  # a new talkspurt after half a second of silence
        await asyncio.sleep(0.2)
        assert a.sent == 51 and b.received == 51
        sent = np.frombuffer(audio, dtype="<i2").astype(np.int32)
        back = np.frombuffer(b"".join(got)[: len(audio)], dtype="<i2").astype(np.int32)
        assert np.corrcoef(sent, back)[0, 1] > 0.99
        assert b.remote == a.local_address  # symmetric RTP: learnt from the first packet
        steps = np.diff([p.timestamp for p in packets[:50]])
        assert set(steps.tolist()) == {160} and [p.marker for p in packets[:2]] == [True, False]
        last = packets[50]
        assert last.marker and 0.45 * 8000 < last.timestamp - packets[49].timestamp < 0.6 * 8000
    finally:
        a.close()
        b.close()


async def test_endpoint_reorders_shuffled_packets_from_the_network() -> None:
    fmt = FORMATS["slin16"]
    ep = await RtpEndpoint.open("127.0.0.1", fmt, jitter_depth=4)
    got: list[bytes] = []
    ep.on_frame = got.append
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        p = Packetizer(fmt, ssrc=7)
        frames = [np.full(320, i * 100, dtype="<i2").tobytes() for i in range(12)]
        packets = [p.packet(f).pack() for f in frames]
        order = [0, 1, 3, 2, 4, 7, 5, 6, 9, 8, 11, 10]  # local reordering, as a jittery network does
        for i in order:
            sock.sendto(packets[i], ep.local_address)
        for _ in range(100):
            if len(got) == 12:
                break
            await asyncio.sleep(0.02)
        assert got == frames  # the last few handed over by the pause timer, once
    finally:
        sock.close()
        ep.close()
