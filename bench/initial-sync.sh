#!/usr/bin/env bash
# initial-sync.sh [--scale X] [--seed N]: the initial sync of a generated Open
# WebUI database (bench/openwebui_data.h; scale 1 = 319 MB) by one `sluice run`
# into a throw-away PostgreSQL (pg_virtualenv), timed from `run` to the first
# `status` that says caught up. Prints the figures with their conditions and
# writes them to bench/results/initial-sync.json. Builds build-bench/ (release)
# like run.sh. The first brick of issue #9's benchmark (pgloader and COPY of
# the same rows are not compared yet).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
builddir=${SLUICE_BENCH_BUILDDIR:-build-bench}
scale=1
seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: bench/initial-sync.sh [--scale X] [--seed N]" >&2; exit 2 ;;
  esac
done
if [ "${SLUICE_BENCH_INNER:-}" != 1 ]; then
  [ -f "$builddir/build.ninja" ] || meson setup "$builddir" -Dbuildtype=release
  ninja -C "$builddir" agent/sluice bench/sluice_openwebui_gen
  export SLUICE_BENCH_INNER=1 SLUICE_BENCH_BUILDDIR="$builddir"
  exec pg_virtualenv -t -- "$0" --scale "$scale" --seed "$seed"
fi

work=$(mktemp -d /tmp/sluice-initial-sync.XXXXXX)
trap 'pkill -TERM -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
db=$work/webui.db
"$builddir/bench/sluice_openwebui_gen" --out "$db" --scale "$scale" --seed "$seed" \
  --json "$work/gen.json" | tail -3
cat > "$work/sluice.json" <<JSON
{"deployment": "initial_sync", "node": "a",
 "source": {"path": "$db"},
 "sink": {"url": "host=$PGHOST port=${PGPORT:-5432} dbname=$PGDATABASE user=$PGUSER", "schema": "initial_sync"},
 "tables": {"chat": {"columns": {"created_at": "bigint", "updated_at": "bigint"}}},
 "http": {"listen": "127.0.0.1:0"}}
JSON
chmod 600 "$work/sluice.json"
sluice=$builddir/agent/sluice
"$sluice" init --config "$work/sluice.json" > "$work/init.log" 2>&1
start=$(date +%s%N)
"$sluice" run --config "$work/sluice.json" > "$work/run.log" 2>&1 &
agent=$!
until "$sluice" status --config "$work/sluice.json" --json 2>/dev/null |
    grep -q '"initial_sync_done":true.*' &&
  "$sluice" status --config "$work/sluice.json" --json 2>/dev/null | grep -q '"backlog_rows":0'; do
  kill -0 "$agent" 2>/dev/null || { echo "the agent exited"; tail -20 "$work/run.log"; exit 1; }
  sleep 0.1
done
end=$(date +%s%N)
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$agent/stat")
kill -TERM "$agent"
wait "$agent" || true
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", (b - a) / 1e9}')
file_bytes=$(sed -n 's/.*"file_bytes": *\([0-9]*\).*/\1/p' "$work/gen.json" | head -1)
rows=$(psql -X -At -c "SELECT count(*) FROM initial_sync.chat")
cat <<TXT
initial sync of a generated Open WebUI database (scale $scale, seed $seed, $file_bytes bytes):
  $seconds s from \`sluice run\` to caught up ($rows chat rows at the sink)
  agent peak RSS $((hwm_kb / 1024)) MiB, agent CPU $cpu_s s
  $(nproc) cores, $(uname -r), PostgreSQL $(psql -X -At -c 'SHOW server_version'), fsync $(psql -X -At -c 'SHOW fsync')
TXT
mkdir -p "$repo/bench/results"
cat > "$repo/bench/results/initial-sync.json" <<JSON
{"measure": "initial sync of a generated Open WebUI database",
 "scale": $scale, "seed": $seed, "file_bytes": ${file_bytes:-0},
 "seconds": $seconds, "agent_peak_rss_kib": $hwm_kb, "agent_cpu_seconds": $cpu_s,
 "chat_rows": $rows, "cores": $(nproc), "kernel": "$(uname -r)", "build_dir": "$builddir",
 "postgresql": "$(psql -X -At -c 'SHOW server_version')",
 "when": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
JSON
