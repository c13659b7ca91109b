"""`VoiceRuntime`: what every streamed call of one process shares, built once by `app.py`.

One VAD provider (the batched Silero: one model for all calls), one pacer (one 20 ms tick for all
calls), the prompt files, the TTS stream, the recordings writer and, when the composition root
hands the same object to the consumers of transcripts, the early transcripts (`voice.early`). A
backend holds the runtime and asks it for a `VoiceSession` or a whole `StreamingCall` per call;
nothing heavy is per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.speech.base import VadProvider
from switchboard.telephony.call import Direction
from switchboard.voice.call import CallControl, StreamingCall
from switchboard.voice.early import EarlyTranscripts
from switchboard.voice.pacing import Pacer
from switchboard.voice.port import AudioPort
from switchboard.voice.prompts import PromptSource, StreamSpeech
from switchboard.voice.recordings import RecordingKeeper
from switchboard.voice.session import VoiceSession


@dataclass
class VoiceRuntime:
    vad: VadProvider
    pacer: Pacer = field(default_factory=Pacer)
    prompts: PromptSource | None = None
    speech: StreamSpeech | None = None
    recordings: RecordingKeeper | None = None
    early: EarlyTranscripts | None = None  # only when the engine and personas transcribe through it

    def session(self, port: AudioPort, *, prompts: PromptSource | None = None) -> VoiceSession:
        """Turn-taking for one call on `port` (`prompts` overrides the shared prompt source)."""
        return VoiceSession(port, vad=self.vad.open(port.sample_rate), pacer=self.pacer,
                            prompts=prompts or self.prompts, speech=self.speech, early=self.early)

    def call(self, port: AudioPort, control: CallControl, *, call_id: str, direction: Direction,
             remote_number: str, line_number: str | None, language: str | None = None,
             prompts: PromptSource | None = None) -> StreamingCall:
        """A whole streamed `Call` on `port`, signalled through `control`."""
        return StreamingCall(self.session(port, prompts=prompts), control, call_id=call_id, direction=direction,
                             remote_number=remote_number, line_number=line_number, recordings=self.recordings,
                             language=language)

    async def warm_up(self) -> None:
        """Load the shared VAD model before the first call."""
        await self.vad.warm_up()

    async def aclose(self) -> None:
        await self.pacer.aclose()
        await self.vad.aclose()
        if self.recordings is not None:
            self.recordings.flush()
