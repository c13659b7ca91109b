"""Backend configuration taken from Settings, and the small pure rules the session applies:
which endpoint an operator is dialled on, how a failed originate is classified, how a prompt
reference becomes an ARI media URI."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from switchboard.telephony.asterisk.models import (
    CAUSE_BUSY,
    CAUSE_CONGESTION,
    CAUSE_NO_ANSWER,
    CAUSE_NO_USER_RESPONSE,
    CAUSES_UNREACHABLE,
)
from switchboard.telephony.call import DialOutcome
from switchboard.voice.prompts import Synthesize, TextPrompt, text_prompt

__all__ = ["AriConfig", "Synthesize", "TextPrompt", "classify_failure", "media_uri", "text_prompt", "tts_sound_name"]

# ARI `DELETE /channels?reason=` values the Call API's causes map onto.
HANGUP_REASONS = {"normal", "busy", "congestion", "no_answer", "timeout", "rejected", "unallocated",
                  "normal_unspecified", "number_incomplete", "codec_mismatch", "interworking", "failure",
                  "answered_elsewhere"}
CAUSE_NAMES = {16: "normal", 17: "busy", 18: "no_answer", 19: "no_answer", 21: "rejected", 34: "congestion"}
_MEDIA_SCHEMES = ("sound:", "recording:", "tone:", "number:", "digits:", "characters:")
TTS_SOUND_FOLDER = "switchboard"  # under AST_SOUND_DIR: where synthesized prompts are written


def tts_sound_name(text: str, language: str | None, voice: str | None) -> str:
    """Where synthesized `text` lives under AST_SOUND_DIR (no extension): one file per text, language
    and voice, so each is synthesized once and `prompts sync` can render them ahead of the calls."""
    key = hashlib.sha1(f"{language}|{voice}|{text}".encode()).hexdigest()[:20]
    return f"{TTS_SOUND_FOLDER}/tts-{key}"


@dataclass(slots=True)
class AriConfig:
    """What sessions and the backend need from Settings (kept small so tests can build one)."""

    app: str
    outbound_trunk: str = "trunk"
    origination_timeout: int = 30
    operator_trunk: str = "operators"
    operator_extension: str = ""
    operator_caller_id: str = ""
    ast_sound_dir: Path = Path("/var/lib/asterisk/sounds")
    recordings_dir: Path = Path("recordings")
    record_mode: str = "snoop"  # snoop | bridge
    external_media_host: str = "127.0.0.1"
    external_media_format: str = "ulaw"
    watchdog_grace: float = 15.0  # seconds past the originate timeout before a silent call is ended
    event_grace: float = 10.0  # safety net for events that never come (lost WebSocket)

    @classmethod
    def from_settings(cls, settings: object) -> AriConfig:
        s = settings
        return cls(app=s.ari_app_name, outbound_trunk=s.outbound_trunk,  # type: ignore[attr-defined]
                   origination_timeout=s.origination_timeout,  # type: ignore[attr-defined]
                   operator_trunk=s.operator_trunk, operator_extension=s.operator_extension,  # type: ignore[attr-defined]
                   operator_caller_id=s.operator_caller_id, ast_sound_dir=Path(s.ast_sound_dir),  # type: ignore[attr-defined]
                   recordings_dir=Path(s.recordings_dir),  # type: ignore[attr-defined]
                   record_mode=getattr(s, "ari_record_mode", "snoop"),
                   external_media_host=s.external_media_host,  # type: ignore[attr-defined]
                   external_media_format=s.external_media_format)  # type: ignore[attr-defined]

    def operator_endpoint(self, number: str) -> str:
        """`OPERATOR_EXTENSION` (an endpoint template, `{number}` substituted) wins over the trunk."""
        if self.operator_extension:
            template = self.operator_extension
            if "/" not in template:
                template = f"PJSIP/{template}"
            return template.replace("{number}", number)
        return f"PJSIP/{number}@{self.operator_trunk}"


def classify_failure(cause: int, cause_txt: str, dialstatus: str) -> tuple[DialOutcome, str]:
    """Outcome + result detail of an originate that never reached StasisStart."""
    status = dialstatus.upper()
    if cause == CAUSE_BUSY or status == "BUSY":
        return DialOutcome.BUSY, "busy"
    if cause == CAUSE_CONGESTION or status == "CONGESTION":
        return DialOutcome.CONGESTION, "failed:congestion"
    if cause in (CAUSE_NO_ANSWER, CAUSE_NO_USER_RESPONSE) or status == "NOANSWER":
        return DialOutcome.NO_ANSWER, "no_answer"
    if cause in CAUSES_UNREACHABLE or status == "CHANUNAVAIL":
        return DialOutcome.UNREACHABLE, f"failed:{cause_txt or 'unreachable'}"
    return DialOutcome.FAILED, f"failed:{cause_txt or 'unknown'}"


def media_uri(prompt: str) -> str:
    if prompt.startswith(_MEDIA_SCHEMES):
        return prompt
    if prompt.startswith(("http://", "https://")):
        return f"sound:{prompt}"
    if prompt.startswith("/"):
        return "sound:" + str(Path(prompt).with_suffix(""))
    return f"sound:{prompt}"
