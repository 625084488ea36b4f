-- host_isolation.sql: pgTAP checks of sql/03-host-isolation.sql, run by
-- host_isolation_test.sh as supabase_admin on a cluster with two registered
-- hosts (host_a: dep_a in mirror_a; host_b: dep_b in mirror_b). Part 1 is the
-- privilege inventory; part 2 is host A trying, every way it can, to read or
-- change what belongs to host B (the README lists them); part 3 shows host A
-- can still do its own work, so the refusals are not a role that can do
-- nothing; part 4 is an administrator's register / revoke. Autocommit: a write that got through would stay, and the script
-- around this file compares B's rows before and after.
\set QUIET 1
\pset format unaligned
\pset tuples_only true

CREATE SCHEMA tap_helpers;
GRANT USAGE ON SCHEMA tap_helpers TO PUBLIC;
-- Rows a statement changed, run as the caller.
CREATE FUNCTION tap_helpers.affected(sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE sql;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;
-- The message a statement fails with (NULL if it does not), run as the caller.
CREATE FUNCTION tap_helpers.error_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLERRM;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tap_helpers TO PUBLIC;

SELECT * FROM no_plan();

-- ---------------------------------------------------------------- part 1
SELECT is_empty($$
  SELECT c.relname FROM pg_class c
   WHERE c.relnamespace = 'sync_metadata'::regnamespace AND c.relkind = 'r'
     AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'deployment')
     AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'host_id') $$,
  'every control-plane table with a deployment column carries host_id');
SELECT is((SELECT count(*)::int FROM sync_metadata.source_position p JOIN sync_metadata.client_deployments d
            USING (deployment) WHERE p.host_id IS DISTINCT FROM d.host_id)
          + (SELECT count(*)::int FROM sync_metadata.conflict_log p JOIN sync_metadata.client_deployments d
              USING (deployment) WHERE p.host_id IS DISTINCT FROM d.host_id)
          + (SELECT count(*)::int FROM sync_metadata.leader_election p JOIN sync_metadata.client_deployments d
              USING (deployment) WHERE p.host_id IS DISTINCT FROM d.host_id), 0,
          'rows written by the administrator carry their deployment''s host_id');
SELECT is(rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb, false,
          'sluice_sync: not superuser, no BYPASSRLS, CREATEROLE, CREATEDB')
  FROM pg_roles WHERE rolname = 'sluice_sync';
SELECT is(rolcanlogin, false, 'sluice_sync is NOLOGIN') FROM pg_roles WHERE rolname = 'sluice_sync';
SELECT is(rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb, false,
          'host_a: not superuser, no BYPASSRLS, CREATEROLE, CREATEDB')
  FROM pg_roles WHERE rolname = 'host_a';
SELECT ok(pg_has_role('host_a', 'sluice_sync', 'MEMBER'), 'host_a is a member of sluice_sync');
SELECT ok(NOT pg_has_role('host_a', 'sluice_admin', 'MEMBER')
          AND NOT pg_has_role('host_a', 'host_b', 'MEMBER'),
          'host_a is not a member of sluice_admin or host_b');
SELECT is_empty($$
  SELECT r.rolname || ' ' || p || ' ' || c.oid::regclass
    FROM pg_class c, unnest(ARRAY['DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p,
         (VALUES ('sluice_sync'), ('host_a'), ('host_b')) r(rolname)
   WHERE c.relnamespace::regnamespace::text IN ('sync_metadata', 'mirror_a', 'mirror_b')
     AND c.relkind IN ('r', 'p', 'v')
     AND has_table_privilege(r.rolname, c.oid, p) $$,
  'no DELETE, TRUNCATE, REFERENCES or TRIGGER for sluice_sync or a host role on any table or view');
SELECT is_empty($$
  SELECT r || ' ' || n.nspname FROM pg_namespace n, unnest(ARRAY['sluice_sync', 'host_a', 'host_b']) r
   WHERE n.nspname NOT LIKE 'pg\_%' AND has_schema_privilege(r, n.oid, 'CREATE') $$,
  'sluice_sync and the host roles may create in no schema');
SELECT ok(NOT has_database_privilege('host_a', 'app', 'CREATE')
          AND NOT has_database_privilege('sluice_sync', 'app', 'CREATE'),
          'sluice_sync and the host roles may not create schemas');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c
   WHERE c.relnamespace = 'sync_metadata'::regnamespace AND c.relkind IN ('r', 'p')
     AND NOT (c.relrowsecurity AND c.relforcerowsecurity) $$,
  'every sync_metadata table has row-level security enabled and forced');
SELECT is_empty($$
  SELECT c.relname FROM pg_class c
   WHERE c.relnamespace = 'sync_metadata'::regnamespace AND c.relkind = 'v'
     AND NOT coalesce('security_invoker=on' = ANY (c.reloptions), false) $$,
  'every sync_metadata view runs as its caller (security_invoker)');
SELECT is_empty($$
  SELECT r || ' ' || c.oid::regclass FROM pg_class c, unnest(ARRAY['anon', 'authenticated']) r
   WHERE c.relnamespace::regnamespace::text IN ('sync_metadata', 'mirror_a', 'mirror_b')
     AND c.relkind IN ('r', 'p', 'v')
     AND (has_table_privilege(r, c.oid, 'SELECT') OR has_table_privilege(r, c.oid, 'INSERT')
          OR has_table_privilege(r, c.oid, 'UPDATE')) $$,
  'anon and authenticated hold no right on sync_metadata or a mirror');
SELECT ok(NOT has_schema_privilege('anon', 'sync_metadata', 'USAGE')
          AND NOT has_schema_privilege('authenticated', 'mirror_a', 'USAGE')
          AND NOT has_schema_privilege('service_role', 'mirror_b', 'USAGE'),
          'anon, authenticated, service_role cannot enter sync_metadata or a mirror schema');
SELECT ok(has_table_privilege('anon', 'public.notes', 'SELECT'),
          'control: Supabase''s default privileges do reach a table in public');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p
   WHERE p.pronamespace = 'sync_metadata'::regnamespace AND p.prosecdef
     AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false) $$,
  'every SECURITY DEFINER function in sync_metadata sets its search_path');
SELECT is_empty($$
  SELECT p.oid::regprocedure FROM pg_proc p
   WHERE p.pronamespace = 'sync_metadata'::regnamespace
     AND p.proname IN ('register_host', 'register_deployment', 'revoke_host', 'sluice_isolate',
                       'grant_deployment')
     AND has_function_privilege('host_a', p.oid, 'EXECUTE') $$,
  'the administrators'' functions are not executable by a host role');

SET ROLE anon;
SELECT throws_ok('SELECT * FROM sync_metadata.source_position', '42501', NULL,
                 'anon cannot read sync_metadata');
RESET ROLE;
SET ROLE authenticated;
SELECT throws_ok('SELECT * FROM mirror_a.chat', '42501', NULL, 'authenticated cannot read a mirror');
RESET ROLE;

SELECT * FROM finish();

-- ---------------------------------------------------------------- part 2
-- A session of its own, logged in as host_a: SET ROLE is judged by the
-- session's login role, so a superuser's SET ROLE host_a would not do.
\connect - host_a
SELECT * FROM no_plan();
-- reads: every table and view shows nothing of B
SELECT is_empty($$SELECT * FROM sync_metadata.hosts WHERE host_name = 'host-b'$$, 'A: 1 hosts hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.client_deployments WHERE deployment = 'dep_b'$$,
                'A: 2 client_deployments hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.source_position WHERE deployment = 'dep_b'$$,
                'A: 3 source_position hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.applied_batches WHERE deployment = 'dep_b'$$,
                'A: 4 applied_batches hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.conflict_log WHERE deployment = 'dep_b'$$,
                'A: 5 conflict_log hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.mirror_tables WHERE deployment = 'dep_b'$$,
                'A: 6 mirror_tables hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.leader_election WHERE deployment = 'dep_b'$$,
                'A: 7 leader_election hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.outside_deletes WHERE deployment = 'dep_b'$$,
                'A: 8 outside_deletes hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.sync_jobs WHERE deployment = 'dep_b'$$,
                'A: 9 sync_jobs hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.sync_progress WHERE deployment = 'dep_b'$$,
                'A: 10 sync_progress hides B');
SELECT is_empty($$SELECT * FROM sync_metadata.cache_events WHERE deployment = 'dep_b'$$,
                'A: 11 cache_events hides B');
SELECT results_eq($$SELECT deployment FROM sync_metadata.cluster_health$$, $$VALUES ('dep_a')$$,
                  'A: 12 view cluster_health shows only A');
SELECT is_empty($$SELECT * FROM sync_metadata.active_sync_jobs WHERE deployment <> 'dep_a'$$,
                'A: 13 view active_sync_jobs shows only A');
SELECT results_eq($$SELECT deployment FROM sync_metadata.recent_conflicts$$, $$VALUES ('dep_a')$$,
                  'A: 14 view recent_conflicts shows only A');
SELECT throws_ok($$SELECT * FROM mirror_b.chat$$, '42501', 'permission denied for schema mirror_b',
                 'A: 15 cannot read B''s mirror');
-- settings a client may change do not change who it is
DO $$ BEGIN
  PERFORM set_config('app.current_host_id', '2', false);
  PERFORM set_config('sluice.apply', '{"deployment": "dep_b"}', false);
END $$;
SET sluice.writer = 'dep_b';
SET request.jwt.claims = '{"role": "service_role"}';
SELECT is_empty($$SELECT * FROM sync_metadata.source_position WHERE deployment = 'dep_b'$$,
                'A: 16 after SET/set_config of host id, writer, apply, jwt claims: still hidden');
SELECT is_empty($$SELECT * FROM sync_metadata.conflict_log WHERE deployment = 'dep_b'$$,
                'A: 17 conflict_log still hidden after those settings');
-- updates: match nothing of B
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.source_position SET applied_seq = 0 WHERE deployment = 'dep_b'$$),
          0::bigint, 'A: 18 UPDATE of B''s position changes nothing');
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.leader_election SET leader_id = 'a', expires_at = now() WHERE deployment = 'dep_b'$$),
          0::bigint, 'A: 19 UPDATE of B''s lease changes nothing');
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.conflict_log SET status = 'resolved' WHERE deployment = 'dep_b'$$),
          0::bigint, 'A: 20 UPDATE of B''s conflicts changes nothing');
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.mirror_tables SET relfilenode = 0 WHERE deployment = 'dep_b'$$),
          0::bigint, 'A: 21 UPDATE of B''s mirror registry changes nothing');
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.sync_jobs SET status = 'failed' WHERE deployment = 'dep_b'$$),
          0::bigint, 'A: 22 UPDATE of B''s jobs changes nothing');
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.applied_batches SET row_count = 0$$),
          1::bigint, 'A: 23 an UPDATE of all applied_batches reaches only A''s one row');
-- inserts and upserts as B: refused by the policies' WITH CHECK
SELECT throws_ok($$INSERT INTO sync_metadata.source_position (deployment, source_id) VALUES ('dep_b', gen_random_uuid())$$,
                 '42501', 'new row violates row-level security policy for table "source_position"',
                 'A: 24 INSERT of a position for B');
SELECT throws_ok($$INSERT INTO sync_metadata.source_position (deployment, source_id) VALUES ('dep_b', gen_random_uuid()) ON CONFLICT DO NOTHING$$,
                 '42501', NULL, 'A: 25 INSERT ... ON CONFLICT DO NOTHING of B''s position');
SELECT throws_ok($$INSERT INTO sync_metadata.leader_election (deployment, leader_id, epoch) VALUES ('dep_b', 'a', 99)
                   ON CONFLICT (deployment) DO UPDATE SET leader_id = 'a', epoch = 99$$,
                 '42501', NULL, 'A: 26 upsert of B''s lease');
SELECT throws_ok($$INSERT INTO sync_metadata.conflict_log (deployment, table_name, kind, reason) VALUES ('dep_b', 'chat', 'rejected', 'x')$$,
                 '42501', NULL, 'A: 27 INSERT of a conflict for B');
SELECT throws_ok($$INSERT INTO sync_metadata.applied_batches (deployment, source_id, after_seq, snapshot_seq) VALUES ('dep_b', gen_random_uuid(), 20, 21)$$,
                 '42501', NULL, 'A: 28 INSERT of an applied batch for B');
SELECT throws_ok($$INSERT INTO sync_metadata.mirror_tables (deployment, table_name, schema_name, relid, relfilenode) VALUES ('dep_b', 'x', 'mirror_b', 1, 1)$$,
                 '42501', NULL, 'A: 29 INSERT into B''s mirror registry');
SELECT throws_ok($$INSERT INTO sync_metadata.cache_events (deployment, event) VALUES ('dep_b', 'x')$$,
                 '42501', NULL, 'A: 30 INSERT of a cache event for B');
SELECT throws_ok($$INSERT INTO sync_metadata.sync_jobs (host_id, deployment, kind)
                   VALUES (sync_metadata.sluice_caller_host() + 1, 'dep_a', 'full')$$,
                 '42501', NULL, 'A: 31 INSERT of a job for its own deployment under another host_id');
SELECT throws_ok($$UPDATE sync_metadata.source_position SET deployment = 'dep_b' WHERE deployment = 'dep_a'$$,
                 '42501', NULL, 'A: 32 UPDATE moving its own row over to B');
SELECT throws_ok($$UPDATE sync_metadata.sync_jobs SET host_id = host_id + 1 WHERE deployment = 'dep_a'$$,
                 '42501', NULL, 'A: 33 UPDATE giving its job B''s host_id');
SELECT is(tap_helpers.affected($$UPDATE sync_metadata.conflict_log SET host_id = host_id + 1 WHERE deployment = 'dep_a'$$),
          1::bigint, 'A: 72 UPDATE giving its own conflict row another host_id (applied...)');
SELECT is((SELECT count(*)::int FROM sync_metadata.conflict_log WHERE host_id = sync_metadata.sluice_caller_host()), 1,
          'A: 73 ...but the row still carries A''s host_id (derived from the deployment)');
-- the registry of hosts and deployments is read-only to a host
SELECT throws_ok($$UPDATE sync_metadata.hosts SET role_name = 'host_a' WHERE host_name = 'host-b'$$,
                 '42501', 'permission denied for table hosts', 'A: 34 UPDATE of hosts');
SELECT throws_ok($$INSERT INTO sync_metadata.client_deployments (deployment, host_id, schema_name)
                   VALUES ('dep_x', sync_metadata.sluice_caller_host(), 'mirror_b')$$,
                 '42501', 'permission denied for table client_deployments',
                 'A: 35 registering itself a deployment on B''s schema');
SELECT throws_ok($$INSERT INTO sync_metadata.hosts (host_name, role_name) VALUES ('evil', 'host_a')$$,
                 '42501', 'permission denied for table hosts', 'A: 36 INSERT into hosts');
-- deletes: none at all
SELECT throws_ok($$DELETE FROM sync_metadata.source_position WHERE deployment = 'dep_b'$$,
                 '42501', 'permission denied for table source_position', 'A: 37 DELETE of B''s position');
SELECT throws_ok($$DELETE FROM sync_metadata.conflict_log$$, '42501', NULL, 'A: 38 DELETE from conflict_log');
SELECT throws_ok($$TRUNCATE sync_metadata.applied_batches$$, '42501', NULL, 'A: 39 TRUNCATE applied_batches');
-- functions
SELECT throws_ok($$SELECT sync_metadata.sluice_advance('dep_b', '22222222-2222-4222-8222-222222222222', 20, 30, 1, 1)$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 40 sluice_advance on B');
SELECT throws_ok($$SELECT sync_metadata.sluice_advance('dep_none', '22222222-2222-4222-8222-222222222222', 20, 30, 1, 1)$$,
                 '42501', 'deployment dep_none is not registered to role host_a',
                 'A: 41 sluice_advance on a deployment that does not exist: the same message');
SELECT throws_ok($$SELECT * FROM sync_metadata.sluice_lease('dep_b', 'a-node', 'a', NULL, 60000)$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 42 sluice_lease on B');
SELECT throws_ok($$SELECT sync_metadata.sluice_lease_release('dep_b', 1)$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 43 sluice_lease_release on B');
SELECT throws_ok($$SELECT sync_metadata.sluice_fence('dep_b', 1)$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 44 sluice_fence on B');
SELECT throws_ok($$SELECT sync_metadata.prune_applied_batches('dep_b')$$,
                 '42501', 'deployment dep_b is not registered to role host_a',
                 'A: 45 prune_applied_batches (SECURITY DEFINER) on B');
SELECT throws_ok($$SELECT sync_metadata.register_deployment('host-a', 'dep_b2', 'mirror_b')$$,
                 '42501', NULL, 'A: 46 register_deployment');
SELECT throws_ok($$SELECT sync_metadata.revoke_host('host-b')$$, '42501', NULL, 'A: 47 revoke_host of B');
SELECT throws_ok($$SELECT sync_metadata.grant_deployment('mirror_b')$$, '42501', NULL,
                 'A: 48 grant_deployment of B''s schema');
SELECT throws_ok($$SELECT sync_metadata.sluice_log_conflict('chat', '["b1"]', 1, 'rejected', 'source_wins',
                   'resolved', '{}', NULL, NULL, NULL)$$, '42501', NULL,
                 'A: 49 sluice_log_conflict with sluice.writer set to B');
-- B's mirror
SELECT throws_ok($$INSERT INTO mirror_b.chat VALUES ('b2', 'x', NULL)$$, '42501', NULL, 'A: 50 INSERT into B''s mirror');
SELECT throws_ok($$UPDATE mirror_b.chat SET title = 'x'$$, '42501', NULL, 'A: 51 UPDATE of B''s mirror');
SELECT throws_ok($$DELETE FROM mirror_b.chat$$, '42501', NULL, 'A: 52 DELETE from B''s mirror');
SELECT throws_ok($$CREATE TABLE mirror_b.evil (id int)$$, '42501', NULL, 'A: 53 CREATE TABLE in B''s schema');
SELECT throws_ok($$CREATE TRIGGER evil BEFORE UPDATE ON mirror_b.chat FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$,
                 '42501', NULL, 'A: 54 a trigger on B''s mirror');
-- the mirror DDL function (SECURITY DEFINER): only for its own deployment,
-- only the steps sluice takes, nothing spliced but quoted names and type names
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_b', 'mirror_b', 'evil', '{"op":"create_table","columns":[{"name":"id","type":"text"}],"key":["id"]}')$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 63 sluice_mirror_ddl create_table in B''s deployment');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_none', 'mirror_none', 'evil', '{"op":"create_table","columns":[{"name":"id","type":"text"}],"key":["id"]}')$$,
                 '42501', 'deployment dep_none is not registered to role host_a',
                 'A: 64 sluice_mirror_ddl on a deployment that does not exist: the same message');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_b', 'mirror_b', 'chat', '{"op":"add_columns","columns":[{"name":"leak","type":"text"}]}')$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 65 sluice_mirror_ddl add_columns on B''s mirror');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_b', 'mirror_b', 'chat', '{"op":"conflict_detection","key":["id"],"index":"chat_sluice_outside"}')$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 66 sluice_mirror_ddl triggers on B''s mirror');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"add_columns","columns":[{"name":"x","type":"text; DELETE FROM mirror_b.chat"}]}')$$,
                 '22023', NULL, 'A: 67 a statement smuggled in as a column type');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"add_columns","columns":[{"name":"x","type":"text DEFAULT (SELECT 1)"}]}')$$,
                 '22023', NULL, 'A: 68 an expression smuggled in as a column type');
CREATE DOMAIN pg_temp.vanishing AS text;
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"add_columns","columns":[{"name":"x","type":"vanishing"}]}')$$,
                 '22023', NULL, 'A: 74 a temporary type of its session as a column type');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"rename_column","from":"_sluice_deleted_at","to":"gone"}')$$,
                 '22023', NULL, 'A: 69 renaming away the tombstone column of its own mirror');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"drop_table"}')$$,
                 '22023', NULL, 'A: 70 a step not on the list (drop_table)');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"add_columns","columns":[{"name":"x","type":"mirror_b.chat"}]}')$$,
                 '22023', NULL, 'A: 75 B''s mirror row type as a column type (it would pin B''s table)');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'chat', '{"op":"add_columns","columns":[{"name":"x","type":"sync_metadata.hosts[]"}]}')$$,
                 '22023', NULL, 'A: 76 an array of a control-plane row type as a column type');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_b', 'evil', '{"op":"create_table","columns":[{"name":"id","type":"text"}],"key":["id"]}')$$,
                 '22023', NULL, 'A: 77 its own deployment with B''s schema named');
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'evil', '{"op":"create_table","columns":[{"name":"_sluice_seq","type":"text"}],"key":["_sluice_seq"]}')$$,
                 '22023', NULL, 'A: 78 a sluice column of its own choosing as a key');
SET ROLE sluice_sync;
SELECT throws_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_b', 'mirror_b', 'evil', '{"op":"create_table","columns":[{"name":"id","type":"text"}],"key":["id"]}')$$,
                 '42501', 'deployment dep_b is not registered to role host_a', 'A: 71 sluice_mirror_ddl on B after SET ROLE sluice_sync');
RESET ROLE;
-- becoming someone else
SELECT throws_ok($$SET ROLE host_b$$, '42501', NULL, 'A: 55 SET ROLE host_b');
SELECT throws_ok($$SET ROLE sluice_admin$$, '42501', NULL, 'A: 56 SET ROLE sluice_admin');
SELECT throws_ok($$SET SESSION AUTHORIZATION host_b$$, '42501', NULL, 'A: 57 SET SESSION AUTHORIZATION host_b');
SELECT throws_ok($$CREATE TABLE sync_metadata.evil (deployment text)$$, '42501', NULL,
                 'A: 58 CREATE TABLE in sync_metadata');
SELECT throws_ok($$ALTER TABLE sync_metadata.source_position NO FORCE ROW LEVEL SECURITY$$, '42501', NULL,
                 'A: 59 turning row-level security off');
SELECT throws_ok($$CREATE POLICY evil ON sync_metadata.source_position USING (true)$$, '42501', NULL,
                 'A: 60 adding a policy of its own');
-- as the group role itself, a host is nobody
SET ROLE sluice_sync;
SELECT is_empty($$SELECT * FROM sync_metadata.source_position$$, 'A: 61 as sluice_sync (SET ROLE) it sees no position at all');
SELECT throws_ok($$SELECT sync_metadata.sluice_advance('dep_a', '11111111-1111-4111-8111-111111111111', 10, 11, 1)$$,
                 '42501', 'deployment dep_a is not registered to role sluice_sync',
                 'A: 62 as sluice_sync it cannot advance even its own deployment');

-- ---------------------------------------------------------------- part 3
RESET ROLE;
SELECT results_eq($$SELECT applied_seq FROM sync_metadata.source_position$$, $$VALUES (10::bigint)$$,
                  'A sees its own position');
SELECT results_eq($$SELECT held FROM sync_metadata.sluice_lease('dep_a', 'a-node', 'a', NULL, 60000)$$,
                  $$VALUES (true)$$, 'A takes its own lease');
SELECT is(sync_metadata.sluice_advance('dep_a', '11111111-1111-4111-8111-111111111111', 10, 11, 1, 1),
          11::bigint, 'A advances its own deployment under its lease');
SELECT is(sync_metadata.sluice_fence('dep_a', 1), 1::bigint, 'A passes its own fence');
SELECT lives_ok($$INSERT INTO sync_metadata.conflict_log (deployment, table_name, kind, reason) VALUES ('dep_a', 'chat', 'rejected', 'x')$$,
                'A parks a row of its own');
SELECT lives_ok($$INSERT INTO sync_metadata.sync_jobs (deployment, kind) VALUES ('dep_a', 'incremental')$$,
                'A records a job (host_id defaults to its own)');
SELECT lives_ok($$INSERT INTO mirror_a.chat VALUES ('a2', 'new', NULL); UPDATE mirror_a.chat SET _sluice_deleted_at = now() WHERE id = 'a1'$$,
                'A writes its mirror and tombstones a row (UPDATE, not DELETE)');
SELECT throws_ok($$DELETE FROM mirror_a.chat WHERE id = 'a1'$$, '42501', NULL,
                 'A cannot DELETE even from its own mirror (owned by the administrator)');
SELECT is(sync_metadata.prune_applied_batches('dep_a'), 0::bigint, 'A prunes its own (nothing old)');
-- schema changes of its own app, through sluice_mirror_ddl (as the admin)
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'note', '{"op":"create_table","columns":[{"name":"id","type":"bigint"},{"name":"body","type":"character varying(20)"}],"key":["id"]}')$$,
                'A creates a new mirror table through sluice_mirror_ddl');
SELECT is((SELECT tableowner::text FROM pg_tables WHERE schemaname = 'mirror_a' AND tablename = 'note'),
          'postgres', 'the new mirror is owned by the administrator, not by A');
SELECT ok(has_table_privilege('mirror_a.note', 'SELECT, INSERT, UPDATE')
          AND NOT has_table_privilege('mirror_a.note', 'DELETE')
          AND NOT has_table_privilege('mirror_a.note', 'TRUNCATE'),
          'A may select, insert and update the new mirror, not delete or truncate');
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'note', '{"op":"add_columns","columns":[{"name":"tags","type":"jsonb"},{"name":"score","type":"double precision"}]}')$$,
                'A adds columns to its mirror');
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'note', '{"op":"add_columns","columns":[{"name":"at","type":"timestamp(3) with time zone"},{"name":"ids","type":"bigint[]"}]}')$$,
                'A adds columns of types with a typmod and arrays');
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'keyless', '{"op":"create_table","columns":[{"name":"_sluice_rowid","type":"bigint"},{"name":"v","type":"text"}],"key":["_sluice_rowid"]}')$$,
                'A creates the mirror of a table without a key (sluice''s rowid key)');
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'keyless', '{"op":"create_table","columns":[{"name":"_sluice_rowid","type":"bigint"},{"name":"v","type":"text"}],"key":["_sluice_rowid"]}')$$,
                'create_table again (a retry) is a no-op');
SELECT lives_ok($$SELECT set_config('sluice.writer', 'dep_b', false); SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'note', '{"op":"conflict_detection","key":["id"],"index":"note_sluice_outside"}')$$,
                'A adds conflict detection to its mirror');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'mirror_a.note'::regclass AND NOT tgisinternal
            AND encode(tgargs, 'escape') = 'dep_a\000id\000'), 4,
          'its four triggers name A''s deployment, whatever sluice.writer said');
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'note', '{"op":"evict_index","column":"body","index":"note_body_sluice_evict"}')$$,
                'A adds an evict index');
SELECT lives_ok($$SELECT sync_metadata.sluice_mirror_ddl('dep_a', 'mirror_a', 'note', '{"op":"rename_column","from":"score","to":"rank"}')$$,
                'A follows a column rename');
SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = 'mirror_a.note'::regclass AND attnum > 0 AND NOT attisdropped),
          'id bigint, body character varying(20), _sluice_seq bigint, _sluice_deleted_at timestamp with time zone, '
          '_sluice_updated_at timestamp with time zone, _sluice_outside_at timestamp with time zone, _sluice_base jsonb, '
          'tags jsonb, rank double precision, at timestamp(3) with time zone, ids bigint[]',
          'the mirror has exactly the columns asked for');
SELECT * FROM finish();

-- ---------------------------------------------------------------- part 4
-- Supabase's postgres (not a superuser, a member of sluice_admin since it
-- ran sql/03) administers.
\connect - postgres
SELECT * FROM no_plan();

-- revoking B: its role keeps nothing, its rows stay
SELECT ok(sync_metadata.revoke_host('host-b'), 'revoke_host(host-b) reports B was active');
SELECT ok(NOT pg_has_role('host_b', 'sluice_sync', 'MEMBER')
          AND NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'host_b')
          AND NOT has_schema_privilege('host_b', 'mirror_b', 'USAGE'),
          'after revoke: host_b is out of sluice_sync, cannot log in, cannot enter its schema');
SELECT is((SELECT count(*) FROM mirror_b.chat), 1::bigint, 'after revoke: B''s mirror rows are all there');
SELECT ok(NOT sync_metadata.revoke_host('host-b'), 'revoke_host again says B was revoked already');
SELECT is(sync_metadata.register_host('host-b', 'host_b'),
          (SELECT host_id FROM sync_metadata.hosts WHERE host_name = 'host-b'),
          'register_host brings a revoked host back with its id');
SELECT lives_ok($$SELECT sync_metadata.register_deployment('host-b', 'dep_b', 'mirror_b')$$,
                'register_deployment again is a no-op that succeeds');
SELECT throws_ok($$SELECT sync_metadata.register_deployment('host-a', 'dep_b', 'mirror_b')$$,
                 '23505', NULL, 'a deployment of B cannot be registered again to A');
SELECT throws_ok($$SELECT sync_metadata.register_host('host-c', 'postgres')$$, '42501', NULL,
                 'an administrator role cannot become a host role');
ALTER ROLE host_b LOGIN;

SELECT * FROM finish();
