"""What the `/call` page shows while the call runs, sent over the call's own data channel.

The page opens a data channel (`switchboard`) with its offer, so the events share the call's
transport and end with it: no second connection, nothing to authenticate twice, nothing left
behind. Events are JSON objects with a `type`:

* `state`       {state: connecting | connected | ended}
* `say`         {text, persona} — the agent starts saying a sentence (live caption; avatar echo)
* `transcript`  {speaker: caller | agent, text, persona, interrupted}
* `persona`     {persona, display_name} — who is on the line (at the start and after each handoff)
* `handoff`     {from, to, from_name, to_name}
* `barge_in`    {} — the caller spoke over the agent; the rest of its reply was dropped
* `avatar`      {status: live | unavailable, ...the provider's keys for the page}
* `result`      {result, reason, call_id}

The engine's timeline (the same entries stored with the call) is mapped to these by `timeline`;
the call's transport adds `say` and `barge_in` as they happen. Events sent before the channel opens
wait in a bounded buffer.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Channel(Protocol):
    readyState: str

    def send(self, data: str) -> None: ...


class CallFeed:
    def __init__(self, *, display_names: Mapping[str, str] | None = None, max_buffer: int = 500) -> None:
        self.display_names = dict(display_names or {})
        self._channel: Channel | None = None
        self._buffer: deque[str] = deque(maxlen=max_buffer)
        self.persona: str | None = None

    def attach(self, channel: Channel) -> None:
        self._channel = channel
        self.flush()

    def flush(self) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return
        while self._buffer:
            try:
                channel.send(self._buffer.popleft())
            except Exception:  # the channel closed under us: the call is ending
                log.debug("data channel send failed", exc_info=True)
                return

    def publish(self, event: dict[str, Any]) -> None:
        self._buffer.append(json.dumps(event, ensure_ascii=False, default=str))
        self.flush()

    def _name(self, persona: str | None) -> str:
        return self.display_names.get(persona or "", "") or (persona or "")

    def _set_persona(self, persona: str | None) -> None:
        if persona and persona != self.persona:
            self.persona = persona
            self.publish({"type": "persona", "persona": persona, "display_name": self._name(persona)})

    # --- from the engine's timeline -------------------------------------------------------------
    def timeline(self, event: str, detail: Mapping[str, Any]) -> None:
        """One timeline entry of this call (event name and detail, as stored)."""
        if event == "turn":
            self._turn(detail)
        elif event == "result":
            self.publish({"type": "result", "result": detail.get("result"), "reason": detail.get("reason", "")})
        elif event == "call_ended":
            self.publish({"type": "state", "state": "ended", "result": detail.get("result")})

    def _turn(self, detail: Mapping[str, Any]) -> None:
        speaker = detail.get("speaker")
        persona = str(detail.get("persona") or "") or None
        if speaker == "system" and detail.get("kind") == "handoff":
            target = str(detail.get("to") or "")
            self.publish({"type": "handoff", "from": persona, "to": target, "from_name": self._name(persona),
                          "to_name": self._name(target)})
            self._set_persona(target)
            return
        if speaker not in ("caller", "agent"):
            return
        self._set_persona(persona)
        text = str(detail.get("text") or "")
        interrupted = bool(detail.get("interrupted"))
        if speaker == "agent" and interrupted:
            self.barge_in()  # the caller spoke over this reply: the rest of it was dropped
        if text:
            self.publish({"type": "transcript", "speaker": speaker, "text": text, "persona": persona,
                          "interrupted": interrupted})

    # --- from the transport -----------------------------------------------------------------------
    def saying(self, text: str) -> None:
        self.publish({"type": "say", "text": text, "persona": self.persona})

    def barge_in(self) -> None:
        self.publish({"type": "barge_in"})
