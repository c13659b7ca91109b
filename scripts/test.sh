#!/usr/bin/env bash
# Quick start, command 2: set up and run the whole test suite (real models, real PostgreSQL and
# Redis on loopback, real HTTP/WebSocket servers, Debian's Chromium for the panel pages).
set -euo pipefail
cd "$(dirname "$0")/.."
SWITCHBOARD_EXTRAS="speech,dev" bash scripts/setup.sh
bash scripts/test-deps.sh
# The LLM tier's llama-server (built from source, ~20 min on 2 cores, then cached) builds in the
# background while the rest of the suite runs; tests/llm runs last and waits for it.
mkdir -p .cache/llama
# nice: the build yields the CPU to the tests, so timing-sensitive tests are not starved.
( nice -n 10 bash scripts/llama-server.sh && bash scripts/llama-server.sh model ) > .cache/llama/build.log 2>&1 &
eval "$(bash scripts/services.sh start)"
# Stop the servers afterwards only if this run started them (a developer's may be in use).
if [ "${SWITCHBOARD_SERVICES_STARTED:-0}" = "1" ]; then trap 'bash scripts/services.sh stop' EXIT; fi
.venv/bin/ruff check src tests --select F   # undefined names, unused imports: fail fast
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
