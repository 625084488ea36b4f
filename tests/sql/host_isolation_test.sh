#!/usr/bin/env bash
# host_isolation_test.sh SQL_DIR TAP_FILE: starts a PostgreSQL of its own laid
# out like a Supabase project (supabase_admin the superuser; postgres a
# non-superuser owner with CREATEROLE; anon, authenticated, service_role,
# authenticator), applies sql/01..03 twice as postgres, registers host A and
# host B, then runs the pgTAP file TAP_FILE (privilege inventory, A against B).
# Passes when every test of the plan says "ok". Needs initdb and pgTAP
# (postgresql-15-pgtap); exits 77 (skip) without them unless CI=true.
set -uo pipefail

sql_dir=${1:?usage: host_isolation_test.sh SQL_DIR TAP_FILE}
tap_file=${2:?usage: host_isolation_test.sh SQL_DIR TAP_FILE}
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[[ -x "$bindir/initdb" ]] || bindir=/usr/lib/postgresql/15/bin
sharedir=$(pg_config --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
if [[ ! -x "$bindir/initdb" || ! -f "$sharedir/extension/pgtap.control" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "initdb or pgTAP missing under CI=true: scripts/install-deps.sh installs them" >&2
    exit 1
  fi
  echo "SKIP: initdb or pgTAP ($sharedir/extension/pgtap.control) not found"
  exit 77
fi

dir=$(mktemp -d /tmp/sluice-hostiso.XXXXXX)
as_owner=()
if [[ "$(id -u)" -eq 0 ]]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
port=$((40000 + RANDOM % 20000))
cleanup() {
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U supabase_admin -A trust --no-sync \
  -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses='' -c fsync=off" start >/dev/null ||
  { cat "$dir/server.log"; exit 1; }

conn() { echo "host=$dir port=$port dbname=${2:-app} user=$1"; }
psql_as() {  # psql_as ROLE [psql args...]
  local role=$1; shift
  psql "$(conn "$role")" -X -q -At -v ON_ERROR_STOP=1 "$@"
}

# Supabase's roles (as its images create them; passwords do not matter here:
# trust). postgres owns the database and the scripts' objects.
psql "$(conn supabase_admin postgres)" -X -q -v ON_ERROR_STOP=1 <<'SQL' || exit 1
CREATE ROLE postgres LOGIN CREATEROLE CREATEDB NOSUPERUSER NOBYPASSRLS;
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO postgres;
CREATE DATABASE app OWNER postgres;
SQL
psql "$(conn supabase_admin)" -X -q -v ON_ERROR_STOP=1 <<'SQL' || exit 1
CREATE EXTENSION pgtap;
-- Supabase grants everything in public to its API roles by default.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON TABLES TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
SQL

for round in 1 2; do
  for f in 01-control-plane.sql 02-sync-role.sql 03-host-isolation.sql; do
    if ! out=$(psql_as postgres -f "$sql_dir/$f" 2>&1); then
      echo "not ok - apply $f as postgres (round $round)"; echo "$out"; exit 1
    fi
    if [[ -n "$out" ]]; then
      echo "not ok - apply $f as postgres (round $round) printed something"; echo "$out"; exit 1
    fi
  done
done
echo "ok - 01, 02, 03 apply twice as postgres (not a superuser), silently"

# Two hosts, each with one deployment and a mirror table made by the admin;
# rows in every control-plane table for both.
psql_as postgres <<'SQL' || exit 1
CREATE ROLE host_a LOGIN;
CREATE ROLE host_b LOGIN;
SELECT sync_metadata.register_host('host-a', 'host_a') IS NOT NULL;
SELECT sync_metadata.register_host('host-b', 'host_b') IS NOT NULL;
SELECT sync_metadata.register_deployment('host-a', 'dep_a', 'mirror_a');
SELECT sync_metadata.register_deployment('host-b', 'dep_b', 'mirror_b');
CREATE TABLE mirror_a.chat (id text PRIMARY KEY, title text, _sluice_deleted_at timestamptz);
CREATE TABLE mirror_b.chat (id text PRIMARY KEY, title text, _sluice_deleted_at timestamptz);
INSERT INTO mirror_a.chat VALUES ('a1', 'A secret', NULL);
INSERT INTO mirror_b.chat VALUES ('b1', 'B secret', NULL);
CREATE TABLE public.notes (id int);  -- Supabase default privileges reach this one
INSERT INTO sync_metadata.source_position (deployment, source_id, applied_seq)
VALUES ('dep_a', '11111111-1111-4111-8111-111111111111', 10),
       ('dep_b', '22222222-2222-4222-8222-222222222222', 20);
INSERT INTO sync_metadata.applied_batches (deployment, source_id, after_seq, snapshot_seq, applied_at)
VALUES ('dep_a', '11111111-1111-4111-8111-111111111111', -1, 10, now()),
       ('dep_b', '22222222-2222-4222-8222-222222222222', -1, 20, now() - interval '30 days');
INSERT INTO sync_metadata.conflict_log (deployment, table_name, row_key, kind, reason, source_data)
VALUES ('dep_a', 'chat', '["a1"]', 'rejected', 'test', '{"title": "A secret"}'),
       ('dep_b', 'chat', '["b1"]', 'rejected', 'test', '{"title": "B secret"}');
INSERT INTO sync_metadata.mirror_tables (deployment, table_name, schema_name, relid, relfilenode)
VALUES ('dep_a', 'chat', 'mirror_a', 'mirror_a.chat'::regclass, 1),
       ('dep_b', 'chat', 'mirror_b', 'mirror_b.chat'::regclass, 1);
INSERT INTO sync_metadata.leader_election (deployment, leader_id, epoch, expires_at)
VALUES ('dep_b', 'b-node', 1, now() + interval '1 hour');
INSERT INTO sync_metadata.outside_deletes (deployment, table_name, row_key, base_data)
VALUES ('dep_b', 'chat', '["b0"]', '{}');
INSERT INTO sync_metadata.sync_jobs (host_id, deployment, kind)
SELECT host_id, d.deployment, 'full' FROM sync_metadata.client_deployments d;
INSERT INTO sync_metadata.sync_progress (job_id, host_id, deployment, table_name)
SELECT job_id, host_id, deployment, 'chat' FROM sync_metadata.sync_jobs;
INSERT INTO sync_metadata.cache_events (host_id, deployment, event)
SELECT host_id, deployment, 'warm' FROM sync_metadata.client_deployments;
SQL

# Everything B owns, as a fingerprint an administrator takes before and after.
fingerprint_sql="SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
  SELECT 'sp' || row(p.*)::text x FROM sync_metadata.source_position p WHERE deployment = 'dep_b'
  UNION ALL SELECT 'ab' || row(a.*)::text FROM sync_metadata.applied_batches a WHERE deployment = 'dep_b'
  UNION ALL SELECT 'cl' || row(c.*)::text FROM sync_metadata.conflict_log c WHERE deployment = 'dep_b'
  UNION ALL SELECT 'mt' || row(m.*)::text FROM sync_metadata.mirror_tables m WHERE deployment = 'dep_b'
  UNION ALL SELECT 'le' || row(l.*)::text FROM sync_metadata.leader_election l WHERE deployment = 'dep_b'
  UNION ALL SELECT 'od' || row(o.*)::text FROM sync_metadata.outside_deletes o WHERE deployment = 'dep_b'
  UNION ALL SELECT 'sj' || row(j.*)::text FROM sync_metadata.sync_jobs j WHERE deployment = 'dep_b'
  UNION ALL SELECT 'sg' || row(g.*)::text FROM sync_metadata.sync_progress g WHERE deployment = 'dep_b'
  UNION ALL SELECT 'ce' || row(e.*)::text FROM sync_metadata.cache_events e WHERE deployment = 'dep_b'
  UNION ALL SELECT 'cd' || row(d.*)::text FROM sync_metadata.client_deployments d WHERE deployment = 'dep_b'
  UNION ALL SELECT 'h' || row(h.*)::text FROM sync_metadata.hosts h WHERE host_name = 'host-b'
  UNION ALL SELECT 'mb' || row(c.*)::text FROM mirror_b.chat c
  UNION ALL SELECT 'ms' || c.relname || ':' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
   WHERE c.relnamespace = 'mirror_b'::regnamespace
  UNION ALL SELECT 'mg' || t.tgname || ':' || t.tgrelid::regclass::text FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'mirror_b'::regnamespace) s"
before=$(psql_as postgres -c "$fingerprint_sql") || exit 1

out=$(psql "$(conn supabase_admin)" -X -At -v ON_ERROR_STOP=0 -f "$tap_file" 2>&1)
echo "$out"

after=$(psql_as postgres -c "$fingerprint_sql") || exit 1
if [[ "$before" == "$after" ]]; then
  echo "ok - everything of host B is as it was after host A's attempts"
else
  echo "not ok - host B's rows changed during host A's attempts"; exit 1
fi

planned=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' <<<"$out" | awk '{s+=$1} END {print s+0}')
oks=$(grep -c '^ok ' <<<"$out")
if [[ -z "$planned" || "$oks" -ne "$planned" ]] || grep -q '^not ok' <<<"$out" ||
   grep -q 'ERROR' <<<"$out"; then
  echo "FAILED: ${oks} of ${planned:-?} pgTAP tests ok"
  exit 1
fi
echo "all ${planned} pgTAP tests ok"
