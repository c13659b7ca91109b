#!/usr/bin/env bash
# Debian packages the tests use beyond the Python ones (installed once, only when missing).
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download does not work offline).
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    [ -f /tmp/.switchboard-apt-updated ] || { apt-get update -qq && touch /tmp/.switchboard-apt-updated; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test-deps: please install: ${missing[*]}" >&2
  fi
fi
