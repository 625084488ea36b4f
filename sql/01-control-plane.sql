-- sluice control plane: schema sync_metadata with the per-deployment source
-- position (exactly-once: advanced in the same transaction as the data it
-- covers), the applied-batch history, the conflict log and schema versions,
-- plus sync_metadata.sluice_advance(). Plain psql script, re-runnable; run by
-- an administrator (or by `sluice init`, which embeds this file).
-- version: 3 (2: source_position.position_mark; 3: mirror_tables)
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
--   SL003 the position belongs to another source (restored SQLite file?) → resync
CREATE OR REPLACE FUNCTION sync_metadata.sluice_advance(
  p_deployment text, p_source uuid, p_after bigint, p_to bigint, p_rows bigint)
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
         (deployment, source_id, after_seq, snapshot_seq, row_count)
  VALUES (p_deployment, p_source, p_after, p_to, coalesce(p_rows, 0));

  IF v_batches % 1000 = 0 THEN
    PERFORM sync_metadata.prune_applied_batches(p_deployment);
  END IF;
  RETURN p_to;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_advance(text, uuid, bigint, bigint, bigint)
  FROM PUBLIC;

-- An upgrade adds tables (mirror_tables in version 3) after 02 last ran: once
-- 02 made the sync role, it gets the same rights on them here (SELECT, INSERT,
-- UPDATE, never DELETE or TRUNCATE), so an upgrade needs only `sluice init`.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'sluice_sync') THEN
    GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sync_metadata TO sluice_sync;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA sync_metadata TO sluice_sync;
  END IF;
END
$$;

INSERT INTO sync_metadata.schema_version (component, version, installed_at)
VALUES ('control-plane', 3, now())
ON CONFLICT (component) DO UPDATE
   SET version = EXCLUDED.version, installed_at = EXCLUDED.installed_at
 WHERE sync_metadata.schema_version.version IS DISTINCT FROM EXCLUDED.version;

COMMIT;
