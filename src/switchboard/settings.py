"""All configuration, read from the environment and `.env` (the only module that does).

Every field here has a line in `.env.example`. Secrets are `SecretStr` so they never print in logs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- core -----------------------------------------------------------------------------------
    scenarios_dir: Path = Path("scenarios")
    personas_dir: Path = Path("personas")
    data_dir: Path = Path("data")
    logs_dir: Path = Path("logs")
    log_level: str = "INFO"
    log_json: bool = False
    log_file: str = ""  # rotating log file; empty = LOGS_DIR/app.log, "off" = terminal only
    log_file_max_bytes: int = 10_000_000  # rotate after this size
    log_file_backups: int = 5  # rotated files kept (app.log.1 ... app.log.5)
    log_mask_phones: bool = True  # phone numbers in logs as 0912***6789; false logs them whole
    log_max_line: int = 2000  # characters of one log message (longer ones are cut, marked)
    company: str = "default"
    telephony_backend: str = "sim"  # a name registered in telephony/registry.py (sim | asterisk | twilio)
    max_steps_per_call: int = 200

    # --- simulator / demo -----------------------------------------------------------------------
    sim_virtual_clock: bool = True
    sim_audio: bool = True
    demo_contacts: int = 20
    demo_callers_dir: Path = Path("flowtests/callers")
    demo_speed: float = 10.0  # virtual seconds per real second while the demo serves the console (0 = flat out)

    # --- storage --------------------------------------------------------------------------------
    database_url: str = ""  # empty -> sqlite+aiosqlite:///./data/switchboard.db
    redis_url: str = ""

    # --- panel ----------------------------------------------------------------------------------
    panel_base_url: str = ""  # empty = no external panel; the built-in panel serves the contract
    panel_api_token: SecretStr = SecretStr("")
    panel_timeout: float = 10.0
    panel_host: str = "127.0.0.1"
    panel_port: int = 8080
    builtin_panel_token: SecretStr = SecretStr("")  # token the built-in panel accepts
    panel_timezone: str = "+0330"

    # --- dialer ---------------------------------------------------------------------------------
    static_contacts: str = ""
    outbound_numbers: str = ""
    max_concurrent_calls: int = 10
    max_calls_per_minute: int = 60
    max_calls_per_day: int = 5000
    max_originations_per_second: float = 5.0
    batch_size: int = 50
    dial_string_template: str = "PJSIP/{line_last4}{customer}@{trunk}"
    default_region: str = "IR"
    calling_hours_start: str = "09:00"
    calling_hours_end: str = "21:00"
    max_attempts: int = 3
    retry_delay_seconds: int = 1800
    abandon_lockout_seconds: int = 3600
    abandon_wait_seconds: float = 2.0  # an operator request unanswered this long is an abandon
    abandon_window_seconds: int = 86400  # rolling window of the per-campaign abandon rate
    daily_attempts_per_contact: int = 2
    fail_alert_threshold: int = 5
    call_now_wait_seconds: float = 10.0  # POST /api/v1/calls waits this long for a free line

    # --- alerts ---------------------------------------------------------------------------------
    sms_admins: str = ""
    sms_provider_url: str = ""
    sms_api_key: SecretStr = SecretStr("")
    sms_sender: str = ""

    # --- operators ------------------------------------------------------------------------------
    operator_timeout: float = 30.0
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
    ari_timeout: float = 10.0
    outbound_trunk: str = "trunk"
    origination_timeout: int = 30
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
    stt_model: str = "base"  # base | small
    stt_language: str = ""
    tts_provider: str = "espeak"  # espeak | piper | vira | openai | elevenlabs
    tts_voice: str = ""
    tts_cache_dir: Path = Path(".cache/tts")
    vad_provider: str = "silero"  # silero | webrtc
    recordings_dir: Path = Path("recordings")
    models_dir: Path = Path(".cache/models")
    max_parallel_stt: int = 2
    max_parallel_tts: int = 4
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
    vad_end_silence: float = 0.6  # seconds of silence that end an utterance
    vad_min_speech: float = 0.15  # seconds of speech before an utterance counts
    speech_http_retries: int = 3  # attempts per cloud speech request (429/5xx retried)

    # --- streamed voice (Twilio, WebRTC, ARI externalMedia, the simulator's audio mode) -----------
    vad_batch_ms: float = 32.0  # the shared Silero evaluates every call's windows in one batch this often
    voice_jitter_ms: float = 20.0  # agent audio goes out at most this far ahead of its playout time
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
    llm_timeout: float = 8.0
    llm_max_retries: int = 2
    max_parallel_llm: int = 8
    llm_cache_ttl_seconds: int = 300
    intent_timeout: float = 3.0
    intent_model_role: str = "critical"  # critical | cheap: which model classifies intents
    strategies_dir: Path = Path("strategies")
    memory_summary_every: int = 20
    improvement_interval_hours: float = 24.0

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


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


__all__ = ["Settings", "load_settings", "Field"]
