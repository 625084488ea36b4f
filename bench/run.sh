#!/usr/bin/env bash
# run.sh [SECTION] [--quick] [sluice_bench options...]: builds sluice and the
# bench in build-bench/ (release), then runs bench/sluice_bench against a
# throw-away PostgreSQL (pg_virtualenv). Prints a human summary (also saved as
# .txt) and writes every figure with its conditions as JSON:
#   full run:  bench/results/latest.json        (1,000,000 changes, 10 s runs,
#                                                10 takeovers per failover setting)
#   --quick:   bench/results/latest-quick.json  (50,000 changes, 3 s runs, 3 takeovers)
# SECTION runs one part alone and writes bench/results/SECTION[-quick].json:
#   catchup (a, d), latency (b), trigger (c), failover (f: a pair of agents,
#   SIGKILL / SIGTERM of the leader, the lease's cost), conflicts (g: catch-up
#   with conflict detection off / on and 0, 1, 10 % of the backlog in conflict;
#   about 14 min, so not in the default full run).
# Environment: SLUICE_BENCH_BUILDDIR (default build-bench); SLUICE_BENCH_PG=1
# uses the PG* environment / --conninfo as is instead of pg_virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=${SLUICE_BENCH_BUILDDIR:-build-bench}
name=latest
section=()
case "${1:-}" in
  catchup) section=(--phases a) ;;
  latency) section=(--phases b) ;;
  trigger) section=(--phases c) ;;
  failover) section=(--phases f) ;;
  conflicts) section=(--phases g) ;;
esac
if [ ${#section[@]} -gt 0 ]; then
  name=$1
  shift
fi
for a in "$@"; do
  [ "$a" = "--quick" ] && name=$name-quick
done
set -- "${section[@]}" "$@"

if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" -Dbuildtype=release
fi
ninja -C "$builddir" agent/sluice bench/sluice_bench

mkdir -p bench/results
json=bench/results/$name.json
txt=bench/results/$name.txt
bench_args=(--sluice "$builddir/agent/sluice" "$@")

status=0
if [ "${SLUICE_BENCH_PG:-0}" = "1" ]; then
  "$builddir/bench/sluice_bench" --json "$json" "${bench_args[@]}" | tee "$txt.tmp" || status=$?
elif [ "$(id -u)" -eq 0 ]; then
  # As root, pg_virtualenv would take the shared cluster name 15/regress (and
  # refuse while a test run holds it): run it as postgres instead, which gives
  # a private cluster in a temp dir; results come back through $work.
  work=$(mktemp -d /tmp/sluice-bench-run.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  chown postgres "$work"
  runuser -u postgres -- env TMPDIR="$work" pg_virtualenv -- \
    "$PWD/$builddir/bench/sluice_bench" --json "$work/out.json" --workdir "$work" \
    --sluice "$PWD/$builddir/agent/sluice" "$@" | tee "$txt.tmp" || status=$?
  [ -f "$work/out.json" ] && cp "$work/out.json" "$json"
else
  pg_virtualenv -- "$builddir/bench/sluice_bench" --json "$json" "${bench_args[@]}" \
    | tee "$txt.tmp" || status=$?
fi
mv "$txt.tmp" "$txt"
echo "results: $json, $txt"
exit "$status"
