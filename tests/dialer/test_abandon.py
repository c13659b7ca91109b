from __future__ import annotations

import asyncio

import pytest

from switchboard.clock import run_virtual
from switchboard.dialer.abandon import AbandonEvent, AbandonTracker


def test_operator_wait_over_two_seconds_is_an_abandon() -> None:
    events: list[AbandonEvent] = []

    async def main() -> AbandonTracker:
        tracker = AbandonTracker(on_abandon=events.append)
        for _ in range(4):
            tracker.answered("spring")
        # Connected after 1.5 s: fine.
        tracker.operator_requested("c1", "spring", contact_id="k1")
        await asyncio.sleep(1.5)
        assert tracker.operator_connected("c1") is False
        # Still waiting at 2 s: counted at that moment, once, even if an operator comes later.
        tracker.operator_requested("c2", "spring", contact_id="k2")
        await asyncio.sleep(1.99)
        assert tracker.stats("spring").abandoned == 0
        await asyncio.sleep(0.02)
        assert tracker.stats("spring").abandoned == 1
        await asyncio.sleep(3)
        assert tracker.operator_connected("c2") is True
        # Hung up after 1 s of waiting: not an abandon. After 5 s: an abandon.
        tracker.operator_requested("c3", "spring")
        await asyncio.sleep(1)
        assert tracker.call_ended("c3") is False
        tracker.operator_requested("c4", "spring")
        await asyncio.sleep(5)
        assert tracker.call_ended("c4") is True
        return tracker

    tracker = run_virtual(main())
    stats = tracker.stats("spring")
    assert (stats.answered, stats.abandoned) == (4, 2)
    assert stats.rate == pytest.approx(0.5)
    assert [(e.call_id, e.contact_id) for e in events] == [("c2", "k2"), ("c4", None)]
    assert all(e.waited == pytest.approx(2.0) for e in events)


def test_rolling_window_and_per_campaign_rates() -> None:
    async def main() -> list[tuple[float, float]]:
        tracker = AbandonTracker(window=3600)
        rates = []
        for _ in range(10):
            tracker.answered("a")
        tracker.answered("b")
        tracker.operator_requested("x", "a")
        await asyncio.sleep(10)
        rates.append((tracker.rate("a"), tracker.rate("b")))
        await asyncio.sleep(1800)
        for _ in range(10):
            tracker.answered("a")
        rates.append((tracker.rate("a"), tracker.rate("b")))
        await asyncio.sleep(1800)  # the first ten answers and the abandon leave the window
        rates.append((tracker.rate("a"), tracker.rate("b")))
        assert tracker.campaigns() == ["a", "b"]
        return rates

    assert run_virtual(main()) == [(0.1, 0.0), (0.05, 0.0), (0.0, 0.0)]


def test_a_failing_listener_does_not_lose_the_count() -> None:
    def boom(_: AbandonEvent) -> None:
        raise RuntimeError("listener bug")

    async def main() -> int:
        tracker = AbandonTracker(wait_limit=2.0, on_abandon=boom)
        tracker.answered("c")
        tracker.operator_requested("1", "c")
        await asyncio.sleep(3)
        return tracker.stats("c").abandoned

    assert run_virtual(main()) == 1
