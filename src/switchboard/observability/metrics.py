"""Prometheus metrics: what an operator watches on a dashboard (calls by result, live calls, dial
outcomes, provider failures, whether dialing is paused, the outbox backlog). Served at /metrics by
the panel server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, make_asgi_app

REGISTRY = CollectorRegistry(auto_describe=True)

CALLS = Counter("switchboard_calls_total", "Finished calls by direction, scenario and result",
                ["direction", "scenario", "result"], registry=REGISTRY)
ACTIVE_CALLS = Gauge("switchboard_active_calls", "Calls in progress", ["direction"], registry=REGISTRY)
ORIGINATIONS = Counter("switchboard_originations_total", "Outbound originations by line", ["line"],
                       registry=REGISTRY)
PROVIDER_FAILURES = Counter("switchboard_provider_failures_total", "Provider failures by kind", ["kind"],
                            registry=REGISTRY)
DIALER_PAUSED = Gauge("switchboard_dialer_paused", "1 while the failure threshold keeps dialing paused",
                      registry=REGISTRY)
ABANDON_RATE = Gauge("switchboard_abandon_rate", "Rolling abandon rate per campaign (scenario)", ["campaign"],
                     registry=REGISTRY)
CALL_SECONDS = Counter("switchboard_call_seconds_total", "Seconds of finished calls", ["direction"],
                       registry=REGISTRY)


def result_label(result: str) -> str:
    """`failed:<reason>` keeps its reason (a small, fixed set in practice) but is cut to a sane length."""
    return result[:48]


def asgi_app():  # type: ignore[no-untyped-def]
    return make_asgi_app(registry=REGISTRY)
