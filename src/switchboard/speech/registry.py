"""Speech providers by name, built from `Settings`. Adding a provider is one module plus one entry
here; nothing else changes.

Offline: `whisper`, `moonshine` (English; per language with STT_PROVIDER_EN) (STT), `espeak` / `piper`
(TTS), `silero` / `webrtc` (VAD).
Cloud: `vira`, `openai` (STT and TTS), `elevenlabs` (TTS). A cloud TTS is backed by eSpeak so a
provider outage degrades the voice, not the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from switchboard.settings import Settings
from switchboard.speech.base import STT, TTS, VAD, VadProvider
from switchboard.speech.cache import CachedTTS
from switchboard.speech.fallback import FallbackTTS
from switchboard.speech.vad.endpointer import EndpointSettings

log = logging.getLogger(__name__)

CLOUD_TTS = ("vira", "openai", "elevenlabs")


def _whisper(s: Settings) -> STT:
    from switchboard.speech.stt.models import ensure_installed
    from switchboard.speech.stt.whisper import WhisperSTT

    ensure_installed(s.stt_model)
    return WhisperSTT(s.models_dir, size=s.stt_model, max_parallel=s.max_parallel_stt,
                      default_language=s.stt_language or None)


def _vira_stt(s: Settings) -> STT:
    from switchboard.speech.stt.vira import ViraSTT

    return ViraSTT(url=s.vira_stt_url, token=s.vira_stt_token.get_secret_value(),
                   attempts=s.speech_http_retries)


def _openai_stt(s: Settings) -> STT:
    from switchboard.speech.stt.openai import OpenAISTT

    return OpenAISTT(base_url=s.openai_base_url, api_key=s.openai_api_key.get_secret_value(),
                     model=s.openai_stt_model, attempts=s.speech_http_retries)


def _moonshine(s: Settings) -> STT:
    from switchboard.speech.stt.moonshine import MoonshineSTT

    return MoonshineSTT(max_parallel=s.max_parallel_stt)


STT_PROVIDERS: dict[str, Callable[[Settings], STT]] = {
    "whisper": _whisper, "vira": _vira_stt, "openai": _openai_stt, "moonshine": _moonshine,
}
ENGLISH_ONLY_STT = ("moonshine",)


def _espeak(s: Settings) -> TTS:
    from switchboard.speech.tts.espeak import EspeakTTS

    return EspeakTTS(default_language=s.stt_language or "en")


def _piper(s: Settings) -> TTS:
    from switchboard.speech.tts.piper import PiperTTS

    return PiperTTS()


def _vira_tts(s: Settings) -> TTS:
    from switchboard.speech.tts.vira import ViraTTS

    return ViraTTS(url=s.vira_tts_url, token=s.vira_tts_token.get_secret_value(), voice=s.tts_voice,
                   attempts=s.speech_http_retries)


def _openai_tts(s: Settings) -> TTS:
    from switchboard.speech.tts.openai import OpenAITTS

    return OpenAITTS(base_url=s.openai_base_url, api_key=s.openai_api_key.get_secret_value(),
                     model=s.openai_tts_model, voice=s.tts_voice or s.openai_tts_voice,
                     attempts=s.speech_http_retries)


def _elevenlabs(s: Settings) -> TTS:
    from switchboard.speech.tts.elevenlabs import ElevenLabsTTS

    return ElevenLabsTTS(api_key=s.elevenlabs_api_key.get_secret_value(),
                         voice_id=s.elevenlabs_voice_id or s.tts_voice, base_url=s.elevenlabs_base_url,
                         model_id=s.elevenlabs_model_id, use_ws=s.elevenlabs_use_ws_tts,
                         attempts=s.speech_http_retries)


TTS_PROVIDERS: dict[str, Callable[[Settings], TTS]] = {
    "espeak": _espeak, "piper": _piper, "vira": _vira_tts, "openai": _openai_tts,
    "elevenlabs": _elevenlabs,
}


def _unknown(kind: str, name: str, known: dict[str, object]) -> ValueError:
    return ValueError(f"unknown {kind} provider {name!r}; choose one of {', '.join(sorted(known))}")


def build_stt(settings: Settings) -> STT:
    name = settings.stt_provider.lower()
    if name == "text":
        raise ValueError("STT_PROVIDER=text has no STT: the simulator's text mode bypasses speech")
    if name not in STT_PROVIDERS:
        raise _unknown("STT", name, STT_PROVIDERS)  # type: ignore[arg-type]
    return STT_PROVIDERS[name](settings)


def build_stt_by_language(settings: Settings) -> dict[str, STT]:
    """STT providers chosen per caller language (`STT_PROVIDER_EN=moonshine`, ...); a language
    without its own setting uses STT_PROVIDER. An English-only provider for another language is a
    configuration error, named at start."""
    chosen = {"en": settings.stt_provider_en, "fa": settings.stt_provider_fa, "ar": settings.stt_provider_ar}
    out: dict[str, STT] = {}
    built: dict[str, STT] = {}
    for language, name in chosen.items():
        name = name.strip().lower()
        if not name or name == settings.stt_provider.lower():
            continue
        if name not in STT_PROVIDERS:
            raise _unknown(f"STT_PROVIDER_{language.upper()}", name, STT_PROVIDERS)  # type: ignore[arg-type]
        if name in ENGLISH_ONLY_STT and language != "en":
            raise ValueError(f"STT_PROVIDER_{language.upper()}={name}: {name} understands English only")
        if name not in built:
            built[name] = STT_PROVIDERS[name](settings)
        out[language] = built[name]
    return out


def build_tts(settings: Settings) -> TTS:
    """The configured TTS behind the on-disk cache; cloud providers fall back to (cached) eSpeak."""
    name = settings.tts_provider.lower()
    if name not in TTS_PROVIDERS:
        raise _unknown("TTS", name, TTS_PROVIDERS)  # type: ignore[arg-type]
    cache_dir = settings.tts_cache_dir
    primary = CachedTTS(TTS_PROVIDERS[name](settings), cache_dir)
    if name not in CLOUD_TTS:
        return primary
    # Each side caches under its own provider name, so fallback audio never masquerades as the
    # cloud voice once the provider recovers.
    return FallbackTTS(primary, CachedTTS(_espeak(settings), cache_dir))


def build_vad(settings: Settings, sample_rate: int = 8000) -> VAD:
    endpoint = EndpointSettings(min_speech=settings.vad_min_speech, end_silence=settings.vad_end_silence)
    name = settings.vad_provider.lower()
    if name == "silero":
        from switchboard.speech.vad.silero import SileroVAD

        return SileroVAD(sample_rate, settings=endpoint)
    if name == "webrtc":
        from switchboard.speech.vad.webrtc import WebRtcVAD

        return WebRtcVAD(sample_rate, settings=endpoint)
    raise ValueError(f"unknown VAD provider {name!r}; choose silero or webrtc")


def build_vad_provider(settings: Settings) -> VadProvider:
    """The process-wide VAD for streamed calls: Silero shared by every call and evaluated in batches
    (`speech.vad.batch`), or WebRTC's light detector decided inline per call."""
    endpoint = EndpointSettings(min_speech=settings.vad_min_speech, end_silence=settings.vad_end_silence)
    name = settings.vad_provider.lower()
    if name == "silero":
        from switchboard.speech.vad.batch import SileroBatch

        return SileroBatch(settings=endpoint, period=settings.vad_batch_ms / 1000.0)
    if name == "webrtc":
        from switchboard.speech.vad.stream import WebRtcVadProvider

        return WebRtcVadProvider(endpoint)
    raise ValueError(f"unknown VAD provider {name!r}; choose silero or webrtc")
