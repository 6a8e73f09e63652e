#!/usr/bin/env bash
# bench/tagged_bench.sh -- cost of consent-tagged values (issue 4)
#
# Builds a throwaway PostgreSQL cluster with two tables of ROWS rows and
# SUBJECTS subjects (60% consenting to the consent purpose):
#   plain_t  (id, customer_id, email text,        amount numeric)
#   tag_t    (id, customer_id, email tagged_text, amount numeric)
# where every email of tag_t is tagged with purposes billing (contract) and
# marketing (consent) and its subject.  As an ordinary application role with
# a warm cache it times, interleaved, in one session per round:
#   scan:      SELECT count(*), sum(length(x))                x = email / reveal(email)
#   aggregate: SELECT customer_id % 100, max(x) ... GROUP BY 1
# under billing (rule 3.4 without a consent lookup) and marketing (one
# subject-set probe per value), and reports medians, min/max and the ratio
# tagged / plain of the medians; plus the storage per value.  Results go to
# bench/results/tagged_<timestamp>.md (git-ignored).  The cluster is removed
# on exit.
#
# Usage:   bench/tagged_bench.sh
# Quick:   ROWS=100000 SUBJECTS=10000 RUNS=5 bench/tagged_bench.sh
# Settings: ROWS=1000000 SUBJECTS=100000 RUNS=7 SHARED_BUFFERS=512MB
#           PG_CONFIG=/path/to/pg_config (default: bin/cluster.sh) RESULTS_DIR=bench/results
# As root it runs PostgreSQL and psql as user postgres (runuser).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROWS=${ROWS:-1000000}
SUBJECTS=${SUBJECTS:-100000}
RUNS=${RUNS:-7}
SHARED_BUFFERS=${SHARED_BUFFERS:-512MB}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

BENCH=tagged_bench
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

bench_require_pg
for n in ROWS SUBJECTS RUNS; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"
done
[ "$RUNS" -ge 5 ] || die "RUNS must be at least 5 (medians of >= 5 runs)"
[ "$SUBJECTS" -ge 5 ] && [ "$ROWS" -ge "$SUBJECTS" ] || die "need ROWS >= SUBJECTS >= 5"

# reveal() is PARALLEL RESTRICTED: single-process plans for both tables
bench_cluster pvgbench-tagged <<<"shared_preload_libraries = 'privacy_guard'"
PSQL_ARGS=(-X -q -h "$WORK" -p "$PORT" -d bench -v ON_ERROR_STOP=1)
psql_su() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U postgres "$@"; }
psql_app() { as_pg "$BINDIR/psql" "${PSQL_ARGS[@]}" -U bench_app "$@"; }
as_pg "$BINDIR/createdb" -h "$WORK" -p "$PORT" -U postgres bench

log "loading $ROWS rows x 2 tables, $SUBJECTS subjects"
psql_su >/dev/null <<SQL
CREATE EXTENSION privacy_guard;
CREATE ROLE bench_app LOGIN;
SELECT privacy_guard.define_purpose('billing', 'contract');
SELECT privacy_guard.define_purpose('marketing', 'consent');
SELECT privacy_guard.allow_purpose('bench_app', 'billing');
SELECT privacy_guard.allow_purpose('bench_app', 'marketing');
CREATE TABLE plain_t (id bigint, customer_id bigint, email text, amount numeric);
INSERT INTO plain_t SELECT g, g % $SUBJECTS, 'customer-' || (g % $SUBJECTS) || '-' || g || '@example.org', g % 1000
  FROM generate_series(1, $ROWS) g;
CREATE TABLE tag_t (id bigint, customer_id bigint, email privacy_guard.tagged_text, amount numeric);
INSERT INTO tag_t SELECT id, customer_id,
	   privacy_guard.tag(email, ARRAY['billing', 'marketing'], customer_id::text), amount
  FROM plain_t;
-- 60% of the subjects consent to marketing
INSERT INTO privacy_guard.consent_state (subject, purpose, status)
	SELECT s::text, 'marketing', 'granted' FROM generate_series(0, $SUBJECTS - 1) s WHERE s % 5 < 3;
GRANT SELECT ON plain_t, tag_t TO bench_app;
VACUUM ANALYZE plain_t, tag_t;
SQL
if [ -f "$SHAREDIR/extension/pg_prewarm.control" ]; then
	psql_su -c "CREATE EXTENSION pg_prewarm" -c "SELECT pg_prewarm('plain_t'), pg_prewarm('tag_t')" >/dev/null
fi

# sanity: what each purpose reveals
EXPECTED_CONSENT=$(psql_su -At -c "SELECT count(*) FROM plain_t WHERE customer_id % 5 < 3")
SEEN_BILLING=$(PGOPTIONS="-c privacy_guard.purpose=billing" psql_app -At -c "SELECT count(privacy_guard.reveal(email)) FROM tag_t")
SEEN_MARKETING=$(PGOPTIONS="-c privacy_guard.purpose=marketing" psql_app -At -c "SELECT count(privacy_guard.reveal(email)) FROM tag_t")
[ "$SEEN_BILLING" -eq "$ROWS" ] || die "billing reveals $SEEN_BILLING values, expected $ROWS"
[ "$SEEN_MARKETING" -eq "$EXPECTED_CONSENT" ] || die "marketing reveals $SEEN_MARKETING, expected $EXPECTED_CONSENT"

STORAGE=$(psql_su -At -F '|' -c "
	SELECT round(avg(pg_column_size(p.email)), 1), round(avg(pg_column_size(t.email)), 1),
		   pg_size_pretty(pg_table_size('plain_t')), pg_size_pretty(pg_table_size('tag_t'))
	  FROM plain_t p JOIN tag_t t USING (id) WHERE p.id % 100 = 0")
IFS='|' read -r SIZE_PLAIN SIZE_TAG TABLE_PLAIN TABLE_TAG <<<"$STORAGE"

# variants: name|purpose|query
VARIANTS=(
	"scan plain|billing|SELECT count(*), sum(length(email)) FROM plain_t"
	"scan tagged billing|billing|SELECT count(*), sum(length(privacy_guard.reveal(email))) FROM tag_t"
	"scan tagged marketing|marketing|SELECT count(*), sum(length(privacy_guard.reveal(email))) FROM tag_t"
	"agg plain|billing|SELECT customer_id % 100, max(email) FROM plain_t GROUP BY 1"
	"agg tagged billing|billing|SELECT customer_id % 100, max(privacy_guard.reveal(email)) FROM tag_t GROUP BY 1"
	"agg tagged marketing|marketing|SELECT customer_id % 100, max(privacy_guard.reveal(email)) FROM tag_t GROUP BY 1"
)
log "timing: 1 warm-up + $RUNS rounds x ${#VARIANTS[@]} variants, interleaved, one session per round"
for r in $(seq 0 "$RUNS"); do
	n=${#VARIANTS[@]}
	# one session per round (preloaded library, caches warmed by an untimed
	# run of each variant), then each variant once, timed
	out=$( {
		echo '\o /dev/null'
		for k in $(seq 0 $((n - 1))); do
			v=${VARIANTS[$(((k + r) % n))]}
			IFS='|' read -r name purpose query <<<"$v"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "$query;"
		done
		echo '\timing on'
		for k in $(seq 0 $((n - 1))); do
			v=${VARIANTS[$(((k + r) % n))]}
			IFS='|' read -r name purpose query <<<"$v"
			echo "SET privacy_guard.purpose = '$purpose';"
			echo "\\echo @@ $name"
			echo "$query;"
		done
	} | psql_app 2>&1)
	for k in $(seq 0 $((n - 1))); do
		v=${VARIANTS[$(((k + r) % n))]}
		IFS='|' read -r name purpose query <<<"$v"
		ms=$(printf '%s\n' "$out" | awk -v m="@@ $name" '$0 == m {f = 1; next} f && /^Time: / {print $2; exit}')
		[ -n "$ms" ] || die "no timing for $name"
		[ "$r" -eq 0 ] || printf 'scan\t%s\t%s\t%s\n' "$name" "$r" "$ms" >>"$RAW"
	done
done

mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/tagged_$(date +%Y%m%d_%H%M%S).md
{
	echo "# tagged_text benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	echo "$ROWS rows, $SUBJECTS subjects (60% consenting to marketing), $RUNS timed rounds, interleaved;"
	echo "$($BINDIR/postgres --version), shared_buffers $SHARED_BUFFERS, no parallel workers, load $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "One session per round, its caches warmed by an untimed run of every variant; the library preloaded."
	bench_settings_md
	echo
	echo "| variant | median ms | min | max | ratio to plain (medians) |"
	echo "|---|---:|---:|---:|---:|"
	for v in "${VARIANTS[@]}"; do
		IFS='|' read -r name purpose query <<<"$v"
		read -r _ med min max <<<"$(stats scan "$name")"
		read -r _ base _ _ <<<"$(stats scan "${name%% *} plain")"
		echo "| $name | $(fmt "$med" 1) | $(fmt "$min" 1) | $(fmt "$max" 1) | $(fmt "$(ratio "$med" "$base")" 2) |"
	done
	echo
	echo "Storage: email averages $SIZE_PLAIN bytes as text and $SIZE_TAG bytes as tagged_text"
	echo "(tag: 2 purposes, a subject key of about 5 characters, no retain-until);"
	echo "tables $TABLE_PLAIN (plain_t) and $TABLE_TAG (tag_t)."
	echo
	echo "Revealed rows: billing $SEEN_BILLING, marketing $SEEN_MARKETING of $ROWS."
} | tee "$OUT"
log "written to $OUT"
