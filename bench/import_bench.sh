#!/usr/bin/env bash
# bench/import_bench.sh -- bulk consent import: privacy_guard.import_consents()
# against grant_consent() called once per row (issue 11, SPEC section 5
# "Scale": bulk consent import >= 100,000 consents/s)
#
# Builds a throwaway cluster with privacy_guard preloaded (the background
# worker switched off), a recording role bench_rec (grant_recorder) and one
# source table per size: subject text keys, one consent purpose, a
# valid_until on every other row and a small JSON evidence object on every
# row, as a company's export would have them.  Then, RUNS rounds, each
# measuring in rotating order, on an empty consent store each time (the
# extension dropped and created again, CHECKPOINT before the timed statement):
#   import_N      SELECT privacy_guard.import_consents('src_N') as bench_rec
#                 (the table form: reading the table is in the time), for
#                 each N of SIZES;
#   array_N       the same rows through the array form, the arrays built by
#                 the same statement (SELECT import_consents(array_agg(...))
#                 FROM src_N), for the largest size;
#   regrant_N     import_consents('src_N') again over the consents it just
#                 recorded (each subject already has a state: the ON CONFLICT
#                 path), for the smallest size;
#   grant_N       SELECT count(privacy_guard.grant_consent(...)) FROM src_N:
#                 one statement calling grant_consent() per row, at GRANT_N.
# Time by psql \timing, and the backend's CPU time; rate = consents / s.  Prints a markdown summary
# (medians, min/max, the ratio to grant_consent per row in the same run)
# and writes it to bench/results/import_<timestamp>.md.  The cluster is
# removed on exit.
#
# Usage:  bench/import_bench.sh            (as root or as a normal user)
# Quick:  SIZES="100000" GRANT_N=20000 RUNS=3 bench/import_bench.sh
#
# Settings (environment):
#   SIZES="100000 1000000"   import sizes (10000000 works; needs ~10 GB of disk)
#   GRANT_N=50000            rows granted one by one (grant_consent is ~9k/s)
#   RUNS=5                   rounds
#   VARIANTS="import array regrant grant"   which variants to measure
#   EVIDENCE=1               0: the source has no evidence column (an import of
#                            ~7 million rows or more with evidence exceeds one
#                            call's 1 GB of arrays)
#   SHARED_BUFFERS=1GB
#   PG_CONFIG=                    default: bin/cluster.sh (under PVG_PREFIX if set)
#   PVG_PREFIX=              use the private install made by PVG_PREFIX=... bin/setup
#   RESULTS_DIR=bench/results
#   KEEP=0                   1: leave the cluster running afterwards

set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
SIZES=${SIZES:-100000 1000000}
GRANT_N=${GRANT_N:-50000}
RUNS=${RUNS:-5}
WANT=${VARIANTS:-import array regrant grant}
EVIDENCE=${EVIDENCE:-1}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
BENCH=import_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_require_pg

for n in GRANT_N RUNS; do
	[[ ${!n} =~ ^[0-9]+$ ]] && [ "${!n}" -ge 1 ] || die "$n must be a positive integer"
done
MAX=0
MIN=
for n in $SIZES; do
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "SIZES must be positive integers"
	[ "$n" -gt "$MAX" ] && MAX=$n
	{ [ -z "$MIN" ] || [ "$n" -lt "$MIN" ]; } && MIN=$n
done
[ "$MAX" -ge 1 ] || die "SIZES is empty"
ROWS=$((MAX > GRANT_N ? MAX : GRANT_N))

bench_cluster pvgimport <<EOF
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
work_mem = 64MB
EOF

PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }
as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench

# the consent store as a fresh installation has it, and the recording role
FRESH="DROP EXTENSION IF EXISTS privacy_guard CASCADE;
CREATE EXTENSION privacy_guard;
SELECT privacy_guard.define_purpose('newsletter', 'consent');
SELECT privacy_guard.grant_recorder('bench_rec');"

log "loading $ROWS source rows"
psql_su >/dev/null <<EOF
CREATE ROLE bench_rec LOGIN;
CREATE TABLE src_all AS
SELECT g AS n, 'cust-' || g AS subject, 'newsletter'::text AS purpose,
	   CASE WHEN g % 2 = 0 THEN now() + interval '2 years' END AS valid_until,
	   CASE WHEN $EVIDENCE = 1 THEN
	   jsonb_build_object('form', 'signup-v3', 'channel', 'web', 'ip', '192.0.2.' || (g % 250),
						  'at', now() - (g % 1000) * interval '1 day') END AS evidence
  FROM generate_series(1, $ROWS) g;
EOF
for n in $SIZES $GRANT_N; do
	psql_su >/dev/null <<EOF
CREATE TABLE IF NOT EXISTS src_$n AS SELECT subject, purpose, valid_until$([ "$EVIDENCE" = 1 ] && echo ", evidence") FROM src_all WHERE n <= $n ORDER BY n;
GRANT SELECT ON src_$n TO bench_rec;
EOF
done
psql_su -c "DROP TABLE src_all" -c "VACUUM ANALYZE" >/dev/null
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	psql_su -c "CREATE EXTENSION pg_prewarm" >/dev/null
	for n in $SIZES $GRANT_N; do psql_su -c "SELECT pg_prewarm('src_$n')" >/dev/null; done
fi
SERVER_VERSION=$(psql_su -At -c "SELECT version()")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# name|rows|untimed preparation|timed statement (both run as bench_rec)
EV_AGG=$([ "$EVIDENCE" = 1 ] && echo "array_agg(evidence)" || echo "NULL")
EV_ARG=$([ "$EVIDENCE" = 1 ] && echo "evidence" || echo "NULL")
VARIANTS=()
for n in $SIZES; do
	[[ " $WANT " == *" import "* ]] && VARIANTS+=("import_$n|$n||SELECT privacy_guard.import_consents('src_$n');")
done
[[ " $WANT " == *" array "* ]] && VARIANTS+=("array_$MAX|$MAX||SELECT privacy_guard.import_consents(array_agg(subject), array_agg(purpose), array_agg(valid_until), $EV_AGG) FROM src_$MAX;")
[[ " $WANT " == *" regrant "* ]] && VARIANTS+=("regrant_$MIN|$MIN|SELECT privacy_guard.import_consents('src_$MIN');|SELECT privacy_guard.import_consents('src_$MIN');")
[[ " $WANT " == *" grant "* ]] && VARIANTS+=("grant_$GRANT_N|$GRANT_N||SELECT count(privacy_guard.grant_consent(subject, purpose, valid_until, $EV_ARG)) FROM src_$GRANT_N;")
[ "${#VARIANTS[@]}" -gt 0 ] || die "VARIANTS selects nothing (import array regrant grant)"

# one psql per measurement: a fresh store, the preparation, a checkpoint, the
# timed statement; besides the elapsed time, the backend's CPU time (utime +
# stime from /proc, in clock ticks), which the load of other processes on a
# shared machine disturbs far less
CLK_TCK=$(getconf CLK_TCK)
measure() {						# name rows prep timed round
	local name=$1 rows=$2 prep=$3 timed=$4 round=$5 out ms cpu
	out=$(psql_su -At <<EOF
\o /dev/null
$FRESH
SET ROLE bench_rec;
$prep
RESET ROLE;
CHECKPOINT;
SET ROLE bench_rec;
\o
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
\! awk '{ print "@@CPU0", \$14 + \$15 }' /proc/\$BPID/stat
\timing on
\echo @@TIMED
$timed
\timing off
\! awk '{ print "@@CPU1", \$14 + \$15 }' /proc/\$BPID/stat
EOF
)
	ms=$(awk '/^@@TIMED/{t=1; next} t && /^Time: /{print $2; exit}' <<<"$out")
	cpu=$(awk -v tck="$CLK_TCK" '/^@@CPU0/{a=$2} /^@@CPU1/{b=$2} END { if (a != "" && b != "") printf "%.0f\n", (b - a) * 1000 / tck }' <<<"$out")
	[ -n "$ms" ] && [ -n "$cpu" ] || die "no time for $name (round $round): $out"
	printf 'ms\t%s\t%s\t%s\n' "$name" "$round" "$ms" >>"$RAW"
	printf 'rate\t%s\t%s\t%s\n' "$name" "$round" "$(awk -v n="$rows" -v ms="$ms" 'BEGIN { printf "%.1f\n", n / (ms / 1000) }')" >>"$RAW"
	printf 'cpu\t%s\t%s\t%s\n' "$name" "$round" "$cpu" >>"$RAW"
	printf 'cpurate\t%s\t%s\t%s\n' "$name" "$round" "$(awk -v n="$rows" -v ms="$cpu" 'BEGIN { printf "%.1f\n", (ms > 0 ? n / (ms / 1000) : 0) }')" >>"$RAW"
	log "round $round: $name: $ms ms, backend CPU $cpu ms"
}

# a warm-up import at the smallest size, not recorded
log "warm-up"
psql_su -At >/dev/null <<EOF
$FRESH
SET ROLE bench_rec;
SELECT privacy_guard.import_consents('src_$MIN');
EOF

nv=${#VARIANTS[@]}
for ((r = 1; r <= RUNS; r++)); do
	for ((k = 0; k < nv; k++)); do
		IFS='|' read -r name rows prep timed <<<"${VARIANTS[(k + r) % nv]}"
		measure "$name" "$rows" "$prep" "$timed" "$r"
	done
done
# the last import's effect, to show it was real
CHECK=$(psql_su -At -c "SELECT count(*) FROM privacy_guard.consent_state" -c "SELECT count(*) FROM privacy_guard.consent_ledger" | paste -sd/)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
SUMMARY=$WORK/summary.md
read -r _ gmed _ _ <<<"$(stats rate "grant_$GRANT_N")"
{
	echo "# privacy_guard bulk consent import benchmark ($TS)"
	echo
	echo "- commit $GIT_REV; $SERVER_VERSION; $(nproc 2>/dev/null || echo '?') CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	echo "- source rows: text keys, one consent purpose, valid_until on every other row, $([ "$EVIDENCE" = 1 ] && echo "~110-byte JSON evidence on every row" || echo "no evidence column")"
	echo "- each measurement on an empty consent store (extension dropped and created, CHECKPOINT), as the recording role;"
	echo "  $RUNS rounds, rotating order; time by psql \\timing; rate = consents per second; per backend CPU-s: consents"
	echo "  per second of the backend's CPU time (utime + stime; less disturbed by other load, WAL flushes not in it)"
	echo "- regrant: the same import again over the consents it just recorded (the ON CONFLICT path)"
	echo "- after the last measurement: consent_state/consent_ledger rows = $CHECK"
	bench_settings_md
	echo
	echo "| variant | consents | runs | median consents/s | min | max | median s | vs grant_consent per row | bar ≥ 100,000/s | per backend CPU-s: median | min | max |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
	for v in "${VARIANTS[@]}"; do
		IFS='|' read -r name rows _ <<<"$v"
		read -r cnt med mn mx <<<"$(stats rate "$name")"
		read -r _ msmed _ _ <<<"$(stats ms "$name")"
		read -r _ cmed cmn cmx <<<"$(stats cpurate "$name")"
		case $name in
			grant_*) bar='-' ;;
			*) bar=$(verdict "$med" 100000 ge) ;;
		esac
		echo "| $name | $rows | $cnt | $(fmt "$med" 0) | $(fmt "$mn" 0) | $(fmt "$mx" 0) | $(awk -v m="$msmed" 'BEGIN { printf "%.2f\n", m / 1000 }') | $(ratio "$med" "$gmed")× | $bar | $(fmt "$cmed" 0) | $(fmt "$cmn" 0) | $(fmt "$cmx" 0) |"
	done
} >"$SUMMARY"

mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/import_$TS.md
{
	cat "$SUMMARY"
	echo
	echo "## Raw measurements (phase, variant, round, value)"
	echo
	echo '```'
	sort -t$'\t' -k1,1 -k2,2 -k3,3n "$RAW"
	echo '```'
} >"$REPORT"
echo
cat "$SUMMARY"
echo
echo "Full report: $REPORT"
