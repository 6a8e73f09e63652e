#!/usr/bin/env bash
# bench/audit_bench.sh -- cost of the access log (privacy_guard.audit) on reads,
# and the false-positive rate of access_history()'s Bloom filters
#
# Builds a throwaway cluster with privacy_guard preloaded (the access log needs
# shared memory), loads the read benchmark's data set (bench/read_setup.sql:
# ROWS rows, SUBJECTS subjects, 60% consenting to marketing) and measures, as
# the ordinary application role:
#   1. full scans (SELECT count(*), sum(amount)) of prot_t under billing
#      (contract) and marketing (consent) with privacy_guard.audit off and on,
#      plus the unprotected plain_t for reference; psql \timing, one session,
#      interleaved with rotating order, audit switched per statement through a
#      SECURITY DEFINER helper (the setting is superuser-only);
#   1b. the same scans by the backend's CPU time (utime + stime from
#      /proc/<pid>/stat around CPU_LOOPS scans in one DO loop per variant and
#      round), which the load of other processes on a shared machine
#      disturbs far less than elapsed time;
#   2. point lookups by primary key with pgbench -M prepared, audit off and on
#      (ALTER ROLE ... SET, so each run's new connections pick it up);
#   3. the Bloom filters: after a flush, for the log rows of the scans, the
#      fraction of subjects that were NOT read (under marketing: the 40% who
#      did not consent; under billing: keys that are in no row) for which
#      access_history() would still report the row (false positives), next to
#      the rate expected from m, k and n; and that every subject that was read
#      is found (false negatives must be 0).
# Prints a markdown summary (medians, min/max, ratios in the same run) and
# writes it to bench/results/audit_<timestamp>.md.  The cluster is removed.
#
# Usage:  bench/audit_bench.sh            (as root or as a normal user)
# Quick:  ROWS=200000 SUBJECTS=20000 RUNS=5 bench/audit_bench.sh
#
# Settings (environment):
#   ROWS=1000000  SUBJECTS=100000   data set size
#   RUNS=7                          timed full scans per variant (and CPU rounds)
#   CPU_LOOPS=50                    scans per variant and round for the CPU time (0: skip)
#   PGBENCH_RUNS=5  PGBENCH_SECONDS=5  PGBENCH_CLIENTS=2   (PGBENCH_RUNS=0: skip)
#   FP_PROBES=2000                  subjects probed per log row kind for the FP rate
#   SHARED_BUFFERS=512MB
#   PG_CONFIG=                    default: bin/cluster.sh (under PVG_PREFIX if set)
#   RESULTS_DIR=bench/results

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

ROWS=${ROWS:-1000000}
SUBJECTS=${SUBJECTS:-100000}
RUNS=${RUNS:-7}
CPU_LOOPS=${CPU_LOOPS:-50}
PGBENCH_RUNS=${PGBENCH_RUNS:-5}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-5}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-2}
FP_PROBES=${FP_PROBES:-2000}
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

# the Bloom filter's parameters (src/audit.c: PVG_BLOOM_BITS, PVG_BLOOM_K)
BLOOM_M=131072
BLOOM_K=5

SCAN_QUERY='SELECT count(*), sum(amount) FROM'

BENCH=audit_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

bench_require_pg
grep -aq 'privacy_guard.audit' "$PKGLIBDIR/privacy_guard.so" ||
	die "the installed privacy_guard has no access log (privacy_guard.audit)"
for n in ROWS SUBJECTS RUNS CPU_LOOPS PGBENCH_RUNS PGBENCH_SECONDS PGBENCH_CLIENTS FP_PROBES; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
[ "$ROWS" -ge "$SUBJECTS" ] && [ "$SUBJECTS" -ge 5 ] && [ "$RUNS" -ge 1 ] ||
	die "ROWS>=SUBJECTS>=5, RUNS>=1 needed"

bench_cluster pvgaudit <<EOF
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off			# the benchmark flushes itself
EOF
cp "$HERE/read_setup.sql" "$WORK/read_setup.sql"
chmod a+r "$WORK/read_setup.sql"

PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_app() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app -v ON_ERROR_STOP=1 "$@"; }
as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench

log "loading $ROWS rows, $SUBJECTS subjects"
psql_su -v rows="$ROWS" -v subjects="$SUBJECTS" -v noret=off -f "$WORK/read_setup.sql" >/dev/null
# audit is superuser-only: the benchmark role switches it through this helper
psql_su >/dev/null <<'EOF'
CREATE FUNCTION public.bench_audit(on_off boolean) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT pg_catalog.set_config('privacy_guard.audit', on_off::text, false) $$;
REVOKE ALL ON FUNCTION public.bench_audit(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.bench_audit(boolean) TO bench_app;
EOF
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	psql_su >/dev/null <<'EOF'
CREATE EXTENSION pg_prewarm;
SELECT pg_prewarm('plain_t'), pg_prewarm('prot_t'), pg_prewarm('privacy_guard.consent_state');
EOF
fi
SERVER_VERSION=$(psql_su -At -c "SELECT version()")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# name|table|purpose|audit
SCAN_VARIANTS=("plain|plain_t|billing|off"
			   "contract_off|prot_t|billing|off" "contract_on|prot_t|billing|on"
			   "consent_off|prot_t|marketing|off" "consent_on|prot_t|marketing|on")

# ---------------------------------------------------------------------------
# 1. Full scans: one session, two warm-up rounds, then RUNS rounds with the
#    variants in rotating order.  SELECT bench_audit(...) runs before the
#    timed statement, so it is not in the time.
# ---------------------------------------------------------------------------
log "full scans: $RUNS timed rounds x ${#SCAN_VARIANTS[@]} variants"
{
	echo '\o /dev/null'
	for w in 1 2; do
		for v in "${SCAN_VARIANTS[@]}"; do
			IFS='|' read -r name tbl purpose audit <<<"$v"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "SELECT public.bench_audit('$audit');"
			echo "$SCAN_QUERY $tbl;"
		done
	done
	echo '\timing on'
	n=${#SCAN_VARIANTS[@]}
	for ((r = 1; r <= RUNS; r++)); do
		for ((k = 0; k < n; k++)); do
			IFS='|' read -r name tbl purpose audit <<<"${SCAN_VARIANTS[(k + r) % n]}"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "SELECT public.bench_audit('$audit');"
			echo "\\echo @@ scan $name $r"
			echo "$SCAN_QUERY $tbl;"
		done
	done
} >"$WORK/scan.sql"
chmod a+r "$WORK/scan.sql"
psql_app -f "$WORK/scan.sql" |
	awk '/^@@ /{ph=$2; v=$3; r=$4; next}
		 /^Time: /{ if (v != "") { printf "%s\t%s\t%s\t%s\n", ph, v, r, $2; v = "" } }' >>"$RAW"

# ---------------------------------------------------------------------------
# 1b. CPU time of the backend per scan: CPU_LOOPS scans in a DO loop per
#     variant and round, rotating order; utime + stime in clock ticks read
#     from /proc before and after (the client runs on the same machine).
# ---------------------------------------------------------------------------
if [ "$CPU_LOOPS" -gt 0 ]; then
	log "CPU time: $RUNS rounds x ${#SCAN_VARIANTS[@]} variants x $CPU_LOOPS scans"
	CLK_TCK=$(getconf CLK_TCK)
	TICKS=$WORK/ticks.txt
	: >"$TICKS"
	chmod a+rw "$TICKS"
	{
		echo 'SELECT pg_backend_pid() AS pid \gset'
		echo '\setenv BPID :pid'
		n=${#SCAN_VARIANTS[@]}
		for ((r = 0; r <= RUNS; r++)); do		# round 0: warm-up, not recorded
			for ((k = 0; k < n; k++)); do
				IFS='|' read -r name tbl purpose audit <<<"${SCAN_VARIANTS[(k + r) % n]}"
				echo "SET privacy_guard.purpose = '$purpose';"
				echo "SELECT public.bench_audit('$audit');"
				echo "\\! awk -v v=$name -v r=$r '{print v, r, \$14 + \$15}' /proc/\$BPID/stat >>$TICKS"
				echo "DO \$\$ BEGIN FOR i IN 1..$CPU_LOOPS LOOP PERFORM count(*), sum(amount) FROM $tbl; END LOOP; END \$\$;"
				echo "\\! awk -v v=$name -v r=$r '{print v, r, \$14 + \$15}' /proc/\$BPID/stat >>$TICKS"
			done
		done
	} >"$WORK/cpu.sql"
	chmod a+r "$WORK/cpu.sql"
	psql_app -f "$WORK/cpu.sql" >/dev/null
	# two lines per variant and round: before, after -> ms of CPU per scan
	awk -v hz="$CLK_TCK" -v loops="$CPU_LOOPS" '
		{ key = $1 SUBSEP $2; if (key in before) { if ($2 > 0) printf "cpu\t%s\t%s\t%.3f\n", $1, $2, ($3 - before[key]) * 1000 / hz / loops; delete before[key] } else before[key] = $3 }' \
		"$TICKS" >>"$RAW"
fi

# ---------------------------------------------------------------------------
# 3 (before 2, so that the log holds the scans only). Flush, then probe the
#    filters of the scans' log rows.
# ---------------------------------------------------------------------------
log "Bloom filters: false positives and negatives"
psql_su -At -c "SELECT privacy_guard._flush_access_log()" >/dev/null
# subjects in the scans' filters: all subjects under billing, the consenting under marketing
N_BILLING=$SUBJECTS
N_MARKETING=$(psql_su -At -c "SELECT count(*) FROM generate_series(1, $SUBJECTS) s WHERE s % 5 < 3")
FP=$(psql_su -At -F ' ' <<EOF
WITH rows AS (SELECT purpose, subjects FROM privacy_guard.access_log_data WHERE table_name = 'public.prot_t'),
	 probes AS (
		-- never read: under marketing the non-consenting, under billing keys in no row
		SELECT 'marketing' AS purpose, s FROM generate_series(1, $SUBJECTS) s WHERE s % 5 >= 3
		UNION ALL
		SELECT 'billing', $SUBJECTS + s FROM generate_series(1, $FP_PROBES) s),
	 sample AS (SELECT purpose, s FROM (SELECT p.*, row_number() OVER (PARTITION BY purpose ORDER BY s) n FROM probes p) x
				 WHERE n <= $FP_PROBES)
SELECT r.purpose, count(*), count(*) FILTER (WHERE privacy_guard._subjects_may_include(r.subjects, p.s::text)),
	   (SELECT count(*) FROM rows r2 WHERE r2.purpose = r.purpose)
  FROM rows r JOIN sample p USING (purpose)
 GROUP BY r.purpose ORDER BY r.purpose;
EOF
)
FN=$(psql_su -At <<EOF
-- read subjects: every one must be found in every log row of its purpose
SELECT count(*) FILTER (WHERE NOT privacy_guard._subjects_may_include(r.subjects, s::text))
  FROM privacy_guard.access_log_data r,
	   LATERAL (SELECT s FROM generate_series(1, $SUBJECTS) s
				 WHERE r.purpose = 'billing' OR s % 5 < 3
				 ORDER BY s LIMIT $FP_PROBES) x
 WHERE r.table_name = 'public.prot_t';
EOF
)
LOG_SIZE=$(psql_su -At -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('privacy_guard.access_log_data')) FROM privacy_guard.access_log_data")
psql_su -c "TRUNCATE privacy_guard.access_log_data" >/dev/null

# ---------------------------------------------------------------------------
# 2. Point lookups, pgbench -M prepared, audit off and on by role setting
# ---------------------------------------------------------------------------
printf '\\set id random(1, %d)\nSELECT * FROM prot_t WHERE id = :id;\n' "$ROWS" >"$WORK/lookup.sql"
chmod a+r "$WORK/lookup.sql"
run_pgbench() {					# audit seconds -> tps
	local out
	psql_su -c "ALTER ROLE bench_app SET privacy_guard.audit = $1" >/dev/null
	out=$(as_pg env PGOPTIONS="-c privacy_guard.purpose=billing" \
		"$BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U bench_app -M prepared \
		-c "$PGBENCH_CLIENTS" -j "$PGBENCH_CLIENTS" -T "$2" -f "$WORK/lookup.sql" bench 2>&1) ||
		{ echo "$out" >&2; die "pgbench failed"; }
	awk '/^tps = /{print $3; exit}' <<<"$out"
}
if [ "$PGBENCH_RUNS" -gt 0 ]; then
	log "point lookups: $PGBENCH_RUNS rounds x 2 variants x ${PGBENCH_SECONDS}s"
	run_pgbench off 2 >/dev/null
	run_pgbench on 2 >/dev/null
	for ((r = 1; r <= PGBENCH_RUNS; r++)); do
		for a in $([ $((r % 2)) = 1 ] && echo "off on" || echo "on off"); do
			printf 'lookup\tlookup_%s\t%s\t%s\n' "$a" "$r" "$(run_pgbench "$a" "$PGBENCH_SECONDS")" >>"$RAW"
		done
	done
	psql_su -At -c "SELECT privacy_guard._flush_access_log()" >/dev/null
	LOOKUP_LOG=$(psql_su -At -c "SELECT sum(statements) || ' statements, ' || sum(rows) || ' rows in ' || count(*) || ' log rows (' || pg_size_pretty(pg_total_relation_size('privacy_guard.access_log_data')) || ')' FROM privacy_guard.access_log")
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
expected_fp() { awk -v n="$1" -v m=$BLOOM_M -v k=$BLOOM_K 'BEGIN { printf "%.3g\n", (1 - exp(-k * n / m)) ^ k }'; }

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
SUMMARY=$WORK/summary.md
{
	echo "# privacy_guard access log benchmark ($TS)"
	echo
	echo "- commit $GIT_REV; $SERVER_VERSION; $(nproc 2>/dev/null || echo '?') CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	echo "- data: $ROWS rows, $SUBJECTS subjects (bigint), 60% consenting to marketing; prot_t protected with a retention column"
	echo "- preloaded; scans as bench_app in one session, \`$SCAN_QUERY <t>\`, $RUNS timed runs per variant after 2 warm-up"
	echo "  rounds, rotating order; ms by psql \\timing; audit switched per statement (not timed)"
	echo "- ratio = ratio of medians; paired = median over rounds of the same-round ratio"
	bench_settings_md
	echo
	echo "| measurement | variant | runs | median | min | max | ratio | paired |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|"
	for v in "${SCAN_VARIANTS[@]}"; do
		IFS='|' read -r name tbl purpose audit <<<"$v"
		read -r cnt med mn mx <<<"$(stats scan "$name")"
		case $name in
			plain) base=plain ;;
			*_off) base=plain ;;
			*_on) base=${name%_on}_off ;;
		esac
		read -r _ bmed _ _ <<<"$(stats scan "$base")"
		echo "| full scan, ms | $tbl, $purpose, audit $audit | $cnt | $med | $mn | $mx | $(ratio "$med" "$bmed")× vs $base | $(paired_ratio scan "$name" "$base")× |"
	done
	if [ "$CPU_LOOPS" -gt 0 ]; then
		for v in "${SCAN_VARIANTS[@]}"; do
			IFS='|' read -r name tbl purpose audit <<<"$v"
			read -r cnt med mn mx <<<"$(stats cpu "$name")"
			case $name in
				plain | *_off) base=plain ;;
				*_on) base=${name%_on}_off ;;
			esac
			read -r _ bmed _ _ <<<"$(stats cpu "$base")"
			echo "| full scan, backend CPU ms per scan ($CPU_LOOPS per round) | $tbl, $purpose, audit $audit | $cnt | $med | $mn | $mx | $(ratio "$med" "$bmed")× vs $base | $(paired_ratio cpu "$name" "$base")× |"
		done
	fi
	if [ "$PGBENCH_RUNS" -gt 0 ]; then
		read -r _ bmed _ _ <<<"$(stats lookup lookup_off)"
		for a in off on; do
			read -r cnt med mn mx <<<"$(stats lookup "lookup_$a")"
			echo "| point lookup (prepared, $PGBENCH_CLIENTS clients), tps | prot_t, billing, audit $a | $cnt | $med | $mn | $mx | $(ratio "$med" "$bmed")× vs off | $(paired_ratio lookup "lookup_$a" lookup_off)× |"
		done
		echo
		echo "Logged by the audited lookups (incl. 2 s warm-up; each statement reads 1 row): ${LOOKUP_LOG:-?}."
	fi
	echo
	echo "Bloom filters (m = $BLOOM_M bits, k = $BLOOM_K) of the scans' log rows; false positives probed with subjects"
	echo "that were not read, false negatives with $FP_PROBES subjects that were:"
	echo
	echo "| purpose | log rows | subjects in each filter (n) | probes | reported anyway | measured FP rate | expected (1-e^(-kn/m))^k |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	while read -r purpose probes hits nrows; do
		[ -n "$purpose" ] || continue
		n=$([ "$purpose" = billing ] && echo "$N_BILLING" || echo "$N_MARKETING")
		echo "| $purpose | $nrows | $n | $probes | $hits | $(awk -v h="$hits" -v p="$probes" 'BEGIN { printf "%.3g\n", p ? h / p : 0 }') | $(expected_fp "$n") |"
	done <<<"$FP"
	echo
	echo "False negatives (read subjects not found): $FN.  access_log_data after the scans: $LOG_SIZE."
} >"$SUMMARY"

mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/audit_$TS.md
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
