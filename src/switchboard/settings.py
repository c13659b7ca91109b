"""All configuration, read from the environment and `.env` (the only module that does).

Every field here has a line in `.env.example`. Secrets are `SecretStr` so they never print in logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      allow_inf_nan=False)

    # --- core -----------------------------------------------------------------------------------
    scenarios_dir: Path = Path("scenarios")
    personas_dir: Path = Path("personas")
    data_dir: Path = Path("data")
    logs_dir: Path = Path("logs")
    log_level: str = "INFO"
    log_json: bool = False
    log_file: str = Field("", max_length=4096)  # rotating log file; empty = LOGS_DIR/app.log, "off" = terminal only
    log_file_max_bytes: int = Field(10_000_000, ge=10_000, le=10**12)  # rotate after this size
    log_file_backups: int = Field(5, ge=0, le=1000)  # rotated files kept (app.log.1 ... app.log.5)
    log_mask_phones: bool = True  # phone numbers in logs as 0912***6789; false logs them whole
    log_max_line: int = Field(2000, ge=80, le=1_000_000)  # characters of one log message (longer ones are cut, marked)
    company: str = Field("default", min_length=1, max_length=100)
    telephony_backend: str = "sim"  # a name registered in telephony/registry.py (sim | asterisk | twilio)
    max_steps_per_call: int = Field(200, ge=1, le=100_000)

    # --- simulator / demo -----------------------------------------------------------------------
    sim_virtual_clock: bool = True
    sim_audio: bool = True
    demo_contacts: int = Field(20, ge=0, le=1_000_000)
    demo_callers_dir: Path = Path("flowtests/callers")
    demo_speed: float = 10.0  # virtual seconds per real second while the demo serves the console (0 = flat out)

    # --- storage --------------------------------------------------------------------------------
    database_url: str = ""  # empty -> sqlite+aiosqlite:///./data/switchboard.db
    redis_url: str = ""

    # --- panel ----------------------------------------------------------------------------------
    panel_base_url: str = ""  # empty = no external panel; the built-in panel serves the contract
    panel_api_token: SecretStr = SecretStr("")
    panel_timeout: float = Field(10.0, gt=0, le=600)
    panel_host: str = "127.0.0.1"
    panel_port: int = Field(8080, ge=1, le=65535)
    builtin_panel_token: SecretStr = SecretStr("")  # token the built-in panel accepts
    panel_timezone: str = "+0330"
    panel_max_connections: int = Field(20, ge=1, le=1000)  # HTTP connections to an external panel

    # --- dialer ---------------------------------------------------------------------------------
    static_contacts: str = ""
    outbound_numbers: str = ""
    max_concurrent_calls: int = Field(10, ge=1, le=100_000)
    max_calls_per_minute: int = Field(60, ge=1, le=10_000_000)
    max_calls_per_day: int = Field(5000, ge=1, le=1_000_000_000)
    max_originations_per_second: float = Field(5.0, gt=0, le=10_000)
    batch_size: int = Field(50, ge=1, le=1000)
    dial_string_template: str = "PJSIP/{line_last4}{customer}@{trunk}"
    default_region: str = "IR"
    calling_hours_start: str = "09:00"
    calling_hours_end: str = "21:00"
    max_attempts: int = Field(3, ge=1, le=100)
    retry_delay_seconds: int = Field(1800, ge=0, le=365 * 86400)
    abandon_lockout_seconds: int = Field(3600, ge=0, le=365 * 86400)
    abandon_wait_seconds: float = Field(2.0, gt=0, le=3600)  # an operator request unanswered this long is an abandon
    abandon_window_seconds: int = Field(86400, ge=1, le=365 * 86400)  # rolling window of the per-campaign abandon rate
    daily_attempts_per_contact: int = Field(2, ge=1, le=1000)
    fail_alert_threshold: int = Field(5, ge=1, le=1_000_000)
    call_now_wait_seconds: float = Field(10.0, gt=0, le=3600)  # POST /api/v1/calls waits this long for a free line

    # --- alerts ---------------------------------------------------------------------------------
    sms_admins: str = ""
    sms_provider_url: str = ""
    sms_api_key: SecretStr = SecretStr("")
    sms_sender: str = ""

    # --- operators ------------------------------------------------------------------------------
    operator_timeout: float = Field(30.0, gt=0, le=3600)
    operator_caller_id: str = ""
    operator_trunk: str = "operators"
    operator_extension: str = ""
    inbound_agents: str = ""
    outbound_agents: str = ""

    # --- Asterisk ARI ---------------------------------------------------------------------------
    ari_base_url: str = "http://127.0.0.1:8088/ari"
    ari_ws_url: str = ""
    ari_username: str = "switchboard"
    ari_password: SecretStr = SecretStr("")
    ari_app_name: str = "switchboard"
    ari_timeout: float = Field(10.0, gt=0, le=600)
    outbound_trunk: str = "trunk"
    origination_timeout: int = Field(30, ge=1, le=600)
    ast_sound_dir: Path = Path("/var/lib/asterisk/sounds")
    external_media_host: str = "127.0.0.1"
    external_media_format: str = "ulaw"
    ari_record_mode: str = "snoop"  # snoop (customer only, spy=in) | bridge (the bridge mix)
    ari_streaming: bool = True  # converse steps stream audio over externalMedia (false: PBX files)
    prompts_src_dir: Path = Path("assets/audio/src")  # prompt sources (mp3/wav) for `prompts build`
    prompts_wav_dir: Path = Path("assets/audio/wav")  # built 8 kHz .wav / 16 kHz .wav16 prompts
    prompts_sync_on_start: bool = False  # build + sync prompts (and render tts: prompts) at start-up

    # --- Twilio ---------------------------------------------------------------------------------
    twilio_account_sid: str = ""  # required with TELEPHONY_BACKEND=twilio
    twilio_auth_token: SecretStr = SecretStr("")  # signs webhooks and authenticates REST calls
    twilio_numbers: str = ""  # comma-separated Twilio numbers (E.164): inbound numbers and outbound lines
    twilio_public_base_url: str = ""  # https URL Twilio reaches this server at (webhooks, media WebSocket)
    twilio_api_base_url: str = "https://api.twilio.com"  # REST API root (a test double or regional edge)
    twilio_machine_detection: str = ""  # empty = off; Enable | DetectMessageEnd: answering-machine detection
    twilio_stream_timeout: float = 10.0  # seconds an answered call may take to open its media stream

    # --- speech ---------------------------------------------------------------------------------
    stt_provider: str = "whisper"  # whisper | vira | openai | text
    stt_model: str = "base"  # base (the only Whisper model a package ships complete)
    stt_language: str = ""
    tts_provider: str = "espeak"  # espeak | piper | vira | openai | elevenlabs
    tts_voice: str = ""
    tts_cache_dir: Path = Path(".cache/tts")
    vad_provider: str = "silero"  # silero | webrtc
    recordings_dir: Path = Path("recordings")
    models_dir: Path = Path(".cache/models")
    max_parallel_stt: int = Field(2, ge=1, le=1024)
    max_parallel_tts: int = Field(4, ge=1, le=1024)
    vira_stt_url: str = ""
    vira_stt_token: SecretStr = SecretStr("")
    vira_tts_url: str = ""
    vira_tts_token: SecretStr = SecretStr("")
    openai_api_key: SecretStr = SecretStr("")
    openai_base_url: str = "https://api.openai.com/v1"
    openai_stt_model: str = "whisper-1"
    openai_tts_model: str = "tts-1"
    elevenlabs_api_key: SecretStr = SecretStr("")
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_voice_id: str = ""
    elevenlabs_use_ws_tts: bool = False
    elevenlabs_model_id: str = "eleven_multilingual_v2"
    openai_tts_voice: str = "alloy"
    speech_enhance: bool = True  # denoise + normalise recordings before STT
    vad_end_silence: float = Field(0.6, gt=0, le=60)  # seconds of silence that end an utterance
    vad_min_speech: float = Field(0.15, ge=0, le=60)  # seconds of speech before an utterance counts
    speech_http_retries: int = Field(3, ge=1, le=20)  # attempts per cloud speech request (429/5xx retried)
    stt_timeout: float = Field(30.0, gt=0, le=600)  # seconds per cloud STT request
    tts_timeout: float = Field(30.0, gt=0, le=600)  # seconds per cloud TTS request

    # --- streamed voice (Twilio, WebRTC, ARI externalMedia, the simulator's audio mode) -----------
    vad_batch_ms: float = 32.0  # the shared Silero evaluates every call's windows in one batch this often
    voice_jitter_ms: float = 20.0  # agent audio goes out at most this far ahead of its playout time
    voice_early_stt_ms: float = Field(100.0, ge=0, le=5000)  # quiet inside an utterance before its STT starts (0: off)
    stt_provider_en: str = ""  # STT for English callers (e.g. moonshine); empty = STT_PROVIDER
    stt_provider_fa: str = ""  # STT for Persian callers; empty = STT_PROVIDER
    stt_provider_ar: str = ""  # STT for Arabic callers; empty = STT_PROVIDER

    # --- language models ------------------------------------------------------------------------
    llm_base_url: str = ""  # empty = no LLM: fallback tokens / scripted personas
    llm_api_key: SecretStr = SecretStr("")
    gapgpt_base_url: str = ""
    gapgpt_api_key: SecretStr = SecretStr("")
    llm_model_critical: str = "gpt-4o-mini"
    llm_model_cheap: str = "gpt-4o-mini"
    llm_timeout: float = Field(8.0, gt=0, le=600)
    llm_max_retries: int = Field(2, ge=0, le=20)
    max_parallel_llm: int = Field(8, ge=1, le=1024)
    llm_cache_ttl_seconds: int = Field(300, ge=0, le=365 * 86400)
    intent_timeout: float = Field(5.0, gt=0, le=600)  # sized for a local model: 8 concurrent classifications on 2 cores
    llm_max_reply_tokens: int = Field(200, ge=16, le=4096)  # cap of one spoken reply (cut at a sentence)
    llm_tool_mode: Literal["auto", "native", "json"] = "auto"  # auto: probe the server's chat template
    translation_provider: Literal["none", "passthrough", "libretranslate"] = "none"
    translation_url: str = ""  # LibreTranslate-compatible base URL
    translation_api_key: SecretStr = SecretStr("")
    translation_timeout: float = Field(5.0, gt=0, le=600)
    llm_working_language: str = "en"  # with a translator, the language the model works in
    intent_encoder: Literal["e5", "use", "none"] = "e5"  # sentence encoder of the offline intent classifier
    intent_threshold: float = Field(0.0, ge=0, le=1)  # cosine below which the nearest example means unknown; 0 = calibrated
    intent_model_role: str = "critical"  # critical | cheap: which model classifies intents
    strategies_dir: Path = Path("strategies")
    memory_summary_every: int = Field(20, ge=1, le=1_000_000)
    improvement_interval_hours: float = Field(24.0, gt=0, le=24 * 365)

    # --- browser calls (WebRTC) and avatars -------------------------------------------------------
    webrtc_enabled: bool = False  # serve /call beside another TELEPHONY_BACKEND (always on with webrtc)
    webrtc_ice_servers: str = ""  # stun:/turn: URLs, comma-separated; empty = host addresses only (LAN)
    webrtc_turn_username: str = ""
    webrtc_turn_password: SecretStr = SecretStr("")
    webrtc_max_calls: int = Field(20, ge=1, le=1000)  # browser calls at once in this process
    webrtc_sample_rate: int = 16000  # PCM rate the voice layer gets (8000 | 16000)
    webrtc_token_ttl_seconds: float = Field(120.0, gt=0, le=3600)
    webrtc_public_targets: str = ""  # scenarios/personas anyone may call without signing in ("Call us")
    webrtc_public_tokens_per_minute: int = Field(6, ge=1)  # anonymous call tokens per client address
    webrtc_connect_timeout: float = Field(20.0, gt=0)  # offer answered -> media flowing, or the call fails
    webrtc_media_timeout: float = Field(8.0, gt=0)  # no caller audio this long = connection lost
    webrtc_max_call_seconds: float = Field(1800.0, gt=0)
    avatar_provider: str = ""  # "" (audio only) | tavus
    tavus_api_key: SecretStr = SecretStr("")
    tavus_base_url: str = "https://tavusapi.com"
    tavus_persona_id: str = ""  # a Tavus persona in echo mode (the replica speaks what the agent says)
    tavus_replica_id: str = ""  # the default face
    tavus_replicas: str = ""  # per-persona faces: reception=r123,sales=r456
    tavus_daily_js_url: str = "https://unpkg.com/@daily-co/daily-js"

    # --- metrics --------------------------------------------------------------------------------
    metrics_enabled: bool = True

    # --- console and accounts -------------------------------------------------------------------
    console_enabled: bool = True  # `switchboard run` serves the web console on PANEL_HOST:PANEL_PORT
    console_public_url: str = ""  # base of printed login links; empty = http://PANEL_HOST:PANEL_PORT
    builtin_panel_token_scopes: str = "dialer"  # what BUILTIN_PANEL_TOKEN may do (see README: scopes)
    session_hours: float = 12.0  # a console sign-in lasts at most this long
    session_idle_minutes: float = 120.0  # ... and ends after this long without a request
    session_cookie_secure: bool = True  # Secure cookies (browsers accept them on http://127.0.0.1 too)
    login_max_failures: int = 5  # failed sign-ins per username within LOGIN_WINDOW_SECONDS
    login_window_seconds: int = 900
    login_link_hours: float = 24.0  # one-time login links expire after this long
    studio_fetch_allow_hosts: str = ""  # host[:port] the Strategy Studio may fetch although private
    studio_fetch_max_bytes: int = 1_000_000
    studio_fetch_timeout: float = 10.0

    def resolved_log_file(self) -> Path | None:
        if self.log_file.strip().lower() in ("off", "none", "-"):
            return None
        return Path(self.log_file) if self.log_file.strip() else self.logs_dir / "app.log"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'switchboard.db').as_posix()}"

    @staticmethod
    def split_list(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]

    # --- validation (one clear line per bad setting; see `SettingsError`) -----------------------
    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("calling_hours_start", "calling_hours_end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        return check_hhmm(v)

    @field_validator("panel_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from switchboard.panel.tz import parse_offset

        parse_offset(v)
        return v.strip()

    @field_validator("default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        import phonenumbers

        region = v.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter country code such as IR, US, GB")
        return region

    @field_validator("dial_string_template")
    @classmethod
    def _template(cls, v: str) -> str:
        from switchboard.dialer.dialstring import DialStringTemplate

        DialStringTemplate(v)  # raises ValueError naming the bad placeholder
        return v

    @field_validator("ari_base_url", "ari_ws_url", "panel_base_url", "llm_base_url", "gapgpt_base_url",
                     "openai_base_url", "elevenlabs_base_url", "vira_stt_url", "vira_tts_url", "sms_provider_url")
    @classmethod
    def _url(cls, v: str, info: ValidationInfo) -> str:
        value = v.strip()
        schemes = ("ws://", "wss://") if info.field_name == "ari_ws_url" else ("http://", "https://")
        if value and not (value.startswith(schemes) and len(value) > len(schemes[0]) + 1):
            raise ValueError(f"must be empty or a URL starting with {' or '.join(schemes)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        value = v.strip()
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be empty (SQLite in DATA_DIR), sqlite+aiosqlite:///PATH or "
                             "postgresql+asyncpg://USER:PASSWORD@HOST/DB")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        value = v.strip()
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty or a URL starting with redis:// or rediss://")
        return value

    @field_validator("ari_record_mode")
    @classmethod
    def _record_mode(cls, v: str) -> str:
        if v not in ("snoop", "bridge"):
            raise ValueError("must be snoop or bridge")
        return v

    @field_validator("intent_model_role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ("critical", "cheap"):
            raise ValueError("must be critical or cheap")
        return v

    @model_validator(mode="after")
    def _window(self) -> Settings:
        if self.calling_hours_start >= self.calling_hours_end:
            raise ValueError(f"CALLING_HOURS_START ({self.calling_hours_start}) must be before CALLING_HOURS_END "
                             f"({self.calling_hours_end}); calling hours cannot be empty or cross midnight")
        return self


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def check_hhmm(value: str) -> str:
    """`"9:00"` / `"09:00"` -> `"09:00"`; anything that is not a time of day is a ValueError."""
    text = value.strip()
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and 1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"{value!r} is not a time of day HH:MM")
    hours, minutes = int(parts[0]), int(parts[1])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{value!r} is not a time of day (00:00 to 23:59)")
    return f"{hours:02d}:{minutes:02d}"


# --- names operators already use (issue: settings from other ARI engines) ------------------------
# An old name maps onto a Switchboard setting; the Switchboard name wins when both are set to
# different values (that is refused: one of them would be silently ignored).
ALIASES: dict[str, str] = {
    "DIALER_BATCH_SIZE": "BATCH_SIZE",
    "SMS_FROM": "SMS_SENDER",
    "HTTP_TIMEOUT": "PANEL_TIMEOUT",
    "HTTP_MAX_CONNECTIONS": "PANEL_MAX_CONNECTIONS",
}
# OPERATOR_MOBILE_NUMBERS: one roster for both directions; it fills INBOUND_AGENTS and OUTBOUND_AGENTS.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {"OPERATOR_MOBILE_NUMBERS": ("INBOUND_AGENTS", "OUTBOUND_AGENTS")}
# Names with no single Switchboard equivalent: refused with what to use instead.
REFUSED: dict[str, str] = {
    "DIALER_DEFAULT_RETRY": "set MAX_ATTEMPTS (attempts per contact) and RETRY_DELAY_SECONDS (seconds between "
                            "attempts) instead",
    "DEFAULT_CALLER_ID": "outbound calls show their line's number (OUTBOUND_NUMBERS); set OPERATOR_CALLER_ID for "
                         "the number operators see",
}


class SettingsError(ValueError):
    """Bad settings; `lines` holds one human-readable line per problem (no traceback needed)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(slots=True)
class LoadedSettings:
    settings: Settings
    warnings: list[str]  # unknown names that look like ours
    notes: list[str]  # old names read as their Switchboard names


def _raw_environment(env_file: str | Path | None) -> dict[str, str]:
    """NAME -> value from `.env` and then the process environment (which wins), names upper-cased."""
    from dotenv import dotenv_values

    raw: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        data = Path(env_file).read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise SettingsError([f"{env_file}: line {line} is not UTF-8 text; save the file as UTF-8"]) from None
        raw.update({k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None})
    raw.update({k.upper(): v for k, v in os.environ.items()})
    return raw


def _known_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def _prefixes(names: set[str]) -> set[str]:
    return {name.split("_", 1)[0] + "_" for name in names if "_" in name}


def describe_validation(exc: ValidationError, raw: dict[str, str]) -> list[str]:
    """One line per bad setting: `PANEL_PORT='notaport': Input should be a valid integer`."""
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc:
            lines.append(message)
            continue
        name = loc[0].upper()
        shown = raw.get(name, err.get("input"))
        shown_text = repr(shown) if isinstance(shown, str) else str(shown)
        if len(shown_text) > 80:
            shown_text = shown_text[:77] + "..."
        lines.append(f"{name}={shown_text}: {message}")
    return lines


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> LoadedSettings:
    """Settings from `.env` and the environment with the names operators already use mapped on,
    names with no equivalent refused, and a warning (with a suggestion) for every unknown setting
    that starts like one of ours. Raises `SettingsError` with one line per problem."""
    import difflib

    raw = _raw_environment(env_file)
    known = _known_names()
    prefixes = _prefixes(known | set(ALIASES) | set(SPLIT_ALIASES))
    errors: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    values: dict[str, object] = {}
    for old, reason in REFUSED.items():
        if old in raw:
            errors.append(f"{old} is not a Switchboard setting: {reason}")
    for old, new in ALIASES.items():
        if old not in raw:
            continue
        if new in raw and raw[new].strip() != raw[old].strip():
            errors.append(f"{old}={raw[old]!r} and {new}={raw[new]!r} disagree: {old} is the old name of {new}; "
                          "keep one of them")
        elif new not in raw:
            values[new.lower()] = raw[old]
            notes.append(f"{old} is read as {new} (its Switchboard name)")
    for old, targets in SPLIT_ALIASES.items():
        if old not in raw:
            continue
        for new in targets:
            if new in raw and raw[new].strip():
                if raw[new].strip() != raw[old].strip():
                    warnings.append(f"{old} is ignored for {new}: {new} is set")
                continue
            values[new.lower()] = raw[old]
        notes.append(f"{old} is read as {' and '.join(targets)} (operators for inbound and outbound calls)")
    for name in sorted(raw):
        if name in known or name in ALIASES or name in SPLIT_ALIASES or name in REFUSED:
            continue
        if name.split("_", 1)[0] + "_" in prefixes:
            guess = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            hint = f"; did you mean {guess[0]}?" if guess else ""
            warnings.append(f"unknown setting {name} is ignored{hint}")
    values.update(overrides)
    settings: Settings | None = None
    try:
        settings = Settings(_env_file=env_file, **values)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors.extend(describe_validation(exc, raw))
    if settings is not None:
        from switchboard.telephony.registry import backend_spec

        try:
            backend_spec(settings.telephony_backend)
        except ValueError as exc:
            errors.append(str(exc))
    if errors or settings is None:
        raise SettingsError(errors)
    return LoadedSettings(settings, warnings, notes)


__all__ = ["Settings", "SettingsError", "load_settings", "Field"]
