#!/usr/bin/env bash
# bench/forget_bench.sh -- forget requests in bulk for privacy_guard
# (SPEC section 5, "Forget")
#
# Builds a throwaway PostgreSQL cluster with privacy_guard preloaded (the
# background worker switched off: the rounds are run_maintenance() calls)
# and PostgreSQL's default durability (fsync, synchronous_commit and
# full_page_writes on), over two protected tables: accounts (PARENT_ROWS
# rows, one subject each, the subject column its primary key) and orders
# (CHILD_PER rows per account, a foreign key to accounts, an index on the
# subject column).  It measures, RUNS times, interleaved:
#   1. bulk: REQUESTS forget requests due at once, carried out by one
#      run_maintenance() (in sets), against the hand-written set-based
#      erasure of REQUESTS other subjects: one transaction of two DELETEs
#      with a range, children first (bar: within 3x);
#      and against the same erasure writing a receipt per subject as a
#      hand-written one would: the two DELETEs and an UPDATE of a table
#      shaped like privacy_guard.erasure_request (its columns, indexes and
#      fillfactor; REQUESTS rows filed before, not timed) setting each
#      subject's state, counts and tables and clearing its key, in one
#      statement (SPEC's reference writes no receipt; privacy_guard must);
#   2. single: one forget request and run_maintenance(), minus a no-op
#      run_maintenance() (run after others, which close the receipts of earlier
#      runs: a round, a VACUUM, a round), against a hand-written transaction deleting the
#      same rows of another subject (the SPEC bar: within 2x; SPEC's own
#      set-up, 5 tables of 1,000,000 rows, is purge_bench.sh's forget phase).
# Each run takes subjects not touched before (the deletions cannot be
# undone); the tables are vacuumed and a CHECKPOINT taken before every
# measurement, so each starts from the same state: no dead rows, no
# pending full-page images.
#
# Each bulk measurement also reports the WAL it wrote.  HISTORY receipts of
# earlier requests can be kept before the runs, as a company that has
# carried out requests for a year keeps them.
#
# It prints a markdown summary with medians, min/max and ratios and writes it
# to bench/results/forget_<timestamp>.md.  The cluster is removed on exit.
#
# Usage:   bench/forget_bench.sh            (as root or as a normal user)
# Quick:   PARENT_ROWS=100000 REQUESTS=2000 RUNS=3 bench/forget_bench.sh
#
# Settings (environment):
#   PARENT_ROWS=1000000    accounts (one subject each)
#   CHILD_PER=3            orders per account (3,000,000 by default)
#   REQUESTS=10000         forget requests due at once (bulk)
#   RUNS=5                 runs per variant
#   HISTORY=0              receipts of earlier requests kept before the runs
#                          (done, their rows unreachable: a year's requests),
#                          filed for keys no table holds and carried out first
#   PHASES="bulk single"   which measurements to run
#   SHARED_BUFFERS=1GB
#   KEEP=0                 1: leave the cluster running afterwards
#   EXTRA_CONF=            more server settings, one per line (the report
#                          names them), e.g. wal_compression = lz4
#   PVG_PREFIX=            use the private install made by PVG_PREFIX=... bin/setup
#   PG_CONFIG=             default: bin/cluster.sh (under PVG_PREFIX if set)
#   RESULTS_DIR=bench/results
#
# As root it runs PostgreSQL and psql as user postgres (runuser).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")

PARENT_ROWS=${PARENT_ROWS:-1000000}
CHILD_PER=${CHILD_PER:-3}
REQUESTS=${REQUESTS:-10000}
RUNS=${RUNS:-5}
HISTORY=${HISTORY:-0}
PHASES=${PHASES:-bulk single}
SHARED_BUFFERS=${SHARED_BUFFERS:-1GB}
KEEP=${KEEP:-0}
EXTRA_CONF=${EXTRA_CONF:-}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BAR_BULK=3.0			# REQUESTS due requests <= 3x the hand-written set-based erasure
BAR_SINGLE=2.0			# one request's share of a round <= 2x a hand-written transaction

BENCH=forget_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

bench_require_pg
SO_SUM=$(md5sum "$PKGLIBDIR/privacy_guard.so" | cut -c1-12)
for n in PARENT_ROWS CHILD_PER REQUESTS RUNS HISTORY; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
[ "$RUNS" -ge 1 ] && [ "$REQUESTS" -ge 1 ] && [ "$CHILD_PER" -ge 1 ] || die "RUNS, REQUESTS and CHILD_PER must be >= 1"
# every run takes 3 x REQUESTS + 2 subjects of its own
[ $(( RUNS * (3 * REQUESTS + 2) )) -le "$PARENT_ROWS" ] ||
	die "PARENT_ROWS must be at least RUNS x (3 x REQUESTS + 2) = $(( RUNS * (3 * REQUESTS + 2) ))"
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

bench_cluster pvg-bench-forget <<EOF
max_parallel_maintenance_workers = 0
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off			# rounds are run_maintenance() calls
$EXTRA_CONF
EOF

PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench -U postgres -v ON_ERROR_STOP=1)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" "$@"; }
q() { psql_su -At -c "$1"; }		# one value
rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }
timed_ms() {					# psql script on stdin -> total of its \timing lines (ms)
	{ echo '\timing on'; cat; } | psql_su -o /dev/null |
		awk '/^Time: /{ s += $2 } END { printf "%.3f\n", s }'
}

as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench
PREWARM=no
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	PREWARM=yes
	q "CREATE EXTENSION pg_prewarm" >/dev/null
fi

log "loading: $PARENT_ROWS accounts, $((PARENT_ROWS * CHILD_PER)) orders"
t0=$(date +%s)
psql_su >/dev/null <<EOF
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
SELECT privacy_guard.define_purpose('billing', 'contract');
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, created timestamptz NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id),
					 amount numeric NOT NULL, note text);
ALTER TABLE orders DROP CONSTRAINT orders_account_id_fkey;
INSERT INTO accounts SELECT g, 'user' || g || '@example.org', now() - (g % 1000) * interval '1 hour'
  FROM generate_series(1, $PARENT_ROWS) g;
INSERT INTO orders SELECT (g - 1) * $CHILD_PER + k, g, (g * k) % 1000, 'order ' || k
  FROM generate_series(1, $PARENT_ROWS) g, generate_series(1, $CHILD_PER) k;
ALTER TABLE orders ADD FOREIGN KEY (account_id) REFERENCES accounts (id);
CREATE INDEX orders_account_id ON orders (account_id);
VACUUM (FREEZE, ANALYZE) accounts, orders;
SELECT privacy_guard.protect('accounts', 'id', ARRAY['billing']);
SELECT privacy_guard.protect('orders', 'account_id', ARRAY['billing']);
-- the hand-written erasure's receipts: privacy_guard's own shape
CREATE TABLE hand_receipt (LIKE privacy_guard.erasure_request INCLUDING ALL) WITH (fillfactor = 50);
CREATE SEQUENCE hand_receipt_id_seq OWNED BY hand_receipt.id;
ALTER TABLE hand_receipt ALTER id SET DEFAULT nextval('hand_receipt_id_seq');
EOF
log "loaded in $(( $(date +%s) - t0 )) s"
SERVER_VERSION=$(q "SELECT version()")
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')

# the same state before every measurement: no dead rows, prewarmed, checkpointed
settle() {
	psql_su >/dev/null <<EOF
VACUUM accounts, orders, privacy_guard.erasure_request, hand_receipt;
$([ "$PREWARM" = yes ] && echo "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c WHERE c.relname IN ('accounts', 'orders', 'accounts_pkey', 'orders_pkey', 'orders_account_id');")
CHECKPOINT;
EOF
}
rows_of() {						# first last -> rows of those subjects in both tables
	q "SELECT (SELECT count(*) FROM accounts WHERE id BETWEEN $1 AND $2)
			  + (SELECT count(*) FROM orders WHERE account_id BETWEEN $1 AND $2)"
}
noop_round() { echo "SELECT privacy_guard.run_maintenance();" | timed_ms; }
lsn() { q "SELECT pg_current_wal_lsn()"; }
wal_mb() { q "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$1') / 1048576.0, 1)"; }	# since lsn $1
noop_round >/dev/null			# caches
# earlier receipts closed: a round notes the vacuum counts they wait for,
# and after a VACUUM that began once they had committed, the next closes them
close_receipts() {
	settle
	noop_round >/dev/null
	settle
	noop_round >/dev/null
}

if [ "$HISTORY" -gt 0 ]; then
	# receipts kept from earlier requests, filed a chunk at a time (keys beyond the tables' ids)
	log "history: $HISTORY receipts of earlier requests"
	t0=$(date +%s)
	for ((h = 0; h < HISTORY; h += 20000)); do
		q "SELECT count(privacy_guard.forget(g::text)) FROM generate_series($((PARENT_ROWS + 1 + h)), $((PARENT_ROWS + h + (HISTORY - h < 20000 ? HISTORY - h : 20000)))) g" >/dev/null
		q "SELECT privacy_guard.run_maintenance()" >/dev/null
		log "  history: $((h + 20000 < HISTORY ? h + 20000 : HISTORY))"
	done
	close_receipts
	open=$(q "SELECT count(*) FROM privacy_guard.erasure_request WHERE state <> 'done' OR unreachable_at IS NULL")
	[ "$open" = 0 ] || die "$open receipts of the history are still open"
	log "history in $(( $(date +%s) - t0 )) s"
fi

for ((r = 1; r <= RUNS; r++)); do
	base=$(( (r - 1) * (3 * REQUESTS + 2) ))
	# forget: base+1 .. base+REQUESTS; hand: the next REQUESTS; hand with receipts: the next; single: the last two
	fa=$((base + 1)); fb=$((base + REQUESTS))
	ha=$((fb + 1)); hb=$((fb + REQUESTS))
	ra=$((hb + 1)); rb=$((hb + REQUESTS))
	sa=$((rb + 1)); sb=$((rb + 2))
	if has_phase bulk; then
		nf=$(rows_of "$fa" "$fb")
		nh=$(rows_of "$ha" "$hb")
		nr=$(rows_of "$ra" "$rb")
		do_forget() {
			close_receipts
			noop=$(noop_round)	# before the requests are filed
			q "SELECT count(privacy_guard.forget(g::text)) FROM generate_series($fa, $fb) g" >/dev/null
			settle
			l0=$(lsn)
			fms=$(echo "SELECT privacy_guard.run_maintenance();" | timed_ms)
			fwal=$(wal_mb "$l0")
			open=$(q "SELECT count(*) FROM privacy_guard.erasure_request WHERE state <> 'done'")
			[ "$open" = 0 ] || die "$open forget requests are not done after one round"
		}
		do_hand() {
			settle
			l0=$(lsn)
			hms=$(printf 'BEGIN;\nDELETE FROM orders WHERE account_id BETWEEN %s AND %s;\nDELETE FROM accounts WHERE id BETWEEN %s AND %s;\nCOMMIT;\n' \
				"$ha" "$hb" "$ha" "$hb" | timed_ms)
			hwal=$(wal_mb "$l0")
		}
		do_hand_receipts() {
			q "INSERT INTO hand_receipt (subject, subject_digest, due)
			   SELECT g::text, encode(sha256(convert_to(g::text, 'UTF8')), 'hex'), now() FROM generate_series($ra, $rb) g" >/dev/null
			settle
			l0=$(lsn)
			hrms=$(timed_ms <<EOF
BEGIN;
WITH o AS (DELETE FROM orders WHERE account_id BETWEEN $ra AND $rb RETURNING account_id AS k),
	 a AS (DELETE FROM accounts WHERE id BETWEEN $ra AND $rb RETURNING id AS k),
	 n AS (SELECT x.k, count(*) FILTER (WHERE x.t = 'a') AS a, count(*) FILTER (WHERE x.t = 'o') AS o
			 FROM (SELECT o.k, 'o' AS t FROM o UNION ALL SELECT a.k, 'a' FROM a) x GROUP BY x.k)
UPDATE hand_receipt r
   SET state = 'done', completed_at = now(), erased_at = now(), subject = NULL, changed_xid = pg_current_xact_id(),
	   counts = jsonb_build_object('public.accounts', jsonb_build_object('deleted', n.a),
								   'public.orders', jsonb_build_object('deleted', n.o)),
	   touched = ARRAY['accounts'::regclass, 'orders'::regclass]::oid[]
  FROM n WHERE r.subject = n.k::text;
COMMIT;
EOF
)
			hrwal=$(wal_mb "$l0")
			open=$(q "SELECT count(*) FROM hand_receipt WHERE state <> 'done'")
			[ "$open" = 0 ] || die "$open hand-written receipts are not done"
		}
		if ((r % 2)); then do_forget; do_hand; do_hand_receipts; else do_hand_receipts; do_hand; do_forget; fi
		left=$(( $(rows_of "$fa" "$fb") + $(rows_of "$ha" "$hb") + $(rows_of "$ra" "$rb") ))
		[ "$left" = 0 ] || die "$left rows of the forgotten subjects are left"
		rec bulk_ms round "$r" "$fms"
		rec bulk_ms hand "$r" "$hms"
		rec bulk_ms receipts "$r" "$hrms"
		rec bulk_ms noop "$r" "$noop"
		rec bulk_wal round "$r" "$fwal"
		rec bulk_wal hand "$r" "$hwal"
		rec bulk_wal receipts "$r" "$hrwal"
		rec bulk_rows round "$r" "$nf"
		rec bulk_rows hand "$r" "$nh"
		rec bulk_rows receipts "$r" "$nr"
		log "  bulk run $r: $REQUESTS requests: round $fms ms, $fwal MB of WAL (no-op round $noop ms) for $nf rows; hand-written $hms ms, $hwal MB for $nh rows; with receipts $hrms ms, $hrwal MB for $nr rows"
	fi
	if has_phase single; then
		do_forget1() {
			close_receipts
			noop1=$(noop_round)
			q "SELECT privacy_guard.forget('$sa')" >/dev/null
			settle
			rms=$(echo "SELECT privacy_guard.run_maintenance();" | timed_ms)
			[ "$(q "SELECT privacy_guard.erasure_status('$sa')")" = done ] ||
				die "the forget request did not complete in one round"
		}
		do_hand1() {
			settle
			h1=$(printf 'BEGIN;\nDELETE FROM orders WHERE account_id = %s;\nDELETE FROM accounts WHERE id = %s;\nCOMMIT;\n' \
				"$sb" "$sb" | timed_ms)
		}
		if ((r % 2)); then do_hand1; do_forget1; else do_forget1; do_hand1; fi
		[ "$(rows_of "$sa" "$sb")" = 0 ] || die "rows of the single subjects are left"
		share=$(awk -v a="$rms" -v b="$noop1" 'BEGIN { printf "%.3f\n", a - b }')
		rec single_ms round "$r" "$rms"
		rec single_ms noop "$r" "$noop1"
		rec single_ms share "$r" "$share"
		rec single_ms hand "$r" "$h1"
		log "  single run $r: round $rms ms - no-op $noop1 ms = $share ms; hand-written $h1 ms"
	fi
done

RECEIPTS=$(q "SELECT count(*) FROM privacy_guard.erasure_request")
RECEIPTS_SIZE=$(q "SELECT pg_size_pretty(pg_total_relation_size('privacy_guard.erasure_request'))")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
SIZES=$(q "SELECT string_agg(format('%s %s', c.relname, pg_size_pretty(pg_total_relation_size(c.oid))), ', ' ORDER BY c.relname)
			 FROM pg_class c WHERE c.relname IN ('accounts', 'orders') AND c.relkind = 'r'")

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
	echo "# privacy_guard forget benchmark ($TS)"
	echo
	echo "- commit $GIT_REV$GIT_DIRTY; privacy_guard.so md5 $SO_SUM (preloaded, worker off); $SERVER_VERSION"
	echo "- $(nproc 2>/dev/null || echo '?') CPUs; load average before $LOAD_BEFORE, after $LOAD_AFTER"
	echo "- durability: PostgreSQL's defaults (fsync, synchronous_commit and full_page_writes on), as the settings show"
	echo "- cluster: shared_buffers=$SHARED_BUFFERS (tables prewarmed: $PREWARM); sizes: $SIZES"
	echo "- receipts kept before the runs (HISTORY): $HISTORY; at the end: $RECEIPTS ($RECEIPTS_SIZE with its indexes)"
	bench_settings_md
	[ -z "$EXTRA_CONF" ] || echo "- extra settings: $(printf '%s' "$EXTRA_CONF" | paste -sd';')"
	echo "- data: accounts ($PARENT_ROWS rows, subject = primary key id), orders ($CHILD_PER per account,"
	echo "  foreign key to accounts, index on the subject column account_id); both protected, on_forget delete;"
	echo "  each run takes subjects of its own; VACUUM, prewarm and CHECKPOINT before every measurement;"
	echo "  $RUNS runs per variant, interleaved (the order alternates)"
	echo "- bulk: $REQUESTS forget requests filed (not timed), then one \`run_maintenance()\` (timed, all of it);"
	echo "  hand-written: \`BEGIN; DELETE FROM orders WHERE account_id BETWEEN a AND b; DELETE FROM accounts"
	echo "  WHERE id BETWEEN a AND b; COMMIT\` over $REQUESTS other subjects; hand-written with receipts: the same"
	echo "  DELETEs and an UPDATE of $REQUESTS receipts (a table like privacy_guard.erasure_request, filed before, not"
	echo "  timed: state, counts per table, tables written, key cleared) in one statement, over $REQUESTS more subjects"
	echo "- single: one request: \`run_maintenance()\` minus a no-op \`run_maintenance()\`, against"
	echo "  \`BEGIN; DELETE FROM orders WHERE account_id = s; DELETE FROM accounts WHERE id = s; COMMIT\`"
	echo "- ratio = ratio of medians; paired = median over runs of the same-run ratio"
	echo
	echo "| measurement | median | min | max | runs | ratio | paired | bar | verdict |"
	echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
	if has_phase bulk; then
		rbulk=$(ratio "$(med bulk_ms round)" "$(med bulk_ms hand)")
		row "bulk: run_maintenance() with $REQUESTS due requests, ms" round bulk_ms 1 "${rbulk}×" "$(paired_ratio bulk_ms round hand)×" "≤ ${BAR_BULK}× hand" "$(verdict "$rbulk" $BAR_BULK le)"
		row "bulk: hand-written set-based erasure of $REQUESTS subjects, ms" hand bulk_ms 1 "1.000×" "1.000×" "reference" "-"
		rr=$(ratio "$(med bulk_ms round)" "$(med bulk_ms receipts)")
		row "bulk: run_maintenance() against the hand-written erasure with receipts, ms" round bulk_ms 1 "${rr}×" "$(paired_ratio bulk_ms round receipts)×" "none (proposed: ≤ ${BAR_BULK}×)" "proposed: $(verdict "$rr" $BAR_BULK le)"
		row "bulk: hand-written set-based erasure with a receipt per subject, ms" receipts bulk_ms 1 "1.000×" "1.000×" "reference with receipts" "-"
		row "bulk: no-op run_maintenance() beside it, ms" noop bulk_ms 1 "" "" "" ""
		row "bulk: WAL written by the round, MB" round bulk_wal 1 "$(ratio "$(med bulk_wal round)" "$(med bulk_wal hand)")×" "" "" ""
		row "bulk: WAL written by the hand-written erasure, MB" hand bulk_wal 1 "1.000×" "" "" ""
		row "bulk: WAL written by the hand-written erasure with receipts, MB" receipts bulk_wal 1 "$(ratio "$(med bulk_wal receipts)" "$(med bulk_wal hand)")×" "" "" ""
		row "bulk: rows of the forgotten subjects" round bulk_rows 0 "" "" "" ""
		row "bulk: rows of the subjects erased by hand with receipts" receipts bulk_rows 0 "" "" "" ""
	fi
	if has_phase single; then
		rs=$(ratio "$(med single_ms share)" "$(med single_ms hand)")
		row "single: run_maintenance() with the request, ms" round single_ms 3 "" "" "" ""
		row "single: no-op run_maintenance(), ms" noop single_ms 3 "" "" "" ""
		row "single: the request's share (difference), ms" share single_ms 3 "${rs}×" "$(paired_ratio single_ms share hand)×" "≤ ${BAR_SINGLE}× hand" "$(verdict "$rs" $BAR_SINGLE le)"
		row "single: hand-written transaction (2 DELETEs), ms" hand single_ms 3 "1.000×" "1.000×" "reference" "-"
	fi
	echo
	echo "A round carries out many due requests in sets (one statement per table for up to 1,000 subjects,"
	echo "referencing tables first, as each table's owner); a few requests one at a time (docs/operations.md)."
} >"$SUMMARY"

mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/forget_$TS.md
{
	cat "$SUMMARY"
	echo
	echo "## Raw measurements (phase, variant, run, value)"
	echo
	echo '```'
	sort -t$'\t' -k1,1 -k2,2 -k3,3n "$RAW"
	echo '```'
} >"$REPORT"

echo
cat "$SUMMARY"
echo
echo "Full report (raw numbers): $REPORT"
