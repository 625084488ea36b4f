#!/usr/bin/env bash
# test.sh: installs what is missing, builds sluice, and runs every test: unit
# tests, SQL script tests and integration tests against a throw-away PostgreSQL
# (pg_virtualenv) with pgbouncer in transaction mode; then the same tests in an
# ASan+UBSan build (of the slow suite only a shorter kill loop). Ends with one
# line "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)
log=$(mktemp /tmp/sluice-test.XXXXXX)
trap 'rm -f "$log"' EXIT

configure() {  # configure DIR [meson options...]
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

scripts/check-format.sh

configure build
ninja -C build -j "$jobs"
# ASan + UBSan build of the same tests (halts on the first UBSan report).
configure build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan -j "$jobs"

run_suite() {  # run_suite BUILD_DIR [meson test args...]
  local dir=$1; shift
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    pg_virtualenv -t -- scripts/with-pgbouncer.sh \
    meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}

status=0
run_suite build || status=1
run_suite build-asan --timeout-multiplier 3 --no-suite slow || status=1
# The kill loop under the sanitizers too, shorter (12 kills, 8,000 changes,
# about 10 s): a memory error on a path only a kill at a random moment reaches.
SLUICE_KILL_ITERATIONS=12 SLUICE_KILL_MIN_CHANGES=8000 \
  run_suite build-asan --timeout-multiplier 3 e2e_kill_loop || status=1

ok=$(awk '/^Ok:/ {s+=$2} END {print s+0}' "$log")
fail=$(awk '/^(Fail|Unexpected Pass|Timeout):/ {s+=$NF} END {print s+0}' "$log")
skip=$(awk '/^Skipped:/ {s+=$2} END {print s+0}' "$log")
echo "tests: $ok passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || status=1
exit "$status"
