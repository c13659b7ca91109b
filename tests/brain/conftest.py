from __future__ import annotations

import pytest

from switchboard.brain.llm import LLMClient

from .fake_llm import FakeLLM


@pytest.fixture(scope="session")
def fake_server():
    with FakeLLM(api_key="test-key") as server:
        yield server


@pytest.fixture
def fake(fake_server):
    fake_server.script.clear()
    fake_server.requests.clear()
    fake_server.responder = None
    yield fake_server
    fake_server.script.clear()
    fake_server.responder = None


@pytest.fixture
async def make_llm(fake):
    clients: list[LLMClient] = []

    def make(**kw) -> LLMClient:
        opts = {"base_url": fake.base_url, "api_key": "test-key", "model_critical": "crit-model",
                "model_cheap": "cheap-model", "timeout": 5.0, "max_retries": 2, "max_parallel": 4,
                "cache_ttl": 60.0, "backoff_base": 0.01, "backoff_max": 0.05}
        opts.update(kw)
        client = LLMClient(**opts)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
