"""The simulator's audio mode as a transport: a scripted caller on the far side of an `AudioPort`.

The caller (a `CallerScript`) hears the agent as frames arriving and speaks its replies as 20 ms
frames of real synthesized speech through a phone line (`CallerVoices`), on the loop's clock — the
virtual one in the demo, so a campaign still takes seconds. Turn-taking on our side is the real
voice layer (`VoiceSession`: shared Silero, endpointing, pacing, barge-in), exactly as on a phone
line; only the person is simulated:

* a reply is said `delay` seconds after the agent has stopped talking (its turn);
* a `barge_in` reply starts `delay` seconds after the agent *started* talking, over it — the agent
  really stops, and the words are heard by the next listen;
* `silence` lets a turn pass, `dtmf` presses keys, `hangup` hangs up; after its last reply the
  caller stays on the line, silent, until someone hangs up.

All simulated callers share one 20 ms media clock (a `Pacer`), so the far end costs one timer for
every call, as the agent's side does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from switchboard.speech.audio import Audio, frames, silence
from switchboard.telephony.call import CallFailed
from switchboard.voice.pacing import Pacer
from switchboard.voice.port import AudioPort
from switchboard.voice.prompts import PromptSource

if TYPE_CHECKING:
    from switchboard.telephony.sim.call import SimCall
    from switchboard.telephony.sim.script import Reply
    from switchboard.telephony.sim.voice import CallerVoices

log = logging.getLogger(__name__)

PHONE_RATE = 8000
SILENT_FRAME = b"\x00\x00" * (PHONE_RATE // 50)
AGENT_GAP = 0.06  # no agent frame for this long: the agent has stopped talking
FIRST_WORD = 2.0  # a caller whom nobody greets says its first reply after this long anyway


class SimCallerPort(AudioPort):
    sample_rate = PHONE_RATE

    def __init__(self, call: SimCall, voices: CallerVoices, clock: Pacer) -> None:
        self.call = call
        self.script = call.script
        self.voices = voices
        self.clock = clock
        self.replies: deque[Reply] = deque(call.script.replies)
        self.out: deque[bytes] = deque()  # the caller's frames still to say
        self.agent_last = float("-inf")  # loop time the agent's last frame ends
        self.agent_start: float | None = None  # start of the agent's current talkspurt
        self.turn = False  # the agent has spoken since the caller's last reply
        self.started_at = 0.0
        self.closed = False
        self.heard_frames = 0  # agent frames that reached the caller
        self._speech: dict[int, Audio] = {}
        self._prepare: asyncio.Task[None] | None = None
        call.hangup_listeners.append(self._far_hangup)

    def attach(self, sink) -> None:  # type: ignore[no-untyped-def, override]
        super().attach(sink)
        self.started_at = asyncio.get_running_loop().time()
        self._prepare = asyncio.ensure_future(self._synthesize())
        self.clock.add(self)

    async def _synthesize(self) -> None:
        """The caller's words, synthesized ahead (each once per process: `CallerVoices` caches)."""
        for reply in list(self.replies):
            if reply.say is not None:
                self._speech[id(reply)] = await self.voices.speech(reply.say, self.script,
                                                                   reply.language or self.script.language)

    # --- what the agent sends (AudioPort) -----------------------------------------------------------

    def send(self, pcm: bytes) -> None:
        if self.closed:
            return
        now = asyncio.get_running_loop().time()
        if now > self.agent_last + AGENT_GAP:
            self.agent_start = now
        self.agent_last = max(self.agent_last, now) + len(pcm) / 2 / PHONE_RATE
        self.heard_frames += len(pcm) // len(SILENT_FRAME)
        self.turn = True

    def mark(self, token: int) -> None:
        self.played_now(token)  # the simulated line plays what it gets at once

    def clear(self) -> None:
        self.agent_last = min(self.agent_last, asyncio.get_running_loop().time())

    async def close(self) -> None:
        self.closed = True
        self.clock.discard(self)
        if self._prepare is not None:
            self._prepare.cancel()

    def _far_hangup(self, cause: str) -> None:
        if not self.closed:
            self.closed = True
            self.clock.discard(self)
            self.sink.on_hangup(cause)

    # --- the caller, on the shared media clock --------------------------------------------------------

    def pace(self, now: float) -> bool:
        if self.closed:
            return False
        self.sink.on_frame(self.out.popleft() if self.out else SILENT_FRAME)
        if not self.out and self.replies and not self.closed:
            self._next_move(now)
        return not self.closed

    def _next_move(self, now: float) -> None:
        reply = self.replies[0]
        talking = now < self.agent_last + AGENT_GAP
        if reply.barge_in and reply.say is not None and talking:
            if self.agent_start is not None and now - self.agent_start >= reply.delay:
                self._act(reply)
            return
        if talking:
            return
        if not self.turn:
            if self.agent_start is not None or now - self.started_at < FIRST_WORD + reply.delay:
                return  # wait for the agent to speak
        if now - max(self.agent_last, self.started_at) < reply.delay:
            return
        self._act(reply)

    def _act(self, reply: Reply) -> None:
        if reply.say is not None:
            audio = self._speech.get(id(reply))
            if audio is None:
                return  # still being synthesized: keep the line quiet a moment longer
            self.out.extend(frames(audio, ms=20))
        elif reply.dtmf is not None:
            for digit in reply.dtmf:
                self.sink.on_dtmf(digit)
        elif reply.hangup:
            self.replies.popleft()
            self.call.far_end_hangup("caller_hangup")
            return
        self.replies.popleft()
        self.turn = False


class StandInPrompts:
    """The simulator's prompts: the real prompt files when built, else a stand-in of the prompt's
    usual length (silence), so the demo runs on a fresh clone that has no prompt audio."""

    def __init__(self, inner: PromptSource | None, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self._warned: set[str] = set()

    async def load(self, prompt: str, sample_rate: int) -> Audio:
        if self.inner is not None:
            try:
                return await self.inner.load(prompt, sample_rate)
            except CallFailed as exc:
                if prompt not in self._warned:
                    self._warned.add(prompt)
                    log.info("simulator: %s; playing %.1f s of silence instead", exc.reason, self.seconds)
        return silence(self.seconds, sample_rate)
