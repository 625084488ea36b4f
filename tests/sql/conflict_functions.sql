-- conflict_functions.sql: the conflict functions of sql/01-control-plane.sql
-- (version 5) at work on a hand-made mirror shaped like Open WebUI's chat:
-- each kind, each strategy, merge of chat-shaped JSON, manual entries and
-- their resolution, a rollback, the race with an outside writer, a full read.
-- Run by tests/sql/conflict_functions_test.sh on an empty database after 01.
-- Part D (-v bench=1 [-v rounds=7]) measures the write overhead instead:
--   pg_virtualenv -t -- sh -c 'psql -q -v ON_ERROR_STOP=1 -f sql/01-control-plane.sql &&
--     psql -q -v ON_ERROR_STOP=1 -v bench=1 -v rounds=7 -f tests/sql/conflict_functions.sql'
-- Every check prints "ok <name>" or stops with "FAILED <name>: got ..., want ...".

\set QUIET on
\o /dev/null
SET client_min_messages = warning;


-- ======================================================================
-- B. Per-mirror DDL (what PlanMirror adds), for a mirror shaped like Open
--    WebUI's chat (key: id, from its UNIQUE index).
-- ======================================================================
CREATE SCHEMA d1;
CREATE TABLE d1.chat (id text, user_id text, title text, chat jsonb, meta jsonb,
  archived bigint, updated_at bigint, created_at bigint,
  _sluice_seq bigint NOT NULL, _sluice_deleted_at timestamptz,
  _sluice_updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id));
-- new: two columns (instant: no default) and four triggers
ALTER TABLE d1.chat ADD COLUMN _sluice_outside_at timestamptz, ADD COLUMN _sluice_base jsonb;
ALTER TABLE d1.chat ALTER COLUMN _sluice_outside_at SET DEFAULT clock_timestamp(),
  ALTER COLUMN _sluice_seq SET DEFAULT -1;  -- outside INSERTs are marked by the defaults
CREATE INDEX chat_sluice_outside ON d1.chat (_sluice_outside_at) WHERE _sluice_outside_at IS NOT NULL;
-- The four triggers PlanMirror creates (sink/pg_sql.cc ConflictDetectionSql),
-- for table `tbl` of deployment `dep` keyed by `id`.
CREATE FUNCTION pg_temp.detect(tbl text, dep text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  w text := format('current_setting(''sluice.writer'', true) IS DISTINCT FROM %L', dep);
  args text := format('%L, %L', dep, 'id');
BEGIN
  EXECUTE format('CREATE TRIGGER sluice_outside BEFORE UPDATE ON %s FOR EACH ROW WHEN (%s) '
                 'EXECUTE FUNCTION sync_metadata.sluice_outside_write(%s)', tbl, w, args);
  EXECUTE format('CREATE TRIGGER sluice_conflict BEFORE UPDATE ON %s FOR EACH ROW WHEN '
                 '(OLD._sluice_outside_at IS NOT NULL AND current_setting(''sluice.writer'', true) = %L) '
                 'EXECUTE FUNCTION sync_metadata.sluice_conflict(%s)', tbl, dep, args);
  EXECUTE format('CREATE TRIGGER sluice_outside_delete BEFORE DELETE ON %s FOR EACH ROW WHEN (%s) '
                 'EXECUTE FUNCTION sync_metadata.sluice_outside_delete(%s)', tbl, w, args);
  EXECUTE format('CREATE TRIGGER sluice_inserted AFTER INSERT ON %s REFERENCING NEW TABLE AS '
                 'sluice_new FOR EACH STATEMENT WHEN (current_setting(''sluice.writer'', true) = %L) '
                 'EXECUTE FUNCTION sync_metadata.sluice_inserted(%s)', tbl, dep, args);
END $$;
SELECT pg_temp.detect('d1.chat', 'd1');

INSERT INTO sync_metadata.source_position (deployment, source_id, applied_seq)
VALUES ('d1', '00000000-0000-0000-0000-000000000001', 0);

-- ======================================================================
-- C. Behaviour: each kind, each strategy, manual, resolve.
-- ======================================================================
-- The agent's apply transaction, as BatchApplier would send it: header
-- settings (transaction-local: works through pgbouncer in transaction mode),
-- then UpsertSql / DeleteSql exactly as sink/pg_sql.cc builds them today.
CREATE SCHEMA proto;  -- not pg_temp: the race check calls them from a second session
CREATE FUNCTION proto.apply(policy jsonb, upserts jsonb, deletes jsonb DEFAULT '[]',
                              batch bigint DEFAULT 1) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('sluice.writer', 'd1', true),
          set_config('sluice.apply', (jsonb_build_object('mode', 'apply', 'epoch', 7,
            'batch', batch, 'source', '00000000-0000-0000-0000-000000000001') || policy)::text, true);
  EXECUTE $q$INSERT INTO "d1"."chat" AS t ("id", "user_id", "title", "chat", "meta", "archived",
    "updated_at", "created_at", "_sluice_seq", "_sluice_deleted_at", "_sluice_updated_at",
    "_sluice_outside_at")
    SELECT (e->>0)::text, (e->>1)::text, (e->>2)::text, (e->>3)::jsonb, (e->>4)::jsonb,
    (e->>5)::bigint, (e->>6)::bigint, (e->>7)::bigint, (e->>8)::bigint, NULL, now(), NULL
    FROM jsonb_array_elements($1::jsonb) AS e ON CONFLICT ("id") DO UPDATE SET
    "user_id" = EXCLUDED."user_id", "title" = EXCLUDED."title", "chat" = EXCLUDED."chat",
    "meta" = EXCLUDED."meta", "archived" = EXCLUDED."archived", "updated_at" =
    EXCLUDED."updated_at", "created_at" = EXCLUDED."created_at", "_sluice_seq" =
    EXCLUDED."_sluice_seq", "_sluice_deleted_at" = NULL, "_sluice_updated_at" = now()$q$
    USING upserts::text;
  EXECUTE $q$UPDATE "d1"."chat" AS t SET "_sluice_deleted_at" = now(), "_sluice_seq" =
    (e->>1)::bigint, "_sluice_updated_at" = now() FROM jsonb_array_elements($1::jsonb) AS e
    WHERE t."id" = (e->>0)::text AND t."_sluice_deleted_at" IS NULL$q$ USING deletes::text;
END $$;

CREATE FUNCTION pg_temp.expect(name text, got text, want text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF got IS DISTINCT FROM want THEN
    RAISE EXCEPTION 'FAILED %: got %, want %', name, coalesce(got, 'NULL'), coalesce(want, 'NULL');
  END IF;
  RAISE NOTICE 'ok %', name;
END $$;
SET client_min_messages = notice;

-- A chat row shaped like Open WebUI's: history.messages keyed by id, a
-- messages array of objects with ids, tags in meta, epoch seconds.
CREATE FUNCTION proto.row(id text, title text, msgs text[], tags text[], upd bigint, seq bigint)
RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_array(id, 'u1', title, jsonb_build_object(
    'history', jsonb_build_object('messages', (SELECT coalesce(jsonb_object_agg(m,
       jsonb_build_object('id', m, 'content', 'text of ' || m)), '{}') FROM unnest(msgs) m)),
    'messages', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', m, 'content', 'text of ' || m)
       ORDER BY o), '[]') FROM unnest(msgs) WITH ORDINALITY u(m, o)))::text,
    jsonb_build_object('tags', to_jsonb(tags))::text, '0', upd::text, '1700000000', seq::text)
$$;
CREATE FUNCTION pg_temp.cell(id text, col text) RETURNS text LANGUAGE sql AS
  $$ SELECT to_jsonb(c) ->> col FROM d1.chat c WHERE c.id = $1 $$;
CREATE FUNCTION pg_temp.log(id text) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(kind || '/' || strategy || '/' || status, ',' ORDER BY l.id)
    FROM sync_metadata.conflict_log l WHERE deployment = 'd1' AND row_key = jsonb_build_array($1) $$;

-- Seed rows a..h as sluice writes them (seq 1..8).
SELECT proto.apply('{}', jsonb_build_array(
  proto.row('a', 'A', '{m1}', '{x}', 1700000100, 1), proto.row('b', 'B', '{m1}', '{x}', 1700000100, 2),
  proto.row('c', 'C', '{m1}', '{x}', 1700000100, 3), proto.row('d', 'D', '{m1}', '{x}', 1700000100, 4),
  proto.row('e', 'E', '{m1}', '{x}', 1700000100, 5), proto.row('f', 'F', '{m1}', '{x}', 1700000100, 6),
  proto.row('g', 'G', '{m1}', '{x}', 1700000100, 7), proto.row('h', 'H', '{m1}', '{x}', 1700000100, 8)));
SELECT pg_temp.expect('sluice writes leave rows clean', (SELECT count(*) FROM d1.chat
  WHERE _sluice_outside_at IS NULL)::text, '8');

-- Outside writers (no sluice.writer): the Supabase dashboard, another service.
UPDATE d1.chat SET title = 'A outside', updated_at = 1700000200 WHERE id = 'a';
UPDATE d1.chat SET title = title WHERE id = 'h';  -- no change: not a mark
SELECT pg_temp.expect('outside update marks the row, keeps base', pg_temp.cell('a', '_sluice_base')::jsonb ->> 'title', 'A');
SELECT pg_temp.expect('no-op update is no mark', pg_temp.cell('h', '_sluice_outside_at'), NULL);
UPDATE d1.chat SET title = 'A' , updated_at = 1700000100 WHERE id = 'a';
SELECT pg_temp.expect('changed back: clean again', pg_temp.cell('a', '_sluice_outside_at'), NULL);
UPDATE d1.chat SET title = 'A outside', updated_at = 1700000200 WHERE id = 'a';
UPDATE d1.chat SET title = 'B outside', updated_at = 1700000300 WHERE id = 'b';
UPDATE d1.chat SET title = 'C outside', updated_at = 1700000050 WHERE id = 'c';
DELETE FROM d1.chat WHERE id = 'd';
UPDATE d1.chat SET archived = 1 WHERE id = 'e';
INSERT INTO d1.chat (id, user_id, title, chat, meta, archived, updated_at, created_at)
  VALUES ('i', 'u2', 'I outside', '{}', '{}', 0, 1700000400, 1700000400);
SELECT pg_temp.expect('outside insert: seq defaulted, marked, no base',
  pg_temp.cell('i', '_sluice_seq') || '/' || (pg_temp.cell('i', '_sluice_outside_at') IS NOT NULL)::text
  || '/' || coalesce(pg_temp.cell('i', '_sluice_base'), 'none'), '-1/true/none');
SELECT pg_temp.expect('outside delete recorded with its base',
  (SELECT base_data ->> 'title' FROM sync_metadata.outside_deletes WHERE row_key = '["d"]'), 'D');

-- One source batch: a (update), b (update), c (update), d (update of the
-- deleted row), e (delete), i (insert of a key inserted outside), f (clean).
SELECT proto.apply('{"default": {"strategy": "source_wins"}, "tables": {"chat":
  {"strategy": "newest_wins", "compare_field": "updated_at"}}}',
  jsonb_build_array(proto.row('a', 'A src', '{m1}', '{x}', 1700000150, 11),
                    proto.row('b', 'B src', '{m1}', '{x}', 1700000150, 12),
                    proto.row('c', 'C src', '{m1}', '{x}', 1700000150, 13),
                    proto.row('d', 'D src', '{m1}', '{x}', 1700000150, 14),
                    proto.row('i', 'I src', '{m1}', '{x}', 1700000150, 16),
                    proto.row('f', 'F src', '{m1}', '{x}', 1700000150, 17)),
  '[["e", "15"]]', 2);
SELECT pg_temp.expect('newest_wins: outside newer stays', pg_temp.cell('a', 'title'), 'A outside');
SELECT pg_temp.expect('newest_wins: outside newer stays, base = source', pg_temp.cell('a', '_sluice_base')::jsonb ->> 'title', 'A src');
SELECT pg_temp.expect('newest_wins: source newer wins, clean', pg_temp.cell('c', 'title') || '/' || coalesce(pg_temp.cell('c', '_sluice_outside_at'), 'clean'), 'C src/clean');
SELECT pg_temp.expect('update_deleted under newest_wins: the delete loses', pg_temp.cell('d', 'title'), 'D src');
SELECT pg_temp.expect('delete_origin_differs under newest_wins: the live row stays', pg_temp.cell('e', '_sluice_deleted_at'), NULL);
SELECT pg_temp.expect('clean row: no conflict', pg_temp.cell('f', 'title') || '/' || coalesce(pg_temp.log('f'), 'none'), 'F src/none');
SELECT pg_temp.expect('kinds', (SELECT string_agg(row_key ->> 0 || ':' || kind || ':' || (resolved_data ->> 'title'), ' ' ORDER BY row_key ->> 0)
  FROM sync_metadata.conflict_log WHERE deployment = 'd1' AND batch = 2),
  'a:update_origin_differs:A outside b:update_origin_differs:B outside c:update_origin_differs:C src d:update_deleted:D src e:delete_origin_differs:E i:insert_exists:I outside');
SELECT pg_temp.expect('every log row is complete', (SELECT count(*) FROM sync_metadata.conflict_log
  WHERE deployment = 'd1' AND batch = 2 AND epoch = 7 AND strategy = 'newest_wins' AND status = 'resolved'
  AND resolved_by = 'automatic' AND resolved_at IS NOT NULL AND source_data IS NOT NULL
  AND (target_data IS NOT NULL OR kind = 'update_deleted'))::text, '6');

-- merge on chat: history appended on both sides, tags added on both, title on one side.
SELECT proto.apply('{}', jsonb_build_array(proto.row('g', 'G', '{m1,m2}', '{x}', 1700000500, 20)), '[]', 3);
UPDATE d1.chat SET chat = jsonb_set(jsonb_set(chat, '{history,messages,m3}', '{"id": "m3", "content": "outside"}'),
    '{messages}', chat -> 'messages' || '[{"id": "m3", "content": "outside"}]'),
  meta = '{"tags": ["x", "t-out"]}', title = 'G renamed outside' WHERE id = 'g';
SELECT proto.apply('{"tables": {"chat": {"strategy": "merge", "compare_field": "updated_at",
  "fallback": "newest_wins", "rules": {"chat": "union", "meta": "union", "title": "newest_wins",
  "updated_at": "newest_wins"}}}}',
  jsonb_build_array(proto.row('g', 'G', '{m1,m2,m4}', '{x,t-src}', 1700000600, 21)), '[]', 4);
SELECT pg_temp.expect('merge: messages by id from both sides', (SELECT string_agg(m ->> 'id', ',' ORDER BY o)
  FROM d1.chat, jsonb_array_elements(chat -> 'messages') WITH ORDINALITY a(m, o) WHERE id = 'g'), 'm1,m2,m3,m4');
SELECT pg_temp.expect('merge: history object keyed by id', (SELECT string_agg(k, ',' ORDER BY k)
  FROM d1.chat, jsonb_object_keys(chat -> 'history' -> 'messages') k WHERE id = 'g'), 'm1,m2,m3,m4');
SELECT pg_temp.expect('merge: tags from both sides', pg_temp.cell('g', 'meta'), '{"tags": ["x", "t-out", "t-src"]}');
SELECT pg_temp.expect('merge: title changed on one side only', pg_temp.cell('g', 'title'), 'G renamed outside');
SELECT pg_temp.expect('merge: row stays marked, base = source image', pg_temp.cell('g', '_sluice_base')::jsonb -> 'meta' ->> 'tags', '["x", "t-src"]');
-- the next source change (one more message) merges against that base: m3 survives
SELECT proto.apply('{"tables": {"chat": {"strategy": "merge", "compare_field": "updated_at",
  "rules": {"chat": "union", "meta": "union"}}}}',
  jsonb_build_array(proto.row('g', 'G', '{m1,m2,m4,m5}', '{x,t-src}', 1700000700, 22)), '[]', 5);
SELECT pg_temp.expect('merge again: outside message kept', (SELECT string_agg(m ->> 'id', ',' ORDER BY o)
  FROM d1.chat, jsonb_array_elements(chat -> 'messages') WITH ORDINALITY a(m, o) WHERE id = 'g'), 'm1,m2,m3,m4,m5');

-- target_wins on a hard delete (graveyard): the row becomes a marked tombstone.
DELETE FROM d1.chat WHERE id = 'h';
SELECT proto.apply('{"tables": {"chat": {"strategy": "target_wins"}}}',
  jsonb_build_array(proto.row('h', 'H src', '{m1}', '{x}', 1700000800, 30)), '[]', 6);
SELECT pg_temp.expect('target_wins keeps the outside delete (as a marked tombstone)',
  (pg_temp.cell('h', '_sluice_deleted_at') IS NOT NULL)::text || '/' || (pg_temp.cell('h', '_sluice_outside_at') IS NOT NULL)::text
  || '/' || pg_temp.log('h'), 'true/true/update_deleted/target_wins/resolved');
SELECT proto.apply('{"tables": {"chat": {"strategy": "target_wins"}}}',
  jsonb_build_array(proto.row('h', 'H src 2', '{m1}', '{x}', 1700000900, 31)), '[]', 7);
SELECT pg_temp.expect('the next source change meets the tombstone: logged again',
  pg_temp.log('h'), 'update_deleted/target_wins/resolved,update_deleted/target_wins/resolved');

-- manual: one pending entry per row, updated by later source changes.
UPDATE d1.chat SET title = 'F outside' WHERE id = 'f';
SELECT proto.apply('{"tables": {"chat": {"strategy": "manual"}}}',
  jsonb_build_array(proto.row('f', 'F src 2', '{m1}', '{x}', 1700001000, 40)), '[]', 8);
SELECT proto.apply('{"tables": {"chat": {"strategy": "manual"}}}',
  jsonb_build_array(proto.row('f', 'F src 3', '{m1}', '{x}', 1700001100, 41)), '[]', 9);
SELECT pg_temp.expect('manual: target stays, one pending entry with the newest source image',
  pg_temp.cell('f', 'title') || '/' || (SELECT count(*) || '/' || max(source_data ->> 'title') || '/' || max(seq) || '/' || max(batch)
  FROM sync_metadata.conflict_log WHERE deployment = 'd1' AND row_key = '["f"]' AND status = 'pending'),
  'F outside/1/F src 3/41/9');

-- sluice conflicts resolve ID --take source: one transaction, ordered behind
-- (and ahead of) apply batches by the source_position row lock that
-- sluice_advance takes; exactly once by the status check.
CREATE FUNCTION pg_temp.resolve(p_id bigint, p_take text, p_by text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  e sync_metadata.conflict_log%ROWTYPE;
  img jsonb;
BEGIN
  PERFORM set_config('lock_timeout', '30s', true);
  PERFORM 1 FROM sync_metadata.source_position WHERE deployment = 'd1' FOR UPDATE;
  SELECT * INTO e FROM sync_metadata.conflict_log WHERE id = p_id AND deployment = 'd1' FOR UPDATE;
  IF e.status IS DISTINCT FROM 'pending' THEN
    RAISE EXCEPTION 'conflict % is % (by %, at %), not pending', p_id, e.status, e.resolved_by, e.resolved_at;
  END IF;
  PERFORM set_config('sluice.writer', 'd1', true),
          set_config('sluice.apply', '{"mode": "resolve"}', true);
  img := CASE p_take WHEN 'source' THEN e.source_data ELSE e.target_data END;
  -- generated per mirror from its columns in the real thing
  UPDATE d1.chat t SET title = r.title, chat = r.chat, meta = r.meta, updated_at = r.updated_at,
         _sluice_deleted_at = r._sluice_deleted_at,
         _sluice_outside_at = CASE WHEN img = e.source_data THEN NULL ELSE t._sluice_outside_at END,
         _sluice_base = CASE WHEN img = e.source_data THEN NULL ELSE e.source_data END,
         _sluice_seq = CASE WHEN img = e.source_data THEN e.seq ELSE t._sluice_seq END
    FROM jsonb_populate_record(NULL::d1.chat, img) r WHERE t.id = r.id;
  UPDATE sync_metadata.conflict_log SET status = 'resolved', resolved_data = img,
         resolved_by = p_by, resolved_at = now() WHERE id = p_id AND status = 'pending';
  RETURN 'resolved';
END $$;
SELECT pg_temp.resolve((SELECT id FROM sync_metadata.conflict_log WHERE row_key = '["f"]' AND status = 'pending'), 'source', 'alice');
SELECT pg_temp.expect('resolve --take source applies the newest source image, clean',
  pg_temp.cell('f', 'title') || '/' || coalesce(pg_temp.cell('f', '_sluice_outside_at'), 'clean') || '/' || pg_temp.log('f'),
  'F src 3/clean/update_origin_differs/manual/resolved');
DO $$ BEGIN
  PERFORM pg_temp.resolve((SELECT max(id) FROM sync_metadata.conflict_log WHERE row_key = '["f"]'), 'source', 'bob');
  RAISE EXCEPTION 'FAILED resolve twice: no error';
EXCEPTION WHEN raise_exception THEN
  IF SQLERRM LIKE 'FAILED%' THEN RAISE; END IF;
  RAISE NOTICE 'ok resolve twice is an error: %', SQLERRM;
END $$;

-- A kill between detection and commit: the log rows go with the rollback.
BEGIN;
UPDATE d1.chat SET title = 'B outside 2' WHERE id = 'b';
COMMIT;
BEGIN;
SELECT proto.apply('{}', jsonb_build_array(proto.row('b', 'B src 2', '{m1}', '{x}', 1700002000, 50)), '[]', 10);
ROLLBACK;
SELECT pg_temp.expect('rolled back: no log row, row unchanged', (SELECT count(*) FROM sync_metadata.conflict_log
  WHERE batch = 10)::text || '/' || pg_temp.cell('b', 'title'), '0/B outside 2');

-- Race: an outside UPDATE that commits while sluice's statement waits for the
-- row lock is still seen (the trigger's OLD is the latest version), so it is
-- neither overwritten silently nor lost. The agent is a second session (dblink).
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('agent', format('host=%s port=%s dbname=%s user=%s',
  split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
  current_database(), current_user));
BEGIN;
UPDATE d1.chat SET title = 'C outside, racing' WHERE id = 'c';  -- holds the row lock
SELECT dblink_send_query('agent', $$SELECT proto.apply('{}', jsonb_build_array(proto.row('c',
  'C src race', '{m1}', '{x}', 1700003000, 70)), '[]', 70)$$);
SELECT pg_sleep(0.5);
SELECT pg_temp.expect('race: the agent waits for the outside writer', dblink_is_busy('agent')::text, '1');
COMMIT;
SELECT * FROM dblink_get_result('agent') AS r(x text);
SELECT dblink_disconnect('agent');
SELECT pg_temp.expect('race: the outside write committed meanwhile is a conflict',
  pg_temp.log('c') || '/' || (SELECT target_data ->> 'title' FROM sync_metadata.conflict_log WHERE batch = 70)
  || '/' || pg_temp.cell('c', 'title'),
  'update_origin_differs/newest_wins/resolved,update_origin_differs/source_wins/resolved/C outside, racing/C src race');

-- Full read of a table: the sweep skips marked rows (TombstoneRangeSql gets
-- "AND _sluice_outside_at IS NULL"); after the upserts, marked live rows the
-- snapshot did not carry (their _sluice_seq is not the snapshot seq: a kept
-- target takes the source's seq too) are the source's deletes: one orphan
-- statement, resolved by sluice_conflict. Here the snapshot holds only "a".
BEGIN;
SELECT set_config('sluice.writer', 'd1', true), set_config('sluice.apply',
  '{"mode": "apply", "epoch": 7, "batch": 60}', true);
UPDATE d1.chat SET _sluice_deleted_at = now() WHERE _sluice_deleted_at IS NULL AND _sluice_outside_at IS NULL;
SELECT proto.apply('{"tables": {"chat": {"strategy": "newest_wins", "compare_field": "updated_at"}}}',
  jsonb_build_array(proto.row('a', 'A full', '{m1}', '{x}', 1700000001, 60)), '[]', 60);
UPDATE d1.chat t SET _sluice_deleted_at = now(), _sluice_seq = 60 WHERE _sluice_outside_at IS NOT NULL
   AND _sluice_deleted_at IS NULL AND _sluice_seq IS DISTINCT FROM 60;
COMMIT;
SELECT pg_temp.expect('full read: the carried row is an update, the others source deletes',
  (SELECT string_agg(row_key ->> 0 || ':' || kind, ' ' ORDER BY row_key ->> 0) FROM sync_metadata.conflict_log WHERE batch = 60),
  'a:update_origin_differs b:delete_origin_differs e:delete_origin_differs g:delete_origin_differs i:delete_origin_differs');
SELECT pg_temp.expect('full read: outside-changed rows stay (newest_wins), clean rows tombstoned',
  (SELECT string_agg(id || ':' || (_sluice_deleted_at IS NULL)::text || ':' || _sluice_seq, ' ' ORDER BY id) FROM d1.chat),
  'a:true:60 b:true:60 c:false:70 d:false:14 e:true:60 f:false:41 g:true:60 h:false:31 i:true:60');
SELECT pg_temp.expect('every conflict_log row passes the CHECKs', (SELECT count(*) FROM sync_metadata.conflict_log
  WHERE status NOT IN ('resolved', 'pending'))::text, '0');

-- The source deletes rows the outside already deleted: both agree. The
-- DeleteSql this needs (sink/pg_sql.cc, not yet there): a CTE uses up the open
-- outside_deletes entries of the deleted keys, and marked tombstones are
-- matched too (sluice_conflict: both deleted, clean again). A later source
-- insert of those keys is a new row, no update_deleted, even under target_wins.
CREATE FUNCTION proto.delete_agreed(deletes jsonb, batch bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('sluice.writer', 'd1', true),
          set_config('sluice.apply', jsonb_build_object('mode', 'apply', 'epoch', 7, 'batch', batch)::text, true);
  EXECUTE $q$WITH sluice_agreed AS (UPDATE sync_metadata.outside_deletes AS d SET consumed_at = now()
    FROM jsonb_array_elements($1::jsonb) AS e WHERE d.deployment = current_setting('sluice.writer')
    AND d.table_name = 'chat' AND d.consumed_at IS NULL AND d.row_key = jsonb_build_array((e->>0)::text))
    UPDATE "d1"."chat" AS t SET "_sluice_deleted_at" = now(), "_sluice_seq" = (e->>1)::bigint,
    "_sluice_updated_at" = now() FROM jsonb_array_elements($1::jsonb) AS e WHERE t."id" = (e->>0)::text
    AND (t."_sluice_deleted_at" IS NULL OR t."_sluice_outside_at" IS NOT NULL)$q$ USING deletes::text;
END $$;
SELECT proto.apply('{}', jsonb_build_array(proto.row('x1', 'X', '{m1}', '{x}', 1700004000, 80),
                                           proto.row('x2', 'X', '{m1}', '{x}', 1700004000, 81)), '[]', 80);
DELETE FROM d1.chat WHERE id = 'x1';
UPDATE d1.chat SET _sluice_deleted_at = now() WHERE id = 'x2';
SELECT proto.delete_agreed('[["x1", "82"], ["x2", "83"]]', 81);
SELECT pg_temp.expect('agreed delete: outside delete used up, outside tombstone clean, nothing logged',
  (SELECT count(*) FROM sync_metadata.outside_deletes WHERE row_key = '["x1"]' AND consumed_at IS NULL)::text
  || '/' || coalesce(pg_temp.cell('x2', '_sluice_outside_at'), 'clean') || '/' || pg_temp.cell('x2', '_sluice_seq')
  || '/' || coalesce(pg_temp.log('x1'), 'none') || '/' || coalesce(pg_temp.log('x2'), 'none'), '0/clean/83/none/none');
SELECT proto.apply('{"tables": {"chat": {"strategy": "target_wins"}}}',
  jsonb_build_array(proto.row('x1', 'X new', '{m1}', '{x}', 1700005000, 84),
                    proto.row('x2', 'X new', '{m1}', '{x}', 1700005000, 85)), '[]', 82);
SELECT pg_temp.expect('agreed delete: a later insert is a new row, no conflict',
  (SELECT string_agg(id || ':' || title || ':' || (_sluice_deleted_at IS NULL)::text, ' ' ORDER BY id)
     FROM d1.chat WHERE id IN ('x1', 'x2')) || '/' || coalesce(pg_temp.log('x1'), 'none') || '/'
  || coalesce(pg_temp.log('x2'), 'none'), 'x1:X new:true x2:X new:true/none/none');
-- An outside writer with rights on the mirror only (a Supabase role: no
-- USAGE on sync_metadata) can still UPDATE it; the row is marked with its base.
CREATE ROLE sluice_test_outsider NOLOGIN;
GRANT USAGE ON SCHEMA d1 TO sluice_test_outsider;
GRANT SELECT, INSERT, UPDATE, DELETE ON d1.chat TO sluice_test_outsider;
SELECT proto.apply('{}', jsonb_build_array(proto.row('y1', 'Y', '{m1}', '{x}', 1700006000, 90)), '[]', 90);
SET ROLE sluice_test_outsider;
UPDATE d1.chat SET title = 'Y by a dashboard user' WHERE id = 'y1';
DELETE FROM d1.chat WHERE id = 'y1';
INSERT INTO d1.chat (id, user_id, title) VALUES ('y2', 'u', 'inserted by a dashboard user');
RESET ROLE;
SELECT pg_temp.expect('an outside writer needs no rights on sync_metadata',
  (SELECT base_data ->> 'title' FROM sync_metadata.outside_deletes WHERE row_key = '["y1"]')
  || '/' || (pg_temp.cell('y2', '_sluice_outside_at') IS NOT NULL)::text, 'Y/true');
DROP OWNED BY sluice_test_outsider;
DROP ROLE sluice_test_outsider;

-- A full read sends a row the source did not change since sluice wrote the
-- base: it is a source write like any other, so the table's policy decides
-- (source_wins: the mirror is the source's again, logged; `sluice resync` is
-- the operator's way back to the source).
SELECT proto.apply('{}', jsonb_build_array(proto.row('z1', 'Z', '{m1}', '{x}', 1700007000, 91)), '[]', 91);
UPDATE d1.chat SET title = 'Z outside' WHERE id = 'z1';
SELECT proto.apply('{}', jsonb_build_array(proto.row('z1', 'Z', '{m1}', '{x}', 1700007000, 92)), '[]', 92);
SELECT pg_temp.expect('a full read of an unchanged row follows the policy',
  pg_temp.cell('z1', 'title') || '/' || pg_temp.log('z1'), 'Z/update_origin_differs/source_wins/resolved');

-- A pending entry updated by a later source delete says so in its reason.
SELECT proto.apply('{}', jsonb_build_array(proto.row('w1', 'W', '{m1}', '{x}', 1700009000, 95)), '[]', 95);
UPDATE d1.chat SET title = 'W outside' WHERE id = 'w1';
SELECT proto.apply('{"tables": {"chat": {"strategy": "manual"}}}',
  jsonb_build_array(proto.row('w1', 'W src', '{m1}', '{x}', 1700009100, 96)), '[]', 96);
SELECT proto.apply('{"tables": {"chat": {"strategy": "manual"}}}', '[]', '[["w1", "97"]]', 97);
SELECT pg_temp.expect('a pending entry takes the newest kind and reason',
  (SELECT count(*) || '/' || max(kind) || '/' || max(reason) FROM sync_metadata.conflict_log
    WHERE row_key = '["w1"]' AND status = 'pending'),
  '1/delete_origin_differs/the source deleted a row changed outside sluice');

-- A mirror with a column named like the functions' row aliases (n, t):
-- sluice's re-insert of a row deleted outside still works.
CREATE TABLE d1.alias (id text PRIMARY KEY, n bigint, t text, _sluice_seq bigint NOT NULL DEFAULT -1,
  _sluice_deleted_at timestamptz, _sluice_updated_at timestamptz NOT NULL DEFAULT now(),
  _sluice_outside_at timestamptz DEFAULT clock_timestamp(), _sluice_base jsonb);
SELECT pg_temp.detect('d1.alias', 'd1');
CREATE FUNCTION proto.alias_upsert(n bigint, seq bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('sluice.writer', 'd1', true),
          set_config('sluice.apply', '{"mode": "apply", "epoch": 7, "batch": 98}', true);
  INSERT INTO d1.alias AS x (id, n, t, _sluice_seq, _sluice_outside_at) VALUES ('a1', n, 'v', seq, NULL)
    ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n, t = EXCLUDED.t, _sluice_seq = EXCLUDED._sluice_seq,
    _sluice_deleted_at = NULL;
END $$;
SELECT proto.alias_upsert(1, 97);
DELETE FROM d1.alias WHERE id = 'a1';
SELECT proto.alias_upsert(2, 98);
SELECT pg_temp.expect('columns named n and t', (SELECT a.n || '/' || l.kind FROM d1.alias a,
  sync_metadata.conflict_log l WHERE a.id = 'a1' AND l.table_name = 'alias'), '2/update_deleted');

SELECT pg_temp.expect('unit detection by magnitude', (SELECT string_agg(round(sync_metadata.sluice_time_seconds(v))::text, ' ')
  FROM unnest(ARRAY['1733000000', '1733000000123', '1733000000123456', '1733000000123456789',
                    '"1733000000"', '"2024-11-30 20:53:20"', '"2024-11-30T21:53:20+01:00"']::jsonb[]) v),
  '1733000000 1733000000 1733000000 1733000000 1733000000 1733000000 1733000000');
SELECT pg_temp.expect('unparsable compare values', (SELECT string_agg(coalesce(sync_metadata.sluice_time_seconds(v)::text, 'null'), ' ')
  FROM unnest(ARRAY['"yesterday"', '"2025-13-45"', 'true', 'null']::jsonb[]) v), 'null null null null');
SELECT pg_temp.expect('newest_wins compares nanoseconds exactly (a double ties them)',
  sync_metadata.sluice_newest('update_origin_differs', '{"t": 1733000000123456789}',
                              '{"t": 1733000000123456790}', 't'), 'target');
SELECT pg_temp.expect('sluice_time_ns is exact', sync_metadata.sluice_time_ns('"2024-11-30T20:53:20.5Z"')::text
  || ' ' || sync_metadata.sluice_time_ns('1733000000123456789')::text, '1733000000500000000.000000 1733000000123456789');
SET client_min_messages = warning;

-- ======================================================================
-- D. Write overhead (-v bench=1): 100,000 rows shaped like the catch-up
--    bench's Open WebUI message rows, in sluice's statement shape (one
--    INSERT ... SELECT FROM jsonb_array_elements($1) ON CONFLICT DO UPDATE
--    per chunk of 2,000 rows, all in one transaction), insert pass (empty
--    table) then update pass (every row changed), 0 % conflicts.
-- ======================================================================
\if :{?bench}
CREATE SCHEMA b;
CREATE TABLE b.shared_base (deployment text, table_name text, row_key jsonb, image jsonb,
  PRIMARY KEY (deployment, table_name, row_key));
CREATE TABLE b.chunks AS
  SELECT pass, n / 2000 AS c, '[' || string_agg(jsonb_build_array('m' || n, 'u' || (n % 97),
      'ch' || (n % 13), repeat(md5(pass::text || n), 6) || repeat('x', 8),
      '{"model": "llama3", "files": [], "n": ' || n || '}', '{"reactions": []}',
      (1733000000000000000 + n)::text, (1733000000000000000 + n + pass)::text, NULL,
      (pass * 100000 + n)::text)::text, ',' ORDER BY n) || ']' AS payload
  FROM generate_series(0, 99999) n, generate_series(0, 1) pass GROUP BY 1, 2;

CREATE FUNCTION b.setup(variant text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DROP TABLE IF EXISTS b.message, b.message_base;
  TRUNCATE b.shared_base;
  CREATE TABLE b.message (id text, user_id text, channel_id text, content text, data jsonb,
    meta jsonb, created_at bigint, updated_at bigint, parent_id text,
    _sluice_seq bigint NOT NULL, _sluice_deleted_at timestamptz,
    _sluice_updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id));
  IF variant = 'shadow' THEN
    CREATE TABLE b.message_base (id text PRIMARY KEY, image jsonb);
  END IF;
  IF variant LIKE 'trigger%' OR variant LIKE 'merge%' OR variant IN ('cols_only', 'when_false') THEN
    ALTER TABLE b.message ADD COLUMN _sluice_outside_at timestamptz, ADD COLUMN _sluice_base jsonb;
    CREATE INDEX ON b.message (_sluice_outside_at) WHERE _sluice_outside_at IS NOT NULL;
  END IF;
  IF variant = 'when_false' THEN  -- the cost of having a BEFORE UPDATE row trigger at all
    CREATE TRIGGER sluice_never BEFORE UPDATE ON b.message FOR EACH ROW WHEN (false)
      EXECUTE FUNCTION sync_metadata.sluice_outside_write('b', 'id');
  END IF;
  IF variant LIKE 'trigger%' OR variant LIKE 'merge%' THEN
    ALTER TABLE b.message ALTER COLUMN _sluice_outside_at SET DEFAULT clock_timestamp(),
      ALTER COLUMN _sluice_seq SET DEFAULT -1;
    PERFORM pg_temp.detect('b.message', 'b');
    IF variant = 'trigger_no_stmt' THEN DROP TRIGGER sluice_inserted ON b.message; END IF;
  END IF;
END $$;

-- CPU seconds (user + system) of this backend so far, from /proc (ticks of 10 ms):
-- less disturbed than wall time by other work on a shared machine.
CREATE FUNCTION b.cpu() RETURNS double precision LANGUAGE sql AS $$
  SELECT (f[12]::bigint + f[13]::bigint) / 100.0 FROM (SELECT string_to_array(split_part(
    pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS f) x $$;

-- Wall seconds for one pass, in one transaction as BatchApplier sends it;
-- the backend's CPU seconds go to b.results.cpu.
CREATE FUNCTION b.run(variant text, p int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
  upsert text := $q$INSERT INTO "b"."message" AS t ("id", "user_id", "channel_id", "content",
    "data", "meta", "created_at", "updated_at", "parent_id", "_sluice_seq", "_sluice_deleted_at",
    "_sluice_updated_at") SELECT (e->>0)::text, (e->>1)::text, (e->>2)::text, (e->>3)::text,
    (e->>4)::jsonb, (e->>5)::jsonb, (e->>6)::bigint, (e->>7)::bigint, (e->>8)::text,
    (e->>9)::bigint, NULL, now() FROM jsonb_array_elements($1::jsonb) AS e ON CONFLICT ("id")
    DO UPDATE SET "user_id" = EXCLUDED."user_id", "channel_id" = EXCLUDED."channel_id",
    "content" = EXCLUDED."content", "data" = EXCLUDED."data", "meta" = EXCLUDED."meta",
    "created_at" = EXCLUDED."created_at", "updated_at" = EXCLUDED."updated_at", "parent_id" =
    EXCLUDED."parent_id", "_sluice_seq" = EXCLUDED."_sluice_seq", "_sluice_deleted_at" = NULL,
    "_sluice_updated_at" = now()$q$;
  sql text;
  t0 timestamptz;
  elapsed double precision;
  c0 double precision;
  n bigint;
  marked bigint := 0;
  ch record;
BEGIN
  IF variant LIKE 'trigger%' OR variant LIKE 'merge%' OR variant IN ('cols_only', 'when_false') THEN
    -- UpsertSql names _sluice_outside_at
    upsert := replace(replace(upsert, '"_sluice_updated_at") SELECT', '"_sluice_updated_at", '
      '"_sluice_outside_at") SELECT'), 'NULL, now() FROM', 'NULL, now(), NULL FROM');
  END IF;
  sql := upsert;
  IF variant = 'shadow' THEN
    sql := 'WITH up AS (' || upsert || ' RETURNING t.*) INSERT INTO b.message_base AS s '
        || 'SELECT id, sync_metadata.sluice_image(to_jsonb(up)) FROM up ON CONFLICT (id) DO '
        || 'UPDATE SET image = EXCLUDED.image';
  ELSIF variant = 'shared' THEN
    sql := 'WITH up AS (' || upsert || ' RETURNING t.*) INSERT INTO b.shared_base AS s '
        || 'SELECT ''b'', ''message'', jsonb_build_array(id), sync_metadata.sluice_image(to_jsonb(up)) '
        || 'FROM up ON CONFLICT (deployment, table_name, row_key) DO UPDATE SET image = EXCLUDED.image';
  END IF;
  IF p = 1 AND variant LIKE 'merge%' THEN  -- outside writes (not timed) to 1 % / 10 % of rows
    UPDATE b.message SET meta = '{"reactions": ["+1"]}'
     WHERE substr(id, 2)::int % CASE variant WHEN 'merge_1pct' THEN 100 ELSE 10 END = 0;
  END IF;
  PERFORM set_config('sluice.writer', 'b', true),
          set_config('sluice.apply', '{"mode": "apply", "epoch": 1, "batch": 1, "default":
            {"strategy": "merge", "compare_field": "updated_at", "rules": {"data": "union",
             "meta": "union"}}}', true);
  c0 := b.cpu();
  t0 := clock_timestamp();
  FOR ch IN SELECT payload FROM b.chunks WHERE pass = p ORDER BY c LOOP
    EXECUTE sql USING ch.payload;
  END LOOP;
  elapsed := extract(epoch FROM clock_timestamp() - t0);
  PERFORM set_config('b.cpu', (b.cpu() - c0)::text, false);
  SELECT count(*) INTO n FROM b.message;  -- checks, not timed
  IF variant LIKE 'trigger%' THEN
    EXECUTE 'SELECT count(*) FROM b.message WHERE _sluice_outside_at IS NOT NULL' INTO marked;
  END IF;
  IF n <> 100000 OR marked <> 0 THEN RAISE EXCEPTION 'bench %: wrong table contents', variant; END IF;
  RETURN elapsed;
END $$;

CREATE TABLE b.results (round int, variant text, pass int, seconds double precision,
  cpu double precision DEFAULT current_setting('b.cpu')::double precision);
\if :{?rounds}
\else
\set rounds 3
\endif
SELECT b.setup('none');
SELECT b.run('none', 0), b.run('none', 1);  -- warm-up, not counted
-- Each (round, variant): fresh table, insert pass, update pass; the order of
-- the variants rotates from round to round.
SELECT format('SELECT b.setup(%L)', v),
       format('INSERT INTO b.results VALUES (%s, %L, 0, b.run(%L, 0))', r, v, v),
       format('INSERT INTO b.results VALUES (%s, %L, 1, b.run(%L, 1))', r, v, v)
  FROM generate_series(1, :rounds) r,
       unnest('{none,cols_only,when_false,trigger,trigger_no_stmt,shadow,shared,merge_1pct,merge_10pct}'::text[])
         WITH ORDINALITY u(v, o)
 ORDER BY r, (o + r) % 9 \gexec
\o
\pset footer off
SELECT variant, CASE pass WHEN 0 THEN 'insert' ELSE 'update' END AS pass,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)::numeric, 3) AS wall_s,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) /
         (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) FROM b.results n
           WHERE n.variant = 'none' AND n.pass = r.pass))::numeric, 3) AS wall_vs_none,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu)::numeric, 2) AS cpu_s,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) /
         (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) FROM b.results n
           WHERE n.variant = 'none' AND n.pass = r.pass))::numeric, 3) AS cpu_vs_none,
       round(100000 / percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu)) AS rows_per_cpu_s,
       string_agg(round(seconds::numeric, 2)::text, ' ' ORDER BY round) AS wall_runs
  FROM b.results r GROUP BY variant, pass ORDER BY pass, cpu_vs_none;
SELECT count(*) AS merge_conflicts_logged, count(DISTINCT row_key) AS rows FROM sync_metadata.conflict_log
 WHERE deployment = 'b';
\endif
