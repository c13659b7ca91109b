"""`VoiceSession`: turn-taking on any `AudioPort` — the one place it is coded.

The session is the port's `AudioSink`. Every caller frame goes once into the call's `VadStream`
(the process-wide batched Silero by default), whose start/end events drive everything else:

* **listen** returns the caller's next utterance: one said while nobody listened (during a
  non-interruptible prompt, or the words that barged in) first, else the next one, ended by the
  VAD's end of speech, `max_duration` of audio, a terminating DTMF key — or nothing, when nobody
  spoke within `max_silence`. Time is counted in audio received, so it is the same on the wall
  clock, the simulator's virtual clock and a replay; a watchdog on the loop clock covers a stream
  that stops sending.
* **play / say** send agent audio paced at 20 ms (`voice.pacing`): prompts from the built prompt
  files, `tts:` prompts and text through the (cached, streamed) TTS, sentence by sentence as it is
  synthesized — `say` also takes the sentences themselves as an async iterable while an LLM is
  still writing them, so the next one is synthesized while the first plays. A playback completes
  when its audio has been *played* (the port's mark and the pacing schedule), not when it was sent.
* **barge-in**: when the VAD hears the caller start over interruptible audio, the rest is dropped
  at once (no frame goes out after the decision, and the port's `clear()` drops what the far end
  still buffers) and the utterance — with the words that started it — is the next listen's.
* **early transcripts** (with `early`): a pause inside an utterance starts its transcription, and
  the end adopts it when the audio is the same (`voice.early`), so STT overlaps the end-of-speech wait.

Nothing here runs per frame but `on_frame` itself: no task, timer, queue or thread hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from switchboard.speech.audio import Audio, resample
from switchboard.speech.base import VADEvent, VadStream
from switchboard.telephony.call import CallerHangup, CallEvent, CallFailed, HangupSignal, PlaybackResult
from switchboard.voice.early import EarlyJob, EarlyTranscripts, TranscriptHints
from switchboard.voice.pacing import Pacer
from switchboard.voice.port import FRAME_SECONDS, AudioPort
from switchboard.voice.prompts import PromptSource, StreamSpeech, text_prompt

log = logging.getLogger(__name__)

DTMF_KEPT = 16  # digits remembered for the next listen
UTTERANCES_KEPT = 3  # utterances remembered for the next listen


@dataclass(slots=True)
class Heard:
    """What one listen produced."""

    audio: Audio
    dtmf: str = ""
    ended_at: float | None = None  # loop time the utterance was known to be over


class VoiceSession:
    """One call's turn-taking on one port (see the module docstring)."""

    def __init__(self, port: AudioPort, *, vad: VadStream, pacer: Pacer, prompts: PromptSource | None = None,
                 speech: StreamSpeech | None = None, early: EarlyTranscripts | None = None,
                 watchdog_slack: float = 0.5) -> None:
        if vad.sample_rate != port.sample_rate:
            raise ValueError(f"VAD at {vad.sample_rate} Hz on a {port.sample_rate} Hz port")
        self.port = port
        self.vad = vad
        self.pacer = pacer
        self.prompts = prompts
        self.speech = speech
        self.rate = port.sample_rate
        self.watchdog_slack = watchdog_slack
        self.hangup = HangupSignal()
        self.events: asyncio.Queue[CallEvent | None] = asyncio.Queue()
        self.frames_in = 0
        self.barge_ins = 0
        self.caller_speaking = False
        self._utterances: deque[Heard] = deque(maxlen=UTTERANCES_KEPT)
        self._digits: deque[str] = deque(maxlen=DTMF_KEPT)
        self._listen: _Listen | None = None
        self._playout: _Playout | None = None
        self._marks: dict[int, _Playout] = {}
        self._token = 0
        self._closed = False
        self._port_closing: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.early = early
        self.transcript_hints = TranscriptHints()  # what this call's utterances are transcribed with
        self._early_job: EarlyJob | None = None
        self._handed: deque[Audio] = deque(maxlen=UTTERANCES_KEPT + 1)  # adopted, maybe not yet transcribed
        vad.set_listener(self._on_vad)
        if early is not None:
            vad.report_pauses(early.after)
        port.attach(self)

    # --- AudioSink: what the port reports ------------------------------------------------------------

    def on_frame(self, pcm: bytes) -> None:
        self.frames_in += 1
        self.vad.push(pcm)
        listen = self._listen
        if listen is not None:
            listen.on_frame()

    def on_dtmf(self, digit: str) -> None:
        self.events.put_nowait(CallEvent("dtmf", {"digit": digit}))
        playout = self._playout
        if playout is not None and playout.interruptible and not playout.done.done():
            playout.interrupt(f"dtmf:{digit}")
            return
        listen = self._listen
        if listen is not None:
            listen.on_digit(digit)
        else:
            self._digits.append(digit)

    def on_played(self, token: int) -> None:
        playout = self._marks.pop(token, None)
        if playout is not None:
            playout.played(self._loop.time())

    def on_hangup(self, cause: str) -> None:
        """The far end is gone: every pending and later operation raises `CallerHangup`, and the
        call's share of the shared VAD and the port are released."""
        if self.hangup.is_set:
            return
        self.hangup.set(cause)
        self.events.put_nowait(CallEvent("hangup", {"cause": cause}))
        self.events.put_nowait(None)
        if self._playout is not None:
            self._playout.halt()
        self.vad.close()
        self._settle_early(None)
        if not self._closed:
            self._closed = True
            self._port_closing = self._loop.create_task(self.port.close())

    # --- the VAD ----------------------------------------------------------------------------------

    def _on_vad(self, events: list[VADEvent]) -> None:
        for event in events:
            if event.kind == "start":
                self.caller_speaking = True
                playout = self._playout
                if playout is not None and playout.interruptible and not playout.done.done():
                    self.barge_ins += 1
                    playout.interrupt("speech")
                    self.events.put_nowait(CallEvent("speech", {"barge_in": True}))
                listen = self._listen
                if listen is not None:
                    listen.on_start()
            elif event.kind == "end":
                self.caller_speaking = False
                heard = Heard(event.audio or Audio(b"", self.rate), ended_at=self._loop.time())
                self._settle_early(heard.audio)
                listen = self._listen
                if listen is not None and not listen.done.done():
                    listen.finish(heard.audio)
                else:
                    self._utterances.append(heard)
            elif event.kind == "pause" and self.early is not None and event.audio is not None:
                if self._early_job is not None:  # the caller spoke on after the last pause
                    self.early.drop(self._early_job)
                self._early_job = self.early.start(event.audio, self.transcript_hints)

    def _settle_early(self, audio: Audio | None) -> None:
        """The utterance ended with `audio` (None: the call is over): adopt the early job when it
        transcribed exactly that, else drop it."""
        job, self._early_job = self._early_job, None
        early = self.early
        if early is None:
            return
        if audio is None:
            while self._handed:
                early.forget(self._handed.popleft())
        if job is None:
            return
        if audio is not None and audio.pcm == job.audio.pcm:
            if len(self._handed) == self._handed.maxlen:
                early.forget(self._handed[0])  # older than anything a listen can still return
            self._handed.append(audio)
            early.adopt(job, audio)
        else:
            early.drop(job)

    # --- listen -----------------------------------------------------------------------------------

    async def listen(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Heard:
        """The caller's next utterance (see the module docstring); empty audio when none."""
        self.hangup.check()
        if self._listen is not None:
            raise RuntimeError("listen while listening")
        digits = "".join(self._digits)
        self._digits.clear()
        if self._utterances:
            heard = self._utterances.popleft()
            heard.dtmf = digits + heard.dtmf
            return heard
        listen = _Listen(self, max_duration=max_duration, max_silence=max_silence, terminate_on=terminate_on,
                         digits=list(digits))
        if terminate_on and any(listen.terminates(d) for d in digits):
            return Heard(Audio(b"", self.rate), digits, self._loop.time())
        self._listen = listen
        if self.caller_speaking:
            listen.on_start()
        try:
            await self.race(listen.done)
        finally:
            listen.cancel_watchdog()
            self._listen = None
        return listen.done.result()

    # --- play / say -------------------------------------------------------------------------------

    async def play(self, prompt: str, *, interruptible: bool = False, language: str | None = None,
                   voice: str | None = None) -> PlaybackResult:
        """A prompt reference: `tts:` text is spoken, anything else comes from `prompts`."""
        self.hangup.check()
        text = text_prompt(prompt)
        if text is not None:
            return await self.say(text.text, language=text.language or language, voice=voice,
                                  interruptible=interruptible)
        if self.prompts is None:
            raise CallFailed(f"prompt {prompt!r}: no prompt files configured for streamed calls")
        audio = await self.prompts.load(prompt, self.rate)
        return await self.play_audio(audio, interruptible=interruptible)

    async def play_audio(self, audio: Audio, *, interruptible: bool = False) -> PlaybackResult:
        async def produce(playout: _Playout) -> None:
            playout.feed(resample(audio, self.rate).pcm)

        return await self._playback(produce, interruptible)

    async def say(self, text: str | AsyncIterable[str], *, language: str | None = None, voice: str | None = None,
                  interruptible: bool = False) -> PlaybackResult:
        """Speak `text` (or each sentence of an async iterable as it comes) as it is synthesized."""
        self.hangup.check()
        if self.speech is None:
            raise CallFailed("say: no TTS configured for streamed calls")
        speech = self.speech

        async def produce(playout: _Playout) -> None:
            sentences = _sentences(text)
            async for sentence in sentences:
                if not sentence.strip():
                    continue
                chunks = speech(sentence, language, voice)
                try:
                    async for chunk in chunks:
                        if chunk.pcm:
                            playout.feed(resample(chunk, self.rate).pcm)
                finally:
                    close = getattr(chunks, "aclose", None)
                    if close is not None:
                        with contextlib.suppress(Exception):
                            await close()

        return await self._playback(produce, interruptible)

    async def _playback(self, produce, interruptible: bool) -> PlaybackResult:  # type: ignore[no-untyped-def]
        self.hangup.check()
        if self._playout is not None:
            raise RuntimeError("playing while playing")
        playout = _Playout(self, interruptible)
        self._playout = playout
        producer = asyncio.ensure_future(produce(playout))
        producer.add_done_callback(playout.produced)
        try:
            await self.race(playout.done)
            result = playout.done.result()
            if result.completed:
                self.events.put_nowait(CallEvent("playback_finished", {"frames": playout.sent}))
            return result
        finally:
            playout.stop()
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            self._playout = None

    def _mark(self, playout: _Playout) -> int:
        self._token += 1
        self._marks[self._token] = playout
        self.port.mark(self._token)
        return self._token

    # --- lifecycle ------------------------------------------------------------------------------

    async def race(self, fut: asyncio.Future[object]) -> None:
        """Wait for `fut` unless the caller hangs up first (then raise `CallerHangup`)."""
        self.hangup.check()
        if fut.done():
            return
        waiter = asyncio.ensure_future(self.hangup.wait())
        try:
            await asyncio.wait({fut, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not fut.done():
            raise CallerHangup(self.hangup.cause)

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.hangup.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def iter_events(self) -> AsyncIterator[CallEvent]:
        while True:
            event = await self.events.get()
            if event is None:
                self.events.put_nowait(None)
                return
            yield event

    async def close(self, cause: str = "normal") -> None:
        """We are done with the call (or its stream): stop talking and listening, release the port.

        A playback or listen still pending in another task ends with `CallerHangup` (the hang-up
        signal is set below), never with a cancelled future: that would surface in the waiting task
        as a `CancelledError` nobody asked for, and e.g. end a dialer's call task without a result."""
        if self._playout is not None:
            self._playout.halt()
        if not self._closed:
            self._closed = True
            self.on_hangup(cause)
            self.vad.close()
            await self.port.close()
        elif self._port_closing is not None:
            await asyncio.gather(self._port_closing, return_exceptions=True)


async def _sentences(text: str | AsyncIterable[str]) -> AsyncIterator[str]:
    if isinstance(text, str):
        yield text
        return
    async for sentence in text:
        yield sentence


class _Listen:
    """One listen in progress: counts audio, applies the silence and duration limits, watches keys."""

    def __init__(self, session: VoiceSession, *, max_duration: float, max_silence: float, terminate_on: str,
                 digits: list[str]) -> None:
        self.session = session
        self.done: asyncio.Future[Heard] = session._loop.create_future()
        self.max_frames = max(1, round(max_duration / FRAME_SECONDS))
        self.silence_frames = max(1, round(max_silence / FRAME_SECONDS))
        self.terminate_on = terminate_on
        self.digits = digits
        self.frames = 0
        self.started = False
        loop = session._loop
        self._watchdog = loop.call_later(max_silence + session.watchdog_slack, self._silent_stream)
        self._max_duration = max_duration

    def terminates(self, digit: str) -> bool:
        return bool(self.terminate_on) and (self.terminate_on == "any" or digit in self.terminate_on)

    def on_frame(self) -> None:
        self.frames += 1
        if self.done.done():
            return
        if self.frames >= self.max_frames:
            self._cut()
        elif not self.started and self.frames >= self.silence_frames and not self.session.vad.in_speech:
            self.finish(Audio(b"", self.session.rate))

    def on_start(self) -> None:
        if not self.started:
            self.started = True
            self.cancel_watchdog()
            remaining = max(0.0, self._max_duration - self.frames * FRAME_SECONDS)
            self._watchdog = self.session._loop.call_later(remaining + self.session.watchdog_slack, self._cut)

    def on_digit(self, digit: str) -> None:
        self.digits.append(digit)
        if self.terminates(digit) and not self.done.done():
            self._cut()

    def _cut(self) -> None:
        """End the listen now with what was said so far (max duration, a terminating key)."""
        if self.done.done():
            return
        vad = self.session.vad
        audio = vad.current_audio() if vad.in_speech else Audio(b"", self.session.rate)
        if vad.in_speech:
            for event in vad.flush():
                if event.kind == "end" and event.audio is not None:
                    audio = event.audio
            self.session.caller_speaking = False
            self.session._settle_early(audio)
        self.finish(audio)

    def _silent_stream(self) -> None:
        """Loop-clock watchdog: the stream stopped delivering frames."""
        if not self.started:
            self.finish(Audio(b"", self.session.rate))
        else:
            self._cut()

    def finish(self, audio: Audio) -> None:
        if not self.done.done():
            self.cancel_watchdog()
            self.done.set_result(Heard(audio, "".join(self.digits), self.session._loop.time()))

    def cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


class _Playout:
    """One playback: frames queued by a producer, paced out, done when played (or interrupted)."""

    def __init__(self, session: VoiceSession, interruptible: bool) -> None:
        self.session = session
        self.interruptible = interruptible
        self.port = session.port
        self.size = session.port.frame_bytes
        self.frames: deque[bytes] = deque()
        self.tail = b""
        self.producing = True
        self.next_due: float | None = None
        self.end_at: float | None = None
        self.token: int | None = None
        self.mark_seen = False
        self.sent = 0
        self.paced = False
        self.done: asyncio.Future[PlaybackResult] = session._loop.create_future()

    def feed(self, pcm: bytes) -> None:
        if self.done.done():
            return
        data = self.tail + pcm if self.tail else pcm
        size = self.size
        whole = len(data) - len(data) % size
        self.frames.extend(data[i:i + size] for i in range(0, whole, size))
        self.tail = data[whole:]
        now = self.session._loop.time()
        if self.next_due is None or self.next_due < now:  # first audio, or after an underrun
            self.next_due = now
        self._kick(now)

    def produced(self, task: asyncio.Future[None]) -> None:
        """The producer finished (all audio fed), failed, or was cancelled."""
        if self.done.done() or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.port.clear()
            self._finish(exc)
            return
        if self.tail:
            self.frames.append(self.tail + b"\x00" * (self.size - len(self.tail)))
            self.tail = b""
        self.producing = False
        now = self.session._loop.time()
        if self.next_due is None:
            self.next_due = now
        self._kick(now)

    def _kick(self, now: float) -> None:
        if self.pace(now) and not self.paced:
            self.paced = True
            self.session.pacer.add(self)

    def pace(self, now: float) -> bool:
        """Send what is due (Talker); False once the pacer need not call again."""
        if self.done.done():
            self.paced = False
            return False
        frames = self.frames
        if frames:
            assert self.next_due is not None
            limit = now + self.session.pacer.lead + 1e-6
            send = self.port.send
            while frames and self.next_due <= limit:
                send(frames.popleft())
                self.next_due += FRAME_SECONDS
                self.sent += 1
            if frames:
                return True
        if self.producing:  # underrun: the producer's next audio restarts the pacing
            self.paced = False
            return False
        if self.token is None:
            self.end_at = self.next_due
            self.token = 0  # a port may report the mark played from inside mark()
            self.token = self.session._mark(self)
        assert self.end_at is not None
        if now >= self.end_at - FRAME_SECONDS / 2:
            self.paced = False
            if self.mark_seen:
                self._finish(PlaybackResult(completed=True))
            return False  # else the far end's mark completes it (`played`)
        return True

    def played(self, now: float) -> None:
        """The port reports the far end has played everything up to our mark."""
        self.mark_seen = True
        if self.end_at is not None and now >= self.end_at - FRAME_SECONDS / 2:
            self._finish(PlaybackResult(completed=True))

    def halt(self) -> None:
        """The call is gone: send nothing more (the pending operation raises `CallerHangup`)."""
        self.frames.clear()
        self.producing = False
        self.session.pacer.discard(self)
        self.paced = False

    def interrupt(self, why: str) -> None:
        """Barge-in (speech or a key): nothing more goes out; the far end drops what it holds."""
        if self.done.done():
            return
        self.frames.clear()
        self.port.clear()
        self._finish(PlaybackResult(completed=False, interrupted_by=why))

    def stop(self) -> None:
        if not self.done.done():
            self.frames.clear()
            self.port.clear()
            self.done.cancel()
        self.session.pacer.discard(self)
        self.paced = False
        if self.token is not None:
            self.session._marks.pop(self.token, None)

    def _finish(self, outcome: PlaybackResult | BaseException) -> None:
        if self.done.done():
            return
        if isinstance(outcome, BaseException):
            self.done.set_exception(outcome)
        else:
            self.done.set_result(outcome)
        self.session.pacer.discard(self)
        self.paced = False
        if self.token is not None:
            self.session._marks.pop(self.token, None)
