#!/usr/bin/env bash
# test/suites/deb_package.sh -- the Debian package, built and installed the
# way a Debian 12 administrator would:
#  1. dpkg-buildpackage -us -uc -b on a clean copy of the source (the files
#     git knows, without build results), and lintian on the result (errors fail)
#  2. the package holds the library, the control file and all three SQL
#     scripts (1.1, 1.0, and the update 1.0 -> 1.1)
#  3. installed with apt-get (dpkg -i that also fetches missing dependencies)
#     in place of the files "make install" left, its files are on disk as
#     packaged (dpkg --verify), and a throwaway cluster started as TEST_USER,
#     preloading the library, can create the extension at 1.1, and at 1.0
#     followed by ALTER EXTENSION ... UPDATE
#  4. removed again (dpkg -r through apt-get), after which "make install" from
#     SRC puts the build under test back for the suites that follow.
# Run by bin/test (as root, with SRC, PG_CONFIG and TEST_USER exported);
# prints "== ran N tests" last and exits non-zero when one failed.
set -uo pipefail
: "${SRC:?}" "${PG_CONFIG:?}" "${TEST_USER:=postgres}"
export LANG=C.UTF-8 LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive
unset TMPDIR

PGV=15
PKG=postgresql-$PGV-privacy-guard
PGBIN=/usr/lib/postgresql/$PGV/bin          # where the package puts things
EXTDIR=/usr/share/postgresql/$PGV/extension
LIBDIR=/usr/lib/postgresql/$PGV/lib
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
APT=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
[ -z "$SUDO" ] || APT=(sudo "${APT[@]}")

ntests=0; nfail=0
ok()   { ntests=$((ntests + 1)); echo "ok $ntests - $1"; }
fail() { ntests=$((ntests + 1)); nfail=$((nfail + 1)); echo "not ok $ntests - $1"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

T=$(mktemp -d /tmp/pvg-deb.XXXXXX)
chmod 755 "$T"; chown "$TEST_USER": "$T"      # the test cluster and its socket live here
installed_here=0; cluster=
cleanup() {
  if [ -n "$cluster" ]; then
    runuser -u "$TEST_USER" -- "$PGBIN/pg_ctl" -D "$cluster" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ $installed_here = 1 ]; then
    "${APT[@]}" remove "$PKG" >/dev/null 2>&1 || true
    $SUDO make -s -C "$SRC" PG_CONFIG="$PG_CONFIG" install >/dev/null 2>&1 || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

# ---- build dependencies ----------------------------------------------------------
have() { case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" in ii*) return 0;; *) return 1;; esac; }
missing=(); for p in build-essential dpkg-dev debhelper postgresql-server-dev-all lintian fakeroot; do have "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${APT[@]}" install "${missing[@]}" >/dev/null || { echo "cannot install ${missing[*]}"; echo "== ran 0 tests"; exit 1; }
fi

# ---- 1. build from a clean copy --------------------------------------------------
mkdir "$T/privacy-guard"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  # what git knows or would add (committed or not), never ignored build results
  git -C "$SRC" ls-files -co --exclude-standard -z | tar -C "$SRC" --null -T - -cf - | tar -C "$T/privacy-guard" -xf -
else
  tar -C "$SRC" --exclude=./.git -cf - . | tar -C "$T/privacy-guard" -xf -
  make -s -C "$T/privacy-guard" PG_CONFIG="$PG_CONFIG" clean >/dev/null
fi
echo "== dpkg-buildpackage -us -uc -b"
if (cd "$T/privacy-guard" && dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1; then
  ok "dpkg-buildpackage -us -uc -b"
else
  tail -n 40 "$T/build.log"; fail "dpkg-buildpackage -us -uc -b"
fi
deb=$(find "$T" -maxdepth 1 -name "${PKG}_*.deb" | head -1)
check "it produced ${PKG}_*.deb" test -n "$deb"
if [ -z "$deb" ]; then echo "== ran $ntests tests"; exit 1; fi
grep -E '^dpkg-deb: building package' "$T/build.log"

echo "== lintian"
lintian --tag-display-limit 0 "$T"/privacy-guard_*.changes >"$T/lintian.log" 2>&1
grep -E '^[EW]: ' "$T/lintian.log" || true
echo "lintian: $(grep -c '^E: ' "$T/lintian.log") errors, $(grep -c '^W: ' "$T/lintian.log") warnings"
no_lintian_errors() { ! grep -q '^E: ' "$T/lintian.log"; }
check "lintian: no errors" no_lintian_errors

# ---- 2. the package's files ------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$T/files"
for f in "$LIBDIR/privacy_guard.so" "$EXTDIR/privacy_guard.control" \
         "$EXTDIR/privacy_guard--1.1.sql" "$EXTDIR/privacy_guard--1.0.sql" \
         "$EXTDIR/privacy_guard--1.0--1.1.sql"; do
  check "the package holds $f" grep -qxF "$f" "$T/files"
done
depends_on_server() { dpkg-deb -f "$deb" Depends | grep -qE "(^|, )postgresql-$PGV( |,|\$)"; }
check "the package depends on postgresql-$PGV" depends_on_server

# ---- 3. installed ----------------------------------------------------------------
have "$PKG" && echo "note: $PKG was installed before this suite; it is removed at its end"
# bin/setup's "make install" wrote the same paths: remove its files, so that
# what follows sees the package's files only ("make install" puts them back)
installed_here=1
$SUDO rm -f "$LIBDIR/privacy_guard.so" "$EXTDIR"/privacy_guard.control "$EXTDIR"/privacy_guard--*.sql
echo "== apt-get install $deb"
check "the package installs" "${APT[@]}" install "$deb"
as_packaged() {
  [ -z "$(dpkg --verify "$PKG")" ] && dpkg -S "$LIBDIR/privacy_guard.so" | grep -q "^$PKG:"
}
check "its files are on disk as packaged (dpkg --verify)" as_packaged

cluster=$T/data
runuser -u "$TEST_USER" -- "$PGBIN/initdb" -D "$cluster" -U postgres -A trust --no-sync >"$T/initdb.log" 2>&1 \
  || cat "$T/initdb.log"
cat >>"$cluster/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$T'
port = 5432
shared_preload_libraries = 'privacy_guard'
fsync = off
CONF
check "a cluster preloading the packaged library starts" \
  runuser -u "$TEST_USER" -- "$PGBIN/pg_ctl" -D "$cluster" -l "$T/server.log" -w -t 60 start
psql() { runuser -u "$TEST_USER" -- "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$T" -U postgres "$@"; }
version_is() { [ "$(psql -d "$1" -c "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'privacy_guard'" 2>&1)" = "$2" ]; }

fresh_is_1_1() {
  psql -d pvg_fresh -c 'CREATE EXTENSION privacy_guard' && version_is pvg_fresh 1.1
}
purpose_works() {
  psql -d pvg_fresh -c "SELECT privacy_guard.define_purpose('deb_billing', 'contract')" >/dev/null &&
  [ "$(psql -d pvg_fresh -c "SELECT legal_basis FROM privacy_guard.purposes WHERE name = 'deb_billing'")" = contract ]
}
old_is_1_0() {
  psql -d pvg_update -c "CREATE EXTENSION privacy_guard VERSION '1.0'" && version_is pvg_update 1.0
}
updated_is_1_1() {
  psql -d pvg_update -c 'ALTER EXTENSION privacy_guard UPDATE' && version_is pvg_update 1.1
}
echo "== CREATE EXTENSION privacy_guard"
psql -d postgres -c 'CREATE DATABASE pvg_fresh' -c 'CREATE DATABASE pvg_update'
check "CREATE EXTENSION privacy_guard gives 1.1" fresh_is_1_1
check "and it works: a purpose is defined and listed" purpose_works
check "CREATE EXTENSION privacy_guard VERSION '1.0' gives 1.0" old_is_1_0
check "ALTER EXTENSION privacy_guard UPDATE gives 1.1" updated_is_1_1
runuser -u "$TEST_USER" -- "$PGBIN/pg_ctl" -D "$cluster" -m fast -w stop >/dev/null
cluster=

# ---- 4. removed, and the build under test put back ---------------------------------
removed() {
  "${APT[@]}" remove "$PKG" >/dev/null && ! have "$PKG" && [ ! -e "$LIBDIR/privacy_guard.so" ]
}
reinstalled() {
  $SUDO make -s -C "$SRC" PG_CONFIG="$PG_CONFIG" install >/dev/null &&
  [ -e "$("$PG_CONFIG" --pkglibdir)/privacy_guard.so" ]
}
echo "== apt-get remove $PKG"
check "the package is removed, and its library with it" removed
installed_here=0
check "make install from SRC puts the build under test back" reinstalled

echo "== ran $ntests tests"
[ $nfail -eq 0 ]
