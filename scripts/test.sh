#!/usr/bin/env bash
# Quick start, command 2: set up and run the whole test suite (real models, real PostgreSQL and
# Redis on loopback, real HTTP/WebSocket servers, Debian's Chromium for the panel pages).
set -euo pipefail
cd "$(dirname "$0")/.."
SWITCHBOARD_EXTRAS="speech,dev" bash scripts/setup.sh
bash scripts/test-deps.sh
eval "$(bash scripts/services.sh start)"
trap 'bash scripts/services.sh stop' EXIT
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
