#!/usr/bin/env bash
# bench/scale_bench.sh -- cost of protection per connection as the number of
# consents grows (issue 11): for each size in SIZES, a protected table and
# an unprotected twin of SIZE rows, SIZE subjects, 60% of them consenting to
# a consent purpose (written straight into privacy_guard.consent_state).
# After one warm-up connection, RUNS new connections (as an application
# role) each run one indexed point lookup as their first statement, timed
# with psql's \timing, and then report the memory of privacy_guard's
# contexts in their backend (pg_backend_memory_contexts); the same for the
# unprotected table.  Prints medians and min/max (markdown) and writes them
# to bench/results/scale_<timestamp>.md.  The cluster is removed on exit.
#
# Usage:   bench/scale_bench.sh
# Before/after: PVG_PREFIX=/path/to/private/install bench/scale_bench.sh
#
# Settings (environment):
#   SIZES="100000 1000000"          consents per run (table rows = subjects = SIZE / 0.6)
#   RUNS=7                          new connections per table and size
#   PRELOAD=1                       shared_preload_libraries = 'privacy_guard'
#   EXPIRING=0                      1: every consent has a valid_until (so the shared set is
#                                   a hash table of limits, not a bitmap of dense ids)
#   SHARED_BUFFERS=512MB
#   PVG_PREFIX=                     a private install (as made by make install DESTDIR=...)
#   PG_CONFIG=                    default: bin/cluster.sh (under PVG_PREFIX if set)
#   LABEL=                          a name for this build in the report
#   RESULTS_DIR=bench/results  KEEP=0
#
# Durability is PostgreSQL's default (see bench/lib.sh).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SIZES=${SIZES:-100000 1000000}
RUNS=${RUNS:-7}
PRELOAD=${PRELOAD:-1}
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
KEEP=${KEEP:-0}
LABEL=${LABEL:-}
EXPIRING=${EXPIRING:-0}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BENCH=scale_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_require_pg
SO_SUM=$(md5sum "$PKGLIBDIR/privacy_guard.so" | cut -c1-12)

scale_conf() {
	if [ "$PRELOAD" = 1 ]; then
		echo "shared_preload_libraries = 'privacy_guard'"
		echo "privacy_guard.enabled = off"
	fi
}
bench_cluster scalebench < <(scale_conf)

PSQL_ARGS=(-X -q -At -h "$WORK" -p "$PORT")
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_app() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app -v ON_ERROR_STOP=1 "$@"; }

psql_su -d postgres -c "CREATE ROLE bench_app LOGIN" >/dev/null
psql_su -d postgres -c "GRANT pg_read_all_stats TO bench_app" >/dev/null

# one new connection: the first statement's time (ms) and privacy_guard's memory (bytes)
first_lookup() {				# db table key
	psql_app -d "$1" <<EOF | awk '/^Time:/ {t = $2} /^[0-9]+$/ {m = $1} END {print t "\t" m}'
SET privacy_guard.purpose = 'marketing';
\\timing on
SELECT v FROM $2 WHERE id = $3 \\g /dev/null
\\timing off
SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts WHERE name LIKE 'privacy_guard%';
EOF
}

# bytes of the shared images (a build that has it), or "-"
store_bytes() {
	psql_su -d "$1" -c "SELECT bytes FROM privacy_guard._store_stats()" 2>/dev/null || echo -
}

for size in $SIZES; do
	rows=$(( size * 10 / 6 ))
	db=scale_$size
	log "size $size: $rows rows, $size consents"
	t0=$(date +%s)
	psql_su -d postgres -c "CREATE DATABASE $db" >/dev/null
	bench_twin_sql "$rows" "$( [ "$EXPIRING" = 1 ] && echo "now() + interval '5 years'" || echo NULL )" |
		psql_su -d "$db" >/dev/null
	log "loaded in $(( $(date +%s) - t0 )) s"
	# warm-up: buffers, and (shared store) the one build every later connection
	# reuses; its time and the shared memory it took are reported apart
	bytes0=$(store_bytes "$db")
	IFS=$'\t' read -r ms _ < <(first_lookup "$db" prot_t 3)
	printf 'build_ms_%s\tprot_t\t1\t%s\n' "$size" "$ms" >>"$RAW"
	bytes1=$(store_bytes "$db")
	if [ "$bytes0" != - ] && [ "$bytes1" != - ]; then
		printf 'shared_b_per_consent_%s\tprot_t\t1\t%s\n' "$size" \
			"$(awk -v a="$bytes0" -v b="$bytes1" -v n="$size" 'BEGIN {printf "%.2f", (b - a) / n}')" >>"$RAW"
	fi
	first_lookup "$db" plain_t 3 >/dev/null
	for r in $(seq 1 "$RUNS"); do
		k=$(( (r * 7919) % rows / 5 * 5 + 1 ))	# a consenting subject (k % 5 = 1)
		for t in plain_t prot_t; do
			IFS=$'\t' read -r ms mem < <(first_lookup "$db" "$t" "$k")
			printf 'first_ms_%s\t%s\t%s\t%s\n' "$size" "$t" "$r" "$ms" >>"$RAW"
			printf 'mem_kb_%s\t%s\t%s\t%s\n' "$size" "$t" "$r" "$(awk -v m="$mem" 'BEGIN {printf "%.1f", m / 1024}')" >>"$RAW"
		done
	done
	psql_su -d postgres -c "DROP DATABASE $db" >/dev/null
done

mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/scale_$(date +%Y%m%d_%H%M%S).md
{
	echo "# scale_bench ${LABEL:+($LABEL) }$(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "- privacy_guard.so md5 $SO_SUM; preloaded: $PRELOAD; consents expiring: $EXPIRING; $RUNS new connections per cell"
	bench_settings_md
	echo
	echo "| consents | first protected lookup after server start (builds the shared set), ms | shared memory per consent, bytes |"
	echo "|---|---|---|"
	for size in $SIZES; do
		read -r _ b _ _ < <(stats "build_ms_$size" prot_t)
		read -r _ pc _ _ < <(stats "shared_b_per_consent_$size" prot_t)
		echo "| $size | $(fmt "$b" 1) | $(fmt "$pc" 2) |"
	done
	echo
	echo "| consents | table | first point lookup of a new connection, ms: median (min-max) | privacy_guard memory, kB: median (min-max) |"
	echo "|---|---|---|---|"
	for size in $SIZES; do
		for t in plain_t prot_t; do
			read -r _ m lo hi < <(stats "first_ms_$size" "$t")
			read -r _ mm mlo mhi < <(stats "mem_kb_$size" "$t")
			echo "| $size | $t | $(fmt "$m" 2) ($(fmt "$lo" 2)-$(fmt "$hi" 2)) | $(fmt "$mm" 0) ($(fmt "$mlo" 0)-$(fmt "$mhi" 0)) |"
		done
	done
} | tee "$OUT"
log "written to $OUT"
