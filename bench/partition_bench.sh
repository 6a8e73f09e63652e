#!/usr/bin/env bash
# bench/partition_bench.sh -- retention by partition against row by row
#
# Builds a throwaway PostgreSQL cluster (PostgreSQL's default durability:
# fsync, synchronous_commit and full_page_writes on) and a protected table
# of ROWS rows partitioned by its retention column in monthly range
# partitions: the twelve full months before this one, the same number of
# rows in each (none on a month's first day), and an empty partition for
# this month.  The retention is set so that the three oldest months -- a
# quarter of the rows -- are wholly past it, at the round's time, and no
# other row is.  Then it times run_maintenance() on a fresh copy of that
# database (CREATE DATABASE ... TEMPLATE, FILE_COPY, checkpointed):
#   truncate: privacy_guard.truncate_partitions = on (the default): the
#             three partitions are emptied with TRUNCATE;
#   rows:     privacy_guard.truncate_partitions = off: the same rows are
#             deleted in batches of BATCH rows, as every table is purged
#             without the feature.
# Both variants run RUNS times, interleaved, alternating which goes first;
# after each, a second round with nothing left to purge times what a round
# costs besides purging (noop).
# Each run checks that the round deleted exactly the expired rows, and that
# the rows left are the other three quarters.  The time is the client's
# wall clock around the one run_maintenance() statement, its commit
# included.
#
# It prints a markdown summary (median, min, max) and writes it to
# bench/results/partition_<timestamp>.md.  The cluster is removed on exit.
#
# Usage:   bench/partition_bench.sh            (as root or as a normal user)
# Quick:   ROWS=2000000 RUNS=3 bench/partition_bench.sh
#
# Settings (environment):
#   ROWS=20000000        rows in the table (12 monthly partitions; 25% expired)
#   RUNS=3               runs per variant
#   BATCH=1000           privacy_guard.batch_size (the row-by-row batches)
#   SHARED_BUFFERS=1GB
#   KEEP=0               1: leave the cluster running afterwards
#   PVG_PREFIX=          use the private install made by PVG_PREFIX=... bin/setup
#   PG_CONFIG=$PVG_PREFIX/usr/lib/postgresql/15/bin/pg_config, or the system one
#   RESULTS_DIR=bench/results
#
# As root it runs PostgreSQL and psql as user postgres (runuser).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ROWS=${ROWS:-20000000}
RUNS=${RUNS:-3}
BATCH=${BATCH:-1000}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
KEEP=${KEEP:-0}
if [ -n "${PVG_PREFIX:-}" ]; then
	PG_CONFIG=${PG_CONFIG:-$PVG_PREFIX/usr/lib/postgresql/15/bin/pg_config}
else
	PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
fi
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BENCH=partition_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
now() { date +%s.%N; }

bench_require_pg
grep -aq 'privacy_guard.truncate_partitions' "$PKGLIBDIR/privacy_guard.so" ||
	die "the installed privacy_guard has no privacy_guard.truncate_partitions (run make install)"
for n in ROWS RUNS BATCH; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
if [ "$ROWS" -lt 12000 ] || [ "$RUNS" -lt 1 ] || [ "$BATCH" -lt 1 ]; then
	die "ROWS>=12000, RUNS>=1 and BATCH>=1 needed"
fi
SO_SUM=$(md5sum "$PKGLIBDIR/privacy_guard.so" | cut -c1-12)

bench_cluster pvg-bench-partition <<EOF
max_parallel_maintenance_workers = 0
privacy_guard.batch_size = $BATCH
EOF

PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -U postgres -v ON_ERROR_STOP=1)
psql_db() { local db=$1; shift; as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -d "$db" "$@"; }
q() { psql_db "$1" -At -c "$2"; }		# db sql -> one value

# ---------------------------------------------------------------------------
# The template database: the partitioned table, protected
# ---------------------------------------------------------------------------
as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench_tpl
log "loading $ROWS rows into 12 monthly partitions"
t0=$(date +%s)
psql_db bench_tpl -v rows="$ROWS" >/dev/null <<'EOF'
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
SELECT privacy_guard.define_purpose('billing', 'contract');
CREATE TABLE events (id bigint, customer bigint NOT NULL, amount numeric(10,2), note text,
					 happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
SELECT date_trunc('month', now()) AS m \gset
DO $$
DECLARE
	m timestamptz := date_trunc('month', now());
BEGIN
	FOR k IN 0..12 LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
					   'events_' || to_char(m - make_interval(months => k), 'YYYY_MM'),
					   m - make_interval(months => k), m - make_interval(months => k - 1));
	END LOOP;
END
$$;
-- month k (1..12 before this one) gets rows/12 rows, spread over its days
-- after the first (no row within a day of a month's start)
INSERT INTO events
SELECT g, g % 100000, (g % 1000) / 10.0, md5(g::text),
	   lo + interval '1 day' + ((g / 12) % 1000) / 1000.0 * ((lo + interval '1 month') - (lo + interval '1 day'))
  FROM generate_series(1, :rows) g,
	   LATERAL (SELECT :'m'::timestamptz - make_interval(months => (g % 12)::int + 1) AS lo) l;
CREATE INDEX ON events (customer);
CREATE INDEX ON events (happened);
EOF
# the three oldest months wholly past retention now and at the round, nothing else
RETENTION=$(q bench_tpl "SELECT make_interval(secs => extract(epoch FROM now() - (date_trunc('month', now()) - interval '9 months')))")
q bench_tpl "SELECT privacy_guard.protect('events', 'customer', ARRAY['billing'], '$RETENTION', 'happened')" >/dev/null
psql_db bench_tpl -c "VACUUM (FREEZE, ANALYZE)" >/dev/null
EXPIRED=$(q bench_tpl "SELECT count(*) FROM events WHERE happened < date_trunc('month', now()) - interval '9 months'")
TOTAL=$(q bench_tpl "SELECT count(*) FROM events")
SIZE=$(q bench_tpl "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass")
log "loaded in $(( $(date +%s) - t0 )) s: $TOTAL rows ($SIZE with indexes), $EXPIRED expired, retention $RETENTION"
[ "$TOTAL" = "$ROWS" ] || die "loaded $TOTAL rows, not $ROWS"
SERVER_VERSION=$(q postgres "SELECT version()")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# one measured round: variant run
measure() {
	local v=$1 run=$2 setting t1 t2 took out deleted truncated left noerr
	case $v in truncate) setting=on ;; rows) setting=off ;; esac
	q postgres "CREATE DATABASE bench_run TEMPLATE bench_tpl STRATEGY FILE_COPY" >/dev/null
	psql_db bench_run -c "SELECT count(*) FROM events" >/dev/null	# warm the catalogs and the cache
	q postgres "CHECKPOINT" >/dev/null
	t1=$(now)
	out=$(psql_db bench_run -At -F ' ' <<EOF
SET privacy_guard.truncate_partitions = $setting;
SELECT coalesce(r #>> '{expired,public.events,deleted}', '0'),
	   coalesce(r #>> '{expired,public.events,partitions_truncated}', '0'),
	   r -> 'errors' = '{}'
  FROM privacy_guard.run_maintenance('events') r;
EOF
)
	t2=$(now)
	read -r deleted truncated noerr <<<"$out"
	left=$(q bench_run "SELECT count(*) FROM events")
	[ "$noerr" = t ] || die "$v run $run: the round reported errors"
	[ "$deleted" = "$EXPIRED" ] || die "$v run $run: deleted $deleted rows, expected $EXPIRED"
	[ "$left" = $((TOTAL - EXPIRED)) ] || die "$v run $run: $left rows left, expected $((TOTAL - EXPIRED))"
	if [ "$v" = truncate ]; then
		[ "$truncated" = 3 ] || die "truncate run $run: $truncated partitions truncated, expected 3"
	else
		[ "$truncated" = 0 ] || die "rows run $run: $truncated partitions truncated, expected 0"
	fi
	took=$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", b - a}')
	printf 'purge\t%s\t%s\t%s\n' "$v" "$run" "$took" >>"$RAW"
	# the same round again, with nothing left to purge: the round's fixed cost
	t1=$(now)
	psql_db bench_run -At -c "SELECT privacy_guard.run_maintenance('events')" >/dev/null
	t2=$(now)
	printf 'purge\tnoop\t%s\t%s\n' "$run.$v" "$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", b - a}')" >>"$RAW"
	q postgres "DROP DATABASE bench_run" >/dev/null
	log "$v run $run: $took s, $deleted rows deleted, $truncated partitions truncated; then a no-op round: $(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", b - a}') s"
}

for ((r = 1; r <= RUNS; r++)); do
	if ((r % 2)); then order="truncate rows"; else order="rows truncate"; fi
	for v in $order; do measure "$v" "$r"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
read -r n_t med_t min_t max_t <<<"$(stats purge truncate)"
read -r n_r med_r min_r max_r <<<"$(stats purge rows)"
read -r n_n med_n min_n max_n <<<"$(stats purge noop)"
STAMP=$(date +%Y%m%d_%H%M%S)
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/partition_$STAMP.md
{
	echo "# Retention by partition: TRUNCATE against row by row ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	echo "- $TOTAL rows ($SIZE with two indexes) in 12 monthly partitions; $EXPIRED rows (the 3 oldest months) past retention"
	echo "- run_maintenance() on a fresh copy of the database each run, $RUNS runs per variant, interleaved; batch_size $BATCH"
	echo "- durability: PostgreSQL's defaults (fsync, synchronous_commit, full_page_writes on)"
	echo "- $SERVER_VERSION; privacy_guard.so $SO_SUM; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	bench_settings_md
	echo
	echo "| variant | runs | median s | min s | max s | rows/s (median) |"
	echo "|---|---|---|---|---|---|"
	echo "| truncate (truncate_partitions = on) | $n_t | $med_t | $min_t | $max_t | $(awk -v n="$EXPIRED" -v t="$med_t" 'BEGIN {printf "%.0f", n / t}') |"
	echo "| rows (truncate_partitions = off) | $n_r | $med_r | $min_r | $max_r | $(awk -v n="$EXPIRED" -v t="$med_r" 'BEGIN {printf "%.0f", n / t}') |"
	echo "| no-op round (nothing left to purge, after either) | $n_n | $med_n | $min_n | $max_n | - |"
	echo
	echo "The no-op round is what every round costs besides purging (connection, forget requests, receipts, round history)."
	echo "Row by row takes $(fmt "$(paired_ratio purge rows truncate)" 1)x the time of the truncation (median of the runs' ratios)."
} | tee "$REPORT"
log "report: $REPORT"
