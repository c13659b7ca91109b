"""`AriCall`: one call driven over ARI, bridge-centric.

Every call owns a mixing bridge; the customer leg, an operator leg and any externalMedia channel join
it. Snoop channels (for recording the customer alone) hang off the customer leg. When any party
(customer or connected operator) hangs up, every remaining leg and the bridge are torn down, once.

Each operation registers its event waiter before the REST request (events often arrive first) and
completes only on the event (PlaybackFinished, RecordingFinished, StasisStart ...), never a timer;
timeouts here are safety nets for lost events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from switchboard.speech.audio import read_wav_bytes, write_wav
from switchboard.telephony.asterisk.audio import normalise_recording, write_tts_sound
from switchboard.telephony.asterisk.client import AriClient, AriError
from switchboard.telephony.asterisk.config import (
    CAUSE_NAMES,
    HANGUP_REASONS,
    AriConfig,
    Synthesize,
    classify_failure,
    media_uri,
    text_prompt,
    tts_sound_name,
)
from switchboard.telephony.asterisk.events import EventRouter
from switchboard.telephony.asterisk.media import AriMediaPort
from switchboard.telephony.asterisk.models import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Dial,
    Event,
    LiveRecording,
    Playback,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)
from switchboard.telephony.asterisk.rtp import RtpEndpoint, rtp_format
from switchboard.telephony.call import (
    Audio,
    CallCapabilities,
    CallerHangup,
    CallEvent,
    CallFailed,
    DialOutcome,
    Direction,
    HangupSignal,
    PlaybackResult,
    Recording,
    TransferResult,
)

if TYPE_CHECKING:
    from switchboard.voice.runtime import VoiceRuntime
    from switchboard.voice.session import VoiceSession

log = logging.getLogger(__name__)

__all__ = ["AriCall", "AriConfig", "AriMediaPort", "Synthesize", "classify_failure", "media_uri", "new_call_id"]

@dataclass
class _Leg:
    """One channel of the call and what Asterisk told us about it."""

    channel_id: str
    role: str  # customer | operator | snoop | media
    far_id: str | None = None
    started: asyncio.Future[StasisStart] | None = None
    gone: asyncio.Future[tuple[int, str, str]] | None = None  # (cause, cause_txt, dialstatus)
    destroyed: bool = False
    cause: int = 0
    cause_txt: str = ""
    far_destroyed: bool = False
    far_cause: int = 0
    far_cause_txt: str = ""
    dialstatus: str = ""
    unsubscribe: list[Callable[[], None]] = field(default_factory=list)


class AriCall:
    """Implements `switchboard.telephony.call.Call` over ARI (plus `external_media()`)."""

    def __init__(self, *, client: AriClient, router: EventRouter, config: AriConfig, call_id: str,
                 direction: Direction, remote_number: str, line_number: str | None, channel_id: str,
                 far_channel_id: str | None = None, synthesize: Synthesize | None = None,
                 on_ended: Callable[[AriCall], None] | None = None, voice: VoiceRuntime | None = None) -> None:
        self.call_id = call_id
        self.direction: Direction = direction
        self.remote_number = remote_number
        self.line_number = line_number
        self.client = client
        self.router = router
        self.config = config
        self.synthesize = synthesize
        self.on_ended = on_ended
        self.voice = voice  # the shared voice layer; None: no streamed turns (files only)
        self.capabilities = CallCapabilities(audio="files", stream_on_request=voice is not None,
                                             speaks_text_streams=True)
        self._streaming: VoiceSession | None = None
        self._stream_seq = 0
        self.channel_id = channel_id
        self.bridge_id = f"{call_id}-bridge"
        self.hangup_signal = HangupSignal()
        self.ended = asyncio.Event()
        self.operator_number: str | None = None
        self.recording_paths: list[str] = []
        self._bridge_ready = False
        self._answered = direction == "outbound"
        self._legs: dict[str, _Leg] = {}
        self._seq = 0
        self._events: asyncio.Queue[CallEvent | None] = asyncio.Queue()
        self._dtmf_listeners: list[Callable[[str], None]] = []
        self._pending_playbacks: dict[str, asyncio.Future[Event]] = {}
        self._pending_recordings: dict[str, asyncio.Future[Event]] = {}
        self._media: list[AriMediaPort] = []
        self._teardown_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._customer = self._add_leg(channel_id, "customer", far_channel_id)

    # --- identity -------------------------------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        return self.hangup_signal.is_set

    @property
    def customer_cause(self) -> tuple[int, str]:
        """The real Q.850 cause of the customer leg (the far half's for Local channels)."""
        leg = self._customer
        if leg.far_cause:
            return leg.far_cause, leg.far_cause_txt
        return leg.cause, leg.cause_txt

    def _next_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.call_id}-{kind}{self._seq}"

    # --- legs and events ------------------------------------------------------------------------

    def _add_leg(self, channel_id: str, role: str, far_id: str | None = None) -> _Leg:
        loop = asyncio.get_running_loop()
        leg = _Leg(channel_id, role, far_id, started=loop.create_future(), gone=loop.create_future())
        for fut in (leg.started, leg.gone):
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._legs[channel_id] = leg
        leg.unsubscribe.append(self.router.on_channel(channel_id, lambda e: self._on_leg_event(leg, e)))
        if far_id:
            leg.unsubscribe.append(self.router.on_channel(far_id, lambda e: self._on_far_event(leg, e)))
        return leg

    def _forget_leg(self, channel_id: str) -> None:
        leg = self._legs.pop(channel_id, None)
        if leg is not None:
            for unsub in leg.unsubscribe:
                unsub()

    def _on_leg_event(self, leg: _Leg, event: Event) -> None:
        if isinstance(event, StasisStart):
            if leg.started and not leg.started.done():
                leg.started.set_result(event)
        elif isinstance(event, Dial) and event.dialstatus:
            leg.dialstatus = event.dialstatus
        elif isinstance(event, ChannelDtmfReceived) and leg.role == "customer":
            self._events.put_nowait(CallEvent("dtmf", {"digit": event.digit, "duration_ms": event.duration_ms}))
            for listener in list(self._dtmf_listeners):
                listener(event.digit)
        elif isinstance(event, ChannelHangupRequest):
            if self._is_party(leg) and not event.soft:
                self._party_gone(leg, CAUSE_NAMES.get(event.cause or 0, "normal"))
        elif isinstance(event, StasisEnd):
            if self._is_party(leg):
                self._party_gone(leg, "normal")
        elif isinstance(event, ChannelDestroyed):
            leg.destroyed = True
            leg.cause, leg.cause_txt = event.cause, event.cause_txt
            self._resolve_gone(leg)
            if self._is_party(leg):
                self._party_gone(leg, CAUSE_NAMES.get(self._leg_cause(leg)[0], "normal"))

    def _on_far_event(self, leg: _Leg, event: Event) -> None:
        if isinstance(event, ChannelDestroyed):
            leg.far_destroyed = True
            leg.far_cause, leg.far_cause_txt = event.cause, event.cause_txt
            self._resolve_gone(leg)
        elif isinstance(event, ChannelHangupRequest) and self._is_party(leg) and not event.soft:
            self._party_gone(leg, CAUSE_NAMES.get(event.cause or 0, "normal"))

    @staticmethod
    def _leg_cause(leg: _Leg) -> tuple[int, str]:
        if leg.far_cause:
            return leg.far_cause, leg.far_cause_txt
        return leg.cause, leg.cause_txt

    def _resolve_gone(self, leg: _Leg) -> None:
        """Resolve `gone` once the real cause is known. For a Local pair the near half of a failed
        originate reports 0 "Unknown" and the far half carries the cause, so wait briefly for it."""
        if leg.gone is None or leg.gone.done():
            return
        if not leg.far_id:
            if leg.destroyed:
                self._resolve_gone_now(leg)
            return
        if leg.destroyed and leg.far_destroyed:
            self._resolve_gone_now(leg)
        elif leg.destroyed or leg.far_destroyed:
            asyncio.get_running_loop().call_later(0.5, self._resolve_gone_now, leg)

    @staticmethod
    def _resolve_gone_now(leg: _Leg) -> None:
        if leg.gone is not None and not leg.gone.done():
            cause, txt = AriCall._leg_cause(leg)
            leg.gone.set_result((cause, txt, leg.dialstatus))

    def _is_party(self, leg: _Leg) -> bool:
        """Customer after answer, or an operator once bridged: their hang-up ends the call."""
        if leg.role == "customer":
            return leg.started is not None and leg.started.done() or self.direction == "inbound"
        return leg.role == "operator" and self.operator_number is not None

    def _party_gone(self, leg: _Leg, cause: str) -> None:
        if leg.role == "operator":
            cause = "operator_hangup"
        self.hangup_signal.set(cause)
        self._schedule_teardown(cause)

    def add_dtmf_listener(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener(digit)` for each key the customer presses; returns the unsubscribe."""
        self._dtmf_listeners.append(listener)
        return lambda: self._dtmf_listeners.remove(listener) if listener in self._dtmf_listeners else None

    # --- lifecycle ------------------------------------------------------------------------------

    def mark_answered(self, event: StasisStart) -> None:
        """Backend: the customer leg is already in Stasis (inbound StasisStart)."""
        if self._customer.started and not self._customer.started.done():
            self._customer.started.set_result(event)

    async def wait_started(self, timeout: float) -> tuple[bool, int, str, str]:
        """Outbound: wait for StasisStart (answered) or the leg's end; returns
        (answered, cause, cause_txt, dialstatus). On timeout returns cause -1."""
        leg = self._customer
        assert leg.started is not None and leg.gone is not None
        done, _ = await asyncio.wait({leg.started, leg.gone}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if leg.started in done:
            return True, 0, "", leg.dialstatus
        if leg.gone in done:
            cause, txt, status = leg.gone.result()
            return False, cause, txt, status
        return False, -1, "", leg.dialstatus

    async def ensure_bridge(self) -> None:
        """Create the call's mixing bridge and put the customer in it (idempotent)."""
        if self._bridge_ready:
            return
        self.hangup_signal.check()
        if not self._answered:
            await self.answer()
        try:
            await self.client.create_bridge(bridge_id=self.bridge_id, name=f"switchboard-{self.call_id}")
            self._bridge_ready = True
            await self.client.add_channel(self.bridge_id, self.channel_id)
        except AriError as exc:
            self._raise_for(exc, "bridge")

    def _raise_for(self, exc: AriError, what: str) -> None:
        if self.hung_up or exc.status in (404, 400, 422) and self._customer.destroyed:
            raise CallerHangup(self.hangup_signal.cause or "normal") from exc
        if exc.not_found and what in ("play", "record", "bridge", "answer"):
            self.hangup_signal.set("normal")
            self._schedule_teardown("normal")
            raise CallerHangup("normal") from exc
        raise CallFailed(f"{what}: {exc.message}") from exc

    def _schedule_teardown(self, cause: str) -> asyncio.Task[None]:
        if self._teardown_task is None:
            self._teardown_task = asyncio.get_running_loop().create_task(self._teardown(cause))
        return self._teardown_task

    async def _teardown(self, cause: str) -> None:
        reason = cause if cause in HANGUP_REASONS else "normal"
        self.hangup_signal.set(cause)
        for port in list(self._media):
            port.endpoint.close()
        for name in list(self._pending_recordings):
            await self._quiet(self.client.stop_recording(name))
        for leg in list(self._legs.values()):
            if not leg.destroyed:
                await self._quiet(self.client.hangup(leg.channel_id, reason))
        if self._bridge_ready:
            await self._quiet(self.client.delete_bridge(self.bridge_id))
        for fut in list(self._pending_playbacks.values()):
            if not fut.done():
                fut.cancel()
        self._events.put_nowait(CallEvent("hangup", {"cause": self.hangup_signal.cause}))
        self._events.put_nowait(None)
        # Late events (ChannelDestroyed of legs we just hung up) are harmless; stop routing them.
        asyncio.get_running_loop().call_later(2.0, self._unsubscribe_all)
        self.ended.set()
        if self.on_ended is not None:
            self.on_ended(self)

    def detach(self) -> None:
        """Stop routing this call's events (failed originate, or long after teardown)."""
        self._unsubscribe_all()

    def _unsubscribe_all(self) -> None:
        for channel_id in list(self._legs):
            self._forget_leg(channel_id)

    @staticmethod
    async def _quiet(aw: Awaitable[object]) -> None:
        try:
            await aw
        except AriError as exc:
            if not exc.not_found:
                log.warning("ARI cleanup call failed: %s", exc)

    async def _wait(self, *futs: asyncio.Future[object], timeout: float | None = None) -> set[asyncio.Future[object]]:
        """Wait for the first of `futs`; raise CallerHangup if the caller hangs up first."""
        self.hangup_signal.check()
        hang = asyncio.ensure_future(self.hangup_signal.wait())
        try:
            done, _ = await asyncio.wait({*futs, hang}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hang.cancel()
        real = {f for f in done if f is not hang}
        if not real and hang in done:
            raise CallerHangup(self.hangup_signal.cause)
        return real  # type: ignore[return-value]

    # --- Call API -------------------------------------------------------------------------------

    async def answer(self) -> None:
        self.hangup_signal.check()
        if self._answered:
            return
        try:
            await self.client.answer(self.channel_id)
        except AriError as exc:
            self._raise_for(exc, "answer")
        self._answered = True
        self._events.put_nowait(CallEvent("answered", {}))

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        """A PBX sound, file or URL; a `tts:` prompt is spoken (synthesized once, then cached)."""
        text = text_prompt(prompt)
        if text is not None:
            return await self.speak(text.text, language=text.language, interruptible=interruptible)
        return await self._play(media_uri(prompt), interruptible=interruptible)

    async def _play(self, media: str, *, interruptible: bool) -> PlaybackResult:
        self.hangup_signal.check()
        playback_id = self._next_id("pb")
        finished = self.router.expect("playback", playback_id, lambda e: isinstance(e, PlaybackFinished))
        self._pending_playbacks[playback_id] = finished
        digit: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        listener = (lambda d: digit.done() or digit.set_result(d))
        if interruptible:
            self._dtmf_listeners.append(listener)
        try:
            try:
                await self.client.play(self.channel_id, media, playback_id=playback_id)
            except AriError as exc:
                self._raise_for(exc, "play")
            done = await self._wait(finished, digit)
            if digit in done:
                await self._quiet(self.client.stop_playback(playback_id))
                return PlaybackResult(completed=False, interrupted_by=f"dtmf:{digit.result()}")
            event = finished.result()
            assert isinstance(event, PlaybackFinished)
            self._events.put_nowait(CallEvent("playback_finished", {"id": playback_id,
                                                                     "state": event.playback.state}))
            if event.playback.state == "failed":
                await asyncio.sleep(0)  # the hang-up events precede PlaybackFinished(failed)
                self.hangup_signal.check()
                raise CallFailed(f"playback of {media} failed")
            return PlaybackResult(completed=True)
        except asyncio.CancelledError:
            await self._quiet(self.client.stop_playback(playback_id))
            raise
        finally:
            self._pending_playbacks.pop(playback_id, None)
            finished.cancel()
            if interruptible:
                self._dtmf_listeners.remove(listener)

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        """Synthesise (injected TTS), store an 8 kHz WAV under AST_SOUND_DIR, play it as `sound:`;
        while streaming, send it as RTP instead (barge-in by the caller's voice when interruptible)."""
        self.hangup_signal.check()
        if self._streaming is not None:
            result = await self._streaming.say(text, language=language, voice=voice, interruptible=interruptible)
            if result.interrupted_by == "speech":
                self._events.put_nowait(CallEvent("speech", {"barge_in": True}))
            return result
        if self.synthesize is None:
            raise CallFailed("speak: no TTS synthesizer configured for the Asterisk backend")
        rel = tts_sound_name(text, language, voice)
        path = self.config.ast_sound_dir / f"{rel}.wav"
        if not path.exists():
            audio = await self.synthesize(text, language, voice)
            await asyncio.to_thread(write_tts_sound, path, audio)
        return await self._play(f"sound:{rel}", interruptible=interruptible)

    async def speak_stream(self, sentences: AsyncIterable[str], *, language: str | None = None,
                           voice: str | None = None, interruptible: bool = False) -> PlaybackResult:
        """Sentences as they are written: streamed on the voice layer (the next one synthesized while
        the previous plays) while streaming, else one PBX playback per sentence."""
        if self._streaming is not None:
            result = await self._streaming.say(sentences, language=language, voice=voice, interruptible=interruptible)
            if result.interrupted_by == "speech":
                self._events.put_nowait(CallEvent("speech", {"barge_in": True}))
            return result
        async for sentence in sentences:
            result = await self.speak(sentence, language=language, voice=voice, interruptible=interruptible)
            if not result.completed:
                return result
        return PlaybackResult(completed=True)

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        """Snoop-record the customer into a file; while streaming, cut the utterance from the RTP
        frames with the VAD instead."""
        self.hangup_signal.check()
        if self._streaming is not None:
            return await self._streamed_record(self._streaming, max_duration=max_duration,
                                               max_silence=max_silence, terminate_on=terminate_on)
        await self.ensure_bridge()
        name = self._next_id("rec")
        finished = self.router.expect("recording", name,
                                      lambda e: isinstance(e, (RecordingFinished, RecordingFailed)))
        self._pending_recordings[name] = finished
        digits: list[str] = []
        stop_task: list[asyncio.Task[None]] = []

        def on_digit(d: str) -> None:
            digits.append(d)
            if terminate_on and (terminate_on == "any" or d in terminate_on) and not stop_task:
                stop_task.append(asyncio.ensure_future(self._quiet(self.client.stop_recording(name))))

        self._dtmf_listeners.append(on_digit)
        snoop_id: str | None = None
        ok = False
        try:
            params: dict[str, Any] = {
                "format": "wav", "max_duration": max(1, math.ceil(max_duration)),
                "max_silence": max(1, round(max_silence)) if max_silence > 0 else 0,
                "if_exists": "overwrite", "terminate_on": "none"}
            try:
                if self.config.record_mode == "bridge":
                    await self.client.record_bridge(self.bridge_id, name, **params)
                else:
                    snoop_id = f"{name}-snoop"
                    leg = self._add_leg(snoop_id, "snoop")
                    await self.client.snoop(self.channel_id, snoop_id=snoop_id, spy="in", app_args="snoop")
                    assert leg.started is not None
                    if not await self._wait(leg.started, timeout=self.config.event_grace):
                        raise CallFailed("record: snoop channel never entered the application")
                    await self.client.record(snoop_id, name, beep=False, **params)
            except AriError as exc:
                self._raise_for(exc, "record")
            done = await self._wait(finished, timeout=max_duration + self.config.event_grace)
            if not done:  # lost RecordingFinished: stop it ourselves and look at what is stored
                await self._quiet(self.client.stop_recording(name))
                done = await self._wait(finished, timeout=2.0)
            event = finished.result() if done else None
            self.hangup_signal.check()  # the recording ended because the caller left
            if isinstance(event, RecordingFailed):
                raise CallFailed(f"record: {event.recording.cause or 'recording failed'}")
            recording = await self._collect(name, "".join(digits))
            if isinstance(event, RecordingFinished):
                self._events.put_nowait(CallEvent("recording_finished", {
                    "name": name, "duration": event.recording.duration, "dtmf": recording.dtmf}))
            ok = True
            return recording
        finally:
            self._dtmf_listeners.remove(on_digit)
            self._pending_recordings.pop(name, None)
            if snoop_id is not None:
                await self.drop_leg(snoop_id)
            if not ok:
                task = asyncio.ensure_future(self._discard_recording(name, finished))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _collect(self, name: str, dtmf: str) -> Recording:
        """Fetch the stored file, delete it on Asterisk, keep original + normalised copy locally."""
        try:
            data = await self.client.stored_recording_file(name)
        except AriError as exc:
            if not exc.not_found:
                raise CallFailed(f"record: fetching {name}: {exc.message}") from exc
            return Recording(audio=Audio(b"", 8000), dtmf=dtmf)
        await self._quiet(self.client.delete_stored_recording(name))
        folder = self.config.recordings_dir / self.call_id
        original = folder / f"{name}.wav"

        def save() -> Audio:
            folder.mkdir(parents=True, exist_ok=True)
            original.write_bytes(data)
            audio = normalise_recording(read_wav_bytes(data))
            write_wav(folder / f"{name}.normalised.wav", audio)
            return audio

        audio = await asyncio.to_thread(save)
        self.recording_paths.append(str(original))
        return Recording(audio=audio, dtmf=dtmf, path=str(original))

    async def _discard_recording(self, name: str, finished: asyncio.Future[Event]) -> None:
        """A recording abandoned (hang-up, failure): let it end, then remove it from Asterisk."""
        await self._quiet(self.client.stop_recording(name))
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(finished), 2.0)
        for _ in range(3):  # the stored file appears when the recording has really ended
            try:
                await self.client.delete_stored_recording(name)
                return
            except AriError as exc:
                if not exc.not_found:
                    log.warning("could not delete abandoned recording %s: %s", name, exc)
                    return
            await asyncio.sleep(0.5)

    async def drop_leg(self, channel_id: str) -> None:
        """Hang up one of the call's auxiliary legs (snoop, media, an operator who never joined)."""
        leg = self._legs.get(channel_id)
        if leg is not None and not leg.destroyed:
            await self._quiet(self.client.hangup(channel_id, "normal"))
        self._forget_leg(channel_id)
        self._media = [m for m in self._media if m.channel_id != channel_id]

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float,
                       hold_prompt: str | None = None) -> TransferResult:
        self.hangup_signal.check()
        await self.ensure_bridge()
        op_id = self._next_id("op")
        leg = self._add_leg(op_id, "operator", far_id=f"{op_id}-far")
        assert leg.started is not None and leg.gone is not None
        cid = caller_id or self.remote_number or self.config.operator_caller_id
        try:
            await self.client.originate(
                self.config.operator_endpoint(operator_number), channel_id=op_id,
                other_channel_id=f"{op_id}-far", caller_id=cid or None, timeout=max(1, math.ceil(timeout)),
                variables={"SWITCHBOARD_CALL_ID": self.call_id, "SWITCHBOARD_ROLE": "operator"},
                app_args=f"operator,{self.call_id}")
        except AriError as exc:
            self._forget_leg(op_id)
            log.warning("operator originate failed: %s", exc)
            return TransferResult(False, operator_number, "failed")
        hold = asyncio.ensure_future(self._hold_loop(hold_prompt)) if hold_prompt else None
        try:
            done = await self._wait(leg.started, leg.gone, timeout=timeout + self.config.event_grace)
        except CallerHangup:
            await self.drop_leg(op_id)
            raise
        finally:
            if hold is not None:
                hold.cancel()
                await asyncio.gather(hold, return_exceptions=True)
        if leg.started in done:
            try:
                await self.client.add_channel(self.bridge_id, op_id)
            except AriError as exc:
                await self.drop_leg(op_id)
                if self.hung_up:
                    raise CallerHangup(self.hangup_signal.cause) from exc
                return TransferResult(False, operator_number, "failed")
            self.operator_number = operator_number
            if leg.destroyed:  # hung up between answering and joining
                self._party_gone(leg, "operator_hangup")
            self._events.put_nowait(CallEvent("answered", {"operator": operator_number}))
            return TransferResult(True, operator_number)
        if leg.gone in done:
            cause, _txt, status = leg.gone.result()
            self._forget_leg(op_id)
            outcome, _ = classify_failure(cause, _txt, status)
            reason = {DialOutcome.BUSY: "busy", DialOutcome.NO_ANSWER: "no_answer"}.get(outcome, "failed")
            return TransferResult(False, operator_number, reason)
        await self.drop_leg(op_id)
        return TransferResult(False, operator_number, "timeout")

    async def _hold_loop(self, prompt: str) -> None:
        """Play the hold prompt to the customer again and again while the operator rings."""
        try:
            while True:
                result = await self._play(media_uri(prompt), interruptible=False)
                if not result.completed:
                    return
        except (CallFailed, CallerHangup):
            return

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.hangup_signal.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def hangup(self, cause: str = "normal") -> None:
        await asyncio.shield(self._schedule_teardown(cause))

    async def events(self) -> AsyncIterator[CallEvent]:  # type: ignore[override]
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # let other iterators end too
                return
            yield event

    # --- streaming ------------------------------------------------------------------------------

    async def external_media(self, *, format: str | None = None) -> AriMediaPort:
        """Add an externalMedia (RTP/UDP) channel to the bridge and return its audio as a port."""
        self.hangup_signal.check()
        await self.ensure_bridge()
        fmt = rtp_format(format or self.config.external_media_format)
        endpoint = await RtpEndpoint.open(self.config.external_media_host, fmt)
        host, port = endpoint.local_address
        media_id = self._next_id("media")
        leg = self._add_leg(media_id, "media")
        assert leg.started is not None
        try:
            channel = await self.client.external_media(channel_id=media_id, external_host=f"{host}:{port}",
                                                       format=fmt.name)
            vars_ = channel.channelvars or {}
            addr, rport = vars_.get("UNICASTRTP_LOCAL_ADDRESS"), vars_.get("UNICASTRTP_LOCAL_PORT")
            if addr and rport:
                if addr in ("0.0.0.0", "::"):
                    addr = self.client.base_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
                endpoint.remote = (str(addr), int(rport))
            await self._wait(leg.started, timeout=self.config.event_grace)
            await self.client.add_channel(self.bridge_id, media_id)
        except (AriError, CallerHangup) as exc:
            endpoint.close()
            await self.drop_leg(media_id)
            if isinstance(exc, AriError):
                self._raise_for(exc, "external_media")
            raise
        media = AriMediaPort(self, media_id, endpoint)
        self._media.append(media)
        return media

    @property
    def streaming_session(self) -> VoiceSession | None:
        return self._streaming

    @contextlib.asynccontextmanager
    async def streaming(self) -> AsyncIterator[VoiceSession | None]:
        """Stream the turns inside the block (the `converse` step asks for it): `speak` and `record`
        run on the voice layer over an externalMedia channel in the bridge — shared VAD
        endpointing, paced RTP, barge-in.

        Yields None, and the call keeps using PBX files, when there is no voice layer or Asterisk
        refuses the channel; nested blocks share the outer one's session."""
        if self._streaming is not None or self.voice is None:
            yield self._streaming
            return
        self.hangup_signal.check()
        port: AriMediaPort | None = None
        try:
            port = await self.external_media()
        except CallFailed as exc:
            log.warning("call %s: streaming unavailable, using PBX files: %s", self.call_id, exc.reason)
        if port is None:
            yield None
            return
        session = self.voice.session(port)
        self._streaming = session
        try:
            yield session
        finally:
            self._streaming = None
            await asyncio.shield(session.close(self.hangup_signal.cause or "stream_closed"))

    async def _streamed_record(self, session: VoiceSession, *, max_duration: float, max_silence: float,
                               terminate_on: str) -> Recording:
        heard = await session.listen(max_duration=max_duration, max_silence=max_silence, terminate_on=terminate_on)
        self._stream_seq += 1
        name = f"{self.call_id}-stream{self._stream_seq}"
        path = None
        keeper = self.voice.recordings if self.voice is not None else None
        if heard.audio.pcm and keeper is not None:
            path = keeper.keep(self.call_id, name, heard.audio)  # written off the turn's path
            if path is not None:
                self.recording_paths.append(path)
        self._events.put_nowait(CallEvent("recording_finished", {
            "name": name, "duration": round(heard.audio.duration, 3), "dtmf": heard.dtmf, "streamed": True}))
        return Recording(audio=heard.audio, dtmf=heard.dtmf, path=path)

    # --- reconnect ------------------------------------------------------------------------------

    async def settle_pending_legs(self, live_channels: set[str]) -> None:
        """After a WebSocket gap: a leg still waiting for StasisStart either vanished (its end was
        missed) or entered the application (its StasisStart was missed)."""
        for leg in list(self._legs.values()):
            if leg.started is None or leg.started.done() or leg.gone is None or leg.gone.done():
                continue
            if leg.channel_id not in live_channels:
                leg.destroyed = True
                leg.gone.set_result((leg.cause, leg.cause_txt, leg.dialstatus))
                continue
            try:
                channel = await self.client.get_channel(leg.channel_id)
            except AriError:
                continue
            if channel.state == "Up" and channel.dialplan.app_name == "Stasis" and not leg.started.done():
                leg.started.set_result(StasisStart(type="StasisStart", channel=channel))

    async def reconcile(self, live_channels: set[str]) -> None:
        """After a WebSocket gap: end the call if its parties are gone, settle lost completions."""
        if self._teardown_task is not None:
            return
        if self.channel_id not in live_channels:
            self._customer.destroyed = True
            self._party_gone(self._customer, "normal")
            return
        for leg in list(self._legs.values()):
            if leg.channel_id in live_channels or leg.role == "customer":
                continue
            if leg.started is not None and leg.started.done():
                leg.destroyed = True
                if self._is_party(leg):
                    self._party_gone(leg, "operator_hangup")
                    return
                if leg.gone is not None and not leg.gone.done():
                    leg.gone.set_result((0, "gone", ""))
        await self.settle_pending_legs(live_channels)
        for playback_id, fut in list(self._pending_playbacks.items()):
            try:
                await self.client.get_playback(playback_id)
            except AriError as exc:
                if exc.not_found and not fut.done():
                    fut.set_result(PlaybackFinished(type="PlaybackFinished",
                                                    playback=Playback(id=playback_id, state="done")))
        for name, fut in list(self._pending_recordings.items()):
            try:
                await self.client.get_live_recording(name)
            except AriError as exc:
                if exc.not_found and not fut.done():
                    fut.set_result(RecordingFinished(type="RecordingFinished",
                                                     recording=LiveRecording(name=name, state="done")))


def new_call_id() -> str:
    return f"sb-{uuid.uuid4().hex[:12]}"
