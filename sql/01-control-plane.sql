-- sluice control plane: schema sync_metadata with the per-deployment source
-- position (exactly-once: advanced in the same transaction as the data it
-- covers), the applied-batch history, the conflict log and schema versions,
-- plus sync_metadata.sluice_advance(). Plain psql script, re-runnable; run by
-- an administrator (or by `sluice init`, which embeds this file).
-- version: 5 (2: source_position.position_mark; 3: mirror_tables; 4: leader_election,
-- applied_batches.epoch, the lease functions and the epoch fence; 5: conflict
-- detection and resolution, conflict_log's new columns, outside_deletes; 6:
-- update_missing; 7: sluice_check_deployment in the lease, fence and advance functions)
BEGIN;

SET LOCAL client_min_messages = warning;  -- no "already exists, skipping" noise
-- Two agents running init at once must not race on CREATE ... IF NOT EXISTS;
-- a transaction-scoped lock also works through a transaction-mode pooler.
-- (No psql meta-commands in this file: the agent sends it with PQexec.)
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('sluice control plane')); END $$;

CREATE SCHEMA IF NOT EXISTS sync_metadata;

CREATE TABLE IF NOT EXISTS sync_metadata.schema_version (
  component    text PRIMARY KEY,
  version      int,
  installed_at timestamptz
);

-- One row per deployment: how far this deployment's source has been applied.
CREATE TABLE IF NOT EXISTS sync_metadata.source_position (
  deployment  text PRIMARY KEY,
  source_id   uuid NOT NULL,
  applied_seq bigint NOT NULL DEFAULT -1,  -- -1: initial sync not done
  batches     bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Fingerprint of the source's journal row at applied_seq (version 2): a
-- restored SQLite file that reuses the seq has another row there.
ALTER TABLE sync_metadata.source_position ADD COLUMN IF NOT EXISTS position_mark text;

-- History of applied batches (pruned to about 7 days by sluice_advance).
CREATE TABLE IF NOT EXISTS sync_metadata.applied_batches (
  deployment   text NOT NULL,
  source_id    uuid NOT NULL,
  after_seq    bigint NOT NULL,
  snapshot_seq bigint NOT NULL,
  row_count    bigint NOT NULL DEFAULT 0,
  applied_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (deployment, after_seq, applied_at)
);

-- Rows the sink rejected (kind 'rejected', status 'parked') and conflicts
-- with outside writes (version 5: the kinds below, status 'resolved' or
-- 'pending'), kept with their images.
CREATE TABLE IF NOT EXISTS sync_metadata.conflict_log (
  id            bigserial PRIMARY KEY,
  deployment    text NOT NULL,
  source_id     uuid,
  table_name    text NOT NULL,
  row_key       jsonb,
  seq           bigint,
  kind          text NOT NULL,  -- 'rejected', or a conflict kind (version 5)
  reason        text NOT NULL,
  source_data   jsonb,
  target_data   jsonb,
  resolved_data jsonb,
  status        text NOT NULL DEFAULT 'parked',
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS conflict_log_deployment_created_at_idx
  ON sync_metadata.conflict_log (deployment, created_at);

-- Which physical table holds each mirror since sluice last read it whole (in
-- the transaction of that full read; version 3). A mirror dropped and recreated has
-- another relid, a truncated one another relfilenode: the agent compares on
-- every apply and at start, and reads such a table whole again. The mismatch
-- itself is the durable record that the resync is still owed.
CREATE TABLE IF NOT EXISTS sync_metadata.mirror_tables (
  deployment  text NOT NULL,
  table_name  text NOT NULL,
  schema_name text NOT NULL,
  relid       oid NOT NULL,
  relfilenode oid NOT NULL,
  synced_seq  bigint,  -- snapshot seq of that full read
  synced_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (deployment, table_name)
);

-- The leader lease of each deployment (version 4; the seed's table name and
-- columns). Judged by the database clock alone: clock_timestamp() inside the
-- statement, never an agent's clock. Every new holder gets a larger epoch;
-- every apply transaction checks its epoch under a row lock just before it
-- commits (sluice_fence), so a process that lost the lease cannot commit.
CREATE TABLE IF NOT EXISTS sync_metadata.leader_election (
  deployment      text PRIMARY KEY,
  leader_id       text,                      -- the holder's node id
  leader_host     text,
  epoch           bigint NOT NULL DEFAULT 0,
  acquired_at     timestamptz,
  expires_at      timestamptz,
  heartbeat_count bigint NOT NULL DEFAULT 0,  -- renewals by this holder
  released_at     timestamptz                -- set by a graceful release
);

-- The epoch that committed each batch (version 4; NULL before leases).
ALTER TABLE sync_metadata.applied_batches ADD COLUMN IF NOT EXISTS epoch bigint;

-- Host isolation (sql/03-host-isolation.sql, version 7 here): whether the
-- caller may act for p_deployment. True while 03 is not installed (no
-- sluice_admin role: one tenant, today's behaviour), for administrators
-- (members of sluice_admin, superusers) and for roles outside sluice_sync
-- (their table rights decide); a host role (a member of sluice_sync) only for
-- the deployments client_deployments shows it, which row-level security
-- limits to its own host's. Resolved at run time: 03 may come after this file.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_may_use(p_deployment text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF to_regrole('sluice_admin') IS NULL OR to_regclass('sync_metadata.client_deployments') IS NULL
     OR pg_has_role('sluice_admin', 'MEMBER') OR NOT pg_has_role('sluice_sync', 'MEMBER') THEN
    RETURN true;
  END IF;
  RETURN EXISTS (SELECT 1 FROM sync_metadata.client_deployments d
                  WHERE d.deployment = p_deployment);
END
$fn$;

-- Refuses (42501) a deployment the caller may not act for, with the same
-- message whether or not it exists: nothing tells another host's apart.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_check_deployment(p_deployment text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF NOT sync_metadata.sluice_may_use(p_deployment) THEN
    RAISE EXCEPTION 'deployment % is not registered to role %', p_deployment, current_user
      USING ERRCODE = '42501',
            HINT = 'an administrator registers it: sluice admin bootstrap';
  END IF;
END
$fn$;

-- Acquire or renew the lease in one statement. p_epoch: the epoch the caller
-- holds (NULL when it holds none). Renews when p_epoch is the current epoch
-- and the lease has not expired; acquires with epoch + 1 when the lease has
-- expired or was released (or no row exists); otherwise changes nothing.
-- Returns the lease as it is now: holder, epoch, and the milliseconds left
-- by the database clock (held = the caller holds it after this call).
CREATE OR REPLACE FUNCTION sync_metadata.sluice_lease(
  p_deployment text, p_node text, p_host text, p_epoch bigint, p_duration_ms bigint)
RETURNS TABLE (held boolean, epoch bigint, leader_id text, leader_host text,
               expires_in_ms bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
  v_row  sync_metadata.leader_election%ROWTYPE;
  v_now  timestamptz;
  v_held boolean := false;
  v_pid  int;
BEGIN
  IF p_deployment IS NULL OR p_node IS NULL OR p_duration_ms IS NULL OR p_duration_ms <= 0 THEN
    RAISE EXCEPTION 'sluice_lease: deployment, node and a positive duration are required';
  END IF;
  PERFORM sync_metadata.sluice_check_deployment(p_deployment);
  INSERT INTO sync_metadata.leader_election AS l (deployment) VALUES (p_deployment)
  ON CONFLICT (deployment) DO NOTHING;
  SELECT * INTO v_row FROM sync_metadata.leader_election l
   WHERE l.deployment = p_deployment FOR UPDATE;
  v_now := clock_timestamp();
  IF p_epoch IS NOT NULL AND v_row.epoch = p_epoch AND v_row.leader_id = p_node
     AND v_row.expires_at > v_now THEN
    UPDATE sync_metadata.leader_election l
       SET expires_at = v_now + make_interval(secs => p_duration_ms / 1000.0),
           heartbeat_count = l.heartbeat_count + 1
     WHERE l.deployment = p_deployment
    RETURNING * INTO v_row;
    v_held := true;
  ELSIF v_row.expires_at IS NULL OR v_row.expires_at <= v_now THEN
    UPDATE sync_metadata.leader_election l
       SET leader_id = p_node, leader_host = p_host, epoch = l.epoch + 1,
           acquired_at = v_now,
           expires_at = v_now + make_interval(secs => p_duration_ms / 1000.0),
           heartbeat_count = 0, released_at = NULL
     WHERE l.deployment = p_deployment
    RETURNING * INTO v_row;
    v_held := true;
    -- An apply transaction of an older epoch can never commit now (sluice_fence
    -- refuses it), but it keeps its locks (the position row, mirror rows) until
    -- it ends, and the new holder's first batch waits for them. One whose client
    -- froze halfway through sending a pipeline is not even idle in transaction
    -- (no Sync came), so nothing would end it: end those sessions now. Each apply
    -- transaction holds the advisory lock (deployment, epoch), see sluice_advance.
    FOR v_pid IN
      SELECT k.pid FROM pg_catalog.pg_locks k
       WHERE k.locktype = 'advisory' AND k.objsubid = 2 AND k.granted
         AND k.classid = (hashtext('sluice apply ' || p_deployment)::bigint & 4294967295)::oid
         AND k.objid <> (v_row.epoch % 2147483648)::oid
         AND k.pid <> pg_backend_pid()
    LOOP
      BEGIN
        PERFORM pg_terminate_backend(v_pid);
      EXCEPTION WHEN insufficient_privilege THEN
        NULL;  -- another role's session: the fence still refuses its commit
      END;
    END LOOP;
  END IF;
  held := v_held;
  epoch := v_row.epoch;
  leader_id := v_row.leader_id;
  leader_host := v_row.leader_host;
  expires_in_ms := greatest(0, floor(extract(epoch FROM v_row.expires_at - v_now) * 1000))::bigint;
  RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_lease(text, text, text, bigint, bigint) FROM PUBLIC;

-- Gives the lease up at once (a graceful stop), if p_epoch still holds it.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_lease_release(p_deployment text, p_epoch bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  PERFORM sync_metadata.sluice_check_deployment(p_deployment);
  UPDATE sync_metadata.leader_election l
     SET expires_at = clock_timestamp(), released_at = clock_timestamp()
   WHERE l.deployment = p_deployment AND l.epoch = p_epoch
     AND l.expires_at > clock_timestamp();
  RETURN FOUND;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_lease_release(text, bigint) FROM PUBLIC;

-- The fence: the caller's epoch must be the current one and its lease
-- unexpired by the database clock now. p_lock (the last statement of every
-- apply transaction, just before COMMIT): under a row lock (FOR SHARE) that
-- lasts until the COMMIT, so a new holder's acquire waits for this commit
-- and no batch commits under an epoch after a later epoch took the lease.
-- Without p_lock (sluice_advance, at the start of the batch): an early
-- refusal that does not hold up the leader's own renewals for the whole
-- batch. p_epoch NULL: allowed only while the deployment never had a lease
-- (tools and tests without agents). SL002: fenced, give up leadership.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_fence(
  p_deployment text, p_epoch bigint, p_lock boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_epoch   bigint;
  v_expires timestamptz;
BEGIN
  PERFORM sync_metadata.sluice_check_deployment(p_deployment);
  IF p_lock THEN
    SELECT l.epoch, l.expires_at INTO v_epoch, v_expires
      FROM sync_metadata.leader_election l WHERE l.deployment = p_deployment FOR SHARE;
  ELSE
    SELECT l.epoch, l.expires_at INTO v_epoch, v_expires
      FROM sync_metadata.leader_election l WHERE l.deployment = p_deployment;
  END IF;
  IF p_epoch IS NULL AND coalesce(v_epoch, 0) = 0 THEN
    RETURN NULL;
  END IF;
  IF v_epoch IS NULL OR p_epoch IS NULL OR v_epoch <> p_epoch THEN
    RAISE EXCEPTION 'fenced: the lease of deployment % is at epoch %, this batch was made under %',
      p_deployment, coalesce(v_epoch::text, 'none'), coalesce(p_epoch::text, 'no lease')
      USING ERRCODE = 'SL002';
  END IF;
  IF v_expires IS NULL OR v_expires <= clock_timestamp() THEN
    RAISE EXCEPTION 'fenced: the lease of deployment % at epoch % expired % ago', p_deployment,
      v_epoch, clock_timestamp() - v_expires USING ERRCODE = 'SL002';
  END IF;
  RETURN v_epoch;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_fence(text, bigint, boolean) FROM PUBLIC;

-- Deletes this deployment's applied_batches rows older than 7 days. SECURITY
-- DEFINER because the sync role has no DELETE privilege anywhere; this is the
-- only delete it can cause, and only of old history. With host isolation
-- (sql/03) only for a deployment of the session's own login role (inside
-- this function current_user is its owner; session_user is who logged in).
CREATE OR REPLACE FUNCTION sync_metadata.prune_applied_batches(p_deployment text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_deleted bigint;
BEGIN
  IF to_regrole('sluice_admin') IS NOT NULL
     AND to_regclass('sync_metadata.client_deployments') IS NOT NULL
     AND NOT pg_has_role(session_user, 'sluice_admin', 'MEMBER') THEN
    IF NOT EXISTS (SELECT 1 FROM sync_metadata.client_deployments d
                     JOIN sync_metadata.hosts h ON h.host_id = d.host_id
                    WHERE d.deployment = p_deployment AND h.role_name = session_user
                      AND h.revoked_at IS NULL) THEN
      RAISE EXCEPTION 'deployment % is not registered to role %', p_deployment, session_user
        USING ERRCODE = '42501';
    END IF;
  END IF;
  DELETE FROM sync_metadata.applied_batches
   WHERE deployment = p_deployment AND applied_at < now() - interval '7 days';
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.prune_applied_batches(text) FROM PUBLIC;

-- Moves a deployment's position from p_after to p_to, inside the caller's
-- apply transaction. Errors (SQLSTATE → what the agent does next):
--   SL001 no position row, or the sink holds another position → re-read it
--   SL002 p_epoch is not the lease's current epoch (sluice_fence) → stand by
--   SL003 the position belongs to another source (restored SQLite file?) → resync
-- p_epoch: the lease epoch of the caller, recorded in applied_batches.epoch;
-- the check here refuses a stale leader early, sluice_fence before COMMIT is
-- the one that counts.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_advance(
  p_deployment text, p_source uuid, p_after bigint, p_to bigint, p_rows bigint,
  p_epoch bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_source  uuid;
  v_applied bigint;
  v_batches bigint;
BEGIN
  IF p_deployment IS NULL OR p_source IS NULL OR p_after IS NULL OR p_to IS NULL THEN
    RAISE EXCEPTION 'sluice_advance: deployment, source, after and to must not be NULL';
  END IF;
  PERFORM sync_metadata.sluice_check_deployment(p_deployment);
  -- This transaction is the deployment's apply under p_epoch until it ends (an
  -- xact lock, so a transaction-mode pooler is fine); taken before the check
  -- below, so a new holder of the lease (sluice_lease) sees every transaction
  -- that may have passed it, and ends those of older epochs.
  IF p_epoch IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock_shared(hashtext('sluice apply ' || p_deployment),
                                         (p_epoch % 2147483648)::int);
  END IF;
  PERFORM sync_metadata.sluice_fence(p_deployment, p_epoch, false);
  -- p_to < p_after is allowed: a full resync after the SQLite file was restored
  -- from a backup (its journal is behind the sink) moves the position back.

  SELECT source_id, applied_seq INTO v_source, v_applied
    FROM sync_metadata.source_position
   WHERE deployment = p_deployment
     FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'deployment % has no position row: run sluice init', p_deployment
      USING ERRCODE = 'SL001';
  END IF;
  IF v_source <> p_source THEN
    RAISE EXCEPTION 'deployment % follows source %, not %', p_deployment, v_source, p_source
      USING ERRCODE = 'SL003';
  END IF;
  IF v_applied <> p_after THEN
    RAISE EXCEPTION 'position conflict: sink holds %, batch starts after %', v_applied, p_after
      USING ERRCODE = 'SL001';
  END IF;

  UPDATE sync_metadata.source_position
     SET applied_seq = p_to, batches = batches + 1, updated_at = now()
   WHERE deployment = p_deployment
  RETURNING batches INTO v_batches;

  INSERT INTO sync_metadata.applied_batches
         (deployment, source_id, after_seq, snapshot_seq, row_count, epoch)
  VALUES (p_deployment, p_source, p_after, p_to, coalesce(p_rows, 0), p_epoch);

  IF v_batches % 1000 = 0 THEN
    PERFORM sync_metadata.prune_applied_batches(p_deployment);
  END IF;
  RETURN p_to;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_advance(text, uuid, bigint, bigint, bigint, bigint)
  FROM PUBLIC;

-- The version-3 signature, for an agent of that version still running during
-- an upgrade: it has no epoch, so it is fenced once any agent took a lease.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_advance(
  p_deployment text, p_source uuid, p_after bigint, p_to bigint, p_rows bigint)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT sync_metadata.sluice_advance(p_deployment, p_source, p_after, p_to, p_rows, NULL) $fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_advance(text, uuid, bigint, bigint, bigint)
  FROM PUBLIC;

-- ======================================================================
-- Conflicts with outside writes (version 5; update_missing in 6; docs/design-conflicts.md).
-- A write to a mirror made while the transaction-local setting sluice.writer
-- is not this deployment is an outside write: per-mirror triggers (created by
-- sink/mirror_table.cc) mark the row (_sluice_outside_at) and keep the image
-- sluice last wrote in it (_sluice_base), the merge base. When a source change
-- reaches a marked row, sluice_conflict classifies it, resolves it by the
-- table's policy (sluice.apply, set by the agent per transaction) and logs it
-- in conflict_log, all inside the apply transaction: exactly once.
-- ======================================================================
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

-- Nanoseconds since the epoch from a compare field, exact (numeric: a double
-- cannot tell nanoseconds apart at today's epoch). A number (or numeric text)
-- is seconds below 1e11, milliseconds below 1e14, microseconds below 1e17,
-- nanoseconds above (each range covers 1973..5138, ns until 2262); other text
-- must be ISO-8601 (no zone: UTC, as SQLite's CURRENT_TIMESTAMP). NULL: unusable.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_time_ns(v jsonb) RETURNS numeric
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  n numeric;
  t text;
BEGIN
  IF v IS NULL OR jsonb_typeof(v) NOT IN ('number', 'string') THEN RETURN NULL; END IF;
  IF jsonb_typeof(v) = 'number' THEN
    n := (v #>> '{}')::numeric;
  ELSE
    t := btrim(v #>> '{}');
    IF t ~ '^-?[0-9]+(\.[0-9]+)?$' THEN
      n := t::numeric;
    ELSIF t ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$' THEN
      BEGIN
        IF t ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' AND t ~ '[ T]' THEN
          RETURN extract(epoch FROM t::timestamptz)::numeric * 1000000000;
        END IF;
        RETURN extract(epoch FROM (t::timestamp AT TIME ZONE 'UTC'))::numeric * 1000000000;
      EXCEPTION WHEN others THEN RETURN NULL;  -- '2025-13-45'
      END;
    ELSE
      RETURN NULL;
    END IF;
  END IF;
  RETURN CASE WHEN abs(n) < 1e11 THEN n * 1000000000 WHEN abs(n) < 1e14 THEN n * 1000000
              WHEN abs(n) < 1e17 THEN n * 1000 ELSE n END;
END
$fn$;

-- The same in seconds (for people reading a compare value; sluice_newest
-- compares sluice_time_ns).
CREATE OR REPLACE FUNCTION sync_metadata.sluice_time_seconds(v jsonb) RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$ SELECT (sync_metadata.sluice_time_ns(v) / 1000000000)::double precision $$;

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
  ts numeric := sync_metadata.sluice_time_ns(s -> field);
  tt numeric := sync_metadata.sluice_time_ns(t -> field);
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
  cfg jsonb := nullif(current_setting('sluice.apply', true), '')::jsonb;
BEGIN
  -- Resolved (or, p_kind NULL, no conflict any more: both sides converged)
  -- while a pending entry for the row is open (a reload changed the policy):
  -- that entry is closed here, so resolving it later cannot write an old
  -- source image over the newer row.
  IF p_status = 'resolved' THEN
    UPDATE sync_metadata.conflict_log AS l
       SET seq = p_seq, kind = coalesce(p_kind, l.kind), strategy = coalesce(p_strategy, l.strategy),
           status = 'resolved', source_data = s, target_data = t, resolved_data = r,
           resolved_by = 'automatic', resolved_at = now(), epoch = (cfg ->> 'epoch')::bigint,
           batch = (cfg ->> 'batch')::bigint, seen_at = now()
     WHERE l.deployment = current_setting('sluice.writer') AND l.table_name = p_table
       AND l.row_key = p_key AND l.status = 'pending';
    IF FOUND OR p_kind IS NULL THEN RETURN; END IF;
  END IF;
  INSERT INTO sync_metadata.conflict_log AS l (deployment, source_id, table_name, row_key, seq,
      kind, reason, source_data, target_data, base_data, resolved_data, status, strategy,
      resolved_by, resolved_at, epoch, batch, seen_at)
  VALUES (current_setting('sluice.writer'), (cfg ->> 'source')::uuid, p_table, p_key, p_seq,
      p_kind, CASE p_kind
        WHEN 'update_origin_differs' THEN 'the source updated a row changed outside sluice'
        WHEN 'update_deleted' THEN 'the source updated a row deleted outside sluice'
        WHEN 'update_missing' THEN 'the source updated a row missing at the sink, with no '
                                   'record of its delete'
        WHEN 'delete_origin_differs' THEN 'the source deleted a row changed outside sluice'
        ELSE 'the source wrote a row inserted outside sluice' END,
      s, t, b, r, p_status, p_strategy,
      CASE WHEN p_status = 'resolved' THEN 'automatic' END,
      CASE WHEN p_status = 'resolved' THEN now() END,
      (cfg ->> 'epoch')::bigint, (cfg ->> 'batch')::bigint, now())
  ON CONFLICT (deployment, table_name, row_key) WHERE status = 'pending' DO UPDATE
    SET seq = EXCLUDED.seq, kind = EXCLUDED.kind, reason = EXCLUDED.reason,
        source_data = EXCLUDED.source_data,
        target_data = EXCLUDED.target_data, epoch = EXCLUDED.epoch, batch = EXCLUDED.batch,
        seen_at = EXCLUDED.seen_at;
END
$fn$;

-- Outside UPDATE (BEFORE ROW, only when sluice.writer is not this
-- deployment): mark the row; at the first outside change since sluice wrote
-- it, keep OLD (sluice's image) as the merge base, in the row itself.
-- (Outside INSERTs need no trigger: _sluice_outside_at defaults to
-- clock_timestamp() and _sluice_seq to -1, which no snapshot has; sluice's INSERT names both.)
CREATE OR REPLACE FUNCTION sync_metadata.sluice_outside_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
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
  cfg jsonb := nullif(current_setting('sluice.apply', true), '')::jsonb;
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
  IF NEW._sluice_deleted_at IS NOT NULL AND OLD._sluice_deleted_at IS NOT NULL THEN
    kind := NULL;  -- the source deletes a row the outside tombstoned: both agree
  ELSIF NEW._sluice_deleted_at IS NOT NULL THEN
    kind := 'delete_origin_differs';
  ELSIF OLD._sluice_deleted_at IS NOT NULL THEN
    kind := CASE WHEN b -> '_sluice_deleted_at' = 'null' THEN 'update_deleted' END;
  ELSIF s = t THEN
    kind := NULL;  -- both sides made the same change
  ELSE
    kind := CASE WHEN b -> '_sluice_deleted_at' = 'null' THEN 'update_origin_differs'
                 ELSE 'insert_exists' END;
  END IF;
  IF kind IS NULL THEN
    PERFORM sync_metadata.sluice_log_conflict(TG_TABLE_NAME,
      sync_metadata.sluice_row_key(s, TG_ARGV[1:]::text[]), seq, NULL, NULL, 'resolved', s, t, b, s);
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
    -- insert_exists has no common ancestor: a base there is a tombstone
    -- (sluice's, or the source's delete a kept target outlived) whose values
    -- would make the target look unchanged and lose its columns.
    r := sync_metadata.sluice_merge(s, t, CASE WHEN kind = 'insert_exists' THEN NULL ELSE b END,
                                    pol);
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
-- an outside DELETE removed one sluice had written is update_deleted; a row
-- the source updated (UpsertSql put '"update"' in _sluice_base: the source had
-- it before, so the mirror should have) that was not there, with no record of
-- a delete, is update_missing (deleted with the triggers off, a restore),
-- unless the row was parked (sluice never wrote it). update_deleted follows
-- the policy; update_missing always brings the row back (logged). The
-- marker is cleared. Costs one index
-- probe and a scan of the statement's new rows while neither is there.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  cfg jsonb;
  pol jsonb;
  strategy text;
  eff text;
  g record;
  keys text[];
  match text;
  newkey text;
  kind text;
BEGIN
  -- One statement (one cached plan per table) before the common way out: a
  -- backend holds this function compiled once per mirror, and every relcache
  -- invalidation (each DDL statement) walks all their cached plans.
  IF NOT EXISTS (SELECT 1 FROM sync_metadata.outside_deletes WHERE deployment = TG_ARGV[0]
                    AND table_name = TG_TABLE_NAME AND consumed_at IS NULL)
     AND NOT EXISTS (SELECT 1 FROM sluice_new WHERE _sluice_base = '"update"') THEN
    RETURN NULL;
  END IF;
  cfg := nullif(current_setting('sluice.apply', true), '')::jsonb;
  IF cfg ->> 'mode' IS DISTINCT FROM 'apply' THEN RETURN NULL; END IF;
  pol := coalesce(cfg -> 'tables' -> TG_TABLE_NAME, cfg -> 'default', '{}');
  strategy := coalesce(pol ->> 'strategy', 'source_wins');
  eff := CASE WHEN strategy = 'merge' THEN coalesce(pol ->> 'fallback', 'source_wins')
              ELSE strategy END;
  IF eff = 'newest_wins' THEN eff := 'source_wins'; END IF;  -- no target value to compare
  keys := TG_ARGV[1:]::text[];
  SELECT string_agg(format('t.%I = (jsonb_populate_record(NULL::%I.%I, $1)).%I', k,
                           TG_TABLE_SCHEMA, TG_TABLE_NAME, k), ' AND '),
         'jsonb_build_array(' || string_agg(format('n.%I', k), ', ') || ')'
    INTO match, newkey FROM unnest(keys) k;
  FOR g IN EXECUTE 'SELECT ' || newkey || ' AS row_key, d.row_key IS NOT NULL AS recorded, '
      'd.base_data, coalesce(d.deleted_at, now()) AS deleted_at, n._sluice_seq AS seq, '
      'n._sluice_base IS NOT NULL AS marked, '
      'sync_metadata.sluice_image(to_jsonb(n.*)) AS s FROM sluice_new n '
      'LEFT JOIN sync_metadata.outside_deletes d ON d.deployment = $1 AND d.table_name = $2 '
      'AND d.consumed_at IS NULL AND d.row_key = ' || newkey ||
      ' WHERE d.row_key IS NOT NULL OR n._sluice_base = ''"update"'''
      USING TG_ARGV[0], TG_TABLE_NAME LOOP
    kind := NULL;
    IF g.recorded THEN
      UPDATE sync_metadata.outside_deletes SET consumed_at = now()
       WHERE deployment = TG_ARGV[0] AND table_name = TG_TABLE_NAME AND row_key = g.row_key;
      kind := 'update_deleted';
    ELSIF NOT EXISTS (SELECT 1 FROM sync_metadata.conflict_log c WHERE c.deployment = TG_ARGV[0]
                         AND c.table_name = TG_TABLE_NAME AND c.row_key = g.row_key
                         AND c.status = 'parked') THEN
      kind := 'update_missing';
    END IF;
    IF kind = 'update_missing' THEN
      -- Whatever the policy, the row comes back: a delete without a trace
      -- cannot be told from a lost row (a restore, a mirror emptied at the
      -- sink that the registry finds only at this batch), and keeping it
      -- gone could lose it for good. Logged, so the operator sees it.
      PERFORM sync_metadata.sluice_log_conflict(TG_TABLE_NAME, g.row_key, g.seq, kind,
        strategy, 'resolved', g.s, NULL, NULL, g.s);
    ELSIF kind IS NOT NULL THEN
      PERFORM sync_metadata.sluice_log_conflict(TG_TABLE_NAME, g.row_key, g.seq, kind,
        strategy, CASE eff WHEN 'manual' THEN 'pending' ELSE 'resolved' END, g.s, NULL,
        g.base_data, CASE eff WHEN 'source_wins' THEN g.s END);
    END IF;
    IF kind = 'update_deleted' AND eff IN ('target_wins', 'manual') THEN
      -- The target's state (no row) stands: as a tombstone (sluice never
      -- DELETEs), marked, so later source changes meet it in sluice_conflict.
      EXECUTE format('UPDATE %I.%I t SET _sluice_deleted_at = $2, _sluice_outside_at = $2, '
                     '_sluice_base = $3 WHERE ', TG_TABLE_SCHEMA, TG_TABLE_NAME) || match
        USING g.s, g.deleted_at, CASE eff WHEN 'manual' THEN g.base_data ELSE g.s END;
    ELSIF g.marked THEN
      EXECUTE format('UPDATE %I.%I t SET _sluice_base = NULL WHERE ', TG_TABLE_SCHEMA,
                     TG_TABLE_NAME) || match USING g.s;
    END IF;
  END LOOP;
  RETURN NULL;
END
$fn$;



-- An upgrade adds tables and functions (mirror_tables in version 3, the lease in 4,
-- outside_deletes in 5) after 02 last ran: once
-- 02 made the sync role, it gets the same rights on them here (SELECT, INSERT,
-- UPDATE, never DELETE or TRUNCATE), so an upgrade needs only `sluice init`.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'sluice_sync') THEN
    GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sync_metadata TO sluice_sync;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA sync_metadata TO sluice_sync;
    GRANT EXECUTE ON FUNCTION
      sync_metadata.sluice_advance(text, uuid, bigint, bigint, bigint, bigint),
      sync_metadata.sluice_lease(text, text, text, bigint, bigint),
      sync_metadata.sluice_lease_release(text, bigint),
      sync_metadata.sluice_fence(text, bigint, boolean),
      sync_metadata.sluice_may_use(text),
      sync_metadata.sluice_check_deployment(text)
      TO sluice_sync;
  END IF;
  -- With host isolation installed (sql/03), the grant above gave the sync role
  -- too much on its tables (hosts, client_deployments are read-only to it) and
  -- new tables need row-level security: sluice_isolate() puts both right.
  IF to_regprocedure('sync_metadata.sluice_isolate()') IS NOT NULL THEN
    PERFORM sync_metadata.sluice_isolate();
  END IF;
END
$$;

INSERT INTO sync_metadata.schema_version (component, version, installed_at)
VALUES ('control-plane', 7, now())
ON CONFLICT (component) DO UPDATE
   SET version = EXCLUDED.version, installed_at = EXCLUDED.installed_at
 WHERE sync_metadata.schema_version.version IS DISTINCT FROM EXCLUDED.version;

COMMIT;
