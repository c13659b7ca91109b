"""A browser call as the engine sees it: the voice layer's `StreamingCall` on a `WebRTCPort`.

Turn-taking (VAD endpointing, barge-in, pacing, silence limits) is the voice layer's, on the
process's shared `VoiceRuntime` (one batched VAD, one pacer); this module only supplies the
browser's signalling (`BrowserControl`) and captions: each sentence the agent starts to say is sent
to the page as it goes to the TTS (the live caption, and the words an avatar speaks).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard.speech.audio import Audio
from switchboard.telephony.call import Call, CallFailed, TransferResult
from switchboard.voice.call import StreamingCall
from switchboard.voice.prompts import StreamSpeech
from switchboard.voice.runtime import VoiceRuntime
from switchboard.voice.session import VoiceSession

if TYPE_CHECKING:
    from switchboard.telephony.webrtc.backend import BrowserCall

log = logging.getLogger(__name__)


class BrowserControl:
    """Signalling of a browser call. Hanging up is telling the page and closing the connection,
    which the backend does as soon as the flow is over (after the result is sent to the page);
    a browser cannot be bridged to a phone, so transfers to an operator fail over to the flow's
    `on_failure`."""

    def __init__(self, bc: BrowserCall) -> None:
        self.bc = bc
        self.hangup_cause: str | None = None

    async def answer(self) -> None:
        return None  # the page called us: connected is answered

    async def hangup(self, cause: str) -> None:
        self.hangup_cause = cause

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float) -> TransferResult:
        log.info("webrtc: call %s asked for an operator; a browser call cannot ring a phone", self.bc.call_id)
        return TransferResult(answered=False, operator_number=operator_number, reason="failed")


def captioned(speech: StreamSpeech, on_sentence: Callable[[str], None]) -> StreamSpeech:
    """`speech` that first reports each sentence it is asked to say."""

    def say(text: str, language: str | None, voice: str | None) -> AsyncIterator[Audio]:
        on_sentence(text)
        return speech(text, language, voice)

    return say


@dataclass
class BrowserCallFactory:
    """Builds the streamed `Call` of each browser call on the process's shared voice parts."""

    voice: VoiceRuntime

    def __call__(self, bc: BrowserCall) -> Call:
        runtime = self.voice
        if runtime.speech is None:
            raise CallFailed("browser calls need a TTS (the voice runtime has none)")
        # `early` as every streamed call has it (`VoiceRuntime.session`): the caller's words are
        # transcribed in the quiet before the end of speech is certain, not after it.
        session = VoiceSession(bc.port, vad=runtime.vad.open(bc.port.sample_rate), pacer=runtime.pacer,
                               prompts=runtime.prompts, speech=captioned(runtime.speech, bc.feed.saying),
                               early=runtime.early)
        return StreamingCall(session, BrowserControl(bc), call_id=bc.call_id, direction="inbound",
                             remote_number=bc.remote, line_number=None, recordings=runtime.recordings,
                             language=bc.scope.language)
