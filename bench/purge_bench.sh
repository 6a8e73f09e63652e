#!/usr/bin/env bash
# bench/purge_bench.sh -- purge and forget benchmark for privacy_guard
# (SPEC section 5, "Purging" and "Forget"; issue 3)
#
# Builds a throwaway PostgreSQL cluster with privacy_guard preloaded (the
# background worker present but switched off between measurements;
# naptime 1 s) and measures:
#   0. the launcher: rounds in this database, and worker sessions in the
#      database without the extension, during 3 s with the worker on and
#      nothing to purge (about 3 of each if naptime is honoured);
#   1. purge, unpaced and alone: ROWS rows (25% past a 365-day retention) --
#      the background worker's round (batch_delay = 0) against the
#      hand-written batched DELETE a user would write (a procedure: DELETE
#      ... WHERE id IN (SELECT id ... ORDER BY created_at LIMIT <batch> FOR
#      UPDATE SKIP LOCKED), COMMIT per batch, through an index on created_at),
#      and one plain DELETE for scale;
#   2. anonymising: the worker's round with on_expiry => 'anonymize' (two
#      anonymizers) against one UPDATE setting the same values on the same rows;
#   3. pacing beside OLTP: 2 pgbench clients (point select + single-row update
#      on a separate plain table) alone, beside the worker switched on with
#      nothing to purge (diagnostic), beside the worker's purge at each
#      batch_delay of PACE_DELAYS (2 ms is the default setting; the worker also pauses twice as long as each batch took),
#      beside the hand-written loop paced the same way (no privacy_guard in
#      it: what any purge at that pace costs the OLTP on this machine), and
#      beside the hand-written unpaced loop; OLTP tps and p99 latency over
#      the time the purge ran, and the purge's progress;
#   4. forget: 5 tables of FORGET_ROWS rows, a subject with ~50 rows across
#      them: forget() + run_maintenance() minus a no-op run_maintenance(),
#      against a hand-written transaction deleting another subject's rows.
# Each measurement that destroys data runs on a fresh copy of the same data
# (same physical order, indexes built after loading, VACUUM FREEZE, prewarmed,
# CHECKPOINT). Variants are interleaved with rotating order. The worker's
# time is its round's own duration (privacy_guard.worker_round.
# last_round_duration, logged per round by a trigger), so naptime and worker
# start-up are not counted.
#
# It runs with PostgreSQL's default durability (fsync, synchronous_commit and
# full_page_writes on: bench/lib.sh) and says so in its report, which also
# gives the WAL each pacing run wrote (megabytes, full-page images, flushes).
# It prints a markdown summary with medians, min/max, ratios and the SPEC
# bars, and writes it to bench/results/purge_<timestamp>.md. The cluster is
# removed on exit.
#
# Usage:   bench/purge_bench.sh            (as root or as a normal user)
# Quick:   ROWS=100000 FORGET_ROWS=100000 RUNS=3 OLTP_SECONDS=3 bench/purge_bench.sh
#
# Settings (environment):
#   ROWS=2000000                  purge data set (25% expired)
#   LAYOUT=random                 random: expired rows on every page; ordered: oldest first
#   BATCH=10000                   privacy_guard.batch_size (its default: the largest batch, which batches
#                                 grow to from 1000) and the hand loops' batch
#   RUNS=5                        runs per variant (phases 1, 2 and 4)
#   PHASES="purge anon pace forget"  which phases to run
#   OLTP_SECONDS=30               length of each pgbench run (phase 3)
#   OLTP_CLIENTS=2  OLTP_ROWS=100000
#   PACE_RUNS=$RUNS               runs per phase 3 variant
#   PACE_DELAYS="0 2 10"          worker batch_delay values (ms) beside OLTP
#   PACE_QUICK=0                  1: phase 3 without the idle worker and the unpaced hand loop
#   PACE_ROWS=$ROWS               purge data set size in phase 3
#   FORGET_ROWS=1000000           rows in each of the 5 forget tables (10 per subject)
#   SHARED_BUFFERS=1GB
#   ONLY_BENCH_DB=0               1: make database postgres non-connectable, so the
#                                 launcher starts workers only for the benchmark's
#                                 database (diagnostic: isolates the worker's own
#                                 cost from rounds started for other databases)
#   EXTRA_CONF=                   more server settings, one per line (diagnostics;
#                                 printed in the report)
#   OLTP_PGOPTIONS=               PGOPTIONS for the pgbench sessions (diagnostics,
#                                 e.g. "-c synchronous_commit=off" to take WAL flushes
#                                 out of the OLTP's latency; printed in the report)
#   KEEP=0                        1: leave the cluster running afterwards
#   PVG_PREFIX=                   use the private install made by PVG_PREFIX=... bin/setup
#   PG_CONFIG=                    default: bin/cluster.sh (under PVG_PREFIX if set)
#   RESULTS_DIR=bench/results
#
# As root it runs PostgreSQL, psql and pgbench as user postgres (runuser).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

ROWS=${ROWS:-2000000}
LAYOUT=${LAYOUT:-random}
BATCH=${BATCH:-10000}
RUNS=${RUNS:-5}
PHASES=${PHASES:-purge anon pace forget}
OLTP_SECONDS=${OLTP_SECONDS:-30}
OLTP_CLIENTS=${OLTP_CLIENTS:-2}
OLTP_ROWS=${OLTP_ROWS:-100000}
PACE_RUNS=${PACE_RUNS:-$RUNS}
PACE_DELAYS=${PACE_DELAYS:-0 2 10}
PACE_ROWS=${PACE_ROWS:-$ROWS}
FORGET_ROWS=${FORGET_ROWS:-1000000}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
KEEP=${KEEP:-0}
EXTRA_CONF=${EXTRA_CONF:-}
PACE_QUICK=${PACE_QUICK:-0}
OLTP_PGOPTIONS=${OLTP_PGOPTIONS:-}
ONLY_BENCH_DB=${ONLY_BENCH_DB:-0}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

# SPEC section 5 bars
BAR_PURGE=0.8			# worker rows/s >= 0.8x the hand-written batched DELETE
BAR_ANON=0.5			# anonymising rows/s >= 0.5x one UPDATE
BAR_OLTP_TPS=0.8		# OLTP throughput beside the paced purge >= 0.8x alone
BAR_OLTP_P99=1.5		# OLTP p99 beside the paced purge <= 1.5x alone
BAR_PACE_PROGRESS=0.2	# paced purge progress >= 0.2x its unpaced rate
BAR_FORGET=2.0			# forget's share of a round <= 2x the hand-written transaction
DEFAULT_DELAY=2		# privacy_guard.batch_delay's default (ms)
RETENTION='365 days'	# expired rows are 400-441 days old, the others 0-41 days
WARM=2					# seconds of OLTP before the purge starts

BENCH=purge_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
now() { date +%s.%N; }

# ---------------------------------------------------------------------------
# Preconditions: PostgreSQL binaries and an installed privacy_guard
# ---------------------------------------------------------------------------
bench_require_pg
grep -aq 'privacy_guard.batch_delay' "$PKGLIBDIR/privacy_guard.so" ||
	die "the installed privacy_guard has no background worker settings (batch_delay)"
if [ -f "$REPO/privacy_guard.so" ] && ! cmp -s "$REPO/privacy_guard.so" "$PKGLIBDIR/privacy_guard.so"; then
	log "warning: $PKGLIBDIR/privacy_guard.so differs from the build in $REPO (run make install?)"
fi
SO_SUM=$(md5sum "$PKGLIBDIR/privacy_guard.so" | cut -c1-12)
for n in ROWS BATCH RUNS OLTP_SECONDS OLTP_CLIENTS OLTP_ROWS PACE_RUNS PACE_ROWS FORGET_ROWS; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
for d in $PACE_DELAYS; do [[ $d =~ ^[0-9]+$ ]] || die "PACE_DELAYS must be integers (ms)"; done
[ "$ROWS" -ge 1000 ] && [ "$PACE_ROWS" -ge 1000 ] && [ "$FORGET_ROWS" -ge 1000 ] ||
	die "ROWS, PACE_ROWS and FORGET_ROWS must be >= 1000"
[ "$RUNS" -ge 1 ] && [ "$BATCH" -ge 1 ] && [ "$OLTP_SECONDS" -gt "$WARM" ] ||
	die "RUNS>=1, BATCH>=1 and OLTP_SECONDS>$WARM needed"
case $LAYOUT in random | ordered) ;; *) die "LAYOUT must be random or ordered" ;; esac
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------
# Throwaway cluster: private directory, unix socket only, random port
# ---------------------------------------------------------------------------
BG_PIDS=()
bench_on_exit() { for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
bench_cluster pvg-bench-purge <<EOF
max_parallel_maintenance_workers = 0
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off			# switched on (ALTER SYSTEM) only while measured
privacy_guard.naptime = 1			# a round starts within a second of enabling
privacy_guard.batch_size = $BATCH
$EXTRA_CONF
EOF
cp "$HERE/purge_setup.sql" "$WORK/purge_setup.sql"
chmod a+r "$WORK/purge_setup.sql"

# the measurements are meant for PostgreSQL's default durability; say which it was
if grep -qx 'fsync=on' "$WORK/settings.txt" && grep -qx 'synchronous_commit=on' "$WORK/settings.txt" &&
	grep -qx 'full_page_writes=on' "$WORK/settings.txt"; then
	DURABILITY="PostgreSQL's default durability (fsync, synchronous_commit and full_page_writes on)"
else
	DURABILITY="**NOT PostgreSQL's default durability**: $(grep -E '^(fsync|synchronous_commit|full_page_writes)=' "$WORK/settings.txt" | paste -sd' ')"
fi
log "durability: $DURABILITY"

PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench -U postgres -v ON_ERROR_STOP=1)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" "$@"; }
q() { psql_su -At -c "$1"; }		# one value

as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench
if [ "$ONLY_BENCH_DB" = 1 ]; then
	q "ALTER DATABASE postgres ALLOW_CONNECTIONS false" >/dev/null
fi
PREWARM=no
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	PREWARM=yes
	q "CREATE EXTENSION pg_prewarm" >/dev/null
fi

SRC_ROWS=$ROWS
if has_phase pace && [ "$PACE_ROWS" -gt "$SRC_ROWS" ]; then SRC_ROWS=$PACE_ROWS; fi
FORGET_SUBJECTS=$((FORGET_ROWS / 10))
log "loading: $SRC_ROWS rows ($LAYOUT layout), $OLTP_ROWS OLTP rows, 5 x $FORGET_ROWS forget rows"
t0=$(date +%s)
psql_su -v rows="$SRC_ROWS" -v subjects="$(( SRC_ROWS / 20 > 0 ? SRC_ROWS / 20 : 1 ))" -v layout="$LAYOUT" \
	-v oltp_rows="$OLTP_ROWS" -v forget_rows="$FORGET_ROWS" -v forget_subjects="$FORGET_SUBJECTS" \
	-f "$WORK/purge_setup.sql" >/dev/null
log "loaded in $(( $(date +%s) - t0 )) s"
SERVER_VERSION=$(q "SELECT version()")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
# A fresh copy of the first n rows of src_t as table pt: same physical order
# every time, indexes built after loading (primary key, the subject column,
# the retention column), frozen, analysed, prewarmed, checkpointed.
# Prints the number of expired rows in it.
make_pt() {						# nrows
	psql_su >/dev/null <<EOF
SET client_min_messages = warning;
DROP TABLE IF EXISTS pt;
CREATE TABLE pt (LIKE src_t);
INSERT INTO pt SELECT * FROM src_t WHERE id <= $1 ORDER BY id;
ALTER TABLE pt ADD PRIMARY KEY (id);
CREATE INDEX pt_customer_id ON pt (customer_id);
CREATE INDEX pt_created_at ON pt (created_at);
VACUUM (FREEZE, ANALYZE) pt;
$([ "$PREWARM" = yes ] && echo "SELECT pg_prewarm('pt'); SELECT pg_prewarm(indexrelid::regclass) FROM pg_index WHERE indrelid = 'pt'::regclass;")
CHECKPOINT;
EOF
	q "SELECT count(*) FROM pt WHERE created_at < now() - interval '$RETENTION'"
}

protect_pt() {					# delete|anonymize
	q "SELECT privacy_guard.protect('pt', 'customer_id', ARRAY['billing'], '$RETENTION', 'created_at', on_expiry => '$1')" >/dev/null
	if [ "$1" = anonymize ]; then
		q "SELECT privacy_guard.set_anonymizer('pt', 'note', 'mask')" >/dev/null
		q "SELECT privacy_guard.set_anonymizer('pt', 'amount', 'generalize')" >/dev/null
	fi
}

# privacy_guard.enabled and batch_delay, through ALTER SYSTEM and a reload
worker_set() {					# on|off delay_ms
	q "ALTER SYSTEM SET privacy_guard.batch_delay = $2" >/dev/null
	q "ALTER SYSTEM SET privacy_guard.enabled = $1" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
}

# wait (bounded) until no privacy_guard worker is connected
wait_worker_idle() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker'")" = 0 ] && return 0
		sleep 0.1
	done
	die "a privacy_guard worker is still running after 60 s"
}

# the first logged round after seq that purged rows: "seq duration_ms rows ended_at"
purge_round_after() {			# seq deleted|anonymized
	q "SELECT seq, duration_ms, $2, ended_at FROM bench_round WHERE seq > $1 AND $2 > 0 ORDER BY seq LIMIT 1" |
		tr '|' ' '
}

# Switch the worker on and wait (bounded) for the round that purges pt; then
# off again.  Prints "duration_ms rows rounds_seen".
worker_purge() {				# deleted|anonymized delay_ms
	local seq0 r i rounds
	seq0=$(q "SELECT coalesce(max(seq), 0) FROM bench_round")
	worker_set on "$2"
	r=
	for ((i = 0; i < 36000; i++)); do
		r=$(purge_round_after "$seq0" "$1")
		[ -n "$r" ] && break
		sleep 0.1
	done
	worker_set off 0
	[ -n "$r" ] || die "no worker round purged pt within an hour"
	wait_worker_idle
	rounds=$(q "SELECT count(*) FROM bench_round WHERE seq > $seq0")
	read -r _ ms rows _ <<<"$r"
	echo "$ms $rows $rounds"
}

# check that pt holds exactly the unexpired rows (and, anonymising, that the
# expired ones lost their subject); prints a checksum of the values
check_pt() {					# delete|anonymize expected_expired
	local left expired
	left=$(q "SELECT count(*) FROM pt")
	if [ "$1" = delete ]; then
		expired=$(q "SELECT count(*) FROM pt WHERE created_at < now() - interval '$RETENTION'")
		[ "$expired" = 0 ] || die "pt still holds $expired expired rows"
	else
		expired=$(q "SELECT count(*) FROM pt WHERE customer_id IS NULL")
		[ "$expired" = "$2" ] || die "pt has $expired anonymised rows, expected $2"
	fi
	q "SELECT count(*) || ':' || sum(amount) || ':' || sum(hashtext(note)::bigint) || ':' || count(customer_id) FROM pt"
}

rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }
rps() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.1f\n", (ms > 0) ? n / (ms / 1000.0) : 0 }'; }
timed_ms() {					# psql script on stdin -> total of its \timing lines (ms)
	{ echo '\timing on'; cat; } | psql_su -o /dev/null |
		awk '/^Time: /{ s += $2 } END { printf "%.3f\n", s }'
}

# ---------------------------------------------------------------------------
# 0. The launcher alone: with the worker switched on and nothing to purge,
#    how many rounds run in this database and how many worker sessions
#    start in the database without the extension (postgres).  With
#    naptime = 1 s there should be about one of each per second.
# ---------------------------------------------------------------------------
LAUNCHER_SECONDS=3
log "launcher: worker on for ${LAUNCHER_SECONDS}s with nothing to purge"
seq0=$(q "SELECT coalesce(max(seq), 0) FROM bench_round")
x0=$(q "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")
worker_set on 10
sleep "$LAUNCHER_SECONDS"
worker_set off 0
wait_worker_idle
sleep 1							# the workers' statistics reach pg_stat_database
LAUNCHER_ROUNDS=$(q "SELECT count(*) FROM bench_round WHERE seq > $seq0")
LAUNCHER_OTHER=$(( $(q "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'") - x0 ))

# ---------------------------------------------------------------------------
# 1. Purge, unpaced and alone
# ---------------------------------------------------------------------------
HAND_PLAN=$WORK/hand_plan.txt
: >"$HAND_PLAN"
if has_phase purge; then
	log "purge: $RUNS runs x 3 variants on $ROWS rows"
	VARIANTS=(worker hand plain)
	for ((r = 1; r <= RUNS; r++)); do
		for ((k = 0; k < 3; k++)); do
			v=${VARIANTS[(k + r) % 3]}
			expired=$(make_pt "$ROWS")
			cutoff=$(q "SELECT now() - interval '$RETENTION'")
			case $v in
				worker)
					protect_pt delete
					read -r ms rows rounds <<<"$(worker_purge deleted 0)"
					[ "$rows" = "$expired" ] || die "the worker's round deleted $rows rows, expected $expired"
					rec rounds_per_enable worker "$r" "$rounds"
					;;
				hand)
					if [ ! -s "$HAND_PLAN" ]; then
						psql_su -c "EXPLAIN (COSTS OFF) DELETE FROM pt WHERE id IN (SELECT id FROM pt WHERE created_at < '$cutoff' ORDER BY created_at LIMIT $BATCH FOR UPDATE SKIP LOCKED)" >"$HAND_PLAN"
					fi
					ms=$(echo "CALL bench_hand_purge('pt', $BATCH, '$cutoff');" | timed_ms)
					rows=$expired
					;;
				plain)
					ms=$(echo "DELETE FROM pt WHERE created_at < '$cutoff';" | timed_ms)
					rows=$expired
					;;
			esac
			check_pt delete "$expired" >/dev/null
			rec purge_ms "$v" "$r" "$ms"
			rec purge_rps "$v" "$r" "$(rps "$rows" "$ms")"
			log "  purge run $r $v: $rows rows in $ms ms"
		done
	done
	q "DROP TABLE pt" >/dev/null
fi

# ---------------------------------------------------------------------------
# 2. Anonymising: the worker's round against one UPDATE setting the same values
# ---------------------------------------------------------------------------
ANON_SET=
if has_phase anon; then
	log "anonymise: $RUNS runs x 2 variants on $ROWS rows"
	# the SET list privacy_guard uses, taken from a protected empty twin
	q "CREATE TABLE anon_proto (LIKE src_t)" >/dev/null
	q "SELECT privacy_guard.protect('anon_proto', 'customer_id', ARRAY['billing'], '$RETENTION', 'created_at', on_expiry => 'anonymize')" >/dev/null
	q "SELECT privacy_guard.set_anonymizer('anon_proto', 'note', 'mask')" >/dev/null
	q "SELECT privacy_guard.set_anonymizer('anon_proto', 'amount', 'generalize')" >/dev/null
	ANON_SET=$(q "SELECT privacy_guard._anonymize_set('anon_proto')")
	q "DROP TABLE anon_proto" >/dev/null
	[[ $ANON_SET != *'$'* ]] || die "the anonymising SET list needs parameters: $ANON_SET"
	VARIANTS=(worker update)
	declare -A ANON_SUM=()
	for ((r = 1; r <= RUNS; r++)); do
		for ((k = 0; k < 2; k++)); do
			v=${VARIANTS[(k + r) % 2]}
			expired=$(make_pt "$ROWS")
			cutoff=$(q "SELECT now() - interval '$RETENTION'")
			if [ "$v" = worker ]; then
				protect_pt anonymize
				read -r ms rows rounds <<<"$(worker_purge anonymized 0)"
				[ "$rows" = "$expired" ] || die "the worker's round anonymised $rows rows, expected $expired"
			else
				ms=$(echo "UPDATE pt SET $ANON_SET WHERE created_at < '$cutoff' AND customer_id IS NOT NULL;" | timed_ms)
				rows=$expired
			fi
			sum=$(check_pt anonymize "$expired")
			ANON_SUM[$v]=$sum
			rec anon_ms "$v" "$r" "$ms"
			rec anon_rps "$v" "$r" "$(rps "$rows" "$ms")"
			log "  anonymise run $r $v: $rows rows in $ms ms"
		done
		[ "${ANON_SUM[worker]}" = "${ANON_SUM[update]}" ] ||
			die "the worker and the UPDATE left different values: ${ANON_SUM[worker]} vs ${ANON_SUM[update]}"
	done
	q "DROP TABLE pt" >/dev/null
fi

# ---------------------------------------------------------------------------
# 3. Pacing beside OLTP.  pgbench -l writes one line per transaction
#    (client, number, latency us, script, epoch s, us); tps and p99 are taken
#    over the window in which the purge ran (alone: the run after WARM s).
# ---------------------------------------------------------------------------
printf '\\set id random(1, %d)\nSELECT abalance FROM oltp_t WHERE id = :id;\nUPDATE oltp_t SET abalance = abalance + 1 WHERE id = :id;\n' \
	"$OLTP_ROWS" >"$WORK/oltp.sql"
chmod a+r "$WORK/oltp.sql"

# tps and latency of the transactions that ended within [ws, we):
# prints "n tps p99_ms mean_ms"
oltp_window() {					# log_prefix ws we
	cat "$1".[0-9]* 2>/dev/null |
		awk -v ws="$2" -v we="$3" '{ t = $5 + $6 / 1e6; if (t >= ws && t < we) print $3 / 1000.0 }' | sort -g |
		awk -v len="$(awk -v a="$2" -v b="$3" 'BEGIN { print b - a }')" '
			{ a[NR] = $1; s += $1 }
			END {
				if (NR == 0 || len <= 0) { print "0 0 0 0"; exit }
				i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1
				printf "%d %.1f %.3f %.3f\n", NR, NR / len, a[i], s / NR
			}'
}
oltp_bounds() {					# log_prefix -> "first_start last_end" (epoch s)
	cat "$1".[0-9]* | awk '{ e = $5 + $6 / 1e6; s = e - $3 / 1e6
		if (lo == "" || s < lo) lo = s; if (e > hi) hi = e }
		END { printf "%.6f %.6f\n", lo, hi }'
}
start_pgbench() {				# log_prefix
	as_pg env PGOPTIONS="$OLTP_PGOPTIONS" "$BINDIR/pgbench" -n -h "$WORK" -p "$PORT" -U postgres -M prepared \
		-c "$OLTP_CLIENTS" -j "$OLTP_CLIENTS" -T "$OLTP_SECONDS" -l --log-prefix="$1" \
		-f "$WORK/oltp.sql" bench >"$1_out.txt" 2>&1 &
	PGB_PID=$!
	BG_PIDS+=("$PGB_PID")
}

if has_phase pace; then
	PACE_VARIANTS=(alone)
	[ "$PACE_QUICK" = 1 ] || PACE_VARIANTS+=(idle)
	for d in $PACE_DELAYS; do PACE_VARIANTS+=("worker_$d"); done
	PACE_VARIANTS+=(hand_paced)
	[ "$PACE_QUICK" = 1 ] || PACE_VARIANTS+=(hand)
	n=${#PACE_VARIANTS[@]}
	log "pacing: $PACE_RUNS runs x $n variants, ${OLTP_SECONDS}s of $OLTP_CLIENTS pgbench clients, $PACE_ROWS rows"
	q "VACUUM (FREEZE, ANALYZE) oltp_t" >/dev/null
	[ "$PREWARM" = yes ] && q "SELECT pg_prewarm('oltp_t'), pg_prewarm('oltp_t_pkey')" >/dev/null
	# warm-up: the OLTP table and pgbench alone
	OLTP_SECONDS_SAVE=$OLTP_SECONDS
	OLTP_SECONDS=3
	start_pgbench "$WORK/pgb_warm"
	wait "$PGB_PID" || die "pgbench failed: $(cat "$WORK/pgb_warm_out.txt")"
	OLTP_SECONDS=$OLTP_SECONDS_SAVE
	for ((r = 1; r <= PACE_RUNS; r++)); do
		for ((k = 0; k < n; k++)); do
			v=${PACE_VARIANTS[(k + r) % n]}
			expired=0
			if [ "$v" = idle ]; then
				q "SET client_min_messages = warning; DROP TABLE IF EXISTS pt" >/dev/null	# the worker on, with nothing to purge
			elif [ "$v" != alone ]; then
				expired=$(make_pt "$PACE_ROWS")
				cutoff=$(q "SELECT now() - interval '$RETENTION'")
				[[ $v == hand* ]] || protect_pt delete
			fi
			q "VACUUM oltp_t" >/dev/null			# every run starts from the same state
			q "CHECKPOINT" >/dev/null
			lp=$WORK/pgb_${v}_$r
			wal0=$(q "SELECT wal_bytes || ' ' || wal_fpi || ' ' || wal_sync FROM pg_stat_wal")
			start_pgbench "$lp"
			sleep "$WARM"
			ps=$(now)
			case $v in
				alone) ;;
				idle) worker_set on "$DEFAULT_DELAY" ;;
				worker_*)
					seq0=$(q "SELECT coalesce(max(seq), 0) FROM bench_round")
					worker_set on "${v#worker_}"
					;;
				hand)
					as_pg env PGAPPNAME=pvg_hand "$BINDIR/psql" "${PSQL_ARGS[@]}" \
						-c "CALL bench_hand_purge('pt', $BATCH, '$cutoff')" >/dev/null 2>&1 &
					HAND_PID=$!
					BG_PIDS+=("$HAND_PID")
					;;
				hand_paced)
					# its batches commit without waiting for their WAL, as the worker's do
					as_pg env PGAPPNAME=pvg_hand "$BINDIR/psql" "${PSQL_ARGS[@]}" -c "SET synchronous_commit = off" \
						-c "CALL bench_hand_purge('pt', $BATCH, '$cutoff', $DEFAULT_DELAY)" >/dev/null 2>&1 &
					HAND_PID=$!
					BG_PIDS+=("$HAND_PID")
					;;
			esac
			# wait for pgbench, watching for the end of the purge
			pe=
			while kill -0 "$PGB_PID" 2>/dev/null; do
				if [ -z "$pe" ]; then
					case $v in
						worker_*)
							res=$(purge_round_after "$seq0" deleted)
							if [ -n "$res" ]; then
								read -r _ ms rows pe <<<"$res"
								ps=$(awk -v e="$pe" -v ms="$ms" 'BEGIN { printf "%.6f\n", e - ms / 1000 }')
								done_rows=$rows
							fi
							;;
						hand | hand_paced)
							if ! kill -0 "$HAND_PID" 2>/dev/null; then
								pe=$(now)
								done_rows=$expired
							fi
							;;
					esac
				fi
				sleep 0.2
			done
			wait "$PGB_PID" || die "pgbench failed: $(cat "${lp}_out.txt")"
			read -r lo hi <<<"$(oltp_bounds "$lp")"
			truncated=0
			if [ "$v" = idle ]; then
				worker_set off 0
				wait_worker_idle
			fi
			if [ "$v" = alone ] || [ "$v" = idle ]; then
				ws=$(awk -v a="$lo" -v w="$WARM" 'BEGIN { printf "%.6f\n", a + w }')
				we=$hi
			else
				if [ -z "$pe" ]; then
					# the purge outlasted the OLTP run: its progress up to the run's end
					truncated=1
					left=$(q "SELECT count(*) FROM pt WHERE created_at < '$cutoff'")
					done_rows=$((expired - left))
					pe=$hi
					if [[ $v == hand* ]]; then
						q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'pvg_hand'" >/dev/null
						wait "$HAND_PID" 2>/dev/null || true
					else
						worker_set off 0
					fi
				fi
				ws=$ps
				we=$(awk -v a="$pe" -v b="$hi" 'BEGIN { printf "%.6f\n", (a < b) ? a : b }')
				if [[ $v == hand* ]]; then wait "$HAND_PID" 2>/dev/null || true; fi
				if [[ $v == worker_* ]]; then worker_set off 0; wait_worker_idle; fi
				prog=$(awk -v n="$done_rows" -v a="$ps" -v b="$pe" 'BEGIN { printf "%.1f\n", (b > a) ? n / (b - a) : 0 }')
				rec pace_rps "$v" "$r" "$prog"
				rec pace_truncated "$v" "$r" "$truncated"
				rec pace_window_s "$v" "$r" "$(awk -v a="$ws" -v b="$we" 'BEGIN { printf "%.2f\n", b - a }')"
			fi
			read -r cnt tps p99 mean <<<"$(oltp_window "$lp" "$ws" "$we")"
			rec oltp_tps "$v" "$r" "$tps"
			rec oltp_p99 "$v" "$r" "$p99"
			rec oltp_mean "$v" "$r" "$mean"
			# WAL written over the whole run (OLTP and purge), and its flushes
			read -r b0 f0 s0 <<<"$wal0"
			read -r b1 f1 s1 <<<"$(q "SELECT wal_bytes || ' ' || wal_fpi || ' ' || wal_sync FROM pg_stat_wal")"
			rec wal_mb "$v" "$r" "$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.1f\n", (b - a) / 1048576 }')"
			rec wal_fpi "$v" "$r" $((f1 - f0))
			rec wal_sync "$v" "$r" $((s1 - s0))
			log "  pacing run $r $v: OLTP $tps tps, p99 $p99 ms over $cnt transactions$([ "$v" = alone ] || [ "$v" = idle ] || echo "; purge $prog rows/s$([ "$truncated" = 1 ] && echo ' (outlasted the OLTP run)')")"
			rm -f "$lp".[0-9]* "${lp}_out.txt"
		done
	done
	q "SET client_min_messages = warning; DROP TABLE IF EXISTS pt" >/dev/null
fi

# ---------------------------------------------------------------------------
# 4. Forget: a subject's ~50 rows across 5 tables of FORGET_ROWS rows
# ---------------------------------------------------------------------------
if has_phase forget; then
	log "forget: $RUNS runs, 5 tables x $FORGET_ROWS rows"
	[ "$(q "SELECT count(*) FROM privacy_guard._purge_targets()")" = 0 ] ||
		die "tables with retention are left: the no-op round would purge"
	if [ "$PREWARM" = yes ]; then
		q "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c WHERE c.relname ~ '^f[1-5](_|$)' AND c.relkind IN ('r', 'i')" >/dev/null
	fi
	echo "SELECT privacy_guard.run_maintenance();" | timed_ms >/dev/null	# caches
	for ((r = 1; r <= RUNS; r++)); do
		a=$(( (r * 7919) % FORGET_SUBJECTS + 1 ))
		b=$(( (r * 7919 + FORGET_SUBJECTS / 2) % FORGET_SUBJECTS + 1 ))
		na=$(q "SELECT (SELECT count(*) FROM f1 WHERE customer_id = $a) + (SELECT count(*) FROM f2 WHERE customer_id = $a)
				   + (SELECT count(*) FROM f3 WHERE customer_id = $a) + (SELECT count(*) FROM f4 WHERE customer_id = $a)
				   + (SELECT count(*) FROM f5 WHERE customer_id = $a)")
		nb=$(q "SELECT (SELECT count(*) FROM f1 WHERE customer_id = $b) + (SELECT count(*) FROM f2 WHERE customer_id = $b)
				   + (SELECT count(*) FROM f3 WHERE customer_id = $b) + (SELECT count(*) FROM f4 WHERE customer_id = $b)
				   + (SELECT count(*) FROM f5 WHERE customer_id = $b)")
		noop=$(echo "SELECT privacy_guard.run_maintenance();" | timed_ms)
		do_forget() {
			q "SELECT privacy_guard.forget('$a')" >/dev/null
			rm_ms=$(echo "SELECT privacy_guard.run_maintenance();" | timed_ms)
			[ "$(q "SELECT privacy_guard.erasure_status('$a')")" = done ] ||
				die "the forget request did not complete in one round"
		}
		do_hand() {
			hand_ms=$(printf 'BEGIN;\n%sCOMMIT;\n' "$(for t in 1 2 3 4 5; do echo "DELETE FROM f$t WHERE customer_id = $b;"; done)" | timed_ms)
		}
		if ((r % 2)); then do_forget; do_hand; else do_hand; do_forget; fi
		left=$(q "SELECT (SELECT count(*) FROM f1 WHERE customer_id IN ($a, $b)) + (SELECT count(*) FROM f2 WHERE customer_id IN ($a, $b))
				   + (SELECT count(*) FROM f3 WHERE customer_id IN ($a, $b)) + (SELECT count(*) FROM f4 WHERE customer_id IN ($a, $b))
				   + (SELECT count(*) FROM f5 WHERE customer_id IN ($a, $b))")
		[ "$left" = 0 ] || die "$left rows of the forgotten subjects are left"
		share=$(awk -v a="$rm_ms" -v b="$noop" 'BEGIN { printf "%.3f\n", a - b }')
		rec forget_ms noop "$r" "$noop"
		rec forget_ms round "$r" "$rm_ms"
		rec forget_ms share "$r" "$share"
		rec forget_ms hand "$r" "$hand_ms"
		rec forget_rows share "$r" "$na"
		rec forget_rows hand "$r" "$nb"
		log "  forget run $r: round $rm_ms ms - no-op $noop ms = $share ms for $na rows; hand-written $hand_ms ms for $nb rows"
	done
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
SIZES=$(q "SELECT string_agg(format('%s %s', c.relname, pg_size_pretty(pg_total_relation_size(c.oid))), ', ' ORDER BY c.relname)
			 FROM pg_class c WHERE c.relname IN ('src_t', 'oltp_t', 'f1') AND c.relkind = 'r'")

# ---------------------------------------------------------------------------
# Statistics and the summary
# ---------------------------------------------------------------------------
med() { read -r _ m _ _ <<<"$(stats "$1" "$2")"; echo "$m"; }
row() {							# measurement variant phase digits ratio paired bar verdict
	local cnt m mn mx
	read -r cnt m mn mx <<<"$(stats "$3" "$2")"
	echo "| $1 | $(fmt "$m" "$4") | $(fmt "$mn" "$4") | $(fmt "$mx" "$4") | $cnt | $5 | $6 | $7 | $8 |"
}

TS=$(date +%Y%m%d_%H%M%S)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')
GIT_DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (+ uncommitted changes)' || true)
SUMMARY=$WORK/summary.md
{
	echo "# privacy_guard purge benchmark ($TS)"
	echo
	echo "- commit $GIT_REV$GIT_DIRTY; privacy_guard.so md5 $SO_SUM (preloaded); $SERVER_VERSION"
	echo "- $(nproc 2>/dev/null || echo '?') CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	echo "- cluster: shared_buffers=$SHARED_BUFFERS (tables prewarmed: $PREWARM); sizes: $SIZES"
	bench_settings_md
	echo "- durability: $DURABILITY"
	[ -z "$EXTRA_CONF" ] || echo "- extra settings: $(printf '%s' "$EXTRA_CONF" | paste -sd';')"
	[ -z "$OLTP_PGOPTIONS" ] || echo "- pgbench sessions' PGOPTIONS: $OLTP_PGOPTIONS"
	echo "- purge data: $ROWS rows (id, customer_id, amount, note, created_at; primary key and indexes on"
	echo "  customer_id and created_at), 25% older than the retention ($RETENTION), layout $LAYOUT; a fresh frozen,"
	echo "  prewarmed copy per measurement; batch size $BATCH; $RUNS runs per variant, interleaved"
	echo "- worker: its round's own duration (worker_round.last_round_duration: listing, batches, forget step),"
	echo "  privacy_guard.batch_delay=0; the round is started by reloading privacy_guard.enabled = on"
	echo "- hand-written loop: \`CALL bench_hand_purge\` = per batch \`DELETE FROM pt WHERE id IN (SELECT id FROM pt"
	echo "  WHERE created_at < \$cutoff ORDER BY created_at LIMIT $BATCH FOR UPDATE SKIP LOCKED)\`, COMMIT (plan below)"
	echo "- ratio = ratio of medians; paired = median over runs of the same-run ratio"
	echo
	[ "$ONLY_BENCH_DB" = 1 ] && echo "- ONLY_BENCH_DB=1: database postgres does not accept connections; the launcher serves only bench"
	echo "- launcher: worker switched on for ${LAUNCHER_SECONDS}s with nothing to purge, naptime 1 s: $LAUNCHER_ROUNDS rounds"
	echo "  in this database, $LAUNCHER_OTHER worker transactions in database postgres (no extension there) --"
	echo "  $(awk -v a="$LAUNCHER_ROUNDS" -v b="$LAUNCHER_OTHER" -v s="$LAUNCHER_SECONDS" 'BEGIN {
		if (a > 2 * s + 2 || b > 2 * s + 2) print "**naptime NOT honoured**: rounds run back to back, and they compete with every measurement of the worker below"
		else print "naptime honoured" }')"
	echo
	echo "| measurement | median | min | max | runs | ratio | paired | SPEC bar | verdict |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
	if has_phase purge; then
		base=$(med purge_rps hand)
		rw=$(ratio "$(med purge_rps worker)" "$base")
		row "purge, worker round (unpaced), rows/s" worker purge_rps 0 "${rw}×" "$(paired_ratio purge_rps worker hand)×" "≥ ${BAR_PURGE}× hand loop" "$(verdict "$rw" $BAR_PURGE ge)"
		row "purge, hand-written batched DELETE loop, rows/s" hand purge_rps 0 "1.000×" "1.000×" "reference" "-"
		rp=$(ratio "$(med purge_rps plain)" "$base")
		row "purge, one plain DELETE (for scale), rows/s" plain purge_rps 0 "${rp}×" "$(paired_ratio purge_rps plain hand)×" "none" "scale"
		row "purge, worker round, ms" worker purge_ms 1 "" "" "" ""
		row "purge, hand-written loop, ms" hand purge_ms 1 "" "" "" ""
		row "purge, plain DELETE, ms" plain purge_ms 1 "" "" "" ""
	fi
	if has_phase anon; then
		ra=$(ratio "$(med anon_rps worker)" "$(med anon_rps update)")
		row "anonymise, worker round (unpaced), rows/s" worker anon_rps 0 "${ra}×" "$(paired_ratio anon_rps worker update)×" "≥ ${BAR_ANON}× UPDATE" "$(verdict "$ra" $BAR_ANON ge)"
		row "anonymise, one UPDATE, rows/s" update anon_rps 0 "1.000×" "1.000×" "reference" "-"
	fi
	if has_phase pace; then
		unpaced=$(med purge_rps worker)
		[ "$unpaced" != "-" ] || unpaced=$(med pace_rps worker_0)
		base_tps=$(med oltp_tps alone)
		base_p99=$(med oltp_p99 alone)
		row "OLTP alone, tps" alone oltp_tps 0 "1.000×" "" "reference" "-"
		row "OLTP alone, p99 ms" alone oltp_p99 3 "1.000×" "" "reference" "-"
		rt=$(ratio "$(med oltp_tps idle)" "$base_tps")
		r9=$(ratio "$(med oltp_p99 idle)" "$base_p99")
		row "OLTP beside the worker switched on with nothing to purge, tps" idle oltp_tps 0 "${rt}×" "$(paired_ratio oltp_tps idle alone)×" "none" "diagnostic"
		row "OLTP beside the worker switched on with nothing to purge, p99 ms" idle oltp_p99 3 "${r9}×" "$(paired_ratio oltp_p99 idle alone)×" "none" "diagnostic"
		for v in "${PACE_VARIANTS[@]}"; do
			[ "$v" = alone ] || [ "$v" = idle ] && continue
			if [ "$v" = hand ]; then
				name="beside the hand-written unpaced loop"
			elif [ "$v" = hand_paced ]; then
				name="beside the hand-written loop paced like the worker"
			else
				name="beside the worker, batch_delay=${v#worker_} ms$([ "${v#worker_}" != $DEFAULT_DELAY ] || echo ' (default)')"
			fi
			rt=$(ratio "$(med oltp_tps "$v")" "$base_tps")
			r9=$(ratio "$(med oltp_p99 "$v")" "$base_p99")
			rg=$(ratio "$(med pace_rps "$v")" "$unpaced")
			if [[ $v == hand* ]]; then
				bt="none"; b9="none"; bg="none"; vt="scale"; v9="scale"; vg="scale"
			else
				bt="≥ ${BAR_OLTP_TPS}×"; b9="≤ ${BAR_OLTP_P99}×"; bg="≥ ${BAR_PACE_PROGRESS}× unpaced"
				vt=$(verdict "$rt" $BAR_OLTP_TPS ge); v9=$(verdict "$r9" $BAR_OLTP_P99 le); vg=$(verdict "$rg" $BAR_PACE_PROGRESS ge)
				[ "${v#worker_}" = $DEFAULT_DELAY ] || { vt="sweep: $vt"; v9="sweep: $v9"; vg="sweep: $vg"; }
			fi
			row "OLTP $name, tps" "$v" oltp_tps 0 "${rt}×" "$(paired_ratio oltp_tps "$v" alone)×" "$bt" "$vt"
			row "OLTP $name, p99 ms" "$v" oltp_p99 3 "${r9}×" "$(paired_ratio oltp_p99 "$v" alone)×" "$b9" "$v9"
			row "purge progress $name, rows/s" "$v" pace_rps 0 "${rg}×" "" "$bg" "$vg"
		done
		if [[ " ${PACE_VARIANTS[*]} " == *" worker_$DEFAULT_DELAY "* ]]; then
			rh=$(ratio "$(med oltp_p99 "worker_$DEFAULT_DELAY")" "$(med oltp_p99 hand_paced)")
			row "OLTP p99 beside the worker (default) against beside the hand-written loop paced like it" "worker_$DEFAULT_DELAY" oltp_p99 3 "${rh}×" "$(paired_ratio oltp_p99 "worker_$DEFAULT_DELAY" hand_paced)×" "none" "diagnostic"
		fi
	fi
	if has_phase pace; then
		for v in "${PACE_VARIANTS[@]}"; do
			row "WAL over the whole OLTP run, $v: MB" "$v" wal_mb 1 "" "" "none" "diagnostic"
			row "WAL over the whole OLTP run, $v: full-page images" "$v" wal_fpi 0 "" "" "none" "diagnostic"
			row "WAL over the whole OLTP run, $v: flushes (wal_sync)" "$v" wal_sync 0 "" "" "none" "diagnostic"
		done
	fi
	if has_phase forget; then
		rf=$(ratio "$(med forget_ms share)" "$(med forget_ms hand)")
		row "forget: run_maintenance() with the request, ms" round forget_ms 3 "" "" "" ""
		row "forget: no-op run_maintenance(), ms" noop forget_ms 3 "" "" "" ""
		row "forget: the request's share (difference), ms" share forget_ms 3 "${rf}×" "$(paired_ratio forget_ms share hand)×" "≤ ${BAR_FORGET}× hand" "$(verdict "$rf" $BAR_FORGET le)"
		row "forget: hand-written transaction (5 DELETEs), ms" hand forget_ms 3 "1.000×" "1.000×" "reference" "-"
		row "forget: rows of the subject" share forget_rows 0 "" "" "" ""
	fi
	if has_phase pace; then
		trunc=$(awk -F'\t' '$1 == "pace_truncated" && $4 == 1' "$RAW" | wc -l)
		echo
		echo "Pacing: $OLTP_CLIENTS pgbench clients (-M prepared), script: point SELECT + single-row UPDATE by primary key on"
		echo "oltp_t ($OLTP_ROWS rows, a plain table beside the purged one), ${OLTP_SECONDS}s per run, the purge starting"
		echo "after ${WARM}s; tps and p99 over the transactions that ended while the purge ran (alone: after ${WARM}s);"
		echo "purge progress = rows purged / time it ran (up to the OLTP run's end), against the worker's unpaced"
		echo "rate alone (phase 1 median). Delays other than the default ($DEFAULT_DELAY ms) are a sweep, not the bar."
		echo "The hand-written loop paced like the worker (\`CALL bench_hand_purge\` with a delay: the hand loop's batches, committed"
		echo "with synchronous_commit off as the worker's are, each followed by a pause of $DEFAULT_DELAY ms or twice what it took, as"
		echo "worker.c pauses; its pauses are pg_sleep() calls, which hold a snapshot, where the worker's hold none) has no"
		echo "privacy_guard in it: its p99 is what such a purge costs the OLTP on this machine."
		if [ "$trunc" -gt 0 ]; then
			echo "In $trunc pacing runs the purge outlasted the ${OLTP_SECONDS}s OLTP run; its progress is counted up to the run's end."
		fi
	fi
} >"$SUMMARY"

mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/purge_$TS.md
{
	cat "$SUMMARY"
	echo
	echo "## Raw measurements (phase, variant, run, value)"
	echo
	echo '```'
	sort -t$'\t' -k1,1 -k2,2 -k3,3n "$RAW"
	echo '```'
	if [ -s "$HAND_PLAN" ]; then
		echo
		echo "## Plan of one batch of the hand-written loop"
		echo
		echo '```'
		cat "$HAND_PLAN"
		echo '```'
	fi
	if [ -n "$ANON_SET" ]; then
		echo
		echo "## Anonymising SET list (worker and UPDATE)"
		echo
		echo '```'
		echo "$ANON_SET"
		echo '```'
	fi
} >"$REPORT"

echo
cat "$SUMMARY"
echo
echo "Full report (raw numbers, plan): $REPORT"
