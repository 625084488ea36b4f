-- Prototype for docs/design-conflicts.md (issue #7): conflict detection and
-- resolution at the sink, in SQL, inside sluice's apply transaction. Not
-- production code: the implementation moves part A into
-- sql/01-control-plane.sql (version 5) and part B into sink/mirror_table.cc.
--
-- Run from the repository root (a throw-away cluster; 1 s for the checks):
--   pg_virtualenv -t -- sh -c 'psql -q -v ON_ERROR_STOP=1 -f sql/01-control-plane.sql &&
--     psql -q -v ON_ERROR_STOP=1 -f docs/design-conflicts-prototype.sql'
-- Part D, the write-overhead figures: add -v bench=1 [-v rounds=7] to the
-- second psql (default 3 rounds; 7 rounds take about 3 minutes on 2 cores).
-- Every check prints "ok <name>" or stops with "FAILED <name>: got ..., want ...".

\set QUIET on
\o /dev/null
SET client_min_messages = warning;

-- ======================================================================
-- A. Control plane additions (sql/01-control-plane.sql, version 5)
-- ======================================================================
BEGIN;
ALTER TABLE sync_metadata.conflict_log
  ADD COLUMN IF NOT EXISTS strategy    text,         -- the table's strategy when it was seen
  ADD COLUMN IF NOT EXISTS base_data   jsonb,        -- image sluice last wrote (merge base)
  ADD COLUMN IF NOT EXISTS resolved_by text,         -- 'automatic' or the operator
  ADD COLUMN IF NOT EXISTS resolved_at timestamptz,
  ADD COLUMN IF NOT EXISTS epoch       bigint,       -- lease epoch of the batch that saw it
  ADD COLUMN IF NOT EXISTS batch       bigint,       -- snapshot_seq of that batch
  ADD COLUMN IF NOT EXISTS seen_at     timestamptz;  -- now() of the transaction that last saw it
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'conflict_log_kind_check') THEN
    ALTER TABLE sync_metadata.conflict_log ADD CONSTRAINT conflict_log_kind_check CHECK (kind IN
      ('rejected', 'update_origin_differs', 'update_deleted', 'update_missing',
       'delete_origin_differs', 'insert_exists', 'constraint_violation', 'type_mismatch'));
    ALTER TABLE sync_metadata.conflict_log ADD CONSTRAINT conflict_log_status_check
      CHECK (status IN ('parked', 'pending', 'resolved'));
  END IF;
END $$;
-- One pending entry per row: later source changes update it (manual).
CREATE UNIQUE INDEX IF NOT EXISTS conflict_log_pending_row
  ON sync_metadata.conflict_log (deployment, table_name, row_key) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS conflict_log_seen_idx ON sync_metadata.conflict_log (deployment, seen_at);

-- Rows deleted for real (DELETE) by an outside writer, whose image sluice had
-- written live: the only merge bases kept outside the mirror row itself.
CREATE TABLE IF NOT EXISTS sync_metadata.outside_deletes (
  deployment  text NOT NULL,
  table_name  text NOT NULL,
  row_key     jsonb NOT NULL,   -- to_jsonb of the key values, key order
  base_data   jsonb NOT NULL,
  deleted_at  timestamptz NOT NULL DEFAULT now(),
  deleted_by  text NOT NULL DEFAULT current_user,
  consumed_at timestamptz,      -- a source change met it (the sync role cannot DELETE)
  PRIMARY KEY (deployment, table_name, row_key)
);
CREATE INDEX IF NOT EXISTS outside_deletes_open
  ON sync_metadata.outside_deletes (deployment, table_name) WHERE consumed_at IS NULL;

-- The user-visible image of a mirror row: its columns and _sluice_deleted_at.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_image(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS
$$ SELECT r - '_sluice_seq' - '_sluice_updated_at' - '_sluice_outside_at' - '_sluice_base' $$;

CREATE OR REPLACE FUNCTION sync_metadata.sluice_row_key(img jsonb, keys text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS
$$ SELECT jsonb_agg(img -> k ORDER BY o) FROM unnest(keys) WITH ORDINALITY AS u(k, o) $$;

-- Seconds since the epoch from a compare field: a number (or numeric text) is
-- seconds below 1e11, milliseconds below 1e14, microseconds below 1e17,
-- nanoseconds above (each range covers 1973..5138, ns until 2262); other text
-- must be ISO-8601 (no zone: UTC, as SQLite's CURRENT_TIMESTAMP). NULL: unusable.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_time_seconds(v jsonb) RETURNS double precision
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n double precision;
  t text;
BEGIN
  IF v IS NULL OR jsonb_typeof(v) NOT IN ('number', 'string') THEN RETURN NULL; END IF;
  IF jsonb_typeof(v) = 'number' THEN
    n := (v #>> '{}')::double precision;
  ELSE
    t := btrim(v #>> '{}');
    IF t ~ '^-?[0-9]+(\.[0-9]+)?$' THEN
      n := t::double precision;
    ELSIF t ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$' THEN
      BEGIN
        IF t ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' AND t ~ '[ T]' THEN
          RETURN extract(epoch FROM t::timestamptz);
        END IF;
        RETURN extract(epoch FROM (t::timestamp AT TIME ZONE 'UTC'));
      EXCEPTION WHEN others THEN RETURN NULL;  -- '2025-13-45'
      END;
    ELSE
      RETURN NULL;
    END IF;
  END IF;
  RETURN CASE WHEN abs(n) < 1e11 THEN n WHEN abs(n) < 1e14 THEN n / 1e3
              WHEN abs(n) < 1e17 THEN n / 1e6 ELSE n / 1e9 END;
END
$fn$;

-- union: objects merged key by key (recursively), arrays of objects that all
-- carry "id" combined by id (target order, then the source's new ids), other
-- arrays as a set union (target's elements, then the source's new ones); on a
-- scalar clash the source wins. Grow-only: nothing is removed.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_json_union(t jsonb, s jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r jsonb;
  k text;
  v jsonb;
  e jsonb;
BEGIN
  IF t IS NULL OR t = 'null' THEN RETURN s; END IF;
  IF s IS NULL OR s = 'null' THEN RETURN t; END IF;
  IF jsonb_typeof(t) = 'object' AND jsonb_typeof(s) = 'object' THEN
    r := t;
    FOR k, v IN SELECT * FROM jsonb_each(s) LOOP
      r := jsonb_set(r, ARRAY[k], sync_metadata.sluice_json_union(t -> k, v));
    END LOOP;
    RETURN r;
  END IF;
  IF jsonb_typeof(t) <> 'array' OR jsonb_typeof(s) <> 'array' THEN RETURN s; END IF;
  IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(t || s) x
                  WHERE jsonb_typeof(x) <> 'object' OR NOT x ? 'id') THEN
    SELECT coalesce(jsonb_agg(sync_metadata.sluice_json_union(te, (SELECT se FROM
             jsonb_array_elements(s) se WHERE se -> 'id' = te -> 'id' LIMIT 1)) ORDER BY o), '[]')
      INTO r FROM jsonb_array_elements(t) WITH ORDINALITY AS a(te, o);
    FOR e IN SELECT se FROM jsonb_array_elements(s) se LOOP
      IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r) x WHERE x -> 'id' = e -> 'id') THEN
        r := r || jsonb_build_array(e);
      END IF;
    END LOOP;
    RETURN r;
  END IF;
  r := t;
  FOR e IN SELECT se FROM jsonb_array_elements(s) se LOOP
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r) x WHERE x = e) THEN
      r := r || jsonb_build_array(e);
    END IF;
  END LOOP;
  RETURN r;
END
$fn$;

-- append (JSON arrays): the target's elements, then the source's elements that
-- are new since the base, without duplicates. Not two arrays: the source wins.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_json_append(t jsonb, s jsonb, b jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r jsonb := t;
  e jsonb;
BEGIN
  IF t IS NULL OR s IS NULL OR jsonb_typeof(t) <> 'array' OR jsonb_typeof(s) <> 'array' THEN
    RETURN s;
  END IF;
  FOR e IN SELECT se FROM jsonb_array_elements(s) se LOOP
    IF (b IS NULL OR jsonb_typeof(b) <> 'array' OR NOT EXISTS
         (SELECT 1 FROM jsonb_array_elements(b) x WHERE x = e))
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r) x WHERE x = e) THEN
      r := r || jsonb_build_array(e);
    END IF;
  END LOOP;
  RETURN r;
END
$fn$;

-- newest_wins between two images: 'source' or 'target'. A delete has no
-- compare value, so it loses to the live side; ties go to the source; a
-- missing or unparsable value loses; two unusable values: the source.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_newest(kind text, s jsonb, t jsonb, field text)
RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  ts double precision := sync_metadata.sluice_time_seconds(s -> field);
  tt double precision := sync_metadata.sluice_time_seconds(t -> field);
BEGIN
  IF kind = 'delete_origin_differs' THEN RETURN 'target'; END IF;
  IF kind = 'update_deleted' THEN RETURN 'source'; END IF;
  IF tt IS NULL OR (ts IS NOT NULL AND ts >= tt) THEN RETURN 'source'; END IF;
  RETURN 'target';
END
$fn$;

-- Three-way merge of two live images against the base (NULL: none, insert_exists).
-- pol: {"compare_field": c, "fallback": strategy, "rules": {column: rule}}.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_merge(s jsonb, t jsonb, b jsonb, pol jsonb)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  r jsonb := '{}';
  c text;
  sv jsonb;
  tv jsonb;
  bv jsonb;
  rule text;
  newest text := sync_metadata.sluice_newest('update_origin_differs', s, t, pol ->> 'compare_field');
BEGIN
  FOR c IN SELECT jsonb_object_keys(s) LOOP
    sv := s -> c; tv := t -> c; bv := b -> c;
    IF tv IS NULL OR sv = tv THEN r := r || jsonb_build_object(c, sv);
    ELSIF bv IS NOT NULL AND sv = bv THEN r := r || jsonb_build_object(c, tv);
    ELSIF bv IS NOT NULL AND tv = bv THEN r := r || jsonb_build_object(c, sv);
    ELSE
      rule := coalesce(pol -> 'rules' ->> c, pol ->> 'fallback', 'source_wins');
      r := r || jsonb_build_object(c, CASE rule
        WHEN 'target_wins' THEN tv
        WHEN 'newest_wins' THEN CASE newest WHEN 'source' THEN sv ELSE tv END
        WHEN 'append' THEN sync_metadata.sluice_json_append(tv, sv, bv)
        WHEN 'union' THEN sync_metadata.sluice_json_union(tv, sv)
        ELSE sv END);
    END IF;
  END LOOP;
  RETURN r;
END
$fn$;

CREATE OR REPLACE FUNCTION sync_metadata.sluice_log_conflict(
  p_table text, p_key jsonb, p_seq bigint, p_kind text, p_strategy text, p_status text,
  s jsonb, t jsonb, b jsonb, r jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  cfg jsonb := current_setting('sluice.apply', true)::jsonb;
BEGIN
  INSERT INTO sync_metadata.conflict_log AS l (deployment, source_id, table_name, row_key, seq,
      kind, reason, source_data, target_data, base_data, resolved_data, status, strategy,
      resolved_by, resolved_at, epoch, batch, seen_at)
  VALUES (current_setting('sluice.writer'), (cfg ->> 'source')::uuid, p_table, p_key, p_seq,
      p_kind, CASE p_kind
        WHEN 'update_origin_differs' THEN 'the source updated a row changed outside sluice'
        WHEN 'update_deleted' THEN 'the source updated a row deleted outside sluice'
        WHEN 'delete_origin_differs' THEN 'the source deleted a row changed outside sluice'
        ELSE 'the source wrote a row inserted outside sluice' END,
      s, t, b, r, p_status, p_strategy,
      CASE WHEN p_status = 'resolved' THEN 'automatic' END,
      CASE WHEN p_status = 'resolved' THEN now() END,
      (cfg ->> 'epoch')::bigint, (cfg ->> 'batch')::bigint, now())
  ON CONFLICT (deployment, table_name, row_key) WHERE status = 'pending' DO UPDATE
    SET seq = EXCLUDED.seq, kind = EXCLUDED.kind, source_data = EXCLUDED.source_data,
        target_data = EXCLUDED.target_data, epoch = EXCLUDED.epoch, batch = EXCLUDED.batch,
        seen_at = EXCLUDED.seen_at;
END
$fn$;

-- Outside UPDATE (BEFORE ROW, only when sluice.writer is not this
-- deployment): mark the row; at the first outside change since sluice wrote
-- it, keep OLD (sluice's image) as the merge base, in the row itself.
-- (Outside INSERTs need no trigger: _sluice_outside_at defaults to
-- clock_timestamp() and _sluice_seq to 0; sluice's INSERT names both.)
CREATE OR REPLACE FUNCTION sync_metadata.sluice_outside_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  img jsonb;
BEGIN
  NEW._sluice_base := OLD._sluice_base;  -- an outside writer cannot forge or clear them
  NEW._sluice_outside_at := OLD._sluice_outside_at;
  img := sync_metadata.sluice_image(to_jsonb(NEW));
  IF img = sync_metadata.sluice_image(to_jsonb(OLD)) THEN RETURN NEW; END IF;  -- no change
  IF OLD._sluice_outside_at IS NULL THEN
    NEW._sluice_base := sync_metadata.sluice_image(to_jsonb(OLD));
  END IF;
  IF img = NEW._sluice_base THEN  -- changed back to what sluice wrote: clean again
    NEW._sluice_base := NULL;
    NEW._sluice_outside_at := NULL;
  ELSE
    NEW._sluice_outside_at := clock_timestamp();
  END IF;
  RETURN NEW;
END
$fn$;

-- Outside DELETE (BEFORE ROW): remember the base if sluice had written the row
-- live. SECURITY DEFINER: the outside writer needs no rights on sync_metadata.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_outside_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  base jsonb := CASE WHEN OLD._sluice_outside_at IS NULL
                     THEN sync_metadata.sluice_image(to_jsonb(OLD)) ELSE OLD._sluice_base END;
BEGIN
  IF base IS NOT NULL AND base -> '_sluice_deleted_at' = 'null' THEN
    INSERT INTO sync_metadata.outside_deletes AS d (deployment, table_name, row_key, base_data)
    VALUES (TG_ARGV[0], TG_TABLE_NAME,
            sync_metadata.sluice_row_key(to_jsonb(OLD), TG_ARGV[1:]::text[]), base)
    ON CONFLICT (deployment, table_name, row_key) DO UPDATE
      SET base_data = EXCLUDED.base_data, deleted_at = now(), deleted_by = current_user,
          consumed_at = NULL;
  END IF;
  RETURN OLD;
END
$fn$;

-- sluice's own write (UpsertSql's DO UPDATE, DeleteSql, EvictSql, the orphan
-- pass) reaching a row marked by an outside write (BEFORE ROW, WHEN
-- OLD._sluice_outside_at IS NOT NULL): classify, resolve by the table's
-- policy (the transaction-local sluice.apply), log. OLD is the latest version,
-- locked by this statement: an outside write cannot slip in between.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_conflict() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  cfg jsonb := current_setting('sluice.apply', true)::jsonb;
  pol jsonb;
  s jsonb := sync_metadata.sluice_image(to_jsonb(NEW));
  t jsonb := sync_metadata.sluice_image(to_jsonb(OLD));
  b jsonb := OLD._sluice_base;
  seq bigint := NEW._sluice_seq;
  kind text;
  strategy text;
  eff text;
  winner text;
  r jsonb;
BEGIN
  IF cfg ->> 'mode' IS DISTINCT FROM 'apply' THEN RETURN NEW; END IF;  -- resolve, retire
  IF NEW._sluice_deleted_at IS NOT NULL THEN
    kind := 'delete_origin_differs';  -- DeleteSql/EvictSql only touch live rows
  ELSIF OLD._sluice_deleted_at IS NOT NULL THEN
    kind := CASE WHEN b -> '_sluice_deleted_at' = 'null' THEN 'update_deleted' END;
  ELSIF s = t THEN
    kind := NULL;  -- both sides made the same change
  ELSE
    kind := CASE WHEN b -> '_sluice_deleted_at' = 'null' THEN 'update_origin_differs'
                 ELSE 'insert_exists' END;
  END IF;
  IF kind IS NULL THEN
    NEW._sluice_outside_at := NULL;
    NEW._sluice_base := NULL;
    RETURN NEW;
  END IF;
  pol := coalesce(cfg -> 'tables' -> TG_TABLE_NAME, cfg -> 'default', '{}');
  strategy := coalesce(pol ->> 'strategy', 'source_wins');
  eff := strategy;
  IF strategy = 'merge' AND kind IN ('delete_origin_differs', 'update_deleted') THEN
    eff := coalesce(pol ->> 'fallback', 'source_wins');
  END IF;
  winner := CASE eff WHEN 'source_wins' THEN 'source' WHEN 'target_wins' THEN 'target'
                     WHEN 'manual' THEN 'pending'
                     WHEN 'newest_wins' THEN sync_metadata.sluice_newest(kind, s, t, pol ->> 'compare_field')
                     WHEN 'merge' THEN 'merged' END;
  IF winner IS NULL THEN RAISE EXCEPTION 'sluice: unknown strategy %', eff; END IF;
  IF winner = 'merged' THEN
    r := sync_metadata.sluice_merge(s, t, b, pol);
    IF r = s THEN winner := 'source'; END IF;
  END IF;
  PERFORM sync_metadata.sluice_log_conflict(TG_TABLE_NAME,
    sync_metadata.sluice_row_key(s, TG_ARGV[1:]::text[]), seq, kind, strategy,
    CASE winner WHEN 'pending' THEN 'pending' ELSE 'resolved' END, s, t, b,
    CASE winner WHEN 'source' THEN s WHEN 'target' THEN t WHEN 'merged' THEN r END);
  IF winner = 'source' THEN
    NEW._sluice_outside_at := NULL;
    NEW._sluice_base := NULL;
    RETURN NEW;
  END IF;
  -- Target kept (target, pending) or merged: the row differs from the source.
  -- _sluice_seq still takes the source's seq (a full read's orphan pass tells
  -- rows the snapshot carried by it). Target or merged: the source image
  -- becomes the base, so the next source change merges against what the
  -- source had. Pending: the base stays; the log entry holds the source image.
  IF winner = 'merged' THEN
    NEW := jsonb_populate_record(NEW, r);
  ELSE
    NEW := OLD;
    NEW._sluice_seq := seq;
  END IF;
  NEW._sluice_outside_at := OLD._sluice_outside_at;
  NEW._sluice_base := CASE WHEN winner = 'pending' THEN OLD._sluice_base ELSE s END;
  RETURN NEW;
END
$fn$;

-- sluice's INSERTs (AFTER STATEMENT, transition table): a row inserted where
-- an outside DELETE removed one sluice had written is update_deleted.
-- Costs one index probe per statement while no such delete is open.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  cfg jsonb;
  pol jsonb;
  strategy text;
  eff text;
  g record;
  keys text[] := TG_ARGV[1:]::text[];
  match text;
  newkey text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM sync_metadata.outside_deletes WHERE deployment = TG_ARGV[0]
                    AND table_name = TG_TABLE_NAME AND consumed_at IS NULL) THEN
    RETURN NULL;
  END IF;
  cfg := current_setting('sluice.apply', true)::jsonb;
  IF cfg ->> 'mode' IS DISTINCT FROM 'apply' THEN RETURN NULL; END IF;
  pol := coalesce(cfg -> 'tables' -> TG_TABLE_NAME, cfg -> 'default', '{}');
  strategy := coalesce(pol ->> 'strategy', 'source_wins');
  eff := CASE WHEN strategy = 'merge' THEN coalesce(pol ->> 'fallback', 'source_wins')
              WHEN strategy = 'newest_wins' THEN 'source_wins'  -- the delete has no compare value
              ELSE strategy END;
  SELECT string_agg(format('t.%I = (jsonb_populate_record(NULL::%I.%I, $1)).%I', k,
                           TG_TABLE_SCHEMA, TG_TABLE_NAME, k), ' AND '),
         'jsonb_build_array(' || string_agg(format('n.%I', k), ', ') || ')'
    INTO match, newkey FROM unnest(keys) k;
  FOR g IN EXECUTE 'SELECT d.row_key, d.base_data, d.deleted_at, n._sluice_seq AS seq, '
      'sync_metadata.sluice_image(to_jsonb(n)) AS s FROM sluice_new n '
      'JOIN sync_metadata.outside_deletes d ON d.deployment = $1 AND d.table_name = $2 '
      'AND d.consumed_at IS NULL AND d.row_key = ' || newkey
      USING TG_ARGV[0], TG_TABLE_NAME LOOP
    UPDATE sync_metadata.outside_deletes SET consumed_at = now()
     WHERE deployment = TG_ARGV[0] AND table_name = TG_TABLE_NAME AND row_key = g.row_key;
    PERFORM sync_metadata.sluice_log_conflict(TG_TABLE_NAME, g.row_key, g.seq, 'update_deleted',
      strategy, CASE eff WHEN 'manual' THEN 'pending' ELSE 'resolved' END, g.s, NULL,
      g.base_data, CASE eff WHEN 'source_wins' THEN g.s END);
    IF eff IN ('target_wins', 'manual') THEN
      -- The target's delete stands: as a tombstone (sluice never DELETEs),
      -- marked, so later source changes meet it in sluice_conflict.
      EXECUTE format('UPDATE %I.%I t SET _sluice_deleted_at = $2, _sluice_outside_at = $2, '
                     '_sluice_base = $3 WHERE ', TG_TABLE_SCHEMA, TG_TABLE_NAME) || match
        USING g.s, g.deleted_at, CASE eff WHEN 'manual' THEN g.base_data ELSE g.s END;
    END IF;
  END LOOP;
  RETURN NULL;
END
$fn$;
COMMIT;

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
  ALTER COLUMN _sluice_seq SET DEFAULT 0;  -- outside INSERTs are marked by the defaults
CREATE INDEX chat_sluice_outside ON d1.chat (_sluice_outside_at) WHERE _sluice_outside_at IS NOT NULL;
CREATE TRIGGER sluice_outside BEFORE UPDATE ON d1.chat FOR EACH ROW
  WHEN (current_setting('sluice.writer', true) IS DISTINCT FROM 'd1')
  EXECUTE FUNCTION sync_metadata.sluice_outside_write('d1', 'id');
CREATE TRIGGER sluice_conflict BEFORE UPDATE ON d1.chat FOR EACH ROW
  WHEN (OLD._sluice_outside_at IS NOT NULL AND current_setting('sluice.writer', true) = 'd1')
  EXECUTE FUNCTION sync_metadata.sluice_conflict('d1', 'id');
CREATE TRIGGER sluice_outside_delete BEFORE DELETE ON d1.chat FOR EACH ROW
  WHEN (current_setting('sluice.writer', true) IS DISTINCT FROM 'd1')
  EXECUTE FUNCTION sync_metadata.sluice_outside_delete('d1', 'id');
CREATE TRIGGER sluice_inserted AFTER INSERT ON d1.chat REFERENCING NEW TABLE AS sluice_new
  FOR EACH STATEMENT WHEN (current_setting('sluice.writer', true) = 'd1')
  EXECUTE FUNCTION sync_metadata.sluice_inserted('d1', 'id');

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
  || '/' || coalesce(pg_temp.cell('i', '_sluice_base'), 'none'), '0/true/none');
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

SELECT pg_temp.expect('unit detection by magnitude', (SELECT string_agg(round(sync_metadata.sluice_time_seconds(v))::text, ' ')
  FROM unnest(ARRAY['1733000000', '1733000000123', '1733000000123456', '1733000000123456789',
                    '"1733000000"', '"2024-11-30 20:53:20"', '"2024-11-30T21:53:20+01:00"']::jsonb[]) v),
  '1733000000 1733000000 1733000000 1733000000 1733000000 1733000000 1733000000');
SELECT pg_temp.expect('unparsable compare values', (SELECT string_agg(coalesce(sync_metadata.sluice_time_seconds(v)::text, 'null'), ' ')
  FROM unnest(ARRAY['"yesterday"', '"2025-13-45"', 'true', 'null']::jsonb[]) v), 'null null null null');
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
      ALTER COLUMN _sluice_seq SET DEFAULT 0;
    CREATE TRIGGER sluice_outside BEFORE UPDATE ON b.message FOR EACH ROW
      WHEN (current_setting('sluice.writer', true) IS DISTINCT FROM 'b')
      EXECUTE FUNCTION sync_metadata.sluice_outside_write('b', 'id');
    CREATE TRIGGER sluice_conflict BEFORE UPDATE ON b.message FOR EACH ROW
      WHEN (OLD._sluice_outside_at IS NOT NULL AND current_setting('sluice.writer', true) = 'b')
      EXECUTE FUNCTION sync_metadata.sluice_conflict('b', 'id');
    CREATE TRIGGER sluice_outside_delete BEFORE DELETE ON b.message FOR EACH ROW
      WHEN (current_setting('sluice.writer', true) IS DISTINCT FROM 'b')
      EXECUTE FUNCTION sync_metadata.sluice_outside_delete('b', 'id');
    IF variant <> 'trigger_no_stmt' THEN
      CREATE TRIGGER sluice_inserted AFTER INSERT ON b.message REFERENCING NEW TABLE AS sluice_new
        FOR EACH STATEMENT WHEN (current_setting('sluice.writer', true) = 'b')
        EXECUTE FUNCTION sync_metadata.sluice_inserted('b', 'id');
    END IF;
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
