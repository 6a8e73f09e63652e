#!/usr/bin/env bash
# Run the pgTAP suite (test/pgtap/*.sql) with pg_prove against a throwaway
# cluster: initdb in a private /tmp dir, unix socket only (no TCP), random
# port, removed on exit.  Must run as a NON-root user; needs "make install"
# first (the tests use the installed privacy_guard).
#   test/run_pgtap.sh                              # all files
#   test/run_pgtap.sh -v test/pgtap/003_api.sql    # extra pg_prove args / files
#   KEEP=1 test/run_pgtap.sh                       # keep the cluster dir for debugging
#   PG_CONFIG=/path/to/pg_config test/run_pgtap.sh # another installation
# As root:  runuser -u postgres -- env PG_CONFIG=... test/run_pgtap.sh
# (the test user must be able to read the tree; nothing is written into it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  echo "run_pgtap.sh: PostgreSQL refuses to run as root; use e.g. runuser -u postgres -- $0" >&2
  exit 1
fi

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$("$PG_CONFIG" --bindir)
export PATH="$PGBIN:$PATH"          # pg_prove calls "psql" from PATH

command -v pg_prove >/dev/null || {
  echo "run_pgtap.sh: pg_prove not found (package libtap-parser-sourcehandler-pgtap-perl)" >&2
  exit 1
}

# deterministic, independent of the caller's LANG/LC_* (initdb uses --no-locale anyway)
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset PGSERVICE PGOPTIONS PGPASSFILE PGSSLMODE 2>/dev/null || true

# short path: unix socket paths are limited to ~107 bytes
TMP=$(mktemp -d /tmp/pgtap.XXXXXX)
PORT=$(( 20000 + RANDOM % 30000 ))  # the socket lives in the private $TMP, so no clash is possible
# shellcheck disable=SC2317  # called through the trap
cleanup() {
  pg_ctl -D "$TMP/data" -m immediate stop >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

initdb -D "$TMP/data" -U postgres -A trust --no-locale -E UTF8 --no-sync >"$TMP/initdb.log" 2>&1 \
  || { cat "$TMP/initdb.log" >&2; exit 1; }
# No shared_preload_libraries: everything the pgTAP suite covers works without it.
cat >>"$TMP/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$TMP'
port = $PORT
fsync = off
CONF
pg_ctl -D "$TMP/data" -l "$TMP/server.log" -w -t 60 start >/dev/null \
  || { cat "$TMP/server.log" >&2; exit 1; }

export PGHOST="$TMP" PGPORT="$PORT" PGUSER=postgres PGDATABASE=privacy_guard_pgtap
createdb privacy_guard_pgtap
psql -X -q -v ON_ERROR_STOP=1 \
  -c 'CREATE EXTENSION pgtap' \
  -c 'CREATE EXTENSION privacy_guard'

rc=0
if [ $# -eq 0 ]; then set -- test/pgtap/*.sql; fi
pg_prove --ext .sql "$@" || rc=$?
if [ $rc -ne 0 ]; then echo "---- server log (tail) ----" >&2; tail -n 50 "$TMP/server.log" >&2; fi
exit $rc
