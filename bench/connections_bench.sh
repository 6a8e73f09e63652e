#!/usr/bin/env bash
# bench/connections_bench.sh -- the memory of many connections: CONNS
# concurrent connections each run one indexed point lookup and then stay
# open, first on an unprotected table, then on its protected twin (CONSENTS
# subjects, 60% consenting, written straight into the consent store).
# While they are open, the cluster's memory is summed over all its
# processes as proportional set size (Pss, /proc/PID/smaps_rollup: shared
# memory counted once in all), ROUNDS times per table.  The growth of the
# protected round over the unprotected one is compared with the bar: the
# shared consent store plus 2 MB per connection.  Also reports privacy_guard's
# own memory contexts in one such connection.  Report in
# bench/results/connections_<timestamp>.md; the cluster is removed on exit.
#
# Usage:   bench/connections_bench.sh            (Linux: needs /proc)
# Quick:   CONNS=50 CONSENTS=100000 ROUNDS=1 bench/connections_bench.sh
#
# Settings (environment):
#   CONNS=200  CONSENTS=1000000  ROUNDS=3  HOLD=12 (seconds each connection stays)
#   SHARED_BUFFERS=256MB  PVG_PREFIX=  PG_CONFIG  RESULTS_DIR=bench/results  KEEP=0
#
# Durability is PostgreSQL's default (see bench/lib.sh).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

CONNS=${CONNS:-200}
CONSENTS=${CONSENTS:-1000000}
ROUNDS=${ROUNDS:-3}
HOLD=${HOLD:-12}
SHARED_BUFFERS=${SHARED_BUFFERS:-256MB}
KEEP=${KEEP:-0}
if [ -n "${PVG_PREFIX:-}" ]; then
	PG_CONFIG=${PG_CONFIG:-$PVG_PREFIX/usr/lib/postgresql/15/bin/pg_config}
else
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
fi
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BENCH=connections_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_require_pg
[ -r /proc/self/smaps_rollup ] || die "needs /proc/PID/smaps_rollup (Linux 4.14 or later)"

conns_conf() {
	echo "shared_preload_libraries = 'privacy_guard'"
	echo "privacy_guard.enabled = off"
	echo "max_connections = $((CONNS + 20))"
}
bench_cluster connbench < <(conns_conf)

PSQL_ARGS=(-X -q -At -h "$WORK" -p "$PORT" -d bench)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }

as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench
ROWS=$(( CONSENTS * 10 / 6 ))
log "loading $ROWS rows, $CONSENTS consents"
psql_su -c "CREATE ROLE bench_app LOGIN" -c "GRANT pg_read_all_stats TO bench_app" >/dev/null
bench_twin_sql "$ROWS" | psql_su >/dev/null

# the cluster's memory now: the sum of Pss over the postmaster and its children, kB
PM_PID=$(head -1 "$PGDATA/postmaster.pid")
cluster_pss() {
	local pids p total=0 v
	pids="$PM_PID $(pgrep -P "$PM_PID" | tr '\n' ' ')"
	for p in $pids; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}
backends() { psql_su -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'bench_app' AND wait_event = 'PgSleep'"; }

cat >"$WORK/hold.sql" <<EOF
\\set id random(1, $ROWS)
SELECT v FROM :table WHERE id = :id;
SELECT pg_sleep($HOLD);
EOF
chmod a+r "$WORK/hold.sql"

# warm-up: the shared set is built once, by the first protected statement
as_pg env PGOPTIONS="-c privacy_guard.purpose=marketing" "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app \
	-c "SELECT v FROM prot_t WHERE id = 1" >/dev/null
STORE_KB=$(psql_su -c "SELECT round(bytes / 1024.0) FROM privacy_guard._store_stats()")
CTX_KB=$(as_pg env PGOPTIONS="-c privacy_guard.purpose=marketing" "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app \
	-c "SELECT v FROM prot_t WHERE id = 3" \
	-c "SELECT round(coalesce(sum(total_bytes), 0) / 1024.0) FROM pg_backend_memory_contexts WHERE name LIKE 'privacy_guard%'" | tail -1)

IDLE_KB=$(cluster_pss)
for r in $(seq 1 "$ROUNDS"); do
	for t in plain_t prot_t; do
		as_pg env PGOPTIONS="-c privacy_guard.purpose=marketing" "$BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U bench_app \
			-c "$CONNS" -j 2 -t 1 -D table="$t" -f "$WORK/hold.sql" bench >"$WORK/pgbench_$t.log" 2>&1 &
		bp=$!
		# wait (bounded) until every connection has run its lookup and sleeps
		for _ in $(seq 1 $((HOLD * 10))); do
			[ "$(backends)" -ge "$CONNS" ] && break
			sleep 0.1
		done
		n=$(backends)
		[ "$n" -ge "$CONNS" ] || { kill "$bp" 2>/dev/null; die "only $n of $CONNS connections came up (see $WORK/pgbench_$t.log)"; }
		printf 'pss_kb\t%s\t%s\t%s\n' "$t" "$r" "$(cluster_pss)" >>"$RAW"
		wait "$bp" || die "pgbench failed: $(tail -3 "$WORK/pgbench_$t.log")"
	done
done

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/connections_$TS.md
read -r _ plain_med plain_min plain_max <<<"$(stats pss_kb plain_t)"
read -r _ prot_med prot_min prot_max <<<"$(stats pss_kb prot_t)"
GROWTH=$(awk -v a="$prot_med" -v b="$plain_med" 'BEGIN {printf "%.0f", a - b}')
PAIRED=$(awk -F'\t' '$2 == "plain_t" {p[$3] = $4} $2 == "prot_t" {q[$3] = $4}
	END {for (r in q) if (r in p) print q[r] - p[r]}' "$RAW" | bench_median)
BAR_KB=$((STORE_KB + CONNS * 2048))
{
	echo "# privacy_guard connections benchmark ($TS)"
	echo
	echo "- commit $GIT_REV; $CONSENTS consents ($ROWS subjects), preloaded; $CONNS connections, $ROUNDS rounds per table"
	echo "- $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	bench_settings_md
	echo "- each connection (pgbench -c $CONNS -t 1, role bench_app): one point lookup, then pg_sleep($HOLD);"
	echo "  memory = sum of Pss over the postmaster and all its children while all $CONNS sleep, kB"
	echo
	echo "| | kB |"
	echo "|---|---:|"
	echo "| cluster, idle (no application connection) | $IDLE_KB |"
	echo "| $CONNS connections after an unprotected lookup: median (min-max) | $(fmt "$plain_med" 0) ($(fmt "$plain_min" 0)-$(fmt "$plain_max" 0)) |"
	echo "| $CONNS connections after a protected lookup: median (min-max) | $(fmt "$prot_med" 0) ($(fmt "$prot_min" 0)-$(fmt "$prot_max" 0)) |"
	echo "| growth of the protected round (difference of medians; per round, median: $(fmt "$PAIRED" 0)) | $GROWTH |"
	echo "| shared consent store (privacy_guard._store_stats) | $STORE_KB |"
	echo "| privacy_guard's memory contexts in one such connection | $CTX_KB |"
	echo "| bar: shared store + 2 MB x $CONNS | $BAR_KB |"
	echo "| verdict | $(awk -v g="$GROWTH" -v b="$BAR_KB" 'BEGIN {print (g <= b) ? "meets" : "**MISSES**"}') |"
	echo
	echo "## Raw measurements"
	echo
	echo '```'
	cat "$RAW"
	echo '```'
} >"$REPORT"
sed -n '1,/^## Raw/p' "$REPORT" | head -n -1
log "report: $REPORT"
