-- sluice host isolation: many hosts' agents in one database, none able to read
-- or change another's rows. A host is known by its login role (current_user,
-- mapped through hosts.role_name), never by a setting a client can change.
-- Row-level security, enabled and forced, on every sync_metadata table; the
-- seed's hosts / client_deployments / cache_events / sync_jobs / sync_progress
-- tables and its three views (security_invoker); functions an administrator
-- uses to register hosts and deployments and to revoke a host, and the one
-- mirror DDL function a host's agent may call (sluice_mirror_ddl). Plain psql
-- script, re-runnable, one transaction; run after 01 and 02 by an
-- administrator allowed to create roles (Supabase: postgres). README: "host isolation".
-- version: 2
BEGIN;

SET LOCAL client_min_messages = warning;
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('sluice control plane')); END $$;

DO $$
BEGIN
  IF to_regclass('sync_metadata.source_position') IS NULL OR to_regrole('sluice_sync') IS NULL THEN
    RAISE EXCEPTION 'sql/03-host-isolation.sql needs sql/01-control-plane.sql and sql/02-sync-role.sql first';
  END IF;
  -- Administrators see every row despite FORCE ROW LEVEL SECURITY (which also
  -- binds the tables' owner): members of sluice_admin. The one running this
  -- script becomes one unless it is a superuser (who bypasses RLS anyway).
  IF to_regrole('sluice_admin') IS NULL THEN
    CREATE ROLE sluice_admin NOLOGIN;
  END IF;
  IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, 'sluice_admin', 'MEMBER') THEN
    EXECUTE format('GRANT sluice_admin TO %I', current_user);
  END IF;
END
$$;

-- One row per host (a machine running agents); role_name is its login role.
CREATE TABLE IF NOT EXISTS sync_metadata.hosts (
  host_id    bigserial PRIMARY KEY,
  host_name  text NOT NULL UNIQUE,
  role_name  name NOT NULL UNIQUE
             CHECK (role_name NOT IN ('sluice_sync', 'sluice_admin', 'public')),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz  -- set by revoke_host: the row stays, its access goes
);

-- One row per deployment (one client app's SQLite database), and the schema
-- that holds its mirror tables.
CREATE TABLE IF NOT EXISTS sync_metadata.client_deployments (
  deployment  text PRIMARY KEY,
  host_id     bigint NOT NULL REFERENCES sync_metadata.hosts,
  schema_name name NOT NULL UNIQUE,
  app         text NOT NULL DEFAULT 'open-webui',
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- The seed's tables (its columns where they fit, timestamptz throughout).
CREATE TABLE IF NOT EXISTS sync_metadata.cache_events (
  id         bigserial PRIMARY KEY,
  host_id    bigint NOT NULL REFERENCES sync_metadata.hosts,
  deployment text NOT NULL,
  event      text NOT NULL,
  detail     jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sync_metadata.sync_jobs (
  job_id      bigserial PRIMARY KEY,
  host_id     bigint NOT NULL REFERENCES sync_metadata.hosts,
  deployment  text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('full', 'incremental', 'resync')),
  status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
  rows_copied bigint NOT NULL DEFAULT 0,
  bytes       bigint NOT NULL DEFAULT 0,
  error       text,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE TABLE IF NOT EXISTS sync_metadata.sync_progress (
  job_id      bigint NOT NULL REFERENCES sync_metadata.sync_jobs,
  host_id     bigint NOT NULL REFERENCES sync_metadata.hosts,
  deployment  text NOT NULL,
  table_name  text NOT NULL,
  rows_done   bigint NOT NULL DEFAULT 0,
  rows_total  bigint,
  bytes_done  bigint NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, table_name)
);

-- The host of the calling role (NULL for any other role): what a host writes
-- as host_id. Row-level security on hosts decides what it can see.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_caller_host() RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT h.host_id FROM sync_metadata.hosts h WHERE h.role_name = current_user $fn$;
ALTER TABLE sync_metadata.cache_events ALTER COLUMN host_id SET DEFAULT sync_metadata.sluice_caller_host();
ALTER TABLE sync_metadata.sync_jobs ALTER COLUMN host_id SET DEFAULT sync_metadata.sluice_caller_host();
ALTER TABLE sync_metadata.sync_progress ALTER COLUMN host_id SET DEFAULT sync_metadata.sluice_caller_host();

-- A row of a registered deployment carries its host's id: derived from
-- client_deployments on INSERT and whenever deployment or host_id is set, so
-- a client can never make it name another host (sluice_isolate adds the
-- column and this trigger to sql/01's tables that have a deployment).
CREATE OR REPLACE FUNCTION sync_metadata.sluice_row_host() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  NEW.host_id := (SELECT d.host_id FROM sync_metadata.client_deployments d
                   WHERE d.deployment = NEW.deployment);
  RETURN NEW;
END
$fn$;

-- Row-level security on every table of sync_metadata, enabled and forced,
-- with two policies each: sluice_host for the sync role's members (a host
-- role sees its own host row, its deployments, and the rows of those
-- deployments: a table with a deployment column is filtered by it, one with
-- host_id too by the pair) and sluice_admin for administrators. Any other
-- role (anon, authenticated, service_role without BYPASSRLS) sees nothing.
-- Rerun by sql/01 after an upgrade, so a table added later is covered too;
-- a table it cannot classify gets a policy that shows nothing.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_isolate() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t    record;
  cond text;
BEGIN
  REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON sync_metadata.hosts,
    sync_metadata.client_deployments, sync_metadata.schema_version FROM sluice_sync;
  GRANT SELECT ON sync_metadata.hosts, sync_metadata.client_deployments,
    sync_metadata.schema_version TO sluice_sync;
  GRANT SELECT, INSERT, UPDATE ON sync_metadata.cache_events, sync_metadata.sync_jobs,
    sync_metadata.sync_progress TO sluice_sync;
  REVOKE ALL ON ALL TABLES IN SCHEMA sync_metadata FROM PUBLIC;
  REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON sync_metadata.cluster_health,
    sync_metadata.active_sync_jobs, sync_metadata.recent_conflicts FROM sluice_sync;
  -- host_id on sql/01's tables (a table a later 01 adds gets it on upgrade).
  -- Only what is missing: a re-run takes no lock on these busy tables. (No
  -- foreign key: host_id follows client_deployments, which has one, and a
  -- key share lock on the host row per insert would serialise its agents.)
  FOR t IN
    SELECT c.relname,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname = 'host_id' AND NOT a.attisdropped) AS has_host,
           EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid
                      AND g.tgname = 'sluice_row_host') AS has_trigger
      FROM pg_class c
     WHERE c.relnamespace = 'sync_metadata'::regnamespace AND c.relkind IN ('r', 'p')
       AND c.relname NOT IN ('client_deployments', 'cache_events', 'sync_jobs', 'sync_progress')
       AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname = 'deployment' AND NOT a.attisdropped)
  LOOP
    IF NOT t.has_host THEN
      EXECUTE format('ALTER TABLE sync_metadata.%I ADD COLUMN host_id bigint', t.relname);
    END IF;
    IF NOT t.has_trigger THEN
      EXECUTE format('CREATE TRIGGER sluice_row_host BEFORE INSERT OR UPDATE OF deployment, host_id '
                     'ON sync_metadata.%I FOR EACH ROW EXECUTE FUNCTION sync_metadata.sluice_row_host()',
                     t.relname);
      EXECUTE format('UPDATE sync_metadata.%I r SET host_id = d.host_id FROM sync_metadata.client_deployments d '
                     'WHERE d.deployment = r.deployment AND r.host_id IS DISTINCT FROM d.host_id', t.relname);
    END IF;
  END LOOP;
  FOR t IN
    SELECT c.relname,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname = 'deployment' AND NOT a.attisdropped) AS has_deployment,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname = 'host_id' AND NOT a.attisdropped) AS has_host
      FROM pg_class c
     WHERE c.relnamespace = 'sync_metadata'::regnamespace AND c.relkind IN ('r', 'p')
  LOOP
    cond := CASE
      WHEN t.relname = 'hosts' THEN 'role_name = current_user AND revoked_at IS NULL'
      WHEN t.relname = 'client_deployments' THEN
        'host_id IN (SELECT h.host_id FROM sync_metadata.hosts h)'
      WHEN t.relname = 'schema_version' THEN 'true'
      WHEN t.has_deployment AND t.has_host THEN
        '(deployment, host_id) IN (SELECT d.deployment, d.host_id FROM sync_metadata.client_deployments d)'
      WHEN t.has_deployment THEN
        'deployment IN (SELECT d.deployment FROM sync_metadata.client_deployments d)'
      ELSE 'false'
    END;
    EXECUTE format('ALTER TABLE sync_metadata.%I ENABLE ROW LEVEL SECURITY', t.relname);
    EXECUTE format('ALTER TABLE sync_metadata.%I FORCE ROW LEVEL SECURITY', t.relname);
    EXECUTE format('DROP POLICY IF EXISTS sluice_host ON sync_metadata.%I', t.relname);
    EXECUTE format('CREATE POLICY sluice_host ON sync_metadata.%I TO sluice_sync USING (%s) WITH CHECK (%s)',
                   t.relname, cond, cond);
    EXECUTE format('DROP POLICY IF EXISTS sluice_admin ON sync_metadata.%I', t.relname);
    EXECUTE format('CREATE POLICY sluice_admin ON sync_metadata.%I TO sluice_admin USING (true) WITH CHECK (true)',
                   t.relname);
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_isolate() FROM PUBLIC;

-- The seed's views, as the caller (security_invoker): row-level security of
-- the tables underneath applies to whoever reads them.
CREATE OR REPLACE VIEW sync_metadata.cluster_health WITH (security_invoker = on) AS
SELECT d.deployment, h.host_name, d.schema_name, p.applied_seq, p.batches,
       p.updated_at AS last_applied_at, l.leader_id, l.epoch,
       l.expires_at > clock_timestamp() AS lease_held,
       (SELECT count(*) FROM sync_metadata.conflict_log c
         WHERE c.deployment = d.deployment AND c.status IN ('parked', 'pending')) AS open_conflicts
  FROM sync_metadata.client_deployments d
  JOIN sync_metadata.hosts h ON h.host_id = d.host_id
  LEFT JOIN sync_metadata.source_position p ON p.deployment = d.deployment
  LEFT JOIN sync_metadata.leader_election l ON l.deployment = d.deployment;
CREATE OR REPLACE VIEW sync_metadata.active_sync_jobs WITH (security_invoker = on) AS
SELECT j.job_id, j.deployment, j.kind, j.rows_copied, j.bytes, j.started_at,
       clock_timestamp() - j.started_at AS running_for
  FROM sync_metadata.sync_jobs j
 WHERE j.status = 'running';
CREATE OR REPLACE VIEW sync_metadata.recent_conflicts WITH (security_invoker = on) AS
SELECT c.id, c.deployment, c.table_name, c.row_key, c.kind, c.status, c.strategy, c.reason,
       c.created_at
  FROM sync_metadata.conflict_log c
 WHERE c.created_at > now() - interval '24 hours';
REVOKE ALL ON sync_metadata.cluster_health, sync_metadata.active_sync_jobs,
  sync_metadata.recent_conflicts FROM PUBLIC;
GRANT SELECT ON sync_metadata.cluster_health, sync_metadata.active_sync_jobs,
  sync_metadata.recent_conflicts TO sluice_sync;

-- Registers a host: its login role (which must exist) joins sluice_sync.
-- Re-running with the same name and role changes nothing; a host revoked
-- earlier comes back. Administrators only. Returns host_id.
CREATE OR REPLACE FUNCTION sync_metadata.register_host(p_host_name text, p_role name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_id bigint;
  r    pg_catalog.pg_roles%ROWTYPE;
BEGIN
  SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname = p_role;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'role % does not exist', p_role USING ERRCODE = '42704';
  END IF;
  IF r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR pg_has_role(p_role, 'sluice_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'role % may not be a host role: it is a superuser, bypasses row-level '
                    'security, creates roles or administers sluice', p_role USING ERRCODE = '42501';
  END IF;
  INSERT INTO sync_metadata.hosts AS h (host_name, role_name) VALUES (p_host_name, p_role)
  ON CONFLICT (host_name) DO UPDATE SET revoked_at = NULL
   WHERE h.role_name = EXCLUDED.role_name
  RETURNING host_id INTO v_id;
  IF v_id IS NULL THEN
    RAISE EXCEPTION 'host % is registered with another role', p_host_name USING ERRCODE = '23505';
  END IF;
  EXECUTE format('GRANT sluice_sync TO %I', p_role);
  RETURN v_id;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.register_host(text, name) FROM PUBLIC;

-- Registers a deployment of a host and its mirror schema (created if missing,
-- owned by the caller, an administrator). The host role gets USAGE on the
-- schema and SELECT / INSERT / UPDATE on its tables, now and for tables the
-- caller creates there later; never DELETE, TRUNCATE, CREATE; no other role
-- (sluice_sync, PUBLIC) gets anything there. Re-runnable. Returns the schema.
CREATE OR REPLACE FUNCTION sync_metadata.register_deployment(
  p_host_name text, p_deployment text, p_schema name)
RETURNS name
LANGUAGE plpgsql
SET client_min_messages = warning
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_host bigint;
  v_role name;
  v_old  record;
  v_tab  record;
BEGIN
  SELECT h.host_id, h.role_name INTO v_host, v_role FROM sync_metadata.hosts h
   WHERE h.host_name = p_host_name AND h.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'host % is not registered (or revoked)', p_host_name USING ERRCODE = '42704';
  END IF;
  SELECT * INTO v_old FROM sync_metadata.client_deployments d
   WHERE d.deployment = p_deployment OR d.schema_name = p_schema;
  IF FOUND AND (v_old.deployment <> p_deployment OR v_old.schema_name <> p_schema
                OR v_old.host_id <> v_host) THEN
    RAISE EXCEPTION 'deployment % or schema % is registered already, to deployment % of host id %',
      p_deployment, p_schema, v_old.deployment, v_old.host_id USING ERRCODE = '23505';
  END IF;
  IF p_schema IN ('sync_metadata', 'public', 'pg_catalog', 'information_schema')
     OR p_schema LIKE 'pg\_%' THEN
    RAISE EXCEPTION 'schema % cannot hold mirror tables', p_schema USING ERRCODE = '42501';
  END IF;
  INSERT INTO sync_metadata.client_deployments (deployment, host_id, schema_name)
  VALUES (p_deployment, v_host, p_schema) ON CONFLICT (deployment) DO NOTHING;
  -- Rows the deployment had before it was registered now carry its host.
  FOR v_tab IN SELECT c.relname FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
                WHERE g.tgname = 'sluice_row_host' AND c.relnamespace = 'sync_metadata'::regnamespace LOOP
    EXECUTE format('UPDATE sync_metadata.%I SET host_id = $1 WHERE deployment = $2 '
                   'AND host_id IS DISTINCT FROM $1', v_tab.relname) USING v_host, p_deployment;
  END LOOP;
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', p_schema);
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC, sluice_sync', p_schema);
  EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC, sluice_sync', p_schema);
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', p_schema, v_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO %I', p_schema, v_role);
  EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', p_schema, v_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE ON TABLES TO %I',
                 p_schema, v_role);
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I',
                 p_schema, v_role);
  RETURN p_schema;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.register_deployment(text, text, name) FROM PUBLIC;

-- Takes a host's access away without touching its data: the host row is
-- marked revoked (its policies then show it nothing), the role leaves
-- sluice_sync, loses its grants on its mirror schemas and cannot log in.
-- Re-runnable; returns whether the host was active before.
CREATE OR REPLACE FUNCTION sync_metadata.revoke_host(p_host_name text)
RETURNS boolean
LANGUAGE plpgsql
SET client_min_messages = warning
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_host   bigint;
  v_role   name;
  v_active boolean;
  v_schema name;
BEGIN
  SELECT h.host_id, h.role_name, h.revoked_at IS NULL INTO v_host, v_role, v_active
    FROM sync_metadata.hosts h WHERE h.host_name = p_host_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'host % is not registered', p_host_name USING ERRCODE = '42704';
  END IF;
  UPDATE sync_metadata.hosts SET revoked_at = coalesce(revoked_at, now()) WHERE host_id = v_host;
  FOR v_schema IN SELECT d.schema_name FROM sync_metadata.client_deployments d
                   WHERE d.host_id = v_host LOOP
    IF to_regnamespace(quote_ident(v_schema)) IS NOT NULL AND to_regrole(quote_ident(v_role)) IS NOT NULL THEN
      EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', v_schema, v_role);
      EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', v_schema, v_role);
      EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM %I',
                     v_schema, v_role);
      EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM %I',
                     v_schema, v_role);
    END IF;
  END LOOP;
  IF to_regrole(quote_ident(v_role)) IS NOT NULL THEN
    IF pg_has_role(v_role, 'sluice_sync', 'MEMBER') THEN
      EXECUTE format('REVOKE sluice_sync FROM %I', v_role);
    END IF;
    EXECUTE format('ALTER ROLE %I NOLOGIN', v_role);
  END IF;
  RETURN v_active;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.revoke_host(text) FROM PUBLIC;

-- The mirror DDL a host's agent needs when its app's schema changes, done for
-- it: mirror tables are owned by an administrator (an owner can always
-- DELETE), so the host role cannot ALTER or CREATE there itself. Runs as the
-- owner of this function (who must own the deployment's mirror schema and
-- tables: the administrator that ran sql/03 and `sluice admin bootstrap`)
-- and only for a deployment registered to the calling login role
-- (session_user: SET ROLE or a setting changes nothing), in the schema
-- registered for it (p_schema, the agent's sink.schema, must be that one).
-- One step per call,
-- from a fixed list; names are quoted here, types must be plain type names
-- PostgreSQL knows. p_step is a JSON object:
--   {"op":"create_table","columns":[{"name":..,"type":..}],"key":[names]}
--   {"op":"add_columns","columns":[{"name":..,"type":..}]}
--   {"op":"evict_index","column":..,"index":"..._sluice_evict"}
--   {"op":"conflict_detection","key":[names],"index":"..._sluice_outside"}
--   {"op":"rename_column","from":..,"to":..}   {"op":"rename_table","to":..}
--   {"op":"rename_index","index":..,"to":..}   (sluice's own *_sluice_evict/_key)
-- Anything else (adopting an app-made table, setting a mirror aside) needs
-- the administrator: `sluice admin bootstrap` does it.
CREATE OR REPLACE FUNCTION sync_metadata.sluice_mirror_ddl(
  p_deployment text, p_schema name, p_table text, p_step jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET client_min_messages = warning
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_schema name;
  v_role   name;
  v_op     text := p_step->>'op';
  v_q      text;
  v_sql    text;
  v_args   text;
  v_col    jsonb;
  v_name   text;
  v_type   text;
  v_keys   text[];
  v_base   oid;
  v_writer text := 'current_setting(''sluice.writer'', true)';
BEGIN
  SELECT d.schema_name, h.role_name INTO v_schema, v_role
    FROM sync_metadata.client_deployments d JOIN sync_metadata.hosts h USING (host_id)
   WHERE d.deployment = p_deployment AND h.role_name = session_user AND h.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'deployment % is not registered to role %', p_deployment, session_user
      USING ERRCODE = '42501', HINT = 'an administrator registers it: sluice admin bootstrap';
  END IF;
  IF p_table IS NULL OR p_table = '' OR octet_length(p_table) > 63 OR p_table LIKE '\_sluice%' THEN
    RAISE EXCEPTION 'sluice_mirror_ddl: % is not a mirror table name', quote_literal(coalesce(p_table, ''))
      USING ERRCODE = '22023';
  END IF;
  IF p_schema IS DISTINCT FROM v_schema THEN
    RAISE EXCEPTION 'deployment %''s mirrors are in schema %, not % (sink.schema)', p_deployment,
      v_schema, p_schema USING ERRCODE = '22023';
  END IF;
  v_q := format('%I.%I', v_schema, p_table);
  IF v_op IN ('create_table', 'conflict_detection') THEN
    IF jsonb_typeof(p_step->'key') IS DISTINCT FROM 'array' OR jsonb_array_length(p_step->'key') = 0 THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: % needs a "key" array', v_op USING ERRCODE = '22023';
    END IF;
    SELECT array_agg(k ORDER BY n) INTO v_keys
      FROM jsonb_array_elements_text(p_step->'key') WITH ORDINALITY AS t(k, n);
  END IF;
  -- Source columns: a name of at most 63 bytes that is not sluice's, and a
  -- type given as a plain type name (letters, digits, spaces, _ and . with an
  -- optional (n[,m]) and []) that PostgreSQL resolves: nothing else is spliced.
  IF v_op IN ('create_table', 'add_columns') THEN
    IF jsonb_typeof(p_step->'columns') IS DISTINCT FROM 'array' THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: % needs a "columns" array', v_op USING ERRCODE = '22023';
    END IF;
    v_sql := '';
    FOR v_col IN SELECT * FROM jsonb_array_elements(p_step->'columns') LOOP
      v_name := v_col->>'name';
      v_type := v_col->>'type';
      -- (_sluice_rowid: the key sluice gives a table that has none of its own.)
      IF v_name IS NULL OR v_name = '' OR octet_length(v_name) > 63
         OR (lower(v_name) LIKE '\_sluice%'
             AND NOT (v_op = 'create_table' AND v_name = '_sluice_rowid' AND v_keys = ARRAY['_sluice_rowid'])) THEN
        RAISE EXCEPTION 'sluice_mirror_ddl: column % may not be added', quote_literal(coalesce(v_name, ''))
          USING ERRCODE = '22023';
      END IF;
      -- A type sluice can trust: built in, or owned by a superuser or this
      -- function's owner (so no one else's code runs in a domain's CHECK
      -- here, and no one else can drop it with the column), not a table's
      -- row type; arrays by their element. Extension types schema-qualified.
      v_base := CASE WHEN v_type ~ '^[A-Za-z_][A-Za-z0-9_ .]*(\([0-9]+( *, *[0-9]+)?\))?[A-Za-z ]*( *\[\])*$'
                     THEN to_regtype(v_type) END;
      SELECT CASE WHEN ty.typcategory = 'A' AND ty.typelem <> 0 THEN ty.typelem ELSE ty.oid END
        INTO v_base FROM pg_catalog.pg_type ty WHERE ty.oid = v_base;
      IF v_base IS NULL OR NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_type ty JOIN pg_catalog.pg_roles r ON r.oid = ty.typowner
            WHERE ty.oid = v_base AND ty.typrelid = 0 AND ty.typtype IN ('b', 'd', 'e', 'r', 'm')
              AND (ty.typnamespace = 'pg_catalog'::regnamespace OR r.rolsuper
                   OR r.rolname = current_user)) THEN
        RAISE EXCEPTION 'sluice_mirror_ddl: % is not a type name sluice may use here',
          quote_literal(coalesce(v_type, '')) USING ERRCODE = '22023',
          HINT = 'built-in types, or types owned by a superuser or the administrator; schema-qualify extension types';
      END IF;
      IF v_op = 'create_table' THEN
        v_sql := v_sql || format('%I %s, ', v_name, v_type);
      ELSE
        v_sql := v_sql || CASE WHEN v_sql = '' THEN ' ' ELSE ', ' END
                       || format('ADD COLUMN IF NOT EXISTS %I %s', v_name, v_type);
      END IF;
    END LOOP;
  END IF;
  IF v_op = 'create_table' THEN
    IF to_regclass(v_q) IS NOT NULL THEN
      RETURN;  -- made by an earlier call (a retry): its grants are there
    END IF;
    EXECUTE format('CREATE TABLE %s (%s_sluice_seq bigint NOT NULL, '
                   '_sluice_deleted_at timestamptz, '
                   '_sluice_updated_at timestamptz NOT NULL DEFAULT now(), '
                   '_sluice_outside_at timestamptz, _sluice_base jsonb, PRIMARY KEY (%s))',
                   v_q, v_sql, (SELECT string_agg(quote_ident(k), ', ') FROM unnest(v_keys) AS k));
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO %I', v_q, v_role);
  ELSIF v_op = 'add_columns' THEN
    IF v_sql <> '' THEN
      EXECUTE format('ALTER TABLE %s%s', v_q, v_sql);
    END IF;
  ELSIF v_op = 'evict_index' THEN
    IF p_step->>'index' IS NULL OR p_step->>'index' NOT LIKE '%\_sluice\_evict' OR p_step->>'column' IS NULL THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: evict_index needs a column and an index named *_sluice_evict'
        USING ERRCODE = '22023';
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING hash (%I) WHERE _sluice_deleted_at IS NULL',
                   p_step->>'index', v_q, p_step->>'column');
  ELSIF v_op = 'conflict_detection' THEN
    IF p_step->>'index' IS NULL OR p_step->>'index' NOT LIKE '%\_sluice\_outside' THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: conflict_detection needs an index named *_sluice_outside'
        USING ERRCODE = '22023';
    END IF;
    -- The same statements as sink/pg_sql.cc's ConflictDetectionSql; the
    -- triggers' deployment is the checked one, never the caller's word.
    v_args := quote_literal(p_deployment)
              || (SELECT string_agg(', ' || quote_literal(k), '' ORDER BY n)
                    FROM unnest(v_keys) WITH ORDINALITY AS t(k, n));
    EXECUTE format('ALTER TABLE %s ALTER COLUMN _sluice_outside_at SET DEFAULT clock_timestamp(), '
                   'ALTER COLUMN _sluice_seq SET DEFAULT -1', v_q);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s (_sluice_outside_at) '
                   'WHERE _sluice_outside_at IS NOT NULL', p_step->>'index', v_q);
    EXECUTE format('CREATE OR REPLACE TRIGGER sluice_outside BEFORE UPDATE ON %s FOR EACH ROW '
                   'WHEN (%s IS DISTINCT FROM %L) EXECUTE FUNCTION sync_metadata.sluice_outside_write(%s)',
                   v_q, v_writer, p_deployment, v_args);
    EXECUTE format('CREATE OR REPLACE TRIGGER sluice_conflict BEFORE UPDATE ON %s FOR EACH ROW '
                   'WHEN (OLD._sluice_outside_at IS NOT NULL AND %s = %L) '
                   'EXECUTE FUNCTION sync_metadata.sluice_conflict(%s)',
                   v_q, v_writer, p_deployment, v_args);
    EXECUTE format('CREATE OR REPLACE TRIGGER sluice_outside_delete BEFORE DELETE ON %s FOR EACH ROW '
                   'WHEN (%s IS DISTINCT FROM %L) EXECUTE FUNCTION sync_metadata.sluice_outside_delete(%s)',
                   v_q, v_writer, p_deployment, v_args);
    EXECUTE format('CREATE OR REPLACE TRIGGER sluice_inserted AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS sluice_new FOR EACH STATEMENT WHEN (%s = %L) '
                   'EXECUTE FUNCTION sync_metadata.sluice_inserted(%s)',
                   v_q, v_writer, p_deployment, v_args);
  ELSIF v_op = 'rename_column' THEN
    IF p_step->>'from' IS NULL OR p_step->>'to' IS NULL OR lower(p_step->>'from') LIKE '\_sluice%'
       OR lower(p_step->>'to') LIKE '\_sluice%' OR octet_length(p_step->>'to') > 63 THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: rename_column needs two source column names'
        USING ERRCODE = '22023';
    END IF;
    EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', v_q, p_step->>'from', p_step->>'to');
  ELSIF v_op = 'rename_table' THEN
    IF p_step->>'to' IS NULL OR p_step->>'to' = '' OR octet_length(p_step->>'to') > 63
       OR p_step->>'to' LIKE '\_sluice%' THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: rename_table needs a new table name' USING ERRCODE = '22023';
    END IF;
    EXECUTE format('ALTER TABLE %s RENAME TO %I', v_q, p_step->>'to');
  ELSIF v_op = 'rename_index' THEN
    -- Only the indexes sluice names (a mirror's key and evict indexes).
    IF p_step->>'index' IS NULL OR p_step->>'to' IS NULL OR octet_length(p_step->>'to') > 63
       OR NOT (p_step->>'index' ~ '_sluice_(evict|key)$' AND p_step->>'to' ~ '_sluice_(evict|key)$') THEN
      RAISE EXCEPTION 'sluice_mirror_ddl: rename_index renames only sluice''s own indexes'
        USING ERRCODE = '22023';
    END IF;
    EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', v_schema, p_step->>'index', p_step->>'to');
  ELSE
    RAISE EXCEPTION 'sluice_mirror_ddl: % is not a step sluice takes for a host role',
      quote_literal(coalesce(v_op, '')) USING ERRCODE = '22023',
      HINT = 'an administrator does it: sluice admin bootstrap';
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION sync_metadata.sluice_mirror_ddl(text, name, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sync_metadata.sluice_mirror_ddl(text, name, text, jsonb) TO sluice_sync;

INSERT INTO sync_metadata.schema_version (component, version, installed_at)
VALUES ('host-isolation', 2, now())
ON CONFLICT (component) DO UPDATE
   SET version = EXCLUDED.version, installed_at = EXCLUDED.installed_at
 WHERE sync_metadata.schema_version.version IS DISTINCT FROM EXCLUDED.version;

DO $$ BEGIN PERFORM sync_metadata.sluice_isolate(); END $$;

COMMIT;
