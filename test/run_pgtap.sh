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

# shellcheck source=bin/cluster.sh
source bin/cluster.sh               # PG_CONFIG's default, pvg_cluster_start
PGBIN=$("$PG_CONFIG" --bindir)
export PATH="$PGBIN:$PATH"          # pg_prove calls "psql" from PATH

command -v pg_prove >/dev/null || {
  echo "run_pgtap.sh: pg_prove not found (package libtap-parser-sourcehandler-pgtap-perl)" >&2
  exit 1
}

# deterministic, independent of the caller's LANG/LC_* (initdb uses --no-locale anyway)
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset PGSERVICE PGOPTIONS PGPASSFILE PGSSLMODE 2>/dev/null || true

# No shared_preload_libraries: everything the pgTAP suite covers works without it.
pvg_cluster_start pgtap -U postgres --no-sync <<CONF
fsync = off
CONF

export PGUSER=postgres PGDATABASE=privacy_guard_pgtap
createdb privacy_guard_pgtap
psql -X -q -v ON_ERROR_STOP=1 \
  -c 'CREATE EXTENSION pgtap' \
  -c 'CREATE EXTENSION privacy_guard'

rc=0
if [ $# -eq 0 ]; then set -- test/pgtap/*.sql; fi
pg_prove --ext .sql "$@" || rc=$?
if [ $rc -ne 0 ]; then echo "---- server log (tail) ----" >&2; tail -n 50 "$PVG_DIR/server.log" >&2; fi
exit $rc
