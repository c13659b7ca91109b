"""Streamed AI turns over an ARI `externalMedia` channel: `record` and `speak` on RTP frames.

While a call streams (see `AriCall.streaming()`), caller audio arrives as 20 ms RTP frames from the
externalMedia channel in the call's bridge and agent audio goes back the same way, so:

* `record` cuts one utterance out of the live frames with the VAD (`segment_utterance`) instead of
  snoop-recording a file on Asterisk and fetching it;
* `speak` sends synthesized audio paced at 20 ms per packet while a VAD watches the caller; when the
  caller starts talking over an interruptible reply it stops at once (queued frames dropped) and the
  audio that started the barge-in is kept for the next `record`, so no word is lost.

Every inbound frame is consumed exactly once, in order: frames not used by one operation (a
barge-in's opening words, speech over a non-interruptible reply) are pushed back in front of the
stream for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from switchboard.speech.audio import resample
from switchboard.speech.base import VAD
from switchboard.speech.vad.segment import segment_utterance
from switchboard.speech.audio import write_wav
from switchboard.telephony.asterisk.config import Synthesize
from switchboard.telephony.asterisk.media import MediaStream
from switchboard.telephony.call import Audio, CallEvent, CallFailed, PlaybackResult, Recording

if TYPE_CHECKING:
    from switchboard.telephony.asterisk.session import AriCall

log = logging.getLogger(__name__)

MakeVad = Callable[[int], VAD]
"""A fresh VAD for one call at the given sample rate (VADs hold stream state)."""
StreamSpeech = Callable[[str, "str | None", "str | None"], AsyncIterator[Audio]]
"""(text, language, voice) -> audio chunks as they are synthesized (e.g. `SpeechService.stream`)."""

FRAME_SECONDS = 0.02


class StreamingSession:
    """One call's streamed turns on one `MediaStream`; built and closed by `AriCall.streaming()`."""

    def __init__(self, call: AriCall, stream: MediaStream, vad: VAD, *, synthesize: Synthesize | None,
                 stream_speech: StreamSpeech | None = None, gap: float = 0.2, keep: float = 1.0) -> None:
        self.call = call
        self.stream = stream
        self.vad = vad
        self.synthesize = synthesize
        self.stream_speech = stream_speech
        self.rate = stream.sample_rate
        self.gap = gap  # no frame for this long counts as silence (keeps the audio clock running)
        self._keep = max(1, round(keep / FRAME_SECONDS))  # frames kept from before a speech start
        self._tail = round(0.4 / FRAME_SECONDS)  # frames handed on when a reply ends unheard
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._carry: deque[bytes] = deque()  # frames pushed back for the next operation
        self._ended = False
        self._pump: asyncio.Task[None] | None = None
        self._seq = 0
        self.barge_ins = 0

    def start(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        try:
            async for frame in self.stream.frames():
                self._queue.put_nowait(frame)
        finally:
            self._queue.put_nowait(None)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        await self.stream.close()

    # --- the inbound stream -----------------------------------------------------------------------

    def push_back(self, frames: list[bytes]) -> None:
        """Put frames back in front of the stream (oldest first), for the next operation."""
        self._carry.extendleft(reversed(frames))

    async def _next(self, *, fill_gaps: bool) -> bytes | None:
        """The next caller frame; None once the stream has ended. With `fill_gaps`, a pause in
        the RTP flow (nobody sends frames) yields `gap` seconds of silence instead of waiting."""
        if self._carry:
            return self._carry.popleft()
        if self._ended:
            return None
        try:
            if fill_gaps:
                frame = await asyncio.wait_for(self._queue.get(), self.gap)
            else:
                frame = await self._queue.get()
        except TimeoutError:
            return b"\x00" * (int(self.rate * self.gap) * 2)
        if frame is None:
            self._ended = True
        return frame

    # --- record -----------------------------------------------------------------------------------

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        call = self.call
        call.hangup_signal.check()
        digits: list[str] = []
        stop = asyncio.Event()

        def on_digit(d: str) -> None:
            digits.append(d)
            if terminate_on and (terminate_on == "any" or d in terminate_on):
                stop.set()

        async def frames() -> AsyncIterator[bytes]:
            while not stop.is_set():
                frame = await self._next(fill_gaps=True)
                if frame is None:
                    return
                yield frame

        call._dtmf_listeners.append(on_digit)
        try:
            audio = await call.hangup_signal.race(asyncio.ensure_future(segment_utterance(
                frames(), self.vad, max_duration=max_duration, max_silence=max_silence)))
        finally:
            call._dtmf_listeners.remove(on_digit)
        await asyncio.sleep(0)  # a hang-up that closed the stream is reported before its last frame
        call.hangup_signal.check()
        assert isinstance(audio, Audio)
        self._seq += 1
        name = f"{call.call_id}-stream{self._seq}"
        path = await self._keep_copy(name, audio) if audio.pcm else None
        call._events.put_nowait(CallEvent("recording_finished", {
            "name": name, "duration": round(audio.duration, 3), "dtmf": "".join(digits), "streamed": True}))
        return Recording(audio=audio, dtmf="".join(digits), path=path)

    async def _keep_copy(self, name: str, audio: Audio) -> str | None:
        """Keep the utterance under RECORDINGS_DIR/<call id>/ for review, as file recordings are."""
        path = self.call.config.recordings_dir / self.call.call_id / f"{name}.wav"

        def save() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(path, audio)

        try:
            await asyncio.to_thread(save)
        except OSError as exc:
            log.warning("could not keep streamed utterance %s: %s", path, exc)
            return None
        self.call.recording_paths.append(str(path))
        return str(path)

    # --- speak ------------------------------------------------------------------------------------

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        """Send the synthesized reply as paced RTP; stop on the caller's speech when interruptible."""
        call = self.call
        call.hangup_signal.check()
        if self.synthesize is None and self.stream_speech is None:
            raise CallFailed("speak: no TTS synthesizer configured for the Asterisk backend")
        watch = _Watch()
        digit: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_digit(d: str) -> None:
            if not digit.done():
                digit.set_result(d)

        producer = asyncio.ensure_future(self._produce(text, language, voice))
        watcher = asyncio.ensure_future(self._watch(watch, interruptible))
        if interruptible:
            call._dtmf_listeners.append(on_digit)
        try:
            done = await call._wait(producer, watcher, digit)  # type: ignore[arg-type]
            call.hangup_signal.check()  # a hang-up closes the stream, which also ends the sending
            if producer in done:
                producer.result()  # a TTS failure surfaces here
                return PlaybackResult(completed=True)
            self.stream.clear()
            if digit in done:
                return PlaybackResult(completed=False, interrupted_by=f"dtmf:{digit.result()}")
            watcher.result()
            self.barge_ins += 1
            call._events.put_nowait(CallEvent("speech", {"barge_in": True}))
            return PlaybackResult(completed=False, interrupted_by="speech")
        except BaseException:
            self.stream.clear()
            raise
        finally:
            if interruptible:
                call._dtmf_listeners.remove(on_digit)
            for task in (producer, watcher):
                task.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
            # The caller's words during the reply (or a start too short to count yet, at its very
            # end) belong to the next record().
            self.push_back(watch.kept if watch.speaking else list(watch.history)[-self._tail:])

    async def _produce(self, text: str, language: str | None, voice: str | None) -> None:
        if self.stream_speech is not None:
            chunks = self.stream_speech(text, language, voice)
            try:
                async for chunk in chunks:
                    if chunk.pcm:
                        self.stream.send(resample(chunk, self.rate).pcm)
            finally:
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()
        else:
            assert self.synthesize is not None
            audio = await self.synthesize(text, language, voice)
            self.stream.send(resample(audio, self.rate).pcm)
        await self.stream.drain()

    async def _watch(self, watch: _Watch, interruptible: bool) -> None:
        """Feed the caller's frames to the VAD while the agent talks. Returns on the caller's speech
        start when interruptible; otherwise keeps the speech for the next record and runs on."""
        self.vad.reset()
        history = watch.history = deque(maxlen=self._keep)
        while True:
            frame = await self._next(fill_gaps=False)
            if frame is None:
                await asyncio.Event().wait()  # stream over: the hang-up (or close) ends the speak
                continue
            if watch.speaking:
                watch.kept.append(frame)
                continue
            history.append(frame)
            if any(event.kind == "start" for event in self.vad.process(frame)):
                watch.speaking = True
                watch.kept = list(history)
                if interruptible:
                    return


class _Watch:
    """What the barge-in watcher saw: whether the caller spoke, and their frames from just before."""

    def __init__(self) -> None:
        self.speaking = False
        self.kept: list[bytes] = []
        self.history: deque[bytes] = deque()
