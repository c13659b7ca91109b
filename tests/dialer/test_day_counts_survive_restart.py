"""A restart must not reset a line's per-day limit: the dialer re-seeds today's count from the calls
table (the in-process limiter otherwise starts at zero)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from switchboard.app import build_node, seed_contacts
from switchboard.clock import run_virtual
from switchboard.settings import Settings

TEHRAN = timezone(timedelta(hours=3, minutes=30))
QUICK = Path(__file__).resolve().parents[1] / "e2e" / "scenarios"  # one prompt, a final result


def campaign(settings: Settings, phones: list[str], start: datetime) -> list[datetime]:
    async def go() -> list[datetime]:
        node = await build_node(settings, virtual_clock=True)
        try:
            await seed_contacts(node, [(p, "", {}) for p in phones], campaign="restart")
            await node.deliverer.start()
            await node.dialer.start()
            await node.dialer.run(until_idle=True)
            page = await node.store.calls.list(direction="outbound", limit=100)
            return sorted(c.originated_at for c in page.items if c.phone_e164 in {f"+98{p[1:]}" for p in phones})
        finally:
            await node.close()

    return run_virtual(go(), start=start, real_grace=0.005)


def test_per_day_line_limit_holds_across_a_restart(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs",  # type: ignore[call-arg]
                        scenarios_dir=QUICK, outbound_numbers="02191000001", max_calls_per_day=3, max_attempts=1,
                        panel_timezone="+0330", calling_hours_start="09:00", calling_hours_end="21:00")
    day = datetime(2026, 11, 23, 10, 0, tzinfo=TEHRAN)
    first = campaign(settings, [f"0912555000{i}" for i in range(3)], day)
    assert len(first) == 3 and all(t.astimezone(TEHRAN).date() == day.date() for t in first)
    # "Restart" the same day: a new process, same database, two more contacts.
    second = campaign(settings, ["09125550003", "09125550004"], day + timedelta(hours=2))
    assert len(second) == 2
    assert all(t.astimezone(TEHRAN).date() > day.date() for t in second), second  # tomorrow, not today
