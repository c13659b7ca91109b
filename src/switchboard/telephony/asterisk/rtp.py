"""RTP for ARI `externalMedia` channels: packets, G.711 μ-law (`speech.audio`'s codec) / L16 payloads, 20 ms pacing, a jitter
buffer, and one asyncio UDP endpoint per call.

Audio crosses this module's edge as PCM16 little-endian mono at the format's rate (8 kHz for `ulaw`,
16 kHz for `slin16`); RTP L16 payloads are big-endian (network order) as RFC 3551 requires.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from switchboard.speech.audio import pcm16_to_ulaw, ulaw_to_pcm16

FRAME_MS = 20
RTP_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpFormat:
    """One externalMedia `format`: name, RTP payload type, sample rate."""

    name: str
    payload_type: int
    sample_rate: int

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * FRAME_MS // 1000

    @property
    def pcm_frame_bytes(self) -> int:
        return self.samples_per_frame * 2

    def encode(self, pcm: bytes) -> bytes:
        if self.name == "ulaw":
            return pcm16_to_ulaw(pcm)
        return np.frombuffer(pcm, dtype="<i2").astype(">i2").tobytes()

    def decode(self, payload: bytes) -> bytes:
        if self.name == "ulaw":
            return ulaw_to_pcm16(payload)
        return np.frombuffer(payload[: len(payload) // 2 * 2], dtype=">i2").astype("<i2").tobytes()


FORMATS = {"ulaw": RtpFormat("ulaw", 0, 8000), "slin16": RtpFormat("slin16", 118, 16000)}


def rtp_format(name: str) -> RtpFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unsupported externalMedia format {name!r} (use one of {sorted(FORMATS)})") from None


# --- packets --------------------------------------------------------------------------------------


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def pack(self) -> bytes:
        return RTP_HEADER.pack(0x80, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                               self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                               self.ssrc & 0xFFFFFFFF) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < RTP_HEADER.size:
            raise ValueError("RTP packet shorter than its header")
        b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise ValueError("not RTP version 2")
        offset = RTP_HEADER.size + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension
            if len(data) < offset + 4:
                raise ValueError("truncated RTP extension")
            ext_words = struct.unpack_from("!HH", data, offset)[1]
            offset += 4 + 4 * ext_words
        end = len(data)
        if b0 & 0x20:  # padding
            end -= data[-1]
        if offset > end:
            raise ValueError("truncated RTP packet")
        return cls(b1 & 0x7F, seq, ts, ssrc, data[offset:end], bool(b1 & 0x80))


class Packetizer:
    """Turns PCM into 20 ms RTP packets with continuous sequence numbers and timestamps."""

    def __init__(self, fmt: RtpFormat, ssrc: int | None = None) -> None:
        self.fmt = fmt
        self.ssrc = ssrc if ssrc is not None else random.getrandbits(32)
        self.sequence = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)
        self._pending = b""
        self._talkspurt = True

    def frames(self, pcm: bytes, *, flush: bool = False) -> list[bytes]:
        """Split into whole 20 ms PCM frames; a partial tail waits for more (or is padded on flush)."""
        data = self._pending + pcm
        size = self.fmt.pcm_frame_bytes
        whole = len(data) // size * size
        out = [data[i:i + size] for i in range(0, whole, size)]
        self._pending = data[whole:]
        if flush and self._pending:
            out.append(self._pending + b"\x00" * (size - len(self._pending)))
            self._pending = b""
        return out

    def packet(self, pcm_frame: bytes) -> RtpPacket:
        pkt = RtpPacket(self.fmt.payload_type, self.sequence, self.timestamp, self.ssrc,
                        self.fmt.encode(pcm_frame), marker=self._talkspurt)
        self._talkspurt = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + len(pcm_frame) // 2) & 0xFFFFFFFF
        return pkt

    def skip(self, seconds: float) -> None:
        """Advance the clock over an idle gap; the next packet starts a new talkspurt (marker)."""
        self.timestamp = (self.timestamp + int(seconds * self.fmt.sample_rate)) & 0xFFFFFFFF
        self._talkspurt = True


def _seq_newer(a: int, b: int) -> bool:
    """True when sequence `a` comes after `b` (mod 2^16)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


@dataclass
class JitterBuffer:
    """Reorders packets by sequence number and releases them in order once `depth` are queued.

    Duplicates and packets older than the last released one are dropped; a missing packet is given
    up on when the buffer grows past `depth` and is replaced by one frame of silence.
    """

    depth: int = 3
    max_size: int = 50
    _packets: dict[int, RtpPacket] = field(default_factory=dict)
    _next: int | None = None
    lost: int = 0
    late: int = 0
    duplicates: int = 0

    def push(self, pkt: RtpPacket) -> None:
        if self._next is not None and pkt.sequence != self._next and _seq_newer(self._next, pkt.sequence):
            self.late += 1
            return
        if pkt.sequence in self._packets:
            self.duplicates += 1
            return
        self._packets[pkt.sequence] = pkt
        if self._next is None or _seq_newer(self._next, pkt.sequence):
            self._next = pkt.sequence
        while len(self._packets) > self.max_size:
            self._release_gap()

    def _release_gap(self) -> None:
        assert self._next is not None
        if self._next not in self._packets:
            self.lost += 1
            self._next = (self._next + 1) & 0xFFFF

    def pop_ready(self, *, drain: bool = False) -> list[RtpPacket | None]:
        """Packets ready to play in order; `None` stands for a lost packet (play silence)."""
        out: list[RtpPacket | None] = []
        while self._packets and self._next is not None:
            pkt = self._packets.pop(self._next, None)
            if pkt is not None:
                out.append(pkt)
                self._next = (self._next + 1) & 0xFFFF
                continue
            if drain or len(self._packets) >= self.depth:
                self.lost += 1
                out.append(None)
                self._next = (self._next + 1) & 0xFFFF
                continue
            break
        return out

    def __len__(self) -> int:
        return len(self._packets)


class RtpEndpoint(asyncio.DatagramProtocol):
    """One call's UDP RTP socket: inbound frames through a jitter buffer, outbound paced at 20 ms.

    The remote address is learnt from the first packet received (symmetric RTP, as Asterisk's
    externalMedia expects) unless given explicitly.
    """

    def __init__(self, fmt: RtpFormat, *, jitter_depth: int = 3) -> None:
        self.fmt = fmt
        self.packetizer = Packetizer(fmt)
        self.jitter = JitterBuffer(depth=jitter_depth)
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self.sent = 0
        self._inbound: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._outbound: asyncio.Queue[bytes] = asyncio.Queue()
        self._pacer: asyncio.Task[None] | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False

    @classmethod
    async def open(cls, host: str, fmt: RtpFormat, *, port: int = 0, jitter_depth: int = 3) -> RtpEndpoint:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(lambda: cls(fmt, jitter_depth=jitter_depth),
                                                       local_addr=(host, port))
        return proto

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    # --- asyncio protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._pacer = asyncio.get_running_loop().create_task(self._pace())

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            pkt = RtpPacket.parse(data)
        except ValueError:
            return
        if self.remote is None:
            self.remote = addr
        self.received += 1
        self.jitter.push(pkt)
        self._release(drain=False)
        # If the stream pauses, hand over what is buffered after a few frame times.
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush_timer = asyncio.get_running_loop().call_later(
            FRAME_MS * (self.jitter.depth + 1) / 1000, self._release, True)

    def _release(self, drain: bool) -> None:
        for pkt in self.jitter.pop_ready(drain=drain):
            if pkt is None:
                self._inbound.put_nowait(b"\x00" * self.fmt.pcm_frame_bytes)
            else:
                self._inbound.put_nowait(self.fmt.decode(pkt.payload))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._inbound.put_nowait(None)

    # --- public API -----------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[bytes]:
        """Inbound PCM16 frames (20 ms each) in order, until the endpoint closes."""
        while True:
            frame = await self._inbound.get()
            if frame is None:
                return
            yield frame

    def send(self, pcm: bytes, *, flush: bool = True) -> None:
        """Queue PCM for paced transmission (one packet per 20 ms)."""
        for frame in self.packetizer.frames(pcm, flush=flush):
            self._outbound.put_nowait(frame)
        if not self._outbound.empty():
            self._idle.clear()

    def clear(self) -> int:
        """Drop queued outbound audio (barge-in); returns the number of frames dropped."""
        dropped = 0
        while not self._outbound.empty():
            self._outbound.get_nowait()
            dropped += 1
        self._idle.set()
        return dropped

    async def drain(self) -> None:
        """Wait until every queued outbound frame has been sent."""
        await self._idle.wait()

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        interval = FRAME_MS / 1000
        last_sent: float | None = None
        while True:
            frame = await self._outbound.get()
            start = loop.time()
            if last_sent is not None:
                if start - last_sent > 2 * interval:
                    self.packetizer.skip(start - last_sent - interval)
                elif start < last_sent + interval:  # keep 20 ms between bursts too
                    await asyncio.sleep(last_sent + interval - start)
                    start = loop.time()
            n = 0
            while True:
                if self.remote is not None and self.transport is not None and not self.closed:
                    self.transport.sendto(self.packetizer.packet(frame).pack(), self.remote)
                    self.sent += 1
                last_sent = loop.time()
                n += 1
                if self._outbound.empty():
                    self._idle.set()
                    break
                frame = self._outbound.get_nowait()
                # schedule against the burst's start so timer jitter never accumulates
                await asyncio.sleep(max(0.0, start + n * interval - loop.time()))

    def close(self) -> None:
        if self._pacer is not None:
            self._pacer.cancel()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        if self.transport is not None and not self.closed:
            self.transport.close()
        self._idle.set()
