# shellcheck shell=bash
# bin/cluster.sh -- sourced by bin/setup, bin/demo, test/run_pgtap.sh and
# bench/lib.sh: which PostgreSQL to use, and a throwaway cluster.
#
#   PG_CONFIG      the pg_config of the PostgreSQL to build and test against;
#                  default: Debian's PostgreSQL $PVG_PGV, or the private copy
#                  made under PVG_PREFIX by "PVG_PREFIX=/some/dir bin/setup"
#                  (the Makefile reads the same default from this file)
#   pvg_as_owner CMD...
#                  runs CMD as the cluster's owner: TEST_USER (default
#                  postgres) when we are root, else ourselves (initdb and
#                  postgres refuse to run as root)
#   pvg_cluster_start NAME [initdb options...] <<<"settings"
#                  initdb in a new private directory /tmp/NAME.XXXXXX
#                  (PVG_DIR, owned by the cluster's owner; the data directory
#                  is PVG_DIR/data), appends "listen_addresses = ''", the
#                  socket directory PVG_DIR, the port (PVG_PORT, random unless
#                  set) and the lines on stdin to postgresql.conf, and starts
#                  it.  The server log is PVG_DIR/server.log.  PGHOST and
#                  PGPORT are exported.  Unix socket only, so nothing else can
#                  reach it and no port can clash.
#   pvg_cluster_stop
#                  stops the cluster at once and removes PVG_DIR (KEEP=1:
#                  keeps the directory, for its logs).  pvg_cluster_start
#                  makes it the EXIT trap unless the caller has set one
#                  (which must then call it).

PVG_PGV=15                  # the PostgreSQL major version (bin/setup installs its packages)
export PVG_PGV
PVG_PG_CONFIG_DEFAULT=/usr/lib/postgresql/15/bin/pg_config
PG_CONFIG=${PG_CONFIG:-${PVG_PREFIX:-}$PVG_PG_CONFIG_DEFAULT}

pvg_as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "${TEST_USER:-postgres}" -- "$@"
	else
		"$@"
	fi
}

pvg_cluster_start() {
	local name=$1 bindir
	shift
	bindir=$("$PG_CONFIG" --bindir) || return 1
	# short path: unix socket paths are limited to ~107 bytes
	PVG_DIR=$(mktemp -d "/tmp/$name.XXXXXX")
	PVG_PORT=${PVG_PORT:-$((20000 + RANDOM % 30000))}
	PVG_BINDIR=$bindir
	if [ -z "$(trap -p EXIT)" ]; then trap pvg_cluster_stop EXIT; fi
	if [ "$(id -u)" -eq 0 ]; then chown "${TEST_USER:-postgres}": "$PVG_DIR"; fi
	pvg_as_owner "$bindir/initdb" -D "$PVG_DIR/data" -A trust --no-locale -E UTF8 "$@" \
		>"$PVG_DIR/initdb.log" 2>&1 ||
		{ cat "$PVG_DIR/initdb.log" >&2; echo "initdb failed" >&2; return 1; }
	{
		printf '\n'
		printf "listen_addresses = ''\n"
		printf "unix_socket_directories = '%s'\n" "$PVG_DIR"
		printf 'port = %s\n' "$PVG_PORT"
		cat
	} >>"$PVG_DIR/data/postgresql.conf"
	pvg_as_owner "$bindir/pg_ctl" -D "$PVG_DIR/data" -l "$PVG_DIR/server.log" -w -t 60 start >/dev/null ||
		{ tail -n 50 "$PVG_DIR/server.log" >&2; echo "the server did not start" >&2; return 1; }
	export PGHOST=$PVG_DIR PGPORT=$PVG_PORT
}

# shellcheck disable=SC2317  # called through the trap
pvg_cluster_stop() {
	[ -n "${PVG_DIR:-}" ] || return 0
	if [ -f "$PVG_DIR/data/postmaster.pid" ]; then
		pvg_as_owner "$PVG_BINDIR/pg_ctl" -D "$PVG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $PVG_DIR" >&2; else rm -rf "$PVG_DIR"; fi
	PVG_DIR=
}
