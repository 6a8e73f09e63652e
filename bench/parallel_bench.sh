#!/usr/bin/env bash
# bench/parallel_bench.sh -- full scans with parallel query allowed: the
# protected table against its unprotected twin, both planned parallel.
#
# Loads the read benchmark's data set (bench/read_setup.sql: ROWS rows,
# SUBJECTS subjects, 60% consenting to a consent purpose) into a throwaway
# cluster with privacy_guard preloaded, then times, as the application role
# in one session, `SELECT count(*), sum(amount) FROM <t>` with
# max_parallel_workers_per_gather = WORKERS (parallel) and = 0 (serial), for
# the unprotected table and the protected one under a contract and a consent
# purpose, RUNS rounds after two warm-up rounds, interleaved with rotating
# order.  Prints medians, min/max and ratios against the unprotected table
# of the same kind (markdown), checks the plans are parallel, and writes the
# report to bench/results/parallel_<timestamp>.md.  Removed on exit.
#
# Usage:   bench/parallel_bench.sh
# Quick:   ROWS=100000 SUBJECTS=10000 RUNS=3 bench/parallel_bench.sh
#
# Settings (environment):
#   ROWS=1000000  SUBJECTS=100000  RUNS=7  WORKERS=2  SHARED_BUFFERS=512MB
#   PVG_PREFIX=   a private install;  PG_CONFIG  RESULTS_DIR=bench/results  KEEP=0
#
# Durability is PostgreSQL's default (see bench/lib.sh).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

ROWS=${ROWS:-1000000}
SUBJECTS=${SUBJECTS:-100000}
RUNS=${RUNS:-7}
WORKERS=${WORKERS:-2}
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
KEEP=${KEEP:-0}
BAR=1.30
if [ -n "${PVG_PREFIX:-}" ]; then
	PG_CONFIG=${PG_CONFIG:-$PVG_PREFIX/usr/lib/postgresql/15/bin/pg_config}
else
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
fi
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BENCH=parallel_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_require_pg

parallel_conf() {
	echo "shared_preload_libraries = 'privacy_guard'"
	echo "privacy_guard.enabled = off"
	echo "max_worker_processes = $((WORKERS + 8))"
	echo "max_parallel_workers = $WORKERS"
}
bench_cluster parbench < <(parallel_conf)
cp "$HERE/read_setup.sql" "$WORK/read_setup.sql"
chmod a+r "$WORK/read_setup.sql"

PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_app() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app -v ON_ERROR_STOP=1 "$@"; }

as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench
log "loading $ROWS rows, $SUBJECTS subjects"
psql_su -v rows="$ROWS" -v subjects="$SUBJECTS" -v noret=off -f "$WORK/read_setup.sql" >/dev/null
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	psql_su -c "CREATE EXTENSION pg_prewarm" \
		-c "SELECT pg_prewarm('plain_t'), pg_prewarm('prot_t'), pg_prewarm('privacy_guard.consent_state')" >/dev/null
fi

QUERY="SELECT count(*), sum(amount) FROM"
# name|table|purpose|workers
VARIANTS=("plain_par|plain_t|billing|$WORKERS" "contract_par|prot_t|billing|$WORKERS"
		  "consent_par|prot_t|marketing|$WORKERS"
		  "plain_ser|plain_t|billing|0" "contract_ser|prot_t|billing|0"
		  "consent_ser|prot_t|marketing|0")

# the plans, and the rows each variant sees (parallel and serial must agree)
PLANS=$WORK/plans.txt
: >"$PLANS"
declare -A SEEN
for v in "${VARIANTS[@]}"; do
	IFS='|' read -r name tbl purpose w <<<"$v"
	SEEN[$name]=$(psql_app -At -c "SET privacy_guard.purpose = '$purpose'" \
		-c "SET max_parallel_workers_per_gather = $w" -c "$QUERY $tbl" | tail -1)
	{
		echo "-- $name"
		psql_app -At -c "SET privacy_guard.purpose = '$purpose'" \
			-c "SET max_parallel_workers_per_gather = $w" \
			-c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $QUERY $tbl"
	} >>"$PLANS"
done
for k in plain contract consent; do
	[ "${SEEN[${k}_par]}" = "${SEEN[${k}_ser]}" ] ||
		die "$k: the parallel plan returned ${SEEN[${k}_par]}, the serial one ${SEEN[${k}_ser]}"
done
grep -c "Workers Launched: [1-9]" "$PLANS" >/dev/null || { cat "$PLANS" >&2; die; }; [ "$(grep -c "Workers Launched: [1-9]" "$PLANS")" -eq 3 ] || die "the parallel variants did not all run with workers (see $PLANS)"

# timed rounds in one session
log "timing: 2 warm-up + $RUNS rounds x ${#VARIANTS[@]} variants"
{
	echo '\timing on'
	echo '\o /dev/null'
	for r in $(seq -1 "$RUNS"); do
		n=${#VARIANTS[@]}
		for i in $(seq 0 $((n - 1))); do
			v=${VARIANTS[$(( (i + r + 2) % n ))]}
			IFS='|' read -r name tbl purpose w <<<"$v"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "SET max_parallel_workers_per_gather = $w;"
			echo "\\echo @@ $name $r"
			echo "$QUERY $tbl;"
		done
	done
} >"$WORK/scan.sql"
chmod a+r "$WORK/scan.sql"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
psql_app -f "$WORK/scan.sql" 2>&1 |
	awk '/^@@/ {name = $2; run = $3; next}
		 /^Time:/ && name != "" { if (run > 0) printf "scan\t%s\t%s\t%s\n", name, run, $2; name = "" }' >>"$RAW"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/parallel_$TS.md
{
	echo "# privacy_guard parallel scan benchmark ($TS)"
	echo
	echo "- commit $GIT_REV; $ROWS rows, $SUBJECTS subjects, 60% consenting to marketing; preloaded"
	echo "- $(nproc) CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	bench_settings_md
	echo "- \`$QUERY <t>\` as bench_app, one session, $RUNS rounds after 2 warm-up rounds, interleaved;"
	echo "  parallel: max_parallel_workers_per_gather = $WORKERS; ms (psql \\timing)"
	echo "- rows seen: $(for v in "${VARIANTS[@]}"; do n=${v%%|*}; printf '%s %s; ' "$n" "${SEEN[$n]}"; done)"
	echo
	echo "| scan | variant | runs | median | min | max | ratio | paired | bar | verdict |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
	for kind in par ser; do
		read -r _ base _ _ <<<"$(stats scan "plain_$kind")"
		for k in plain contract consent; do
			read -r cnt med mn mx <<<"$(stats scan "${k}_$kind")"
			r=$(ratio "$med" "$base")
			p=$(paired_ratio scan "${k}_$kind" "plain_$kind")
			bar="-"; ver="-"
			if [ "$k" != plain ] && [ "$kind" = par ]; then bar="≤ ${BAR}×"; ver=$(verdict "$r" $BAR le); fi
			[ "$k" = plain ] && { r="1.000"; p="1.000"; }
			echo "| $([ $kind = par ] && echo "parallel ($WORKERS workers)" || echo serial) | $k | $cnt | $(fmt "$med" 1) | $(fmt "$mn" 1) | $(fmt "$mx" 1) | ${r}× | ${p}× | $bar | $ver |"
		done
	done
	echo
	echo "## Plans"
	echo
	echo '```'
	cat "$PLANS"
	echo '```'
	echo
	echo "## Raw measurements (phase, variant, round, ms)"
	echo
	echo '```'
	cat "$RAW"
	echo '```'
} >"$REPORT"
sed -n '1,/^## Plans/p' "$REPORT" | head -n -1
log "report: $REPORT"
