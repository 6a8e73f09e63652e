#!/usr/bin/env bash
# bench/read_bench.sh -- read benchmark for privacy_guard (SPEC section 5, "Reads")
#
# Builds a throwaway PostgreSQL cluster, loads the SPEC data set (1,000,000
# rows, 100,000 subjects, 60% consenting to a consent purpose) into four
# tables -- unprotected, privacy_guard-protected, protected without retention
# (diagnostic) and a hand-written RLS policy -- and measures, as an ordinary
# application role with a warm cache:
#   1. full scans (SELECT count(*), sum(amount)) under a contract purpose and
#      a consent purpose, timed with psql's \timing, interleaved; plus a
#      diagnostic "floor": the unprotected table with a trivial built-in qual
#      on the two columns the policy reads;
#   2. indexed point lookups with pgbench (-M prepared and -M simple),
#      interleaved;
#   3. (informational) the first statement of a fresh session, which pays
#      for loading privacy_guard's caches.
# It prints a markdown summary with medians, min/max, ratios against the
# unprotected table and the SPEC bars, and writes it to
# bench/results/read_<timestamp>.md.  The cluster is removed on exit.
#
# Usage:   bench/read_bench.sh            (as root or as a normal user)
# Quick:   ROWS=20000 SUBJECTS=2000 RUNS=3 PGBENCH_RUNS=2 PGBENCH_SECONDS=2 bench/read_bench.sh
#
# Settings (environment):
#   ROWS=1000000  SUBJECTS=100000   data set size
#   RUNS=7                          timed full scans per variant
#   PGBENCH_RUNS=5  PGBENCH_SECONDS=10  PGBENCH_CLIENTS=2
#   PGBENCH_MODES="prepared simple" pgbench query modes to run
#   COLD_RUNS=5                     fresh-session measurements per variant (0: skip)
#   NORET=1                         also measure a protected table without retention
#   SHARED_BUFFERS=512MB
#   PROFILE=0                       1: perf-record a backend repeating the full scan
#                                   of plain_t and of prot_t (billing, marketing) for
#                                   PROFILE_SECONDS=8 each and append the hottest
#                                   symbols (needs perf; root or perf_event_paranoid <= 1)
#   PRELOAD=1                       load privacy_guard with shared_preload_libraries (as
#                                   SPEC section 4 recommends); every backend then runs the
#                                   build the server started with, even if the installed
#                                   library is replaced during the run (background
#                                   enforcement is switched off if the build has it)
#   KEEP=0                          1: leave the cluster running afterwards (to investigate)
#   PG_CONFIG=                    default: bin/cluster.sh (under PVG_PREFIX if set)
#   RESULTS_DIR=bench/results
#
# As root it runs PostgreSQL, psql and pgbench as user postgres (runuser).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

ROWS=${ROWS:-1000000}
SUBJECTS=${SUBJECTS:-100000}
RUNS=${RUNS:-7}
PGBENCH_RUNS=${PGBENCH_RUNS:-5}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-10}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-2}
PGBENCH_MODES=${PGBENCH_MODES:-prepared simple}
COLD_RUNS=${COLD_RUNS:-5}
NORET=${NORET:-1}
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
PROFILE=${PROFILE:-0}
KEEP=${KEEP:-0}
PRELOAD=${PRELOAD:-1}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

# SPEC section 5 bars
BAR_CONTRACT_SCAN=1.10
BAR_CONSENT_SCAN=1.30
BAR_LOOKUP=0.95

SCAN_QUERY='SELECT count(*), sum(amount) FROM'

BENCH=read_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

# ---------------------------------------------------------------------------
# Preconditions: PostgreSQL binaries and an installed privacy_guard
# ---------------------------------------------------------------------------
bench_require_pg
if [ -f "$REPO/privacy_guard.so" ] && ! cmp -s "$REPO/privacy_guard.so" "$PKGLIBDIR/privacy_guard.so"; then
	log "warning: $PKGLIBDIR/privacy_guard.so differs from the build in $REPO (run make install?)"
fi
SO_SUM_BEFORE=$(md5sum "$PKGLIBDIR/privacy_guard.so" | cut -c1-12)
for n in ROWS SUBJECTS RUNS PGBENCH_RUNS PGBENCH_SECONDS PGBENCH_CLIENTS COLD_RUNS; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
[ "$ROWS" -ge 1 ] && [ "$SUBJECTS" -ge 5 ] && [ "$RUNS" -ge 1 ] || die "ROWS>=1, SUBJECTS>=5, RUNS>=1 needed"

# ---------------------------------------------------------------------------
# Throwaway cluster: private directory, unix socket only, random port
# ---------------------------------------------------------------------------
# a background psql of the profiling run, if one is still going
bench_on_exit() { if [ -n "${PROFILE_PSQL_PID:-}" ]; then kill "$PROFILE_PSQL_PID" 2>/dev/null || true; fi; }
read_conf() {
	if [ "$PRELOAD" = 1 ]; then
		echo "shared_preload_libraries = 'privacy_guard'"
		# no background enforcement rounds during a read benchmark
		if grep -aq 'privacy_guard.enabled' "$PKGLIBDIR/privacy_guard.so"; then
			echo "privacy_guard.enabled = off"
		fi
	fi
}
bench_cluster pvgbench < <(read_conf)
cp "$HERE/read_setup.sql" "$WORK/read_setup.sql"
chmod a+r "$WORK/read_setup.sql"

# psql as the superuser / as the application role (never reads ~/.psqlrc)
PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }
psql_app() { as_pg env PGOPTIONS="${APP_OPTS:-}" "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app -v ON_ERROR_STOP=1 "$@"; }

as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench

# ---------------------------------------------------------------------------
# Data set (bench/read_setup.sql) and a warm buffer cache
# ---------------------------------------------------------------------------
NORET_FLAG=off
if [ "$NORET" = 1 ]; then NORET_FLAG=on; fi
log "loading $ROWS rows x $(( NORET == 1 ? 4 : 3 )) tables, $SUBJECTS subjects"
t0=$(date +%s)
psql_su -v rows="$ROWS" -v subjects="$SUBJECTS" -v noret="$NORET_FLAG" \
	-f "$WORK/read_setup.sql" >/dev/null
log "loaded in $(( $(date +%s) - t0 )) s"

TABLES="plain_t prot_t rls_t"
if [ "$NORET" = 1 ]; then TABLES="$TABLES prot_nr_t"; fi

# pg_prewarm (contrib) loads every table and index into shared_buffers;
# the warm-up runs below would do it too, except where a large scan uses a
# ring buffer.
PREWARM=no
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	PREWARM=yes
	{
		echo "CREATE EXTENSION pg_prewarm;"
		for t in $TABLES consent_tbl privacy_guard.consent_state; do
			echo "SELECT pg_prewarm('$t'::regclass);"
			echo "SELECT pg_prewarm(indexrelid::regclass) FROM pg_index WHERE indrelid = '$t'::regclass;"
		done
	} | psql_su >/dev/null
fi

# sizes, reported with shared_buffers (which should hold them all)
SIZES=$(psql_su -At -F ' ' -c "
	SELECT c.relname, pg_size_pretty(pg_table_size(c.oid)), pg_size_pretty(pg_indexes_size(c.oid))
	  FROM pg_class c
	 WHERE c.oid IN ($(printf "'%s'::regclass," $TABLES consent_tbl) 'privacy_guard.consent_state'::regclass)
	 ORDER BY c.relname")
TOTAL_SIZE=$(psql_su -At -c "
	SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))
	  FROM pg_class c
	 WHERE c.oid IN ($(printf "'%s'::regclass," $TABLES consent_tbl) 'privacy_guard.consent_state'::regclass)")
SERVER_VERSION=$(psql_su -At -c "SELECT version()")
CONSENTING=$(psql_su -At -c "
	SELECT round(100.0 * count(*) FILTER (WHERE status = 'granted') / $SUBJECTS, 1)
	  FROM privacy_guard.consent_state WHERE purpose = 'marketing'")

# ---------------------------------------------------------------------------
# Variants: name|table|privacy_guard.purpose|extra WHERE clause.  app.purpose
# is always marketing, which is what rls_t's hand-written policy reads.
# plain_qual is a diagnostic floor: the unprotected table with a trivial
# built-in qual on the two columns the privacy_guard policy reads, i.e. what
# any per-row check of those columns costs in PostgreSQL's executor.
FLOOR_QUAL="WHERE customer_id <> -1 AND created_at > '-infinity'"
SCAN_VARIANTS=("plain|plain_t|billing|" "prot_contract|prot_t|billing|"
			   "prot_consent|prot_t|marketing|" "rls_consent|rls_t|marketing|"
			   "plain_qual|plain_t|billing|$FLOOR_QUAL")
if [ "$NORET" = 1 ]; then
	SCAN_VARIANTS+=("protnr_contract|prot_nr_t|billing|" "protnr_consent|prot_nr_t|marketing|")
fi
LOOKUP_VARIANTS=("plain|plain_t|billing|" "prot_contract|prot_t|billing|"
				 "prot_consent|prot_t|marketing|" "rls_consent|rls_t|marketing|")

describe() {					# variant name -> "table, purpose" text
	case $1 in
		plain) echo "plain_t (unprotected)" ;;
		prot_contract) echo "prot_t, billing (contract)" ;;
		prot_consent) echo "prot_t, marketing (consent)" ;;
		protnr_contract) echo "prot_nr_t (no retention), billing" ;;
		protnr_consent) echo "prot_nr_t (no retention), marketing" ;;
		rls_consent) echo "rls_t, hand-written EXISTS policy" ;;
		plain_qual) echo "plain_t + built-in qual on customer_id, created_at" ;;
		*) echo "$1" ;;
	esac
}

# ---------------------------------------------------------------------------
# Sanity: rows each variant sees, and the plans
# ---------------------------------------------------------------------------
log "checking visible rows and plans"
PLANS=$WORK/plans.txt
: >"$PLANS"
declare -A VISIBLE
for v in "${SCAN_VARIANTS[@]}"; do
	IFS='|' read -r name tbl purpose where <<<"$v"
	VISIBLE[$name]=$(APP_OPTS="-c privacy_guard.purpose=$purpose -c app.purpose=marketing" \
		psql_app -At -c "SELECT count(*) FROM $tbl $where")
	{
		echo "-- $name: $SCAN_QUERY $tbl $where   (purpose $purpose)"
		APP_OPTS="-c privacy_guard.purpose=$purpose -c app.purpose=marketing" \
			psql_app -At -c "EXPLAIN (COSTS OFF) $SCAN_QUERY $tbl $where"
		echo "-- $name: SELECT * FROM $tbl WHERE id = \$1   (generic plan, prepared)"
		APP_OPTS="-c privacy_guard.purpose=$purpose -c app.purpose=marketing -c plan_cache_mode=force_generic_plan" \
			psql_app -At -c "PREPARE q(bigint) AS SELECT * FROM $tbl WHERE id = \$1" \
			-c "EXPLAIN (COSTS OFF) EXECUTE q(42)"
		echo
	} >>"$PLANS"
done
# exact expectation: rows whose subject is among the 60% (s % 5 < 3) who consented
EXPECTED_CONSENT=$(psql_su -At -c "SELECT count(*) FROM plain_t WHERE customer_id % 5 < 3")
for v in "${SCAN_VARIANTS[@]}"; do
	IFS='|' read -r name tbl purpose where <<<"$v"
	case $name in
		*contract | plain*) expected=$ROWS ;;
		*consent) expected=$EXPECTED_CONSENT ;;
	esac
	[ "${VISIBLE[$name]}" -eq "$expected" ] ||
		die "$name sees ${VISIBLE[$name]} rows, expected $expected"
done
[ "${VISIBLE[prot_consent]}" -eq "${VISIBLE[rls_consent]}" ] ||
	die "prot_t and rls_t disagree under marketing: ${VISIBLE[prot_consent]} vs ${VISIBLE[rls_consent]}"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------
# 1. Full scans, one session, \timing per statement, interleaved.
#    Two unrecorded warm-up rounds first (buffers, catalog caches, and
#    privacy_guard's registry, consent store and subject sets).  In round r
#    the variants start at a different position, so order effects and
#    background noise are spread over all of them.
# ---------------------------------------------------------------------------
log "full scans: $RUNS timed rounds x ${#SCAN_VARIANTS[@]} variants"
{
	echo "SET app.purpose = 'marketing';"
	echo '\o /dev/null'
	for w in 1 2; do
		for v in "${SCAN_VARIANTS[@]}"; do
			IFS='|' read -r name tbl purpose where <<<"$v"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "$SCAN_QUERY $tbl $where;"
		done
	done
	echo '\timing on'
	n=${#SCAN_VARIANTS[@]}
	for ((r = 1; r <= RUNS; r++)); do
		for ((k = 0; k < n; k++)); do
			IFS='|' read -r name tbl purpose where <<<"${SCAN_VARIANTS[(k + r) % n]}"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "\\echo @@ scan $name $r"
			echo "$SCAN_QUERY $tbl $where;"
		done
	done
} >"$WORK/scan.sql"
chmod a+r "$WORK/scan.sql"
# the "Time:" line after a marker is that statement's client-side elapsed time
psql_app -f "$WORK/scan.sql" |
	awk '/^@@ /{ph=$2; v=$3; r=$4; next}
		 /^Time: /{ if (v != "") { printf "%s\t%s\t%s\t%s\n", ph, v, r, $2; v = "" } }' >>"$RAW"

# ---------------------------------------------------------------------------
# 2. Point lookups by primary key with pgbench as bench_app, purpose set
#    through PGOPTIONS; per mode one unrecorded warm-up run per variant,
#    then PGBENCH_RUNS rounds with rotating order.
# ---------------------------------------------------------------------------
for v in "${LOOKUP_VARIANTS[@]}"; do
	IFS='|' read -r name tbl purpose where <<<"$v"
	printf '\\set id random(1, %d)\nSELECT * FROM %s WHERE id = :id;\n' "$ROWS" "$tbl" >"$WORK/lookup_$name.sql"
	chmod a+r "$WORK/lookup_$name.sql"
done

run_pgbench() {					# mode variant seconds -> tps
	local mode=$1 v=$2 secs=$3 name tbl purpose where out
	IFS='|' read -r name tbl purpose where <<<"$v"
	out=$(as_pg env PGOPTIONS="-c privacy_guard.purpose=$purpose -c app.purpose=marketing" \
		"$BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U bench_app -M "$mode" \
		-c "$PGBENCH_CLIENTS" -j "$PGBENCH_CLIENTS" -T "$secs" -f "$WORK/lookup_$name.sql" bench 2>&1) ||
		{ echo "$out" >&2; die "pgbench failed for $name ($mode)"; }
	awk '/^tps = /{print $3; exit}' <<<"$out"
}

if [ "$PGBENCH_RUNS" -gt 0 ]; then
	for mode in $PGBENCH_MODES; do
		log "point lookups ($mode): $PGBENCH_RUNS rounds x ${#LOOKUP_VARIANTS[@]} variants x ${PGBENCH_SECONDS}s"
		for v in "${LOOKUP_VARIANTS[@]}"; do
			run_pgbench "$mode" "$v" 2 >/dev/null
		done
		n=${#LOOKUP_VARIANTS[@]}
		for ((r = 1; r <= PGBENCH_RUNS; r++)); do
			for ((k = 0; k < n; k++)); do
				v=${LOOKUP_VARIANTS[(k + r) % n]}
				load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
				tps=$(run_pgbench "$mode" "$v" "$PGBENCH_SECONDS")
				printf 'lookup_%s\t%s\t%s\t%s\n' "$mode" "${v%%|*}" "$r" "$tps" >>"$RAW"
				# machine load before the run: to tell noise from effect (raw data only)
				printf 'loadavg_before_lookup_%s\t%s\t%s\t%s\n' "$mode" "${v%%|*}" "$r" "$load" >>"$RAW"
			done
		done
	done
fi

# ---------------------------------------------------------------------------
# 3. Fresh sessions (informational): a new connection's first and second
#    point lookup; the first pays for loading privacy_guard's registry,
#    consent store and subject set (and the library unless preloaded).
# ---------------------------------------------------------------------------
if [ "$COLD_RUNS" -gt 0 ]; then
	log "fresh sessions: $COLD_RUNS rounds x ${#LOOKUP_VARIANTS[@]} variants"
	n=${#LOOKUP_VARIANTS[@]}
	for ((r = 1; r <= COLD_RUNS; r++)); do
		for ((k = 0; k < n; k++)); do
			IFS='|' read -r name tbl purpose where <<<"${LOOKUP_VARIANTS[(k + r) % n]}"
			printf '\\o /dev/null\n\\timing on\n\\echo @@ first %s %d\nSELECT * FROM %s WHERE id = 1;\n\\echo @@ second %s %d\nSELECT * FROM %s WHERE id = 2;\n' \
				"$name" "$r" "$tbl" "$name" "$r" "$tbl" >"$WORK/cold.sql"
			chmod a+r "$WORK/cold.sql"
			APP_OPTS="-c privacy_guard.purpose=$purpose -c app.purpose=marketing" psql_app -f "$WORK/cold.sql" |
				awk '/^@@ /{ph=$2; v=$3; r=$4; next}
					 /^Time: /{ if (v != "") { printf "%s\t%s\t%s\t%s\n", ph, v, r, $2; v = "" } }' >>"$RAW"
		done
	done
fi

SO_SUM_AFTER=$(md5sum "$PKGLIBDIR/privacy_guard.so" | cut -c1-12)
if [ "$SO_SUM_BEFORE" != "$SO_SUM_AFTER" ] && [ "$PRELOAD" != 1 ]; then
	log "warning: $PKGLIBDIR/privacy_guard.so was replaced during the run; results mix two builds"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------
# Optional: perf profiles of a backend running the full scan of plain_t,
# prot_t under billing and prot_t under marketing (self time per symbol)
# ---------------------------------------------------------------------------
PROFILE_TXT=$WORK/profile.txt
: >"$PROFILE_TXT"

profile_variant() {				# name table purpose
	local name=$1 tbl=$2 purpose=$3 bpid=
	# a backend repeating the scan until it is cancelled
	{
		echo "SET privacy_guard.purpose = '$purpose';"
		echo 'DO $$ BEGIN FOR i IN 1..1000000 LOOP'
		echo "  PERFORM count(*), sum(amount) FROM $tbl;"
		echo 'END LOOP; END $$;'
	} >"$WORK/profile.sql"
	chmod a+r "$WORK/profile.sql"
	as_pg env PGAPPNAME=pvg_profile "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app \
		-f "$WORK/profile.sql" >/dev/null 2>&1 &
	PROFILE_PSQL_PID=$!
	for _ in $(seq 50); do
		bpid=$(psql_su -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pvg_profile'")
		[ -n "$bpid" ] && break
		sleep 0.1
	done
	if [ -n "$bpid" ]; then
		sleep 1					# past the first statement's cache loading
		perf record -q -o "$WORK/perf.data" -p "$bpid" -- sleep "${PROFILE_SECONDS:-8}" >/dev/null 2>&1 || true
		psql_su -At -c "SELECT pg_cancel_backend($bpid)" >/dev/null
		{
			echo "### $(describe "$name"): $SCAN_QUERY $tbl"
			perf report -q -i "$WORK/perf.data" --no-children --sort dso,sym --percent-limit 1 \
				--stdio 2>/dev/null | sed '/^$/d' | head -30 || true
			echo
		} >>"$PROFILE_TXT"
	else
		kill "$PROFILE_PSQL_PID" 2>/dev/null || true
	fi
	wait "$PROFILE_PSQL_PID" 2>/dev/null || true
	PROFILE_PSQL_PID=
}

if [ "$PROFILE" = 1 ]; then
	if ! command -v perf >/dev/null; then
		log "PROFILE=1 but perf is not installed; skipping"
	else
		log "profiling the full scans with perf"
		profile_variant plain plain_t billing
		profile_variant prot_contract prot_t billing
		profile_variant prot_consent prot_t marketing
	fi
fi

# ---------------------------------------------------------------------------
# Statistics and the summary
# ---------------------------------------------------------------------------
# median/min/max of one phase and variant: prints "n median min max"

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
GIT_DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (+ uncommitted changes)' || true)
SUMMARY=$WORK/summary.md

{
	echo "# privacy_guard read benchmark ($TS)"
	echo
	if [ "$PRELOAD" = 1 ]; then
		echo "- commit $GIT_REV$GIT_DIRTY; privacy_guard.so md5 $SO_SUM_BEFORE, preloaded (shared_preload_libraries): all backends ran this build$([ "$SO_SUM_BEFORE" = "$SO_SUM_AFTER" ] || echo "; the installed file was replaced during the run, which did not affect it")"
	else
		echo "- commit $GIT_REV$GIT_DIRTY; privacy_guard.so md5 $SO_SUM_BEFORE, loaded on first use$([ "$SO_SUM_BEFORE" = "$SO_SUM_AFTER" ] || echo " -> $SO_SUM_AFTER (REPLACED DURING THE RUN: results mix two builds)")"
	fi
	echo "- $SERVER_VERSION"
	echo "- $(nproc 2>/dev/null || echo '?') CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	echo "- data: $ROWS rows per table, $SUBJECTS subjects (customer_id bigint), $CONSENTING% consenting to marketing;"
	echo "  prot_t = protect('prot_t', 'customer_id', ARRAY['billing','marketing'], '10 years', 'created_at'), all rows within retention"
	echo "- visible rows as bench_app: $(for v in "${SCAN_VARIANTS[@]}"; do n=${v%%|*}; printf '%s %s; ' "$n" "${VISIBLE[$n]}"; done)"
	echo "- cluster: shared_buffers=$SHARED_BUFFERS (data + indexes: $TOTAL_SIZE, prewarmed: $PREWARM), tables vacuumed after loading"
	bench_settings_md
	echo "- all reads as role bench_app (LOGIN, not superuser, not BYPASSRLS), over the unix socket"
	echo "- scans: \`$SCAN_QUERY <t>\`, $RUNS timed runs per variant after 2 warm-up rounds, in one session,"
	echo "  interleaved with rotating order; time = psql \\timing (client-side elapsed for the statement: parse,"
	echo "  plan, execute, one result row), in ms"
	echo "- point lookups: pgbench -c $PGBENCH_CLIENTS -j $PGBENCH_CLIENTS -T $PGBENCH_SECONDS, script \`\\set id random(1, $ROWS)\` +"
	echo "  \`SELECT * FROM <t> WHERE id = :id\`, purpose via PGOPTIONS, $PGBENCH_RUNS runs per variant after a 2 s warm-up,"
	echo "  interleaved with rotating order; tps without connection time"
	echo "- ratio = ratio of medians against plain_t; paired = median over rounds of the same-round ratio"
	echo "- diagnostic rows: plain_t \`$FLOOR_QUAL\` (the executor's cost of any per-row check of the columns"
	echo "  the policy reads) and prot_nr_t (protected without retention: the policy does not read created_at)"
	echo
	echo "| measurement | variant | runs | median | min | max | ratio | paired | SPEC bar | verdict |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
	read -r _ base_med _ _ <<<"$(stats scan plain)"
	for v in "${SCAN_VARIANTS[@]}"; do
		name=${v%%|*}
		read -r cnt med mn mx <<<"$(stats scan "$name")"
		r=$(ratio "$med" "$base_med")
		p=$(paired_ratio scan "$name" plain)
		case $name in
			plain) bar="1.00× (reference)"; ver="-"; r="1.000"; p="1.000" ;;
			prot_contract) bar="≤ ${BAR_CONTRACT_SCAN}×"; ver=$(verdict "$r" $BAR_CONTRACT_SCAN le) ;;
			prot_consent) bar="≤ ${BAR_CONSENT_SCAN}×"; ver=$(verdict "$r" $BAR_CONSENT_SCAN le) ;;
			protnr_contract) bar="(≤ ${BAR_CONTRACT_SCAN}×)"; ver="diagnostic: $(verdict "$r" $BAR_CONTRACT_SCAN le)" ;;
			protnr_consent) bar="(≤ ${BAR_CONSENT_SCAN}×)"; ver="diagnostic: $(verdict "$r" $BAR_CONSENT_SCAN le)" ;;
			rls_consent) bar="none (SPEC measured 2.38×)"; ver="reference" ;;
			plain_qual) bar="none"; ver="diagnostic: floor of any per-row check" ;;
		esac
		echo "| full scan, ms | $(describe "$name") | $cnt | $(fmt "$med" 1) | $(fmt "$mn" 1) | $(fmt "$mx" 1) | ${r}× | ${p}× | $bar | $ver |"
	done
	if [ "$PGBENCH_RUNS" -gt 0 ]; then
		for mode in $PGBENCH_MODES; do
			read -r _ base_med _ _ <<<"$(stats "lookup_$mode" plain)"
			for v in "${LOOKUP_VARIANTS[@]}"; do
				name=${v%%|*}
				read -r cnt med mn mx <<<"$(stats "lookup_$mode" "$name")"
				r=$(ratio "$med" "$base_med")
				p=$(paired_ratio "lookup_$mode" "$name" plain)
				case $name in
					plain) bar="1.00× (reference)"; ver="-"; r="1.000"; p="1.000" ;;
					rls_consent)
						ref=$([ "$mode" = prepared ] && echo 0.72 || echo 0.44)
						bar="none (SPEC measured ${ref}×)"; ver="reference" ;;
					*) bar="≥ ${BAR_LOOKUP}×"; ver=$(verdict "$r" $BAR_LOOKUP ge) ;;
				esac
				echo "| point lookup ($mode), tps | $(describe "$name") | $cnt | $(fmt "$med" 0) | $(fmt "$mn" 0) | $(fmt "$mx" 0) | ${r}× | ${p}× | $bar | $ver |"
			done
		done
	fi
	if [ "$COLD_RUNS" -gt 0 ]; then
		echo
		echo "Fresh session (informational, no bar): latency of a new connection's first and second point lookup, ms"
		echo "(the first pays for loading privacy_guard's registry, consent store and subject set$([ "$PRELOAD" = 1 ] || echo ", and its library"))."
		echo
		echo "| variant | runs | first: median | min | max | second: median | min | max |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		for v in "${LOOKUP_VARIANTS[@]}"; do
			name=${v%%|*}
			read -r cnt med mn mx <<<"$(stats first "$name")"
			read -r _ med2 mn2 mx2 <<<"$(stats second "$name")"
			echo "| $(describe "$name") | $cnt | $(fmt "$med" 2) | $(fmt "$mn" 2) | $(fmt "$mx" 2) | $(fmt "$med2" 3) | $(fmt "$mn2" 3) | $(fmt "$mx2" 3) |"
		done
	fi
} >"$SUMMARY"

# the full report: summary, then raw numbers, sizes, plans and the profile
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/read_$TS.md
{
	cat "$SUMMARY"
	echo
	echo "## Raw measurements (phase, variant, round, value)"
	echo
	echo '```'
	sort -t$'\t' -k1,1 -k2,2 -k3,3n "$RAW"
	echo '```'
	echo
	echo "## Relation sizes (table, indexes)"
	echo
	echo '```'
	echo "$SIZES"
	echo '```'
	echo
	echo "## Plans (as bench_app)"
	echo
	echo '```'
	cat "$PLANS"
	echo '```'
	if [ -s "$PROFILE_TXT" ]; then
		echo
		echo "## perf: self time per symbol of a backend repeating the full scan"
		echo
		echo '```'
		cat "$PROFILE_TXT"
		echo '```'
	fi
} >"$REPORT"

echo
cat "$SUMMARY"
echo
echo "Full report (raw numbers, sizes, plans): $REPORT"
