# bench/lib.sh -- what the benchmark scripts share: messages, PostgreSQL's
# binaries, a throwaway cluster, and the statistics of their results.
# Sourced by bench/*_bench.sh after they set BENCH (their name, for
# messages) and PG_CONFIG.  Results are lines of RAW:
#   phase <TAB> variant <TAB> run <TAB> value

die() { echo "$BENCH: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# PG_CONFIG's default and the throwaway cluster come from bin/cluster.sh
# shellcheck source=bin/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../bin/cluster.sh"

# PostgreSQL's binaries (BINDIR, SHAREDIR, PKGLIBDIR) and an installed
# privacy_guard; as_pg runs a program as the cluster owner (postgres when
# we are root).
bench_require_pg() {
	[ -x "$PG_CONFIG" ] || die "pg_config not found at $PG_CONFIG (set PG_CONFIG or PVG_PREFIX)"
	BINDIR=$("$PG_CONFIG" --bindir)
	SHAREDIR=$("$PG_CONFIG" --sharedir)
	PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
	local b
	for b in initdb pg_ctl psql pgbench createdb; do
		[ -x "$BINDIR/$b" ] || die "$BINDIR/$b is missing"
	done
	[ -f "$SHAREDIR/extension/privacy_guard.control" ] ||
		die "privacy_guard is not installed; run: make PG_CONFIG=$PG_CONFIG install"
	if [ "$(id -u)" -eq 0 ]; then
		id "${TEST_USER:-postgres}" >/dev/null 2>&1 || die "running as root needs a '${TEST_USER:-postgres}' user"
	fi
	as_pg() { pvg_as_owner "$@"; }
}

# A throwaway cluster (bin/cluster.sh) in a private directory WORK (unix
# socket only, random PORT), started with the settings every benchmark uses
# plus the lines on stdin (durability is PostgreSQL's default: fsync,
# synchronous_commit and full_page_writes on, as users run it), and an empty
# RAW.  On exit it is stopped and removed, after the script's bench_on_exit
# if it defines one (KEEP=1 leaves it running after a successful run).  Also
# changes into WORK, which the cluster owner can enter.
bench_cluster() {				# mktemp prefix
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	log "initdb (data and socket in a new /tmp/$1.*)"
	pvg_cluster_start "$1" -U postgres < <(
		cat <<EOF

# --- $BENCH ---
shared_buffers = $SHARED_BUFFERS
max_parallel_workers_per_gather = 0	# single-process plans for every variant
jit = off
autovacuum = off					# tables are vacuumed explicitly after loading
max_wal_size = 8GB
checkpoint_timeout = 1h
EOF
		cat
	) || die "the cluster did not start"
	WORK=$PVG_DIR
	PGDATA=$WORK/data
	PORT=$PVG_PORT
	RAW=$WORK/raw.tsv
	: >"$RAW"
	cd "$WORK" || die "cannot enter $WORK"
	log "cluster in $PGDATA (port $PORT, socket in $WORK)"
	bench_settings >"$WORK/settings.txt"
	log "settings: $(paste -sd';' "$WORK/settings.txt" | sed 's/;/; /g')"
}

# The settings a result depends on, as the server reports them (one
# "name=value" a line); every report prints them.
bench_settings() {
	as_pg "$BINDIR/psql" -X -At -h "$WORK" -p "$PORT" -U postgres -d postgres -c "
		SELECT name || '=' || pg_catalog.current_setting(name)
		FROM pg_catalog.pg_settings
		WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level',
					   'shared_buffers', 'max_parallel_workers_per_gather', 'jit',
					   'autovacuum', 'max_wal_size', 'checkpoint_timeout',
					   'shared_preload_libraries', 'server_version')
		ORDER BY name"
}

# The settings block of a report (markdown), from bench_settings.
bench_settings_md() {
	echo "- server settings: $(paste -sd';' "$WORK/settings.txt" | sed 's/;/; /g')"
}

bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if declare -F bench_on_exit >/dev/null; then bench_on_exit; fi
	if [ "${KEEP:-0}" = 1 ] && [ "$rc" -eq 0 ] && [ -n "${PVG_DIR:-}" ]; then
		echo "KEEP=1: cluster left running; connect with: psql -h $WORK -p $PORT -d bench -U postgres" >&2
		echo "  stop and remove it with: pg_ctl -D $PGDATA stop && rm -rf $WORK" >&2
		exit 0
	fi
	if [ "$rc" -ne 0 ] && [ -f "${PVG_DIR:-/nonexistent}/server.log" ]; then
		echo "$BENCH: failed (exit $rc); last server log lines:" >&2
		tail -n 20 "$PVG_DIR/server.log" >&2 || true
	fi
	cd / && KEEP=0 pvg_cluster_stop
	exit "$rc"
}

# the median of numbers on stdin, or "-"
bench_median() {
	sort -g | awk '{a[NR] = $1}
		END {
			if (NR == 0) { print "-"; exit }
			printf "%.3f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		}'
}

stats() {						# phase variant -> "n median min max"
	awk -F'\t' -v p="$1" -v v="$2" '$1 == p && $2 == v && $4 != "" && $4 != "-" {print $4}' "$RAW" | sort -g |
		awk '{a[NR] = $1}
			 END {
				if (NR == 0) { print "0 - - -"; exit }
				m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
				printf "%d %.3f %.3f %.3f\n", NR, m, a[1], a[NR]
			 }'
}
# median over runs of (variant / base in the same run)
paired_ratio() {				# phase variant base
	awk -F'\t' -v p="$1" -v v="$2" -v b="$3" '
		$1 == p && $2 == b {base[$3] = $4}
		$1 == p && $2 == v {val[$3] = $4}
		END {for (r in val) if ((r in base) && base[r] > 0) print val[r] / base[r]}' "$RAW" |
		bench_median
}
fmt() { awk -v x="$1" -v d="$2" 'BEGIN { if (x == "-") print "-"; else printf "%.*f\n", d, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f\n", a / b }'; }
# "le": a time ratio must be <= bar; "ge": a throughput ratio >= bar
verdict() {						# ratio bar le|ge
	awk -v r="$1" -v bar="$2" -v op="$3" 'BEGIN {
		if (r == "-") { print "-"; exit }
		ok = (op == "le") ? (r <= bar) : (r >= bar)
		print ok ? "meets" : "**MISSES**"
	}'
}

# The SQL of the twin tables the per-connection benchmarks read (stdout):
# plain_t and prot_t, ROWS rows each (id 1..ROWS, one subject per row), prot_t
# protected for the consent purpose marketing, 60% of the subjects (id % 5 < 3)
# consenting (written straight into the consent store, valid until
# VALID_UNTIL, an SQL expression, NULL for open-ended), role bench_app (which
# must exist) authorised and allowed to read both.
bench_twin_sql() {				# ROWS [VALID_UNTIL]
	cat <<EOF
CREATE EXTENSION privacy_guard;
SELECT privacy_guard.define_purpose('marketing', 'consent');
CREATE TABLE plain_t (id int PRIMARY KEY, v text);
INSERT INTO plain_t SELECT g, 'v' || g FROM generate_series(1, $1) g;
CREATE TABLE prot_t (id int PRIMARY KEY, v text);
INSERT INTO prot_t SELECT g, 'v' || g FROM generate_series(1, $1) g;
GRANT SELECT ON plain_t, prot_t TO bench_app;
SELECT privacy_guard.allow_purpose('bench_app', 'marketing');
SELECT privacy_guard.protect('prot_t', 'id', ARRAY['marketing']);
INSERT INTO privacy_guard.consent_state (subject, purpose, status, valid_until)
SELECT g::text, 'marketing', 'granted', ${2:-NULL}
  FROM generate_series(1, $1) g WHERE g % 5 < 3;
VACUUM ANALYZE plain_t;
VACUUM ANALYZE prot_t;
VACUUM ANALYZE privacy_guard.consent_state;
EOF
}
