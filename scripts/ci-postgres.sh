#!/usr/bin/env bash
# Provision a throwaway PostgreSQL for the call-record tests and print its URL.
#
#   eval "$(scripts/ci-postgres.sh | tail -n 1 | sed 's/^/export /')"
#
# - Installs Debian's `postgresql` only when initdb/pg_ctl cannot be found.
# - Reuses the cluster it started earlier (state in $VB_PG_STATE_DIR) while it still answers.
# - Otherwise: initdb in a fresh temp dir (owned by `postgres` when run as root, since
#   PostgreSQL refuses to run as root), listening on 127.0.0.1 only, a free port, and a
#   unix socket inside that dir; creates role and database `voicebridge`.
# The cluster is for tests: fsync is off. The LAST line of stdout is exactly
#   TEST_DATABASE_URL=postgres://…
# and everything else goes to stderr.
set -euo pipefail

STATE_DIR="${VB_PG_STATE_DIR:-/tmp/voice-bridge-ci-pg}"
STATE="$STATE_DIR/state"
DB=voicebridge
ROLE=voicebridge
PASS=voicebridge

log() { echo "ci-postgres: $*" >&2; }

find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  fi
  # Debian keeps the server binaries per major version, off PATH.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  return 1
}

BIN="$(find_bindir || true)"
if [ -z "$BIN" ]; then
  if [ "$(id -u)" != 0 ]; then log "PostgreSQL is not installed and we are not root: apt-get install -y postgresql"; exit 1; fi
  log "installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
  BIN="$(find_bindir)" || { log "postgresql installed but initdb/pg_ctl not found"; exit 1; }
fi

# Run a command as the cluster owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

psql_admin() { # $1 = SQL
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DATA" -p "$PORT" -U postgres -d postgres -tA -c "$1"
}

# Reuse: the state file names a data dir and port; keep it if the server still answers.
if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  . "$STATE"
  if [ -n "${DATA:-}" ] && [ -n "${PORT:-}" ] && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2 \
     && psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB'" 2>/dev/null | grep -q 1; then
    log "reusing the cluster in $DATA on port $PORT"
    echo "TEST_DATABASE_URL=postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
    exit 0
  fi
  log "previous cluster (${DATA:-?}) is gone; starting a new one"
  if [ -n "${DATA:-}" ] && [ -d "$DATA" ]; then as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DATA"; fi
fi

mkdir -p "$STATE_DIR"
DATA="$(mktemp -d /tmp/voice-bridge-pg.XXXXXX)"
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
  chown postgres: "$DATA"
fi
chmod 700 "$DATA"
PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"

log "initdb in $DATA (PostgreSQL $("$BIN/postgres" --version | sed -E "s/.* ([0-9]+\.[0-9]+).*/\1/")), port $PORT"
as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
  || as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >&2 \
  || { log "server did not start:"; tail -n 30 "$DATA/server.log" >&2 || true; exit 1; }

psql_admin "CREATE ROLE $ROLE LOGIN PASSWORD '$PASS'" >/dev/null
psql_admin "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
printf 'DATA=%q\nPORT=%q\n' "$DATA" "$PORT" > "$STATE"
log "ready: stop it with: $( [ "$(id -u)" = 0 ] && echo "su postgres -c '" )$BIN/pg_ctl -D $DATA stop$( [ "$(id -u)" = 0 ] && echo "'" )"
echo "TEST_DATABASE_URL=postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
