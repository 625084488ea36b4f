-- sluice sync role: NOLOGIN role sluice_sync, granted what the agent needs on
-- sync_metadata (USAGE; SELECT/INSERT/UPDATE on its tables; EXECUTE on
-- sluice_advance) and never DELETE or TRUNCATE: deletes at the sink become
-- tombstones. Agents log in as their own roles that are members of it.
-- sync_metadata.grant_deployment(schema) extends the same rights to one
-- deployment's data schema. Plain psql script, re-runnable; run after 01 by
-- an administrator allowed to create roles.
-- version: 1
BEGIN;

SET LOCAL client_min_messages = warning;
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('sluice control plane')); END $$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'sluice_sync') THEN
    CREATE ROLE sluice_sync NOLOGIN;
  END IF;
END
$$;

GRANT USAGE ON SCHEMA sync_metadata TO sluice_sync;
REVOKE CREATE ON SCHEMA sync_metadata FROM sluice_sync;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA sync_metadata TO sluice_sync;
REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA sync_metadata
  FROM sluice_sync;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA sync_metadata TO sluice_sync;  -- bigserial ids
GRANT EXECUTE ON FUNCTION
  sync_metadata.sluice_advance(text, uuid, bigint, bigint, bigint),
  sync_metadata.sluice_advance(text, uuid, bigint, bigint, bigint, bigint),
  sync_metadata.sluice_lease(text, text, text, bigint, bigint),
  sync_metadata.sluice_lease_release(text, bigint),
  sync_metadata.sluice_fence(text, bigint, boolean),
  sync_metadata.prune_applied_batches(text)  -- called by sluice_advance
  TO sluice_sync;

-- Gives sluice_sync USAGE and CREATE on a deployment's data schema and
-- SELECT/INSERT/UPDATE (never DELETE/TRUNCATE) on its tables, now and for
-- tables created later by the role running this function. A table created
-- by an agent's own login role is owned by it, and an owner may always
-- delete: create mirror tables as the administrator to keep the guarantee.
-- Run by an administrator: it is not granted to sluice_sync.
CREATE OR REPLACE FUNCTION sync_metadata.grant_deployment(p_schema text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = p_schema) THEN
    RAISE EXCEPTION 'schema % does not exist', p_schema USING ERRCODE = '3F000';
  END IF;
  EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO sluice_sync', p_schema);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO sluice_sync',
                 p_schema);
  EXECUTE format('REVOKE DELETE, TRUNCATE ON ALL TABLES IN SCHEMA %I FROM sluice_sync',
                 p_schema);
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO sluice_sync', p_schema);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                 'GRANT SELECT, INSERT, UPDATE ON TABLES TO sluice_sync', p_schema);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                 'GRANT USAGE, SELECT ON SEQUENCES TO sluice_sync', p_schema);
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.grant_deployment(text) FROM PUBLIC;

INSERT INTO sync_metadata.schema_version (component, version, installed_at)
VALUES ('sync-role', 1, now())
ON CONFLICT (component) DO UPDATE
   SET version = EXCLUDED.version, installed_at = EXCLUDED.installed_at
 WHERE sync_metadata.schema_version.version IS DISTINCT FROM EXCLUDED.version;

COMMIT;
