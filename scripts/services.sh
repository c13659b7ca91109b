#!/usr/bin/env bash
# Start throw-away PostgreSQL and Redis servers on loopback for the tests (installing them from
# Debian's packages when missing) and print the URLs as shell exports. Stop them with `stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${SWITCHBOARD_SERVICES_DIR:-/tmp/switchboard-test-services}"
PG_PORT="${PG_PORT:-54329}"
REDIS_PORT="${REDIS_PORT:-63799}"

apt_install() {
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    if [ ! -f /tmp/.switchboard-apt-updated ]; then apt-get update -qq && touch /tmp/.switchboard-apt-updated; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "services: please install: $*" >&2; return 1
  fi
}

if [ "${1:-start}" = "stop" ]; then
  if [ -d "$STATE/pg" ]; then su postgres -c "$(ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1) -D $STATE/pg -m fast stop" >/dev/null 2>&1 || true; fi
  if [ -f "$STATE/redis.pid" ]; then kill "$(cat "$STATE/redis.pid")" 2>/dev/null || true; fi
  exit 0
fi

ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql >&2
command -v redis-server >/dev/null 2>&1 || apt_install redis-server >&2

started=0
mkdir -p "$STATE"
chmod 777 "$STATE"
PGBIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -1)")"
if [ ! -f "$STATE/pg/PG_VERSION" ]; then
  rm -rf "$STATE/pg"
  su postgres -c "$PGBIN/initdb -D $STATE/pg -A trust -U postgres" >/dev/null
fi
if ! su postgres -c "$PGBIN/pg_ctl -D $STATE/pg status" >/dev/null 2>&1; then
  su postgres -c "$PGBIN/pg_ctl -D $STATE/pg -l $STATE/pg.log -w -o '-p $PG_PORT -k $STATE -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null
  started=1
fi
for db in switchboard_test; do
  su postgres -c "$PGBIN/psql -h 127.0.0.1 -p $PG_PORT -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname='$db'\"" | grep -q 1 \
    || su postgres -c "$PGBIN/psql -h 127.0.0.1 -p $PG_PORT -U postgres -c 'CREATE DATABASE $db'" >/dev/null
done
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" >/dev/null
  started=1
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "export DATABASE_URL_TEST=postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/switchboard_test"
echo "export REDIS_URL_TEST=redis://127.0.0.1:$REDIS_PORT/0"
echo "export SWITCHBOARD_SERVICES_STARTED=$started"
