#!/usr/bin/env bash
# restart-initial-sync.sh [--quiet] [--kill-after S]: issue #9's question "why
# does a restarted initial sync take longer while the app writes?". Generates
# the scale-1 Open WebUI database (bench/openwebui_data.h), starts `sluice
# run`, SIGKILLs it after S seconds (default 6) in the middle of the initial
# sync, starts it again and times the restart until `status` says the initial
# sync is done; with bench/openwebui_writer.py writing 50 operations/s
# throughout unless --quiet. Lease 2 s (the restart waits for the killed
# agent's lease). Needs python3. Builds build-bench/ (release) like run.sh;
# SLUICE_BENCH_BUILDDIR overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${SLUICE_BENCH_BUILDDIR:-build-bench}
quiet=0
kill_after=6
while [ $# -gt 0 ]; do
  case "$1" in
    --quiet) quiet=1; shift ;;
    --kill-after) kill_after=$2; shift 2 ;;
    *) echo "usage: bench/restart-initial-sync.sh [--quiet] [--kill-after S]" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || { echo "restart-initial-sync.sh needs python3" >&2; exit 2; }
if [ "${SLUICE_BENCH_INNER:-}" != 1 ]; then
  [ -f "$builddir/build.ninja" ] || meson setup "$builddir" -Dbuildtype=release
  ninja -C "$builddir" agent/sluice bench/sluice_openwebui_gen
  export SLUICE_BENCH_INNER=1 SLUICE_BENCH_BUILDDIR="$builddir"
  args=(--kill-after "$kill_after")
  [ "$quiet" = 1 ] && args+=(--quiet)
  exec pg_virtualenv -t -- "$0" "${args[@]}"
fi

work=$(mktemp -d /tmp/sluice-restart.XXXXXX)
trap 'pkill -TERM -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
db=$work/webui.db
sluice=$builddir/agent/sluice
"$builddir/bench/sluice_openwebui_gen" --out "$db" --scale 1 > /dev/null
cat > "$work/sluice.json" <<JSON
{"deployment": "restart", "node": "a", "source": {"path": "$db"},
 "sink": {"url": "host=$PGHOST port=${PGPORT:-5432} dbname=$PGDATABASE user=$PGUSER", "schema": "restart"},
 "tables": {"chat": {"columns": {"created_at": "bigint", "updated_at": "bigint"}}},
 "lease": {"duration_ms": 2000}, "http": {"listen": "127.0.0.1:0"}}
JSON
chmod 600 "$work/sluice.json"
"$sluice" init --config "$work/sluice.json" > "$work/init.log" 2>&1 || { cat "$work/init.log"; exit 1; }
if [ "$quiet" = 0 ]; then
  python3 bench/openwebui_writer.py "$db" 50 600 > "$work/writer.log" 2>&1 &
  writer=$!
fi
"$sluice" run --config "$work/sluice.json" > "$work/run1.log" 2>&1 &
agent=$!
sleep "$kill_after"
kill -KILL "$agent"
wait "$agent" 2>/dev/null || true
start=$(date +%s%N)
"$sluice" run --config "$work/sluice.json" > "$work/run2.log" 2>&1 &
agent=$!
until "$sluice" status --config "$work/sluice.json" --json 2>/dev/null |
    grep -q '"initial_sync_done":true'; do
  kill -0 "$agent" 2>/dev/null || { echo "the agent exited"; tail -20 "$work/run2.log"; exit 1; }
  sleep 0.1
done
end=$(date +%s%N)
kill -TERM "$agent"
wait "$agent" 2>/dev/null || true
[ -n "${writer:-}" ] && kill -INT "$writer" 2>/dev/null || true
mode=$([ "$quiet" = 1 ] && echo "quiet" || echo "app writing 50 operations/s")
echo "restarted initial sync ($mode, killed after ${kill_after} s): $(( (end - start) / 1000000 )) ms" \
  "(includes waiting for the killed agent's 2 s lease)"
grep -E "warn|error|resynchronised|lease acquired" "$work/run2.log" | head -20
