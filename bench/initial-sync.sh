#!/usr/bin/env bash
# initial-sync.sh [--scale X] [--seed N]: the initial sync of a generated Open
# WebUI database (bench/openwebui_data.h; scale 1 = 319 MB) by one `sluice run`
# into a throw-away PostgreSQL (pg_virtualenv), timed from `run` to the commit
# of the initial sync (its log line; `status` then says caught up); then the same file by Debian's pgloader and
# the same rows by a plain COPY, each with PostgreSQL's default TOAST
# compression (pglz) and with lz4 (sluice's default, sink.toast_compression).
# Prints the figures with their conditions and writes them to
# bench/results/initial-sync.json. Builds build-bench/ (release) like run.sh;
# installs pgloader with apt-get when it is missing and this runs as root.
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
  if ! command -v pgloader > /dev/null && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgloader > /dev/null
  fi
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
sync  # the generator's 319 MB of dirty pages are not written back during the runs
sluice=$builddir/agent/sluice
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }
mib() { psql -X -At -c "SELECT round(sum(pg_total_relation_size(c.oid)) / 1048576.0)
                        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = '$1' AND c.relkind = 'r'" "${2:-$PGDATABASE}"; }

# One agent's initial sync into schema $1 with sink.toast_compression $2.
# Sets seconds, hwm_kb, cpu_s.
sync_once() {
  local schema=$1 toast=$2
  cat > "$work/$schema.json" <<JSON
{"deployment": "$schema", "node": "a",
 "source": {"path": "$db"},
 "sink": {"url": "host=$PGHOST port=${PGPORT:-5432} dbname=$PGDATABASE user=$PGUSER",
          "schema": "$schema", "toast_compression": "$toast"},
 "tables": {"chat": {"columns": {"created_at": "bigint", "updated_at": "bigint"}}},
 "http": {"listen": "127.0.0.1:0"}}
JSON
  chmod 600 "$work/$schema.json"
  "$sluice" init --config "$work/$schema.json" > "$work/$schema-init.log" 2>&1
  local start end agent
  start=$(now)
  "$sluice" run --config "$work/$schema.json" > "$work/$schema-run.log" 2>&1 &
  agent=$!
  # The end is the agent's own log line of the commit (polled every 50 ms: a
  # `sluice status` every 100 ms took CPU from the two cores being measured);
  # then `status` must say caught up.
  until grep -q "resynchronised .* table(s)" "$work/$schema-run.log"; do
    kill -0 "$agent" 2>/dev/null || { echo "the agent exited"; tail -20 "$work/$schema-run.log"; exit 1; }
    sleep 0.05
  done
  end=$(now)
  until "$sluice" status --config "$work/$schema.json" --json 2>/dev/null |
      grep -q '"initial_sync_done":true.*' &&
    "$sluice" status --config "$work/$schema.json" --json 2>/dev/null |
      grep -q '"backlog_rows":0'; do
    kill -0 "$agent" 2>/dev/null || { echo "the agent exited"; tail -20 "$work/$schema-run.log"; exit 1; }
    sleep 0.1
  done
  hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
  cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$agent/stat")
  kill -TERM "$agent"
  wait "$agent" || true
  seconds=$(secs "$start" "$end")
}

sync_once initial_sync lz4
lz4_seconds=$seconds lz4_hwm_kb=$hwm_kb lz4_cpu_s=$cpu_s
sync_once initial_sync_pglz pglz
pglz_seconds=$seconds pglz_hwm_kb=$hwm_kb pglz_cpu_s=$cpu_s
rows=$(psql -X -At -c "SELECT count(*) FROM initial_sync.chat")

# The same rows by a plain COPY (the ceiling): each mirror's app columns are
# dumped to a file (not timed), then loaded in one transaction into tables
# of the same columns and unique key index, timed, once per compression.
copy_sql=$work/copy.sql
echo "BEGIN;" > "$copy_sql"
for t in $(psql -X -At -c "SELECT table_name FROM information_schema.tables
                           WHERE table_schema = 'initial_sync' ORDER BY 1"); do
  cols=$(psql -X -At -c "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
                         FROM information_schema.columns WHERE table_schema = 'initial_sync'
                         AND table_name = '$t' AND column_name NOT LIKE '\_sluice\_%'")
  echo "CREATE TABLE copy_baseline.\"$t\" AS SELECT $cols FROM initial_sync.\"$t\" WITH NO DATA;" >> "$copy_sql"
  psql -X -q -v ON_ERROR_STOP=1 -c "\\copy (SELECT $cols FROM initial_sync.\"$t\") TO '$work/$t.copy'"
  key=$(psql -X -At -c "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
                        WHERE i.indrelid = 'initial_sync.\"$t\"'::regclass AND i.indisunique LIMIT 1")
  [ -n "$key" ] && echo "${key/initial_sync./copy_baseline.};" | sed 's/INDEX [^ ]* ON/INDEX ON/' >> "$copy_sql"
  echo "\\copy copy_baseline.\"$t\" FROM '$work/$t.copy'" >> "$copy_sql"
done
echo "COMMIT;" >> "$copy_sql"
copy_once() {  # $1: default_toast_compression; sets copy_seconds, copy_mib
  psql -X -q -c "DROP SCHEMA IF EXISTS copy_baseline CASCADE" -c "CREATE SCHEMA copy_baseline"
  local start end
  start=$(now)
  PGOPTIONS="-c default_toast_compression=$1" psql -X -q -v ON_ERROR_STOP=1 -f "$copy_sql"
  end=$(now)
  copy_seconds=$(secs "$start" "$end")
  copy_mib=$(mib copy_baseline)
}
copy_once pglz
copy_pglz_seconds=$copy_seconds copy_pglz_mib=$copy_mib
copy_once lz4
copy_lz4_seconds=$copy_seconds copy_lz4_mib=$copy_mib

# Debian's pgloader, given what it needs to load this file at all: a 4 GB
# heap (its default is exhausted by chat) and chat's DATETIME columns (epoch
# seconds) cast to bigint; into a database of its own, once per compression
# (lz4 by the database's default_toast_compression: pgloader has no option).
pgloader_once() {  # $1: compression; sets pgl_seconds, pgl_kb, pgl_mib, pgl_rows
  local dbname=pgl_$1 start end
  createdb "$dbname"
  psql -X -q -c "ALTER DATABASE $dbname SET default_toast_compression = '$1'"
  cat > "$work/load.pgl" <<LOAD
LOAD DATABASE
  FROM sqlite://$db
  INTO postgresql://$PGUSER:$PGPASSWORD@$PGHOST:${PGPORT:-5432}/$dbname
WITH include drop, create tables, create indexes, reset sequences
CAST column chat.created_at to bigint drop typemod,
     column chat.updated_at to bigint drop typemod;
LOAD
  start=$(now)
  /usr/bin/time -f "%M" -o "$work/pgl.rss" pgloader --dynamic-space-size 4096 "$work/load.pgl" \
    > "$work/pgl-$1.log" 2>&1 || echo "pgloader failed: see its log" >&2
  end=$(now)
  pgl_seconds=$(secs "$start" "$end")
  pgl_kb=$(tail -1 "$work/pgl.rss")
  pgl_mib=$(mib public "$dbname")
  pgl_rows=$(psql -X -At -d "$dbname" -c "SELECT count(*) FROM chat" 2>/dev/null || echo 0)
}
if command -v pgloader > /dev/null; then
  pgloader_once pglz
  pgl_pglz_seconds=$pgl_seconds pgl_pglz_kb=$pgl_kb pgl_pglz_mib=$pgl_mib pgl_pglz_rows=$pgl_rows
  pgloader_once lz4
  pgl_lz4_seconds=$pgl_seconds pgl_lz4_kb=$pgl_kb pgl_lz4_mib=$pgl_mib pgl_lz4_rows=$pgl_rows
  pgloader_version=$(pgloader --version | head -1 | sed 's/.*"\(.*\)".*/\1/')
else
  echo "pgloader is not installed (run as root to install it): not compared" >&2
  pgl_pglz_seconds=null pgl_pglz_kb=0 pgl_pglz_mib=null pgl_pglz_rows=0
  pgl_lz4_seconds=null pgl_lz4_kb=0 pgl_lz4_mib=null pgl_lz4_rows=0 pgloader_version=none
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "null" || b + 0 == 0) print "null"; else printf "%.2f", a / b}'; }
file_bytes=$(sed -n 's/.*"file_bytes": *\([0-9]*\).*/\1/p' "$work/gen.json" | head -1)
pg_version=$(psql -X -At -c 'SHOW server_version')
cat <<TXT
initial sync of a generated Open WebUI database (scale $scale, seed $seed, $file_bytes bytes, $rows chat rows):
                                     seconds   peak RSS   size at the sink
  sluice (toast_compression lz4)     $lz4_seconds s    $((lz4_hwm_kb / 1024)) MiB     $(mib initial_sync) MiB  (agent CPU $lz4_cpu_s s)
  sluice (toast_compression pglz)    $pglz_seconds s    $((pglz_hwm_kb / 1024)) MiB     $(mib initial_sync_pglz) MiB  (agent CPU $pglz_cpu_s s)
  pgloader $pgloader_version, pglz          $pgl_pglz_seconds s    $((pgl_pglz_kb / 1024)) MiB   $pgl_pglz_mib MiB  ($pgl_pglz_rows chat rows)
  pgloader, lz4                      $pgl_lz4_seconds s    $((pgl_lz4_kb / 1024)) MiB   $pgl_lz4_mib MiB  ($pgl_lz4_rows chat rows)
  plain COPY (psql \\copy), pglz      $copy_pglz_seconds s               $copy_pglz_mib MiB
  plain COPY, lz4                    $copy_lz4_seconds s               $copy_lz4_mib MiB
  pgloader / sluice: $(ratio "$pgl_pglz_seconds" "$lz4_seconds")x (each with its default), $(ratio "$pgl_lz4_seconds" "$lz4_seconds")x (both lz4), $(ratio "$pgl_pglz_seconds" "$pglz_seconds")x (both pglz)
  COPY / sluice: $(ratio "$copy_lz4_seconds" "$lz4_seconds") (lz4), $(ratio "$copy_pglz_seconds" "$pglz_seconds") (pglz)
  pgloader: --dynamic-space-size 4096, CAST column chat.created_at/updated_at to bigint drop typemod
  $(nproc) cores, $(uname -r), PostgreSQL $pg_version, fsync $(psql -X -At -c 'SHOW fsync')
TXT
mkdir -p "$repo/bench/results"
cat > "$repo/bench/results/initial-sync.json" <<JSON
{"measure": "initial sync of a generated Open WebUI database",
 "scale": $scale, "seed": $seed, "file_bytes": ${file_bytes:-0}, "chat_rows": $rows,
 "sluice_lz4": {"seconds": $lz4_seconds, "peak_rss_kib": $lz4_hwm_kb, "cpu_seconds": $lz4_cpu_s},
 "sluice_pglz": {"seconds": $pglz_seconds, "peak_rss_kib": $pglz_hwm_kb, "cpu_seconds": $pglz_cpu_s},
 "pgloader_pglz": {"seconds": $pgl_pglz_seconds, "peak_rss_kib": $pgl_pglz_kb, "chat_rows": $pgl_pglz_rows},
 "pgloader_lz4": {"seconds": $pgl_lz4_seconds, "peak_rss_kib": $pgl_lz4_kb, "chat_rows": $pgl_lz4_rows},
 "copy_pglz_seconds": $copy_pglz_seconds, "copy_lz4_seconds": $copy_lz4_seconds,
 "pgloader_flags": "--dynamic-space-size 4096; CAST column chat.created_at, chat.updated_at to bigint drop typemod",
 "pgloader_version": "$pgloader_version",
 "cores": $(nproc), "kernel": "$(uname -r)", "build_dir": "$builddir", "postgresql": "$pg_version",
 "when": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
JSON
