#!/usr/bin/env bash
# demo.sh: the whole story on one machine. Installs what is missing, builds
# sluice, starts a throw-away PostgreSQL (pg_virtualenv, the stand-in for
# Supabase), creates an Open WebUI database from its real schema with some
# rows, runs `sluice init` and `sluice run`, then writes, updates and deletes
# rows in SQLite and shows them arrive in PostgreSQL; then starts a second
# agent of the same deployment (it stands by), kills the leader with SIGKILL
# and shows the standby take over under a new lease epoch, nothing lost. On
# the way: edits made in PostgreSQL behind sluice's back (as in the Supabase
# dashboard) meet the app's changes and are resolved by the shipped Open
# WebUI conflict policy (a merge of the chat history, a manual review).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${1:-}" != "--inside" ]; then
  scripts/install-deps.sh
  [ -f "${BUILD_DIR:-build}/build.ninja" ] || meson setup "${BUILD_DIR:-build}" >/dev/null
  ninja -C "${BUILD_DIR:-build}" agent/sluice
  exec pg_virtualenv -t -- "$0" --inside
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sluice=$root/${BUILD_DIR:-build}/agent/sluice
work=$(mktemp -d /tmp/sluice-demo.XXXXXX)
db=$work/webui.db
pgsql() { psql -X -v ON_ERROR_STOP=1 "$@"; }

say "1. An Open WebUI database (real schema, rollback-journal mode as Open WebUI ships it)"
sqlite3 "$db" < tests/fixtures/openwebui/schema.sql
sqlite3 "$db" <<'SQL'
INSERT INTO "user"(id,name,email,role,profile_image_url,created_at,updated_at,last_active_at,settings)
  VALUES ('u1','Ada','ada@example.com','admin','/a.png',1732500000,1732500000,1732500000,'{"ui":{}}'),
         ('u2','Grace','grace@example.com','user','/g.png',1732500100,1732500100,1732500100,NULL);
INSERT INTO chat(id,user_id,title,share_id,archived,created_at,updated_at,chat,pinned,meta)
  VALUES ('c1','u1','First chat',NULL,0,1732500200,1732500200,'{"messages":[{"id":"a1","role":"user","content":"hi"}]}',0,'{"tags":["intro"]}');
INSERT INTO tag(id,name,user_id,meta) VALUES ('work','Work','u1','null');
INSERT INTO config(data,version,updated_at) VALUES ('{"ui":{"default_locale":"en"}}',0,NULL);
SQL
sqlite3 "$db" "PRAGMA journal_mode"

cat > "$work/sluice.json" <<JSON
{
  "deployment": "demo_client",
  "node": "demo-a",
  "source": { "path": "$db" },
  "sink": { "url": "host=$PGHOST port=${PGPORT:-5432} dbname=$PGDATABASE user=$PGUSER", "schema": "demo_client" },
  "lease": { "duration_ms": 2000 },
  "http": { "listen": "127.0.0.1:19443" },
  "conflicts": { "file": "$root/config/conflict-resolution-default.json" }
}
JSON
# The second agent of the pair: another node id and HTTP port, same file and deployment.
sed -e 's/"demo-a"/"demo-b"/' -e 's/19443/19444/' "$work/sluice.json" > "$work/sluice-b.json"
echo "config: $work/sluice.json (and $work/sluice-b.json for the second agent)"

say "2. sluice init (SQLite: WAL, journal, triggers; PostgreSQL: control plane and mirror tables)"
"$sluice" init --config "$work/sluice.json"

say "3. sluice run (initial sync, then streaming), in the background"
"$sluice" run --config "$work/sluice.json" 2>"$work/agent.log" &
agent=$!
trap 'kill -TERM $agent 2>/dev/null || true; wait $agent 2>/dev/null || true; rm -rf "$work"' EXIT
wait_for() {  # wait_for SQL EXPECTED: poll PostgreSQL until SQL returns EXPECTED
  for _ in $(seq 100); do
    [ "$(pgsql -tAc "$1" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for: $1 = $2" >&2
  cat "$work/agent.log" >&2
  return 1
}
wait_for "SELECT count(*) FROM demo_client.\"user\"" 2
pgsql -c 'SELECT id, name, email, created_at FROM demo_client."user" ORDER BY id'

say "4. The app writes: a new chat with messages JSON, an update, a key change, a delete"
sqlite3 "$db" <<'SQL'
.timeout 5000
BEGIN;
INSERT INTO chat(id,user_id,title,archived,created_at,updated_at,chat,pinned,meta)
  VALUES ('c2','u2','Second chat',0,1732500300,1732500300,'{"messages":[]}',NULL,'{"tags":["work"]}');
INSERT INTO message(id,user_id,channel_id,content,created_at,updated_at)
  VALUES ('m1','u2','ch1','hello from SQLite',1732500300123456789,1732500300123456789);
COMMIT;
UPDATE chat SET title='First chat (renamed)', updated_at=1732500400 WHERE id='c1';
UPDATE tag SET id='personal' WHERE id='work';
DELETE FROM "user" WHERE id='u2';
SQL
wait_for "SELECT count(*) FROM demo_client.\"user\" WHERE _sluice_deleted_at IS NOT NULL" 1
pgsql -c 'SELECT id, title, created_at, pinned, chat->'"'"'messages'"'"' AS messages FROM demo_client.chat ORDER BY id'
pgsql -c 'SELECT id, content, created_at FROM demo_client.message'
pgsql -c 'SELECT id, user_id, _sluice_deleted_at IS NOT NULL AS deleted FROM demo_client.tag ORDER BY id'
pgsql -c 'SELECT id, name, _sluice_deleted_at IS NOT NULL AS deleted FROM demo_client."user" ORDER BY id'

say "4b. Someone edits the mirror in PostgreSQL (a dashboard), then the app changes the same rows"
pgsql -c "UPDATE demo_client.chat SET title = 'Renamed in the dashboard',
            chat = jsonb_set(chat, '{messages}', chat->'messages' || '[{\"id\":\"o1\",\"role\":\"user\",\"content\":\"added in the dashboard\"}]'),
            meta = '{\"tags\": [\"intro\", \"starred\"]}' WHERE id = 'c1'" \
      -c "UPDATE demo_client.config SET data = '{\"ui\": {\"default_locale\": \"fr\"}}'"
sqlite3 "$db" <<'SQL'
.timeout 5000
UPDATE chat SET chat = json_insert(chat, '$.messages[#]', json('{"id":"a2","role":"assistant","content":"hello"}')),
                meta = '{"tags":["intro","work"]}', updated_at = 1732500500 WHERE id = 'c1';
UPDATE config SET data = '{"ui":{"default_locale":"de"}}', version = 1;
SQL
wait_for "SELECT count(*) FROM sync_metadata.conflict_log WHERE deployment = 'demo_client'" 2
echo "chat (merge: messages and tags from both sides, the dashboard's title):"
pgsql -c "SELECT id, title, updated_at, (SELECT string_agg(m->>'id', ',') FROM jsonb_array_elements(chat->'messages') m) AS messages,
                 meta->'tags' AS tags FROM demo_client.chat WHERE id = 'c1'"
echo "config (manual: the dashboard's version stays until someone decides):"
pgsql -c "SELECT id, data FROM demo_client.config"
"$sluice" conflicts list --config "$work/sluice.json"
pending=$(pgsql -tAc "SELECT id FROM sync_metadata.conflict_log WHERE deployment = 'demo_client' AND status = 'pending'")
"$sluice" conflicts resolve "$pending" --config "$work/sluice.json" --take source --by demo
pgsql -c "SELECT id, data FROM demo_client.config"

say "5. A second agent on the same deployment (node demo-b): it stands by"
"$sluice" run --config "$work/sluice-b.json" 2>"$work/agent-b.log" &
agent_b=$!
trap 'kill -TERM $agent $agent_b 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 1
for port in 19443 19444; do
  printf 'GET /leader on :%s -> %s\n' $port "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/leader)"
done
curl -s http://127.0.0.1:19444/health; echo
curl -s http://127.0.0.1:19443/metrics | grep -E '^sluice_(leader|lease_epoch|batches_total|position) '

say "6. SIGKILL of the leader; the app writes on; the standby takes over (lease 2 s)"
kill -KILL $agent
wait $agent 2>/dev/null || true
killed=$(date +%s.%N)
sqlite3 "$db" "INSERT INTO tag(id,name,user_id,meta) VALUES ('after-failover','After failover','u1','null');"
wait_for "SELECT count(*) FROM demo_client.tag WHERE id = 'after-failover'" 1
printf 'the row written after the kill arrived %.1f s after the kill, through demo-b\n' \
  "$(echo "$(date +%s.%N) - $killed" | bc)"
printf 'GET /leader on :19444 -> %s\n' "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19444/leader)"
pgsql -c 'SELECT epoch, min(after_seq) AS from_seq, max(snapshot_seq) AS to_seq, count(*) AS batches
          FROM sync_metadata.applied_batches WHERE deployment = '"'demo_client'"' GROUP BY epoch ORDER BY epoch'

say "7. sluice status (as demo-a, the node that was killed)"
"$sluice" status --config "$work/sluice.json"

say "8. Stop (SIGTERM finishes the batch in flight, releases the lease, exits 0)"
kill -TERM $agent_b
wait $agent_b && echo "agent demo-b exited 0"
trap 'rm -rf "$work"' EXIT
for n in "" -b; do
  echo "agent$n log:"
  sed 's/^/  /' "$work/agent$n.log"
done
say "Demo done."
