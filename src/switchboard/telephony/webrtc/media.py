"""Audio between a browser's Opus tracks and the voice layer's 20 ms PCM frames.

aiortc decodes the caller's Opus to 48 kHz stereo frames of whatever length the browser packetised
(usually 20 ms); `CallerAudio` turns them into mono PCM16 at the port's rate (16 kHz: what Silero,
Whisper and Moonshine take) in exact 20 ms frames. The conversion is PyAV's streaming resampler (it
keeps its filter state across frames, so 20 ms slices join without clicks; `speech.audio.resample`
is the whole-clip resampler). Each packet's frame goes to the voice layer as the packet is decoded:
see `jitter` for the packets, and `CallerAudio.frames` for the resampler's delay.

`AgentTrack` is the outbound audio track. aiortc pulls one frame at a time from `recv()` and
encodes it at once, so the track keeps the wire's pace: one 20 ms frame per 20 ms on an absolute
schedule (no drift; after a stall it resynchronises rather than bursting), agent audio when there
is some, silence otherwise. What `recv()` returned has left for the browser: that is the playout
clock the voice layer's marks are reported on; `clear()` drops what has not left (barge-in).

The track hands aiortc 48 kHz (Opus' own rate) in 960-sample frames, already resampled here: given
16 kHz, aiortc's encoder resamples into a 960-sample FIFO, and the resampler's few samples of filter
delay leave every frame waiting in that FIFO for the next one — 20 ms on all agent audio. Here the
same delay is paid once, as a few samples of silence ahead of the stream.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from switchboard.voice.port import FRAME_MS, FrameAssembler

log = logging.getLogger(__name__)

WIRE_RATE = 48000  # Opus' rate: what the track gives aiortc's encoder, so it need not resample
WIRE_SAMPLES = WIRE_RATE * FRAME_MS // 1000


class CallerAudio:
    """The caller's track as 20 ms mono PCM16 frames at `sample_rate`."""

    def __init__(self, track: MediaStreamTrack, sample_rate: int) -> None:
        self.track = track
        self.sample_rate = sample_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        self._frames = FrameAssembler(sample_rate)
        self._primed = False
        self.last_frame_at: float | None = None  # monotonic time of the last packet from the browser

    async def frames(self) -> AsyncIterator[bytes]:
        """Frames until the track ends (the peer connection closed or the browser stopped it)."""
        while True:
            try:
                decoded = await self.track.recv()
            except MediaStreamError:
                return
            self.last_frame_at = time.monotonic()
            for out in self._resampler.resample(decoded):
                pcm = bytes(out.planes[0])[: out.samples * 2]
                if not self._primed and pcm:
                    # The resampler's first output is short by its filter delay (304 samples, not
                    # 320); as silence ahead of the stream it keeps every later 20 ms whole at once
                    # instead of each waiting in the assembler for the next packet.
                    self._primed = True
                    pcm = bytes(-len(pcm) % self._frames.size) + pcm
                for frame in self._frames.push(pcm):
                    yield frame


class AgentTrack(MediaStreamTrack):
    """The agent's voice to the browser: one 20 ms frame per 20 ms, silence when there is none.

    The voice layer hands over each frame when it is due (it paces), so the queue here only absorbs
    the small offset between its clock and aiortc's pull; marks ride in the queue and are reported
    when the audio before them has left for the browser.
    """

    kind = "audio"

    def __init__(self, sample_rate: int, on_played: Callable[[int], None]) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.samples = sample_rate * FRAME_MS // 1000
        self.frame_bytes = self.samples * 2
        self.on_played = on_played
        self._time_base = fractions.Fraction(1, WIRE_RATE)
        self._queue: deque[bytes | int] = deque()  # frames, and mark tokens after the frames they follow
        self._start: float | None = None
        self._frames = 0  # 20 ms frames returned so far (the schedule)
        self._pts = 0
        self._upsample = av.AudioResampler(format="s16", layout="mono", rate=WIRE_RATE)
        self._wire = bytearray()  # resampled audio not yet in a frame (the filter's few samples)
        self._silence = b"\x00" * self.frame_bytes
        self.frames_sent = 0  # agent frames handed to the encoder
        self.first_audio_at: float | None = None  # monotonic time the first agent frame left

    # --- the voice layer's side ---------------------------------------------------------------
    def send(self, pcm: bytes) -> None:
        """Whole 20 ms frames of agent audio (mono PCM16 at `sample_rate`), due now."""
        size = self.frame_bytes
        for i in range(0, len(pcm) - size + 1, size):
            self._queue.append(pcm[i:i + size])

    def mark(self, token: int) -> None:
        if any(isinstance(item, bytes) for item in self._queue):
            self._queue.append(token)
        else:
            self.on_played(token)

    def clear(self) -> int:
        """Drop queued audio at once (outstanding marks count as played); returns frames dropped."""
        items = list(self._queue)
        self._queue.clear()
        for item in items:
            if isinstance(item, int):
                self.on_played(item)
        return sum(1 for item in items if isinstance(item, bytes))

    @property
    def queued(self) -> int:
        return sum(1 for item in self._queue if isinstance(item, bytes))

    # --- aiortc's side ----------------------------------------------------------------------------
    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self._frames * FRAME_MS / 1000
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 0.2:  # the loop stalled: resynchronise instead of bursting to catch up
                self._start = now - self._frames * FRAME_MS / 1000
        pcm = self._silence
        queue = self._queue
        while queue and isinstance(queue[0], int):
            self.on_played(queue.popleft())  # type: ignore[arg-type]
        if queue:
            pcm = queue.popleft()  # type: ignore[assignment]
            self.frames_sent += 1
            if self.first_audio_at is None:
                self.first_audio_at = time.monotonic()
            while queue and isinstance(queue[0], int):
                self.on_played(queue.popleft())  # type: ignore[arg-type]
        frame = av.AudioFrame(format="s16", layout="mono", samples=WIRE_SAMPLES)
        frame.planes[0].update(self._to_wire(pcm))
        frame.pts = self._pts
        frame.sample_rate = WIRE_RATE
        frame.time_base = self._time_base
        self._pts += WIRE_SAMPLES
        self._frames += 1
        return frame

    def _to_wire(self, pcm: bytes) -> bytes:
        """One 20 ms frame at `sample_rate` -> 20 ms at 48 kHz, through one streaming resampler
        (silence too, so its filter state runs on without clicks)."""
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(pcm)
        frame.sample_rate = self.sample_rate
        for out in self._upsample.resample(frame):
            self._wire += bytes(out.planes[0])[: out.samples * 2]
        size = WIRE_SAMPLES * 2
        if len(self._wire) < size:  # the first frame only: the filter's delay goes out as silence
            self._wire[:0] = bytes(size - len(self._wire))
        wire = bytes(self._wire[:size])
        del self._wire[:size]
        return wire

    def stop(self) -> None:
        self.clear()
        super().stop()
