#!/usr/bin/env bash
# test/suites/apps.sh -- the application recipes under examples/ (psycopg2,
# SQLAlchemy, Django, Node's pg) and the example shop in headless Chromium,
# each against a throwaway cluster with privacy_guard preloaded.
#
# Run by bin/test as root with SRC, WORK, PG_CONFIG and TEST_USER exported;
# runnable on its own (as root, or as a user who already has the packages):
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config bash test/suites/apps.sh
# Installs what is missing (Debian packages; npm packages into a directory of
# its own), starts PostgreSQL as TEST_USER on a free port with its socket in
# a temporary directory (nothing listens on TCP but the shop, on localhost),
# and PgBouncer in transaction pooling mode in front of it; runs each recipe
# straight against PostgreSQL and again through PgBouncer;
# removes everything it started on exit, and prints "== ran N tests" last.
# APPS_ONLY="psycopg2 node" runs only some of the recipes; the shop's
# screenshots go to $APPS_SCREENSHOTS when set (docs/img is made that way).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC=${SRC:-$HERE}
WORK=${WORK:-$HERE}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
TEST_USER=${TEST_USER:-postgres}
export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset TMPDIR
BINDIR=$("$PG_CONFIG" --bindir)
EX=$WORK/examples
t_start=$SECONDS

SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ "$(id -u)" -eq 0 ]; then AS_USER=(runuser -u "$TEST_USER" --); else AS_USER=(); fi
installed() { case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" in ii*) return 0;; *) return 1;; esac; }

# ---- what the recipes need ------------------------------------------------------
missing=()
for p in python3-psycopg2 python3-sqlalchemy python3-django chromium pgbouncer; do
  installed "$p" || missing+=("$p")
done
# Node: Debian's nodejs and npm, unless a node with npm is already there
# (e.g. from NodeSource, whose nodejs package conflicts with Debian's npm)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || exit 1
fi

# ---- a throwaway cluster -----------------------------------------------------------
T=$(mktemp -d /tmp/pvg-apps.XXXXXX)
chmod 755 "$T"
PGDATA=$T/data
SOCK=$T/sock
SHOP_PID=
cleanup() {
  [ -n "$SHOP_PID" ] && kill "$SHOP_PID" 2>/dev/null
  [ -s "$T/bouncer/pgbouncer.pid" ] && kill "$(cat "$T/bouncer/pgbouncer.pid")" 2>/dev/null
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS_USER[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$SOCK"
[ "$(id -u)" -eq 0 ] && chown "$TEST_USER": "$T" "$SOCK"
# a port no other server uses (its socket lives in our own directory, but a
# free number keeps the logs and ps output unambiguous)
PGPORT=
for p in $(seq 55432 55532); do
  if ! ls /tmp/.s.PGSQL.$p /var/run/postgresql/.s.PGSQL.$p >/dev/null 2>&1 \
     && ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then PGPORT=$p; break; fi
done
[ -n "$PGPORT" ] || { echo "no free port"; exit 1; }
"${AS_USER[@]}" "$BINDIR/initdb" -D "$PGDATA" -A trust -U postgres --no-instructions >"$T/initdb.log" 2>&1 \
  || { cat "$T/initdb.log"; exit 1; }
cat >>"$PGDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'privacy_guard'
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PGPORT
privacy_guard.naptime = 1s
max_connections = 40
timezone = 'UTC'
# as behind a transaction pooler: only SET LOCAL / set_config(..., true)
privacy_guard.purpose_scope = 'transaction'
CONF
"${AS_USER[@]}" "$BINDIR/pg_ctl" -D "$PGDATA" -l "$T/postgres.log" -w start >/dev/null \
  || { cat "$T/postgres.log"; exit 1; }
echo "== cluster up on port $PGPORT: $((SECONDS - t_start))s"
export PGHOST=$SOCK PGPORT
PSQL=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -U postgres)

# one fresh database per recipe, with the example schema
fresh_db() {
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE $1" >/dev/null &&
  "${PSQL[@]}" -d "$1" -f "$EX/schema.sql" >"$T/schema-$1.log" 2>&1 || { cat "$T/schema-$1.log"; return 1; }
}

ntests=0; failed=()
# the recipes check the refusal of a session-wide purpose only under this setting
scope=$("${PSQL[@]}" -d postgres -Atc "SHOW privacy_guard.purpose_scope" 2>&1)
ntests=$((ntests + 1))
if [ "$scope" = transaction ]; then
  echo "ok - the cluster runs with privacy_guard.purpose_scope = transaction"
else
  echo "not ok - privacy_guard.purpose_scope is '$scope', not transaction"; failed+=(purpose_scope)
fi
# run NAME CMD...: the recipe's TAP-like lines are shown and counted; a
# non-zero exit or a "not ok" line fails it
run() {
  local name=$1; shift
  local out=$T/out-${name//\//-}.log t0=$SECONDS
  echo "== recipe $name"
  "$@" >"$out" 2>&1; local rc=$?
  cat "$out"
  local ok nok
  ok=$(grep -c '^ok ' "$out"); nok=$(grep -c '^not ok ' "$out")
  ntests=$((ntests + ok + nok))
  if [ $rc -ne 0 ] || [ "$nok" -gt 0 ] || [ "$ok" -eq 0 ]; then
    echo "== recipe $name FAILED (exit $rc, $nok failed, $ok passed, $((SECONDS - t0))s)"
    failed+=("$name")
  else
    echo "== recipe $name: $ok passed ($((SECONDS - t0))s)"
  fi
}
wanted() { [ -z "${APPS_ONLY:-}" ] || [[ " $APPS_ONLY " == *" $1 "* ]]; }

# npm packages (pg, puppeteer-core) into a directory of their own
NODE_DIR=$T/node
if wanted node || wanted shop; then
  mkdir -p "$NODE_DIR"; cp "$EX/package.json" "$NODE_DIR/"
  echo "== npm install (pg, puppeteer-core)"; t0=$SECONDS
  ( cd "$NODE_DIR" && npm install --cache "${NPM_CACHE:-/tmp/pvg-npm-cache}" --no-audit --no-fund \
      --loglevel=error >"$T/npm.log" 2>&1 ) || { cat "$T/npm.log"; echo "== npm install failed"; exit 1; }
  echo "== npm install: $((SECONDS - t0))s"
  export NODE_PATH=$NODE_DIR/node_modules
fi

# ---- PgBouncer in transaction pooling mode, one server connection per pool ----------
# (as the recipes would be deployed; its socket beside the cluster's)
B=$T/bouncer; mkdir -p "$B"
BPORT=
for p in $(seq 56432 56532); do
  if [ "$p" != "$PGPORT" ] && ! ls /tmp/.s.PGSQL.$p >/dev/null 2>&1 \
     && ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then BPORT=$p; break; fi
done
printf '"shop_app" ""\n"postgres" ""\n' >"$B/users.txt"
cat >"$B/pgbouncer.ini" <<INI
[databases]
* = host=$SOCK port=$PGPORT

[pgbouncer]
listen_addr =
listen_port = $BPORT
unix_socket_dir = $B
auth_type = trust
auth_file = $B/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
logfile = $B/pgbouncer.log
pidfile = $B/pgbouncer.pid
INI
[ "$(id -u)" -eq 0 ] && chown -R "$TEST_USER": "$B"
# PgBouncer refuses to run as root: it runs as TEST_USER, as the cluster does
"${AS_USER[@]}" pgbouncer -d "$B/pgbouncer.ini" || { cat "$B/pgbouncer.log"; exit 1; }
for i in $(seq 1 40); do [ -S "$B/.s.PGSQL.$BPORT" ] && break; sleep 0.25; done
[ -S "$B/.s.PGSQL.$BPORT" ] || { cat "$B/pgbouncer.log"; echo "== pgbouncer did not start"; exit 1; }

# ---- the recipes: straight to PostgreSQL, then through PgBouncer -------------------
PY=/usr/bin/python3
for via in direct pgbouncer; do
  if [ $via = direct ]; then host=$SOCK port=$PGPORT; else host=$B port=$BPORT; fi
  for r in psycopg2 sqlalchemy django node; do
    wanted "$r" || continue
    db=r_${r}_$via
    fresh_db "$db" || { failed+=("$r/$via"); continue; }
    case $r in
      node) run "$r/$via" env PGHOST="$host" PGPORT="$port" PGDATABASE="$db" node "$EX/node/recipe.js" ;;
      *)    run "$r/$via" env PGHOST="$host" PGPORT="$port" PGDATABASE="$db" "$PY" "$EX/$r/recipe.py" ;;
    esac
    if [ $via = pgbouncer ]; then
      # the recipe did go through the pooler
      ntests=$((ntests + 1))
      if grep -q "login attempt: db=$db user=shop_app" "$B/pgbouncer.log"; then
        echo "ok - $r went through PgBouncer"
      else
        echo "not ok - PgBouncer's log shows no login of $r"; failed+=("$r/$via")
      fi
    fi
  done
done

# ---- the example shop in headless Chromium ---------------------------------------------
if wanted shop; then
  if fresh_db shop; then
    SHOP_PORT=
    for p in $(seq 18080 18180); do
      if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then SHOP_PORT=$p; break; fi
    done
    PGDATABASE=shop PGUSER=shop_app PORT=$SHOP_PORT node "$EX/shop/server.js" >"$T/shop.log" 2>&1 &
    SHOP_PID=$!
    # up within 30 s, or give up (polled, not slept)
    for i in $(seq 1 60); do
      (exec 3<>/dev/tcp/127.0.0.1/$SHOP_PORT) 2>/dev/null && break
      kill -0 "$SHOP_PID" 2>/dev/null || break
      sleep 0.5
    done
    SHOTS=${APPS_SCREENSHOTS:-$T/shots}; mkdir -p "$SHOTS"
    run shop env PGDATABASE=shop SHOP_URL="http://127.0.0.1:$SHOP_PORT" SHOTS="$SHOTS" \
      CHROMIUM=/usr/bin/chromium node "$EX/shop/journey.js"
    kill "$SHOP_PID" 2>/dev/null; wait "$SHOP_PID" 2>/dev/null; SHOP_PID=
    echo "-- shop server log:"; cat "$T/shop.log"
  else
    failed+=(shop)
  fi
fi

echo "== apps: $((SECONDS - t_start))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== apps FAILED: ${failed[*]}"
  tail -n 20 "$T/postgres.log"
  echo "== ran $ntests tests"
  exit 1
fi
echo "== ran $ntests tests"
