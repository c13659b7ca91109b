"""The scenarios' flow tests, run over the ARI backend against the Asterisk double.

The real `scenarios/salehi_language.yaml` runs on the real `FlowEngine` (built like `app.build_engine`)
over `AsteriskBackend` (built by `app.build_backend`), talking real ARI over HTTP and WebSocket to the
double. Where the customer's words matter, they are English sentences synthesized by Piper, played by
the customer's side of the call each time Switchboard starts recording it, recorded by the double
(snoop channel, half amplitude, 8 kHz), fetched over ARI and transcribed by the real `SpeechService`
with Whisper base. The scenario is Persian; its fallback tokens also hold the English words, so the
only change is `stt.language: en` (Whisper base on synthesized Persian is not reliable enough to
assert on). Cases where the audio content does not matter use no STT at all.

After every case nothing may be left on the (simulated) Asterisk: no channel, bridge or recording.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from switchboard.app import build_backend, build_engine
from switchboard.engine.context import CallContext
from switchboard.engine.engine import FlowEngine
from switchboard.flows.registry import ScenarioRegistry
from switchboard.flows.schema import Scenario
from switchboard.settings import Settings
from switchboard.simulation import outcome_from_dial
from switchboard.telephony.asterisk.backend import AsteriskBackend
from switchboard.telephony.asterisk.session import AriCall
from switchboard.telephony.call import Audio, DialOutcome
from tests.asterisk.double import AriDouble, Clip, ari_settings, assert_no_leaks, until

ROOT = Path(__file__).resolve().parents[2]
APP = "switchboard"
SCALE = 0.05  # virtual seconds of the double per real second: a 4.24 s prompt takes 0.21 s
CUSTOMER = "09120000001"
LINE = "02150001000"
OUTBOUND_OPERATOR = "1001"
INBOUND_OPERATOR = "1002"

# Far sides of the customer and the operators (the double's dialplan language).
CONTEXTS = {
    # answers and stays on the line; `Customer` makes it speak when it is asked something
    "customer-listens": "exten => s,1,Answer()\n same => n,Wait(600)\n same => n,Hangup()",
    # an inbound caller (the app answers): waits on the line until someone hangs up
    "caller-waits": "exten => s,1,Answer()\n same => n,Wait(600)\n same => n,Hangup()",
}


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry() -> ScenarioRegistry:
    return ScenarioRegistry(ROOT / "scenarios")


@pytest.fixture(scope="module")
def salehi(registry: ScenarioRegistry) -> Scenario:
    scenario = registry.get("salehi_language")
    assert scenario is not None, registry.last_report.errors
    return scenario


@pytest.fixture(scope="module")
def salehi_en(salehi: Scenario) -> Scenario:
    """The same flow, prompts and tokens; the customer answers in English."""
    stt = salehi.spec.stt.model_copy(update={"language": "en"})
    return dataclasses.replace(salehi, spec=salehi.spec.model_copy(update={"stt": stt}))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@dataclasses.dataclass
class Rig:
    ari: AriDouble
    settings: Settings
    engine: FlowEngine
    backend: AsteriskBackend
    inbound: list[CallContext]
    inbound_tasks: list[asyncio.Task[Any]]
    speech: Any = None

    @property
    def sim(self) -> Any:
        return self.ari.sim


def make_settings(ari: AriDouble, tmp_path: Path, **extra: object) -> Settings:
    return ari_settings(ari, tmp_path, app=APP, outbound_agents=OUTBOUND_OPERATOR,
                        inbound_agents=INBOUND_OPERATOR, operator_timeout=20, data_dir=str(tmp_path / "data"),
                        tts_cache_dir=str(tmp_path / "tts"), **extra)


@contextlib_asynccontextmanager := None  # placeholder removed below  # noqa: E731
