"""`StreamingCall`: the engine's `Call` protocol on a `VoiceSession`.

Every streamed backend (Twilio Media Streams, the browser over WebRTC, the simulator's audio mode,
and ARI while a conversation streams over externalMedia) gives its calls this one implementation
of turns: `play`/`speak`/`record` are the session's `play`/`say`/`listen`. What differs per
backend is only signalling — answering, hanging up, ringing an operator — which it provides as a
`CallControl`. The call declares `CallCapabilities(audio="stream")`, so steps know without probing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from switchboard.telephony.call import (
    CallCapabilities,
    CallerHangup,
    CallEvent,
    CallFailed,
    Direction,
    PlaybackResult,
    Recording,
    TransferResult,
)
from switchboard.voice.recordings import RecordingKeeper
from switchboard.voice.session import VoiceSession

log = logging.getLogger(__name__)

STREAMED = CallCapabilities(audio="stream", speaks_text_streams=True)


class CallControl(Protocol):
    """The signalling half of a streamed call, provided by its backend."""

    async def answer(self) -> None: ...

    async def hangup(self, cause: str) -> None:
        """End the call (the far end's leg, not only our media)."""
        ...

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float) -> TransferResult:
        """Ring an operator and connect the caller when they answer."""
        ...

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        """Until the call ends (True) or `timeout` passes (False); after a transfer the media stream
        may be gone while the caller talks to the operator, so this is signalling's to know."""
        ...


class StreamingCall:
    """Implements `switchboard.telephony.call.Call` over a `VoiceSession` and a `CallControl`."""

    capabilities = STREAMED

    def __init__(self, session: VoiceSession, control: CallControl, *, call_id: str, direction: Direction,
                 remote_number: str, line_number: str | None, recordings: RecordingKeeper | None = None,
                 language: str | None = None, voice: str | None = None) -> None:
        self.session = session
        self.control = control
        self.call_id = call_id
        self.direction: Direction = direction
        self.remote_number = remote_number
        self.line_number = line_number
        self.recordings = recordings
        self.language = language  # for `tts:` prompts without a language of their own
        self.voice = voice
        self.recording_paths: list[str] = []
        self._seq = itertools.count(1)
        if session.transcript_hints.language is None:
            session.transcript_hints.language = language  # until the consumer asks otherwise

    @property
    def hung_up(self) -> bool:
        return self.session.hangup.is_set

    async def answer(self) -> None:
        self.session.hangup.check()
        await self.control.answer()
        self.session.events.put_nowait(CallEvent("answered", {}))

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        return await self.session.play(prompt, interruptible=interruptible, language=self.language,
                                       voice=self.voice)

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        return await self.session.say(text, language=language or self.language, voice=voice or self.voice,
                                      interruptible=interruptible)

    async def speak_stream(self, sentences: AsyncIterable[str], *, language: str | None = None,
                           voice: str | None = None, interruptible: bool = False) -> PlaybackResult:
        """Speak sentences as they are written (an LLM's reply): the next is synthesized while the
        previous plays, and a barge-in stops the rest."""
        return await self.session.say(sentences, language=language or self.language, voice=voice or self.voice,
                                      interruptible=interruptible)

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        heard = await self.session.listen(max_duration=max_duration, max_silence=max_silence,
                                          terminate_on=terminate_on)
        path = None
        name = f"{self.call_id}-stream{next(self._seq)}"
        if heard.audio.pcm and self.recordings is not None:
            path = self.recordings.keep(self.call_id, name, heard.audio)
            if path is not None:
                self.recording_paths.append(path)
        self.session.events.put_nowait(CallEvent("recording_finished", {
            "name": name, "duration": round(heard.audio.duration, 3), "dtmf": heard.dtmf, "streamed": True}))
        return Recording(audio=heard.audio, dtmf=heard.dtmf, path=path)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float,
                       hold_prompt: str | None = None) -> TransferResult:
        """Ring the operator through the backend; the caller hears `hold_prompt` (looped) meanwhile."""
        self.session.hangup.check()
        hold = asyncio.ensure_future(self._hold(hold_prompt)) if hold_prompt else None
        try:
            ringing = asyncio.ensure_future(self.control.transfer(operator_number, caller_id=caller_id,
                                                                  timeout=timeout))
            try:
                await self.session.race(ringing)  # type: ignore[arg-type]
            except CallerHangup:
                ringing.cancel()
                await asyncio.gather(ringing, return_exceptions=True)
                raise
            return ringing.result()
        finally:
            if hold is not None:
                hold.cancel()
                await asyncio.gather(hold, return_exceptions=True)

    async def _hold(self, prompt: str) -> None:
        with contextlib.suppress(CallFailed, CallerHangup):
            while True:
                result = await self.session.play(prompt, language=self.language, voice=self.voice)
                if not result.completed:
                    return

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        if self.session.hangup.is_set:
            return True
        ended = asyncio.ensure_future(self.control.wait_for_hangup(timeout))
        try:
            await self.session.race(ended)  # type: ignore[arg-type]
        except CallerHangup:
            return True
        finally:
            if not ended.done():
                ended.cancel()
        return bool(ended.result())

    async def hangup(self, cause: str = "normal") -> None:
        if not self.session.hangup.is_set:
            try:
                await self.control.hangup(cause)
            except Exception:  # the session still ends: nothing may keep a dead call open
                log.exception("call %s: hang-up signalling failed", self.call_id)
        await self.session.close(cause)

    def events(self) -> AsyncIterator[CallEvent]:
        return self.session.iter_events()
