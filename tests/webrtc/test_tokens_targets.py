"""Call tokens (single use, expiring, scoped, rate limited for strangers) and what a browser may call."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.flows.registry import ScenarioRegistry
from switchboard.telephony.webrtc.targets import CallTargets, PersonaInfo
from switchboard.telephony.webrtc.tokens import CallScope, CallTokens, RateLimited, TokenError

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_single_use_scoped_and_expires() -> None:
    clock = Clock()
    tokens = CallTokens(ttl=60, clock=clock)
    scope = CallScope("scenario", "reception", "alice")
    issued = tokens.mint(scope)
    assert len(issued.token) >= 40 and issued.expires_in == 60
    assert tokens.consume(issued.token) == scope
    with pytest.raises(TokenError):
        tokens.consume(issued.token)  # spent
    late = tokens.mint(scope)
    clock.now += 61
    with pytest.raises(TokenError):
        tokens.consume(late.token)  # expired
    with pytest.raises(TokenError):
        tokens.consume("made-up")
    assert len(tokens) == 0


def test_anonymous_tokens_are_rate_limited_per_address_and_outstanding_tokens_bounded() -> None:
    clock = Clock()
    tokens = CallTokens(ttl=30, anonymous_per_minute=3, max_outstanding=5, clock=clock)
    scope = CallScope("persona", "reception", "anonymous")
    for _ in range(3):
        tokens.mint(scope, client="10.0.0.1")
    with pytest.raises(RateLimited) as err:
        tokens.mint(scope, client="10.0.0.1")
    assert 1 <= err.value.retry_after <= 60
    tokens.mint(scope, client="10.0.0.2")  # another address has its own window
    clock.now += 61
    tokens.mint(scope, client="10.0.0.1")  # the window slid (the first three expired too)
    for _ in range(4):
        tokens.mint(CallScope("persona", "reception", "bob"))
    with pytest.raises(RateLimited):
        tokens.mint(CallScope("persona", "reception", "bob"))  # 5 outstanding: memory is bounded


def test_targets_are_inbound_scenarios_and_personas_and_a_persona_becomes_a_scenario() -> None:
    registry = ScenarioRegistry(ROOT / "scenarios")
    personas = [PersonaInfo("reception", "Sara (reception)", "en"), PersonaInfo("sales", "Omid (sales)", "en")]
    targets = CallTargets(registry.all, lambda: personas, public=["reception", "persona:sales"])
    names = {(t.kind, t.name) for t in targets.all()}
    assert ("scenario", "reception") in names and ("persona", "sales") in names
    assert all(registry.get(n).has_inbound for k, n in names if k == "scenario")
    assert {(t.kind, t.name) for t in targets.visible(signed_in=False)} == {
        ("scenario", "reception"), ("persona", "reception"), ("persona", "sales")}
    reception = targets.scenario_for(CallScope("scenario", "reception", "x"))
    assert reception is not None and targets.first_persona(reception) == "reception"
    sales = targets.scenario_for(CallScope("persona", "sales", "x"))
    assert sales is not None and sales.name == "persona.sales" and sales.has_inbound
    assert targets.first_persona(sales) == "sales"
    assert targets.scenario_for(CallScope("persona", "nobody", "x")) is None
    assert targets.scenario_for(CallScope("scenario", "nobody", "x")) is None
