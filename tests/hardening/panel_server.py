"""A built-in panel served over HTTP for API fuzzing:
`python -m tests.hardening.panel_server DIR PORT [DATABASE_URL]`.

A fresh SQLite database in DIR (one per run), seeded with a campaign, contacts, calls and a do-not-call
entry so that path parameters can hit real rows; the shipped scenarios are the engine's scenarios.
Prints `ready` when it serves.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import uvicorn

from switchboard import clock
from switchboard.flows.registry import ScenarioRegistry
from switchboard.panel.server import create_panel_app
from switchboard.settings import Settings
from switchboard.store import CallData, NewContact, open_store

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fuzz-token"


async def seed(store, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    camp = await store.campaigns.get_or_create("spring", company=settings.company, calling_hours_start="09:00",
                                               calling_hours_end="21:00")
    await store.contacts.add_many([
        NewContact(phone=f"0912000000{i}", phone_e164=f"+98912000000{i}", phone_national=f"912000000{i}",
                   name=f"=cmd|' /C calc'!A{i}", attributes={"city": "@SUM(1+1)", "note": "-2+3"},
                   company=settings.company, campaign_id=camp.id)
        for i in range(1, 6)])
    now = clock.now()
    for i in range(1, 4):
        call = CallData(id=f"call-{i}", direction="outbound", phone=f"0912000000{i}", phone_e164=f"+98912000000{i}",
                        company=settings.company, scenario="salehi_language", number_id=str(i), line="02191000001",
                        originated_at=now - timedelta(minutes=10), answered_at=now - timedelta(minutes=9),
                        ended_at=now - timedelta(minutes=8), result="not_interested", reason="+said no",
                        user_message="=HYPERLINK(\"http://evil\",\"click\")", transcripts=[{"role": "caller",
                                                                                           "text": "\tno"}])
        await store.calls.start(CallData(id=call.id, direction="outbound", phone=call.phone, company=call.company,
                                         originated_at=call.originated_at))
        await store.calls.record(call)
    await store.dnc.add("+989120000009", reason="asked", source="api")


async def main(directory: Path, port: int, database_url: str = "") -> None:
    settings = Settings(_env_file=None, data_dir=directory / "data", logs_dir=directory / "logs",  # type: ignore[call-arg]
                        scenarios_dir=ROOT / "scenarios", builtin_panel_token=TOKEN, panel_port=port,
                        builtin_panel_token_scopes="dialer,read,pii,write,control,export,delete,admin",
                        database_url=database_url)
    store = await open_store(settings)
    await seed(store, settings)
    registry = ScenarioRegistry(settings.scenarios_dir)
    # As `switchboard panel` builds it (app.serve_panel): the console's API and pages included.
    from switchboard.brain.services import apply_approved_versions, build_brain
    from switchboard.web.serve import link_node

    brain = build_brain(settings)
    await apply_approved_versions(brain)
    app = create_panel_app(store, settings, list_scenarios=registry.get_names, console=True,
                           node=link_node(registry=registry, brain=brain), llm=brain.llm, routers=[brain.router()])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    try:
        await task
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""))
