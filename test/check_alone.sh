#!/usr/bin/env bash
# test/check_alone.sh FILE... -- run each pg_regress file alone after
# sql/setup.sql, each in a temporary instance of its own:
#     make installcheck TEMP_INSTANCE=1 REGRESS="setup FILE" ISOLATION= TAP_TESTS=
# "make check-alone" runs it over every file of REGRESS; PRELOAD=0 (from the
# environment or the make command line) runs them without preloading, as
# "make installcheck PRELOAD=0" does.  Needs privacy_guard installed, as for
# "make installcheck", and runs as the user that may start PostgreSQL.
# The differences of a file that fails are kept in alone_diffs/FILE.diffs.
# Ends with "N alone: N passed, N failed" and fails if any did.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }

rm -rf alone_diffs
passed=0; failed=()
for f in "$@"; do
	rm -f regression.diffs
	if make -s PG_CONFIG="${PG_CONFIG:-pg_config}" installcheck TEMP_INSTANCE=1 REGRESS="setup $f" ISOLATION= TAP_TESTS= \
		>/dev/null 2>&1; then
		echo "ok      $f"
		passed=$((passed + 1))
	else
		echo "FAILED  $f"
		failed+=("$f")
		mkdir -p alone_diffs
		[ -f regression.diffs ] && cp regression.diffs "alone_diffs/$f.diffs"
	fi
done
echo "$# alone: $passed passed, ${#failed[@]} failed${failed:+ (${failed[*]}; see alone_diffs/)}"
[ ${#failed[@]} -eq 0 ]
