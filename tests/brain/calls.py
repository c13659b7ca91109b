"""A tiny scripted `Call` for conversation tests (text mode, like the simulator's).

`lines` are what the caller says, one per `record`; an item `Barge("text")` means the caller talks
over the agent: the agent's next interruptible `speak` returns completed=False, and the next
`record` returns "text". `None` is silence; `("text", 0.3)` is a reply with that STT confidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from switchboard.telephony.call import TEXT_CALL, CallerHangup, CallEvent, PlaybackResult, Recording, TransferResult


@dataclass
class Barge:
    text: str


@dataclass
class ScriptedCall:
    lines: list[Any]
    call_id: str = "call-1"
    direction: str = "inbound"
    remote_number: str = "+989121234567"
    line_number: str | None = "+982100000000"
    confidence: float | None = None
    said: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (text, language, completed)
    hangup_when_done: bool = True
    _barge_pending: bool = False
    _hung_up: bool = False
    capabilities = TEXT_CALL

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    async def answer(self) -> None:
        return None

    async def play(self, prompt: str, *, interruptible: bool = False) -> PlaybackResult:
        return PlaybackResult()

    async def speak(self, text: str, *, language: str | None = None, voice: str | None = None,
                    interruptible: bool = False) -> PlaybackResult:
        if self._hung_up:
            raise CallerHangup()
        if self._barge_pending and interruptible:
            self._barge_pending = False
            self.said.append((text, language, False))
            return PlaybackResult(completed=False, interrupted_by="speech")
        self.said.append((text, language, True))
        return PlaybackResult()

    async def record(self, *, max_duration: float, max_silence: float, terminate_on: str = "") -> Recording:
        if self._hung_up:
            raise CallerHangup()
        if not self.lines:
            if self.hangup_when_done:
                self._hung_up = True
                raise CallerHangup()
            return Recording(text="")
        item = self.lines.pop(0)
        if isinstance(item, Barge):
            item = item.text
        if self.lines and isinstance(self.lines[0], Barge):
            self._barge_pending = True
        confidence = self.confidence
        if isinstance(item, tuple):  # (text, confidence)
            item, confidence = item
        return Recording(text=item or "", confidence=confidence)

    async def transfer(self, operator_number: str, *, caller_id: str, timeout: float,
                       hold_prompt: str | None = None) -> TransferResult:
        return TransferResult(True, operator_number)

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        return True

    async def hangup(self, cause: str = "normal") -> None:
        self._hung_up = True

    async def events(self) -> AsyncIterator[CallEvent]:  # pragma: no cover - unused
        if False:
            yield CallEvent("hangup")

    @property
    def agent_texts(self) -> list[str]:
        return [t for t, _, _ in self.said]
