"""The live board fed by a real dialer on the simulator's virtual clock and read from another
thread; JSON logs carrying call ids; the usage report's figures (SQLite, and PostgreSQL when
DATABASE_URL_TEST is set)."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from switchboard import clock
from switchboard.store import CallData, EventData
from switchboard.store.usage import CallFilter, UsageRepo, usage_totals
from tests.console.conftest import console_settings
from tests.storekit import BACKENDS, PG_URL, db_url, reset_postgres, settings, store  # noqa: F401  (store fixtures)


def test_live_board_follows_a_campaign_from_another_thread(tmp_path: Path) -> None:
    from switchboard.app import build_node, seed_contacts
    from switchboard.demo import demo_contacts
    from switchboard.engine.operators import Operator
    from switchboard.observability.logging import _JsonFormatter
    from switchboard.simulation import DEFAULT_OPERATORS
    from switchboard.web.serve import link_node

    cfg = console_settings(tmp_path, max_attempts=1)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_JsonFormatter())
    sb_logger = logging.getLogger("switchboard")
    sb_logger.addHandler(handler)
    old_level = sb_logger.level
    sb_logger.setLevel(logging.INFO)  # the per-call INFO lines ("Placing call ...") are what carry ids
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def campaign() -> dict[str, int]:
        loop = clock.asyncio.get_running_loop()  # type: ignore[attr-defined]
        node = await build_node(cfg, virtual_clock=True)
        operators = [Operator(o.phone, o.id) for o in DEFAULT_OPERATORS]
        node.engine.services.operators.set_roster(None, "outbound", operators)
        people = demo_contacts(8, seed=7)
        await seed_contacts(node, [(p.phone, p.name, {"behaviour": p.behaviour}) for p in people], "live test")
        link = link_node(registry=node.registry, brain=None, dialer=node.dialer)
        loop.pace_if = lambda: node.dialer.active_calls > 0  # watchable, like the demo
        holder["board"] = link.live
        ready.set()
        try:
            await node.deliverer.start()
            await node.dialer.start()
            await node.dialer.run(until_idle=True)
            return dict(node.dialer.stats.results)
        finally:
            link.detach_dialer()
            await node.close()

    def run() -> None:
        try:
            holder["results"] = clock.run_virtual(campaign(), real_grace=0.005, speed=20.0)
        except BaseException as exc:  # reported by the test thread
            holder["error"] = exc
        finally:
            ready.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert ready.wait(120)
        board = holder["board"]
        seen_steps: set[str] = set()
        seen_operator = False
        deadline = time.monotonic() + 240
        while worker.is_alive() and time.monotonic() < deadline:
            snap = board.snapshot()
            for call in snap.calls:
                if call.step:
                    seen_steps.add(call.step)
                seen_operator = seen_operator or any(op["busy"] for op in snap.state.get("operators", []))
            time.sleep(0.02)
        worker.join(30)
    finally:
        sb_logger.removeHandler(handler)
        sb_logger.setLevel(old_level)
    assert "error" not in holder, holder.get("error")
    final = holder["board"].snapshot()
    assert final.finished and not final.attached and final.calls == ()
    assert final.results == holder["results"] and final.ended_total == sum(holder["results"].values()) == 8
    assert {"greet", "listen"} & seen_steps or {"play_hello", "record_response"} & seen_steps, seen_steps
    assert seen_operator  # someone said yes: an operator was busy on a call
    assert all(c.state == "ended" and c.result for c in final.recent)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    with_ids = [line for line in lines if line.get("call_id", "").startswith("out-")]
    assert with_ids, lines[:5]  # lines logged while handling a call carry its id


async def _seed_usage(st: Any) -> None:
    t0 = clock.now() - timedelta(hours=2)

    def call(cid: str, *, scenario: str, line: str | None, result: str, answered: bool, talk: float = 0.0,
             intent: str | None = None, persona: str | None = None, tokens: int = 0, path: str = "fallback",
             direction: str = "outbound") -> CallData:
        return CallData(id=cid, direction=direction, phone="0912", scenario=scenario, line=line, result=result,
                        company="acme", originated_at=t0, answered_at=t0 if answered else None,
                        ended_at=t0 + timedelta(seconds=talk), intent=intent,
                        attributes={"persona": persona, "intent_path": path,
                                    "usage": {"llm_prompt_tokens": tokens, "llm_completion_tokens": tokens // 10}})

    calls = [
        call("a1", scenario="sales", line="L1", result="connected_to_operator", answered=True, talk=60, intent="yes"),
        call("a2", scenario="sales", line="L1", result="not_interested", answered=True, talk=30, intent="no"),
        call("a3", scenario="sales", line="L2", result="missed", answered=False),
        call("a4", scenario="sales", line="L2", result="disconnected", answered=True, talk=30, intent="yes",
             path="timeout"),
        call("a5", scenario="sales", line=None, result="failed:do_not_call", answered=False),
        call("b1", scenario="reception", line="L1", result="inbound_call", answered=True, talk=120, persona="sales",
             tokens=1000, direction="inbound"),
        call("b2", scenario="reception", line="L2", result="failed:stt_quota", answered=True, talk=6,
             persona="reception", tokens=100),
    ]
    for c in calls:
        await st.calls.record(c, [EventData(t0, "call_started")])


async def test_usage_summary_figures(store: Any) -> None:  # noqa: F811  (the storekit fixture)
    await _seed_usage(store)
    repo = UsageRepo(store.sessions, store.dialect)
    by_scenario = {r.key: r for r in await repo.summary(CallFilter("acme"), "scenario")}
    sales = by_scenario["sales"]
    assert (sales.calls, sales.dialed, sales.answered, sales.to_operator) == (5, 4, 3, 1)
    assert sales.answer_rate == 0.75 and sales.conversion == pytest.approx(1 / 3)
    assert (sales.abandoned, sales.operator_requests, sales.abandon_rate) == (1, 2, 0.5)
    assert sales.aht == pytest.approx(40.0) and sales.talk_minutes == 2.0
    assert sales.llm_failures == 1 and sales.intents == {"yes": 2, "no": 1}
    reception = by_scenario["reception"]
    assert reception.stt_failures == 1 and reception.stt_failure_rate == 0.5
    assert reception.llm_tokens == 1100 + 110
    by_persona = {r.key: r.calls for r in await repo.summary(CallFilter("acme"), "persona")}
    assert by_persona == {"(no persona)": 5, "reception": 1, "sales": 1}
    by_line = {r.key: r.dialed for r in await repo.summary(CallFilter("acme"), "line")}
    assert by_line == {"(not dialed)": 0, "L1": 3, "L2": 3}
    by_day = await repo.summary(CallFilter("acme"), "day", offset_minutes=210)
    assert len(by_day) == 1 and by_day[0].calls == 7 and len(by_day[0].key) == 10
    keyed, days = await repo.report(CallFilter("acme"), "scenario", offset_minutes=210)
    assert [r.key for r in keyed] == ["reception", "sales"] and len(days) == 1 and days[0].calls == 7
    assert days[0].answered == 5 and days[0].intents == {"yes": 2, "no": 1}
    total = usage_totals(list(by_scenario.values()))
    assert (total.calls, total.answered, total.intents["yes"]) == (7, 5, 2)
    only_l1 = await repo.summary(CallFilter("acme", line="L1"), "scenario")
    assert sum(r.calls for r in only_l1) == 3
    page = await repo.calls(CallFilter("acme", result="failed"), limit=10)
    assert {c.id for c in page.items} == {"a5", "b2"} and page.total == 2
    assert [c.id async for c in repo.iter_calls(CallFilter("acme", persona="sales"), chunk=1)] == ["b1"]
    assert await repo.distinct("acme", "persona") == ["reception", "sales"]
