#!/usr/bin/env bash
# bench/churn_bench.sh -- what consent changes made by other sessions cost
# point lookups: every session must see each committed change at its next
# statement, so a reader applies each change to its view of the consents
# (from the change ring when preloaded, consent_cache.c).
#
# A protected table and its unprotected twin (CONSENTS subjects, 60%
# consenting, written straight into the consent store), privacy_guard
# preloaded.  Point lookups (pgbench -M prepared, LOOKUP_CLIENTS clients,
# measured SECONDS seconds after WARM seconds on the same connection) run
# alone and beside a writer that grants or withdraws a random subject's
# consent RATE times a second (pgbench -R, WRITER_CLIENTS clients,
# PostgreSQL's default durability), ROUNDS rounds interleaved.  The cost
# attributed to privacy_guard is the protected table's throughput ratio
# (with writer / alone) over the unprotected table's (the writer takes CPU
# from any reader); bar: at least 0.90.  Report in
# bench/results/churn_<timestamp>.md; the cluster is removed on exit.
#
# Usage:   bench/churn_bench.sh
# Quick:   CONSENTS=100000 SECONDS_EACH=5 ROUNDS=2 bench/churn_bench.sh
#
# Settings (environment):
#   CONSENTS=1000000  RATE=1000  SECONDS_EACH=15  ROUNDS=5  LOOKUP_CLIENTS=1  WRITER_CLIENTS=8  WARM=4
#   SHARED_BUFFERS=512MB  PVG_PREFIX=  PG_CONFIG  RESULTS_DIR=bench/results  KEEP=0

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

CONSENTS=${CONSENTS:-1000000}
RATE=${RATE:-1000}
SECONDS_EACH=${SECONDS_EACH:-15}
ROUNDS=${ROUNDS:-5}
LOOKUP_CLIENTS=${LOOKUP_CLIENTS:-1}
WRITER_CLIENTS=${WRITER_CLIENTS:-8}
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
KEEP=${KEEP:-0}
BAR=0.90
if [ -n "${PVG_PREFIX:-}" ]; then
	PG_CONFIG=${PG_CONFIG:-$PVG_PREFIX/usr/lib/postgresql/15/bin/pg_config}
else
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
fi
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BENCH=churn_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_require_pg

churn_conf() {
	echo "shared_preload_libraries = 'privacy_guard'"
	echo "privacy_guard.enabled = off"
}
bench_cluster churnbench < <(churn_conf)

PSQL_ARGS=(-X -q -At -h "$WORK" -p "$PORT" -d bench)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres -v ON_ERROR_STOP=1 "$@"; }

as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench
ROWS=$(( CONSENTS * 10 / 6 ))
log "loading $ROWS rows, $CONSENTS consents"
psql_su -c "CREATE ROLE bench_app LOGIN" >/dev/null
bench_twin_sql "$ROWS" | psql_su >/dev/null

for t in plain_t prot_t; do
	printf '\\set id random(1, %d)\nSELECT v FROM %s WHERE id = :id;\n' "$ROWS" "$t" >"$WORK/lookup_$t.sql"
done
printf "\\\\set s random(1, %d)\nSELECT privacy_guard.grant_consent(:s::text, 'marketing');\n" "$ROWS" >"$WORK/grant.sql"
printf "\\\\set s random(1, %d)\nSELECT privacy_guard.withdraw_consent(:s::text, 'marketing');\n" "$ROWS" >"$WORK/withdraw.sql"
chmod a+r "$WORK"/*.sql

CLK_TCK=$(getconf CLK_TCK)
WARM=${WARM:-4}
# lookups TABLE SECONDS -> "tps cpu_us_per_lookup" in the steady state: one
# pgbench connection runs WARM + SECONDS seconds (a new connection first
# catches up with the changes made since the shared consent sets were read);
# tps is the mean of pgbench's per-second progress after WARM seconds, and
# the CPU time of the lookup backend (utime + stime from /proc, sampled every
# 0.1 s) from then to its exit, per lookup -- what privacy_guard adds to a
# lookup, less disturbed than throughput by what else runs on the machine
lookups() {
	local pids t start now cpu0=0 cpu1=0 tps tx
	rm -f "$WORK"/cpu.*
	start=$(date +%s.%N)
	as_pg env PGOPTIONS="-c privacy_guard.purpose=marketing" PGAPPNAME=churn_lookup "$BINDIR/pgbench" -n -h "$WORK" -p "$PORT" \
		-U bench_app -M prepared -c "$LOOKUP_CLIENTS" -j "$LOOKUP_CLIENTS" -T "$((WARM + $2))" -P 1 \
		-f "$WORK/lookup_$1.sql" bench >"$WORK/lookups.out" 2>&1 &
	local bp=$!
	pids=""
	for _ in $(seq 1 50); do
		pids=$(psql_su -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = 'churn_lookup'")
		[ "$(wc -w <<<"$pids")" -ge "$LOOKUP_CLIENTS" ] && break
		sleep 0.1
	done
	while kill -0 "$bp" 2>/dev/null; do
		for p in $pids; do
			[ -r "/proc/$p/stat" ] && cut -d' ' -f14,15 "/proc/$p/stat" >"$WORK/cpu.$p.tmp" 2>/dev/null &&
				mv "$WORK/cpu.$p.tmp" "$WORK/cpu.$p"
		done
		now=$(date +%s.%N)
		if [ ! -f "$WORK/cpu.warm" ] && awk -v a="$start" -v b="$now" -v w="$WARM" 'BEGIN { exit !(b - a >= w + 1) }'; then
			cat "$WORK"/cpu.[0-9]* 2>/dev/null | awk '{s += $1 + $2} END {print s + 0}' >"$WORK/cpu.warm"
		fi
		sleep 0.1
	done
	wait "$bp" || true
	[ -f "$WORK/cpu.warm" ] && cpu0=$(cat "$WORK/cpu.warm")
	cpu1=$(cat "$WORK"/cpu.[0-9]* 2>/dev/null | awk '{s += $1 + $2} END {print s + 0}')
	# progress lines: "progress: 5.0 s, 3395.6 tps, ..."; the intervals after the warm-up
	read -r tps tx <<<"$(awk -v w="$WARM" '/^progress: / { t = $2 + 0; v = $4 + 0; if (t > w + 1) { s += v; n++ } }
		END { if (n > 0) printf "%.1f %.0f\n", s / n, s; else print "- 0" }' "$WORK/lookups.out")"
	echo "$tps $(awk -v c="$((cpu1 - cpu0))" -v n="$tx" -v tck="$CLK_TCK" -v ok="$([ -f "$WORK/cpu.warm" ] && echo 1 || echo 0)" \
		'BEGIN { if (n > 0 && ok && c > 0) printf "%.2f\n", c * 1000000 / tck / n; else print "-" }')"
}
writer() {						# seconds -> prints achieved tps
	as_pg "$BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U postgres -c "$WRITER_CLIENTS" -j 1 -T "$1" -R "$RATE" \
		-f "$WORK/grant.sql@1" -f "$WORK/withdraw.sql@1" bench 2>&1 |
		awk '/^tps = / {print $3}'
}

log "warm-up"
lookups plain_t 1 >/dev/null
lookups prot_t 1 >/dev/null
log "$ROUNDS rounds x 4 variants x ${SECONDS_EACH}s"
for r in $(seq 1 "$ROUNDS"); do
	for t in plain_t prot_t; do
		read -r tps cpu <<<"$(lookups "$t" "$SECONDS_EACH")"
		printf 'alone\t%s\t%s\t%s\n' "$t" "$r" "$tps" >>"$RAW"
		printf 'cpu_alone\t%s\t%s\t%s\n' "$t" "$r" "$cpu" >>"$RAW"
		writer "$((SECONDS_EACH + 2))" >"$WORK/writer.out" &
		wp=$!
		sleep 1
		read -r tps cpu <<<"$(lookups "$t" "$SECONDS_EACH")"
		printf 'churn\t%s\t%s\t%s\n' "$t" "$r" "$tps" >>"$RAW"
		printf 'cpu_churn\t%s\t%s\t%s\n' "$t" "$r" "$cpu" >>"$RAW"
		wait "$wp"
		printf 'writer\t%s\t%s\t%s\n' "$t" "$r" "$(cat "$WORK/writer.out")" >>"$RAW"
	done
done

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/churn_$TS.md
# per round: (prot churn / prot alone) / (plain churn / plain alone)
ATTR=$(awk -F'\t' '{v[$1 "," $2 "," $3] = $4}
	END {for (k in v) {split(k, a, ","); if (a[1] == "alone" && a[2] == "prot_t") {r = a[3];
		pa = v["alone,plain_t," r]; pc = v["churn,plain_t," r]; qa = v["alone,prot_t," r]; qc = v["churn,prot_t," r];
		if (pa > 0 && qa > 0 && pc > 0) print (qc / qa) / (pc / pa)}}}' "$RAW" | sort -g)
ATTR_MED=$(echo "$ATTR" | bench_median)
# per round, from the lookup backends' CPU per lookup: what a lookup beside the
# writer costs over one alone, protected over unprotected, as a throughput
# ratio (1 / cost): (prot alone / prot churn) / (plain alone / plain churn)
CATTR=$(awk -F'\t' '{v[$1 "," $2 "," $3] = $4}
	END {for (k in v) {split(k, a, ","); if (a[1] == "cpu_alone" && a[2] == "prot_t") {r = a[3];
		pa = v["cpu_alone,plain_t," r]; pc = v["cpu_churn,plain_t," r]; qa = v["cpu_alone,prot_t," r]; qc = v["cpu_churn,prot_t," r];
		if (pa > 0 && qa > 0 && pc > 0 && qc > 0) print (qa / qc) / (pa / pc)}}}' "$RAW" | sort -g)
CATTR_MED=$(echo "$CATTR" | bench_median)
{
	echo "# privacy_guard churn benchmark ($TS)"
	echo
	echo "- commit $GIT_REV; $CONSENTS consents ($ROWS subjects), preloaded; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	bench_settings_md
	echo "- lookups: pgbench -M prepared -c $LOOKUP_CLIENTS as bench_app, ${WARM}s to settle then $SECONDS_EACH s measured (mean of per-second progress); writer: pgbench -c $WRITER_CLIENTS -R $RATE (total),"
	echo "  grant_consent or withdraw_consent of a random subject, one transaction each; $ROUNDS rounds, interleaved"
	echo
	echo "| table | lookups alone, tps: median (min-max) | beside the writer, tps | ratio | writer achieved, tps |"
	echo "|---|---|---|---:|---|"
	for t in plain_t prot_t; do
		read -r _ am amin amax <<<"$(stats alone "$t")"
		read -r _ cm cmin cmax <<<"$(stats churn "$t")"
		read -r _ wm wmin wmax <<<"$(stats writer "$t")"
		echo "| $t | $(fmt "$am" 0) ($(fmt "$amin" 0)-$(fmt "$amax" 0)) | $(fmt "$cm" 0) ($(fmt "$cmin" 0)-$(fmt "$cmax" 0)) | $(ratio "$cm" "$am") | $(fmt "$wm" 0) ($(fmt "$wmin" 0)-$(fmt "$wmax" 0)) |"
	done
	echo
	echo "| table | backend CPU per lookup alone, µs: median (min-max) | beside the writer, µs | ratio |"
	echo "|---|---|---|---:|"
	for t in plain_t prot_t; do
		read -r _ am amin amax <<<"$(stats cpu_alone "$t")"
		read -r _ cm cmin cmax <<<"$(stats cpu_churn "$t")"
		echo "| $t | $(fmt "$am" 1) ($(fmt "$amin" 1)-$(fmt "$amax" 1)) | $(fmt "$cm" 1) ($(fmt "$cmin" 1)-$(fmt "$cmax" 1)) | $(ratio "$cm" "$am") |"
	done
	echo
	echo "Attributed to privacy_guard (per round: protected ratio / unprotected ratio):"
	echo "- by throughput: median $(fmt "$ATTR_MED" 3), min $(fmt "$(echo "$ATTR" | head -1)" 3), max $(fmt "$(echo "$ATTR" | tail -1)" 3); bar ≥ $BAR: $(verdict "$ATTR_MED" $BAR ge)"
	echo "- by the lookup backend's CPU per lookup (as a throughput ratio, less disturbed by the machine's load):"
	echo "  median $(fmt "$CATTR_MED" 3), min $(fmt "$(echo "$CATTR" | head -1)" 3), max $(fmt "$(echo "$CATTR" | tail -1)" 3); bar ≥ $BAR: $(verdict "$CATTR_MED" $BAR ge)"
	echo
	echo "## Raw measurements (phase, table, round, tps or µs of CPU per lookup)"
	echo
	echo '```'
	cat "$RAW"
	echo '```'
} >"$REPORT"
sed -n '1,/^## Raw/p' "$REPORT" | head -n -1
log "report: $REPORT"
