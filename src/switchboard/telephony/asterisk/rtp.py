"""RTP for ARI `externalMedia` channels: packets, G.711 μ-law (`speech.audio`'s codec) / L16 payloads,
a jitter buffer, and one asyncio UDP endpoint per call (the voice layer paces what it sends).

Audio crosses this module's edge as PCM16 little-endian mono at the format's rate (8 kHz for `ulaw`,
16 kHz for `slin16`); RTP L16 payloads are big-endian (network order) as RFC 3551 requires.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable
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


def _drop(pcm: bytes) -> None:
    pass


class RtpEndpoint(asyncio.DatagramProtocol):
    """One call's UDP RTP socket: inbound frames through a jitter buffer straight to `on_frame`,
    outbound frames sent the moment they are handed over (the voice layer paces them).

    The remote address is learnt from the first packet received (symmetric RTP, as Asterisk's
    externalMedia expects) unless given explicitly. Nothing here runs per packet but the packet
    itself: no queue, task or timer (the jitter buffer's flush timer is armed once per pause).
    """

    FILL_EVERY = 0.06  # while the far end is silent, silence frames are handed over this often

    def __init__(self, fmt: RtpFormat, *, jitter_depth: int = 3) -> None:
        self.fmt = fmt
        self.packetizer = Packetizer(fmt)
        self.jitter = JitterBuffer(depth=jitter_depth)
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.on_frame: Callable[[bytes], None] = _drop  # PCM16 frames of 20 ms at fmt.sample_rate
        self.on_closed: Callable[[], None] | None = None
        self.received = 0
        self.sent = 0
        self.closed = False
        self._last_packet = 0.0
        self._last_sent: float | None = None
        self._spurt_over = False
        self._filled_until = 0.0  # silence delivered up to here while the far end sends nothing
        self._flush_timer: asyncio.TimerHandle | None = None
        self._hold = FRAME_MS * (jitter_depth + 1) / 1000  # a pause this long hands over what is buffered
        self._loop: asyncio.AbstractEventLoop | None = None

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
        self._loop = asyncio.get_running_loop()

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
        assert self._loop is not None
        self._last_packet = self._loop.time()
        if self._flush_timer is None:
            self._flush_timer = self._loop.call_later(self._hold, self._flush)

    def _flush(self) -> None:
        """If the stream paused, hand over what the jitter buffer holds, then keep the caller's
        audio clock running with silence (Asterisk sends nothing while nobody in the bridge makes a
        sound, and endpointing needs the silence that ends an utterance) — a few frames per timer,
        until packets flow again; otherwise look again later."""
        self._flush_timer = None
        assert self._loop is not None
        now = self._loop.time()
        idle = now - self._last_packet
        if idle >= self._hold - 1e-3:
            self._release(drain=True)
            if self._filled_until < self._last_packet:
                self._filled_until = self._last_packet + self._hold  # the buffered packets covered that
            silent = int((now - self._filled_until) / (FRAME_MS / 1000))
            for _ in range(max(0, silent)):
                self.on_frame(b"\x00" * self.fmt.pcm_frame_bytes)
            self._filled_until += max(0, silent) * FRAME_MS / 1000
            if not self.closed:
                self._flush_timer = self._loop.call_later(self.FILL_EVERY, self._flush)
        elif len(self.jitter):
            self._flush_timer = self._loop.call_later(self._hold - idle, self._flush)

    def _release(self, drain: bool) -> None:
        for pkt in self.jitter.pop_ready(drain=drain):
            if pkt is None:
                self.on_frame(b"\x00" * self.fmt.pcm_frame_bytes)
            else:
                self.on_frame(self.fmt.decode(pkt.payload))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        if self.on_closed is not None:
            self.on_closed()

    # --- public API -----------------------------------------------------------------------------

    def end_talkspurt(self) -> None:
        """The audio sent so far is complete (the voice layer's playback ended): the next packet
        starts a new talkspurt."""
        self._spurt_over = True

    def send(self, pcm: bytes) -> None:
        """Send whole 20 ms frames now, one packet each. Within a talkspurt the RTP clock runs on
        sample by sample, even when a busy loop hands a frame over late; a new talkspurt (after
        `end_talkspurt`, or a second without audio) skips the clock over the silence and sets the
        marker bit, as RFC 3551 wants."""
        if self.remote is None or self.transport is None or self.closed:
            return
        assert self._loop is not None
        now = self._loop.time()
        interval = FRAME_MS / 1000
        if self._last_sent is not None and (self._spurt_over or now - self._last_sent > 1.0):
            self.packetizer.skip(max(0.0, now - self._last_sent - interval))
        self._spurt_over = False
        for frame in self.packetizer.frames(pcm, flush=True):
            self.transport.sendto(self.packetizer.packet(frame).pack(), self.remote)
            self.sent += 1
        self._last_sent = now

    def close(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self.transport is not None and not self.closed:
            self.transport.close()
