-- sluice control plane: schema sync_metadata with the per-deployment source
-- position (exactly-once: advanced in the same transaction as the data it
-- covers), the applied-batch history, the conflict log and schema versions,
-- plus sync_metadata.sluice_advance(). Plain psql script, re-runnable; run by
-- an administrator (or by `sluice init`, which embeds this file).
-- version: 4 (2: source_position.position_mark; 3: mirror_tables; 4: leader_election,
-- applied_batches.epoch, the lease functions and the epoch fence)
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

-- Rows the sink rejected ('rejected') and, later, conflicts ('conflict'),
-- kept with their images until someone resolves them.
CREATE TABLE IF NOT EXISTS sync_metadata.conflict_log (
  id            bigserial PRIMARY KEY,
  deployment    text NOT NULL,
  source_id     uuid,
  table_name    text NOT NULL,
  row_key       jsonb,
  seq           bigint,
  kind          text NOT NULL,  -- 'rejected' now; 'conflict' later
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
-- only delete it can cause, and only of old history.
CREATE OR REPLACE FUNCTION sync_metadata.prune_applied_batches(p_deployment text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_deleted bigint;
BEGIN
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



-- An upgrade adds tables and functions (mirror_tables in version 3, the lease in 4) after 02 last ran: once
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
      sync_metadata.sluice_fence(text, bigint, boolean)
      TO sluice_sync;
  END IF;
END
$$;

INSERT INTO sync_metadata.schema_version (component, version, installed_at)
VALUES ('control-plane', 4, now())
ON CONFLICT (component) DO UPDATE
   SET version = EXCLUDED.version, installed_at = EXCLUDED.installed_at
 WHERE sync_metadata.schema_version.version IS DISTINCT FROM EXCLUDED.version;

COMMIT;
