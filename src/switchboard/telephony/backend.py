"""What the dialer and the composition root need from a telephony backend: place outbound calls and
deliver inbound ones. Each backend (sim, asterisk, twilio, webrtc) implements this once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from switchboard.telephony.call import Call, DialOutcome

InboundHandler = Callable[[Call], Awaitable[None]]


@dataclass(slots=True)
class DialResult:
    outcome: DialOutcome
    call: Call | None = None
    reason: str = ""  # e.g. the cause text of a failed originate


class TelephonyBackend(Protocol):
    name: str

    async def start(self, on_inbound: InboundHandler) -> None: ...

    async def originate(self, *, number: str, dial_string: str, line_number: str, caller_id: str,
                        timeout: float, variables: dict[str, str] | None = None) -> DialResult: ...

    async def stop(self) -> None: ...
