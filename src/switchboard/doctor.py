"""`switchboard doctor`: check every dependency the configuration names, one clear line each (what
was checked, what was found, what to do), before a campaign finds out the hard way.

Checks: scenarios, database, Redis, the panel (external: reachable and the token accepted;
built-in: its token), the telephony backend (Asterisk: ARI reachable with these credentials, the
application registered, the scenarios' prompts present on the PBX), the LLM, STT and TTS providers,
SMS alerts. Each check is independent and bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from switchboard.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def line(self) -> str:
        mark = {OK: "✔", WARN: "!", FAIL: "✖"}[self.status]
        return f"{mark} {self.name:<10} {self.detail}" + (f" — {self.fix}" if self.fix else "")


# --- Asterisk ----------------------------------------------------------------------------------------
async def check_ari(settings: Settings, *, timeout: float | None = None) -> Check:
    """ARI reachable at ARI_BASE_URL and the credentials accepted (GET /asterisk/info)."""
    url = settings.ari_base_url.rstrip("/")
    auth = httpx.BasicAuth(settings.ari_username, settings.ari_password.get_secret_value())
    try:
        async with httpx.AsyncClient(auth=auth, timeout=timeout or settings.ari_timeout) as http:
            resp = await http.get(f"{url}/asterisk/info")
    except httpx.HTTPError as exc:
        return Check("asterisk", FAIL, f"cannot reach Asterisk ARI at ARI_BASE_URL={url} "
                                       f"({type(exc).__name__}: {exc or 'no answer'})",
                     "check ARI_BASE_URL, that Asterisk runs, and http.conf (enabled=yes, bindaddr/bindport)")
    if resp.status_code in (401, 403):
        return Check("asterisk", FAIL, f"ARI at {url} refused user {settings.ari_username!r} (HTTP {resp.status_code})",
                     "check ARI_USERNAME / ARI_PASSWORD against ari.conf")
    if resp.status_code != 200:
        return Check("asterisk", FAIL, f"ARI at ARI_BASE_URL={url} answered HTTP {resp.status_code}",
                     "ARI_BASE_URL must end in /ari (e.g. http://pbx:8088/ari)")
    try:
        version = resp.json().get("system", {}).get("version", "?")
    except ValueError:
        return Check("asterisk", FAIL, f"{url}/asterisk/info is not ARI JSON", "ARI_BASE_URL must end in /ari")
    return Check("asterisk", OK, f"ARI at {url}: Asterisk {version}, user {settings.ari_username!r} accepted")


async def _ari_app_and_prompts(settings: Settings, prompts: list[str]) -> list[Check]:
    url = settings.ari_base_url.rstrip("/")
    auth = httpx.BasicAuth(settings.ari_username, settings.ari_password.get_secret_value())
    out: list[Check] = []
    async with httpx.AsyncClient(auth=auth, timeout=settings.ari_timeout) as http:
        app = settings.ari_app_name
        resp = await http.get(f"{url}/applications/{app}")
        if resp.status_code == 200:
            out.append(Check("ari app", OK, f"application {app!r} is registered (a Switchboard is connected)"))
        else:
            out.append(Check("ari app", WARN, f"application {app!r} is not registered on Asterisk now",
                             "it registers when `switchboard run` connects; the dialplan must send calls to "
                             f"Stasis({app})"))
        if not prompts:
            return out
        sounds_dir = Path(settings.ast_sound_dir)
        on_disk = sounds_dir.is_dir()
        listed: set[str] = set()
        if not on_disk:
            resp = await http.get(f"{url}/sounds")
            if resp.status_code == 200:
                listed = {str(s.get("id")) for s in resp.json() if isinstance(s, dict)}
        missing = []
        for name in prompts:
            if on_disk:
                found = any((sounds_dir / lang / name).with_suffix(ext).exists() or
                            (sounds_dir / name).with_suffix(ext).exists()
                            for lang in ("en", "fa", "ar") for ext in (".wav", ".wav16", ".gsm", ".ulaw", ".sln"))
            else:
                found = name in listed or name.rpartition("/")[2] in listed
            if not found:
                missing.append(name)
        where = f"in AST_SOUND_DIR={sounds_dir}" if on_disk else "in Asterisk's sound list"
        if missing:
            out.append(Check("prompts", FAIL, f"{len(prompts) - len(missing)} of {len(prompts)} prompts found {where}; "
                                              f"missing: {', '.join(missing)}",
                             "run `switchboard prompts sync` on the PBX host (defaults are built from text)"))
        else:
            out.append(Check("prompts", OK, f"all {len(prompts)} sound: prompts the scenarios play are {where}"))
    return out


def _sound_prompts(settings: Settings) -> list[str]:
    from switchboard.flows.registry import ScenarioRegistry

    names: set[str] = set()
    registry = ScenarioRegistry(settings.scenarios_dir)
    for scenario in registry.all():
        for ref in scenario.spec.prompts.values():
            if ref.startswith("sound:"):
                names.add(ref[len("sound:"):])
    return sorted(names)


# --- the checks -----------------------------------------------------------------------------------
async def _scenarios(s: Settings) -> list[Check]:
    from switchboard.flows.validate import validate_directory

    if not Path(s.scenarios_dir).is_dir():
        return [Check("scenarios", FAIL, f"SCENARIOS_DIR={s.scenarios_dir} is not a folder", "set SCENARIOS_DIR")]
    results = validate_directory(Path(s.scenarios_dir))
    bad = [r for r in results if r.errors]
    if not results:
        return [Check("scenarios", FAIL, f"no scenario files in {s.scenarios_dir}", "add scenarios/*.yaml")]
    if bad:
        first = bad[0].errors[0]
        return [Check("scenarios", FAIL, f"{len(bad)} of {len(results)} files invalid, e.g. {first}",
                      "run `switchboard validate` for every error")]
    return [Check("scenarios", OK, f"{len(results)} scenarios valid in {s.scenarios_dir}")]


async def _database(s: Settings) -> list[Check]:
    from sqlalchemy.engine import make_url

    from switchboard.store import open_store

    url = s.resolved_database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        store = await open_store(s)
    except Exception as exc:  # noqa: BLE001 - any driver error is the answer
        return [Check("database", FAIL, f"{shown}: {type(exc).__name__}: {str(exc)[:200]}",
                      "check DATABASE_URL (postgresql+asyncpg://user:pass@host/db) and that the server runs")]
    try:
        counts = await store.contacts.counts_by_status(s.company)
    finally:
        await store.close()
    return [Check("database", OK, f"{shown}: migrated; {sum(counts.values())} contacts "
                                  f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'})")]


async def _redis(s: Settings) -> list[Check]:
    if not s.redis_url:
        return [Check("redis", OK, "not configured: line limits live in this process (one engine process)")]
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(s.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        info = await client.info("server")
    except Exception as exc:  # noqa: BLE001
        return [Check("redis", FAIL, f"REDIS_URL unreachable: {type(exc).__name__}: {exc}",
                      "check REDIS_URL and that redis-server runs")]
    finally:
        await client.aclose()
    return [Check("redis", OK, f"Redis {info.get('redis_version', '?')} answers (limits shared by processes)")]


async def _panel(s: Settings) -> list[Check]:
    if not s.panel_base_url:
        if not s.builtin_panel_token.get_secret_value():
            return [Check("panel", OK, f"built-in panel on {s.panel_host}:{s.panel_port} (people sign in; no "
                                       "BUILTIN_PANEL_TOKEN, so no other dialer may use its contract)")]
        return [Check("panel", OK, f"built-in panel on {s.panel_host}:{s.panel_port}, BUILTIN_PANEL_TOKEN set "
                                   f"(scopes: {s.builtin_panel_token_scopes})")]
    token = s.panel_api_token.get_secret_value()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = s.panel_base_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=s.panel_timeout, headers=headers) as http:
            resp = await http.get(f"{url}/api/dialer/next-batch", params={"size": 0, "company": s.company})
    except httpx.HTTPError as exc:
        return [Check("panel", FAIL, f"PANEL_BASE_URL={url} unreachable: {type(exc).__name__}: {exc}",
                      "check PANEL_BASE_URL")]
    if resp.status_code in (401, 403):
        return [Check("panel", FAIL, f"{url} refused the token (HTTP {resp.status_code})", "check PANEL_API_TOKEN")]
    if resp.status_code != 200:
        return [Check("panel", FAIL, f"{url}/api/dialer/next-batch answered HTTP {resp.status_code}",
                      "is PANEL_BASE_URL the panel's root?")]
    from switchboard.panel.contract import parse_next_batch

    batch = parse_next_batch(resp.json() if resp.content else None, s.default_region)
    if batch.error:
        return [Check("panel", FAIL, f"{url}: next-batch answer does not follow the contract: {batch.error}")]
    return [Check("panel", OK, f"{url}: reachable, token accepted, {len(batch.active_scenarios)} active scenarios")]


async def _telephony(s: Settings) -> list[Check]:
    if s.telephony_backend == "sim":
        return [Check("telephony", OK, "simulator (TELEPHONY_BACKEND=sim): no PBX needed")]
    if s.telephony_backend != "asterisk":
        return [Check("telephony", WARN, f"TELEPHONY_BACKEND={s.telephony_backend}: not checked by doctor")]
    checks = [await check_ari(s)]
    if checks[0].ok:
        checks += await _ari_app_and_prompts(s, _sound_prompts(s))
    if not s.outbound_numbers and not s.panel_base_url:
        checks.append(Check("lines", WARN, "OUTBOUND_NUMBERS is empty", "set the numbers calls go out on"))
    return checks


async def _llm(s: Settings) -> list[Check]:
    base = s.llm_base_url or s.gapgpt_base_url
    if not base:
        return [Check("llm", OK, "not configured: intents by keywords, AI personas in scripted mode")]
    key = (s.llm_api_key if s.llm_base_url else s.gapgpt_api_key).get_secret_value()
    try:
        async with httpx.AsyncClient(timeout=s.llm_timeout,
                                     headers={"Authorization": f"Bearer {key}"} if key else {}) as http:
            resp = await http.get(f"{base.rstrip('/')}/models")
    except httpx.HTTPError as exc:
        return [Check("llm", FAIL, f"{base} unreachable: {type(exc).__name__}: {exc}",
                      "check LLM_BASE_URL (calls fall back to keywords meanwhile)")]
    if resp.status_code in (401, 403):
        return [Check("llm", FAIL, f"{base} refused the key (HTTP {resp.status_code})", "check LLM_API_KEY")]
    if resp.status_code >= 400:
        return [Check("llm", WARN, f"{base}/models answered HTTP {resp.status_code}")]
    return [Check("llm", OK, f"{base} answers; models {s.llm_model_critical} / {s.llm_model_cheap}")]


async def _speech(s: Settings) -> list[Check]:
    out: list[Check] = []
    if s.stt_provider == "whisper":
        from switchboard.speech.stt.models import ModelUnavailable, ensure_installed

        try:
            ensure_installed(s.stt_model)
            out.append(Check("stt", OK, f"Whisper {s.stt_model} (offline, from packages)"))
        except ModelUnavailable as exc:
            out.append(Check("stt", FAIL, str(exc), "bash scripts/setup.sh installs it"))
    elif s.stt_provider == "vira":
        ok = bool(s.vira_stt_url and s.vira_stt_token.get_secret_value())
        out.append(Check("stt", OK if ok else FAIL, f"Vira at {s.vira_stt_url or '(no URL)'}",
                         "" if ok else "set VIRA_STT_URL and VIRA_STT_TOKEN"))
    elif s.stt_provider == "openai":
        ok = bool(s.openai_api_key.get_secret_value())
        out.append(Check("stt", OK if ok else FAIL, f"OpenAI-compatible at {s.openai_base_url}",
                         "" if ok else "set OPENAI_API_KEY"))
    else:
        out.append(Check("stt", WARN, f"STT_PROVIDER={s.stt_provider}"))
    if s.tts_provider in ("espeak", "piper"):
        module = "espeakng_loader" if s.tts_provider == "espeak" else "piper"
        found = importlib.util.find_spec(module) is not None
        out.append(Check("tts", OK if found else FAIL, f"{s.tts_provider} (offline)",
                         "" if found else f"pip install the {module} package (scripts/setup.sh)"))
    else:
        keys = {"vira": s.vira_tts_token, "openai": s.openai_api_key, "elevenlabs": s.elevenlabs_api_key}
        secret = keys.get(s.tts_provider)
        ok = secret is not None and bool(secret.get_secret_value())
        out.append(Check("tts", OK if ok else FAIL, f"{s.tts_provider} (cloud; eSpeak NG if it fails)",
                         "" if ok else f"set the {s.tts_provider.upper()} key"))
    return out


async def _alerts(s: Settings) -> list[Check]:
    if not s.sms_admins:
        return [Check("alerts", WARN, "SMS_ADMINS empty: a failure pause is told to the panel only",
                      "set SMS_ADMINS, SMS_PROVIDER_URL, SMS_API_KEY")]
    ok = bool(s.sms_provider_url and s.sms_api_key.get_secret_value())
    return [Check("alerts", OK if ok else FAIL, f"SMS to {len(s.split_list(s.sms_admins))} admins",
                  "" if ok else "set SMS_PROVIDER_URL and SMS_API_KEY")]


CHECKS: list[Callable[[Settings], Awaitable[list[Check]]]] = [
    _scenarios, _database, _redis, _panel, _telephony, _llm, _speech, _alerts]


async def run_checks(settings: Settings, *, timeout: float = 30.0) -> list[Check]:
    """Every check, each bounded by `timeout` seconds; a check that crashes is a failed line."""

    async def one(check: Callable[[Settings], Awaitable[list[Check]]]) -> list[Check]:
        name = check.__name__.strip("_")
        try:
            return await asyncio.wait_for(check(settings), timeout)
        except TimeoutError:
            return [Check(name, FAIL, f"no answer within {timeout:.0f} s")]
        except Exception as exc:  # noqa: BLE001 - doctor reports, it never crashes
            return [Check(name, FAIL, f"{type(exc).__name__}: {exc}")]

    results = await asyncio.gather(*(one(c) for c in CHECKS))
    return [c for group in results for c in group]
