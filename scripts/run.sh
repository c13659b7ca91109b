#!/usr/bin/env bash
# Quick start, command 1: set up and run the main job on the embedded defaults
# (simulated phone network, offline speech, SQLite, built-in panel; no cloud keys, no PBX).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/switchboard run "$@"
