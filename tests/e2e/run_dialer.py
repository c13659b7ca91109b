"""A dialer process for the multi-process end-to-end tests: builds the node from the environment's
Settings (DATABASE_URL, REDIS_URL, OUTBOUND_NUMBERS, ...) with the simulator on the wall clock and
dials the built-in panel's contacts until idle, then prints its stats as one JSON line.

Extra knobs (test only): E2E_LEASE_SECONDS (the built-in panel's contact lease), E2E_CLAIM_SECONDS
(the outbox deliverer's claim on a row), E2E_RING_SECONDS
(how long simulated contacts ring), E2E_PROMPT_SECONDS (length of each prompt), E2E_POLL_SECONDS.

    python -m tests.e2e.run_dialer
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from switchboard import app as sbapp
from switchboard.settings import Settings
from switchboard.telephony.sim.backend import SimBackend
from switchboard.telephony.sim.call import SimTimings
from switchboard.telephony.sim.network import SimNetwork
from switchboard.telephony.sim.script import AnswerAfter, CallerScript


async def _watchdog(seconds: float) -> None:
    """Still running after `seconds`: print every task's stack to stderr (the test shows the log)."""
    await asyncio.sleep(seconds)
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


async def main() -> int:
    watchdog = asyncio.create_task(_watchdog(float(os.environ.get("E2E_WATCHDOG_SECONDS", "60"))))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    ring = float(os.environ.get("E2E_RING_SECONDS", "0.2"))
    network = SimNetwork(origination_timeout=float(settings.origination_timeout),
                         timings=SimTimings(prompt_seconds=float(os.environ.get("E2E_PROMPT_SECONDS", "0.5"))))
    backend = SimBackend(network=network,
                         default_script=lambda number, variables: CallerScript(
                             phone=number, answer=AnswerAfter(after_seconds=ring)))
    node = await sbapp.build_node(settings, backend=backend)
    lease = os.environ.get("E2E_LEASE_SECONDS")
    if lease:
        node.panel.lease_seconds = float(lease)  # type: ignore[attr-defined]
    node.dialer.poll_interval = float(os.environ.get("E2E_POLL_SECONDS", "0.3"))
    claim = os.environ.get("E2E_CLAIM_SECONDS")
    if claim:  # how long an outbox row claimed by a deliverer that died stays out of reach
        node.deliverer.claim_seconds = float(claim)
    try:
        await node.deliverer.start()
        await node.dialer.start()
        print(json.dumps({"event": "started", "pid": os.getpid()}), flush=True)
        stats = await node.dialer.run(until_idle=True)
    finally:
        await node.close()
        watchdog.cancel()
    print(json.dumps({"event": "done", "pid": os.getpid(), "originated": stats.originated,
                      "results": stats.results}), flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"), stream=sys.stderr)
    sys.exit(asyncio.run(main()))
