#!/usr/bin/env bash
# control_plane_test.sh SQL_DIR: applies sql/01 and sql/02 twice (they must be
# re-runnable) to the server in SLUICE_TEST_PG and checks sluice_advance and
# the sluice_sync role's rights. Exit 77 (skip) without a server, unless
# CI=true, where that is a failure. Ends with "N passed, M failed".
set -uo pipefail

sql_dir=${1:?usage: control_plane_test.sh SQL_DIR}
if [[ -z "${SLUICE_TEST_PG:-}" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "SLUICE_TEST_PG is not set under CI=true: run tests through scripts/test.sh" >&2
    exit 1
  fi
  echo "SKIP: SLUICE_TEST_PG not set (scripts/test.sh sets it inside pg_virtualenv)"
  exit 77
fi
if ! command -v psql >/dev/null; then
  echo "psql not found" >&2
  exit 1
fi

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() {
  failed=$((failed + 1))
  echo "not ok - $1"
  shift
  printf '    %s\n' "$@"
}

psql_run() { psql "$SLUICE_TEST_PG" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# expect_value NAME EXPECTED SQL
expect_value() {
  local out
  out=$(psql_run -c "$3" 2>&1)
  if [[ "$out" == "$2" ]]; then pass "$1"; else fail "$1" "expected: $2" "got: $out"; fi
}

# expect_ok NAME SQL
expect_ok() {
  local out
  if out=$(psql_run -c "$2" 2>&1); then pass "$1"; else fail "$1" "$out"; fi
}

# expect_error NAME SQLSTATE MESSAGE_PART SQL
expect_error() {
  local out
  if out=$(psql_run -v VERBOSITY=verbose -c "$4" 2>&1); then
    fail "$1" "succeeded, expected SQLSTATE $2" "$out"
  elif [[ "$out" == *"ERROR:  $2:"* && "$out" == *"$3"* ]]; then
    pass "$1"
  else
    fail "$1" "expected SQLSTATE $2 with '$3'" "got: $out"
  fi
}

suffix="${RANDOM}_$$"
dep="cp_test_$suffix"
schema="cp_dep_$suffix"
member="cp_member_$suffix"
outsider="cp_outsider_$suffix"
src1="11111111-1111-4111-8111-$(printf '%012d' "$$")"
src2="22222222-2222-4222-8222-$(printf '%012d' "$$")"

cleanup() {
  psql_run >/dev/null 2>&1 <<SQL
DROP SCHEMA IF EXISTS "$schema" CASCADE;
DELETE FROM sync_metadata.applied_batches WHERE deployment = '$dep';
DELETE FROM sync_metadata.source_position WHERE deployment = '$dep';
DELETE FROM sync_metadata.conflict_log WHERE deployment = '$dep';
DELETE FROM sync_metadata.mirror_tables WHERE deployment = '$dep';
DROP OWNED BY "$member";
DROP ROLE IF EXISTS "$member";
DROP ROLE IF EXISTS "$outsider";
SQL
}
trap cleanup EXIT

# --- scripts apply, twice ----------------------------------------------------
for round in 1 2; do
  for f in 01-control-plane.sql 02-sync-role.sql; do
    if out=$(psql_run -f "$sql_dir/$f" 2>&1); then
      if [[ -z "$out" ]]; then
        pass "apply $f (round $round)"
      else
        fail "apply $f (round $round) printed something" "$out"
      fi
    else
      fail "apply $f (round $round)" "$out"
    fi
  done
done
expect_value "schema_version rows" $'control-plane|7\nsync-role|1' \
  "SELECT component || '|' || version FROM sync_metadata.schema_version
    WHERE component IN ('control-plane', 'sync-role') ORDER BY component"
expect_value "sluice_sync is NOLOGIN" "f" \
  "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'sluice_sync'"

# --- sluice_advance ----------------------------------------------------------
expect_ok "position row" \
  "INSERT INTO sync_metadata.source_position (deployment, source_id) VALUES ('$dep', '$src1')"
expect_value "advance from initial -1 to 10" "10" \
  "SELECT sync_metadata.sluice_advance('$dep', '$src1', -1, 10, 5)"
expect_value "advance 10 to 20" "20" \
  "SELECT sync_metadata.sluice_advance('$dep', '$src1', 10, 20, 7)"
expect_value "position after two batches" "20|2" \
  "SELECT applied_seq || '|' || batches FROM sync_metadata.source_position WHERE deployment = '$dep'"
expect_value "applied_batches history" $'-1|10|5\n10|20|7' \
  "SELECT after_seq || '|' || snapshot_seq || '|' || row_count FROM sync_metadata.applied_batches
    WHERE deployment = '$dep' ORDER BY after_seq"
expect_error "stale batch is a position conflict" "SL001" "position conflict: sink holds 20, batch starts after 10" \
  "SELECT sync_metadata.sluice_advance('$dep', '$src1', 10, 30, 1)"
expect_error "missing position row" "SL001" "deployment ${dep}_none has no position row: run sluice init" \
  "SELECT sync_metadata.sluice_advance('${dep}_none', '$src1', -1, 1, 1)"
expect_error "another source" "SL003" "deployment $dep follows source $src1, not $src2" \
  "SELECT sync_metadata.sluice_advance('$dep', '$src2', 20, 30, 1)"
expect_value "failed advances changed nothing" "20|2" \
  "SELECT applied_seq || '|' || batches FROM sync_metadata.source_position WHERE deployment = '$dep'"

# --- the sync role -----------------------------------------------------------
expect_ok "deployment schema, member and outsider roles" "
  CREATE SCHEMA \"$schema\";
  CREATE TABLE \"$schema\".before_grant (id int PRIMARY KEY, v text);
  INSERT INTO \"$schema\".before_grant VALUES (1, 'a');
  SELECT sync_metadata.grant_deployment('$schema');
  CREATE TABLE \"$schema\".after_grant (id bigserial PRIMARY KEY, v text);
  INSERT INTO \"$schema\".after_grant (v) VALUES ('a');
  CREATE ROLE \"$member\" NOLOGIN IN ROLE sluice_sync;
  CREATE ROLE \"$outsider\" NOLOGIN"
as_member() { printf 'SET ROLE "%s"; %s' "$member" "$1"; }
for t in before_grant after_grant; do
  expect_ok "member INSERT/UPDATE/SELECT on $t" "$(as_member "
    INSERT INTO \"$schema\".$t (id, v) VALUES (2, 'b');
    UPDATE \"$schema\".$t SET v = 'c' WHERE id = 1;
    SELECT count(*) FROM \"$schema\".$t")"
  expect_error "member cannot DELETE from $t" "42501" "permission denied" \
    "$(as_member "DELETE FROM \"$schema\".$t WHERE id = 1")"
  expect_error "member cannot TRUNCATE $t" "42501" "permission denied" \
    "$(as_member "TRUNCATE \"$schema\".$t")"
done
expect_value "member's writes landed, nothing deleted" "2|c" \
  "SELECT count(*) || '|' || max(v) FROM \"$schema\".before_grant"
expect_ok "member can CREATE in the deployment schema" \
  "$(as_member "CREATE TABLE \"$schema\".by_member (id int)")"
expect_error "member cannot DELETE from source_position" "42501" "permission denied" \
  "$(as_member "DELETE FROM sync_metadata.source_position WHERE deployment = '$dep'")"
expect_error "member cannot TRUNCATE conflict_log" "42501" "permission denied" \
  "$(as_member "TRUNCATE sync_metadata.conflict_log")"
expect_error "member cannot DELETE from applied_batches" "42501" "permission denied" \
  "$(as_member "DELETE FROM sync_metadata.applied_batches WHERE deployment = '$dep'")"
expect_ok "member can park a row in conflict_log" "$(as_member "
  INSERT INTO sync_metadata.conflict_log (deployment, table_name, kind, reason, source_data)
  VALUES ('$dep', 'chat', 'rejected', 'test', '{\"id\": 1}')")"
expect_ok "member can register a mirror table" "$(as_member "
  INSERT INTO sync_metadata.mirror_tables (deployment, table_name, schema_name, relid, relfilenode)
  VALUES ('$dep', 'chat', '$schema', 1, 1);
  UPDATE sync_metadata.mirror_tables SET relfilenode = 2 WHERE deployment = '$dep'")"
expect_error "member cannot DELETE from mirror_tables" "42501" "permission denied" \
  "$(as_member "DELETE FROM sync_metadata.mirror_tables WHERE deployment = '$dep'")"
# An upgrade: a table 01 added after 02 last ran (mirror_tables came with
# version 3) is usable by the sync role once 01 ran again, as `sluice init`
# does, without running 02 again.
expect_ok "mirror_tables as if created after 02 ran" \
  "REVOKE ALL ON sync_metadata.mirror_tables FROM sluice_sync"
if out=$(psql_run -f "$sql_dir/01-control-plane.sql" 2>&1); then
  pass "apply 01 again (the upgrade)"
else
  fail "apply 01 again (the upgrade)" "$out"
fi
expect_ok "after the upgrade the member can register a mirror table" "$(as_member "
  UPDATE sync_metadata.mirror_tables SET relfilenode = 3 WHERE deployment = '$dep'")"
expect_error "after the upgrade the member still cannot DELETE from mirror_tables" "42501" \
  "permission denied" \
  "$(as_member "DELETE FROM sync_metadata.mirror_tables WHERE deployment = '$dep'")"
expect_error "member cannot run grant_deployment" "42501" "permission denied" \
  "$(as_member "SELECT sync_metadata.grant_deployment('$schema')")"
expect_error "a role outside sluice_sync cannot advance" "42501" "permission denied" \
  "SET ROLE \"$outsider\"; SELECT sync_metadata.sluice_advance('$dep', '$src1', 20, 30, 1)"

# Every 1000th batch prunes history older than 7 days, which needs a DELETE
# the member does not hold itself.
expect_ok "an old history row and 999 batches" "
  INSERT INTO sync_metadata.applied_batches (deployment, source_id, after_seq, snapshot_seq, applied_at)
  VALUES ('$dep', '$src1', 0, 0, now() - interval '8 days');
  UPDATE sync_metadata.source_position SET batches = 999 WHERE deployment = '$dep'"
expect_value "member advances, the 1000th batch prunes" "30" \
  "$(as_member "SELECT sync_metadata.sluice_advance('$dep', '$src1', 20, 30, 1)")"
expect_value "only old history was pruned" $'-1\n10\n20' \
  "SELECT after_seq FROM sync_metadata.applied_batches WHERE deployment = '$dep' ORDER BY after_seq"

# A full resync after the SQLite file was restored from a backup moves the
# position back; the fence (p_after = the sink's position) still holds.
expect_error "a stale resync is still fenced" "SL001" "position conflict: sink holds 30, batch starts after 20" \
  "SELECT sync_metadata.sluice_advance('$dep', '$src1', 20, 5, 1)"
expect_value "a resync may move the position back" "5" \
  "SELECT sync_metadata.sluice_advance('$dep', '$src1', 30, 5, 1)"


# The lease (version 4): one holder, epochs that only grow, the database clock.
ldep="lease_$suffix"
expect_value "first acquire gets epoch 1" "t|1|n1|host1" \
  "SELECT held, epoch, leader_id, leader_host FROM sync_metadata.sluice_lease('$ldep', 'n1', 'host1', NULL, 60000)"
expect_value "a second node does not get a held lease" "f|1|n1" \
  "SELECT held, epoch, leader_id FROM sync_metadata.sluice_lease('$ldep', 'n2', 'host2', NULL, 60000)"
expect_value "the holder renews under its epoch" "t|1" \
  "SELECT held, epoch FROM sync_metadata.sluice_lease('$ldep', 'n1', 'host1', 1, 60000)"
expect_value "a renewal counts a heartbeat" "1" \
  "SELECT heartbeat_count FROM sync_metadata.leader_election WHERE deployment = '$ldep'"
expect_value "the same node without its epoch (a restarted process) waits" "f|1" \
  "SELECT held, epoch FROM sync_metadata.sluice_lease('$ldep', 'n1', 'host1', NULL, 60000)"
expect_value "fence passes for the holder" "1" "SELECT sync_metadata.sluice_fence('$ldep', 1)"
expect_error "fence refuses a batch without an epoch once a lease exists" "SL002" "no lease" \
  "SELECT sync_metadata.sluice_fence('$ldep', NULL)"
expect_value "an expired lease goes to the next node with a larger epoch" "t|2|n2" \
  "UPDATE sync_metadata.leader_election SET expires_at = clock_timestamp() - interval '1 ms' WHERE deployment = '$ldep';
   SELECT held, epoch, leader_id FROM sync_metadata.sluice_lease('$ldep', 'n2', 'host2', NULL, 60000)"
expect_value "the old holder cannot renew" "f|2|n2" \
  "SELECT held, epoch, leader_id FROM sync_metadata.sluice_lease('$ldep', 'n1', 'host1', 1, 60000)"
expect_error "the old holder is fenced" "SL002" "is at epoch 2, this batch was made under 1" \
  "SELECT sync_metadata.sluice_fence('$ldep', 1)"
expect_value "release by a stale epoch changes nothing" "f" \
  "SELECT sync_metadata.sluice_lease_release('$ldep', 1)"
expect_value "release by the holder" "t" "SELECT sync_metadata.sluice_lease_release('$ldep', 2)"
expect_value "a release ends the lease at once" "t" \
  "SELECT expires_at <= clock_timestamp() FROM sync_metadata.leader_election WHERE deployment = '$ldep'"
expect_error "a released lease fences its holder" "SL002" "expired" \
  "SELECT sync_metadata.sluice_fence('$ldep', 2)"
expect_value "after a release the standby acquires at once" "t|3|n1" \
  "SELECT held, epoch, leader_id FROM sync_metadata.sluice_lease('$ldep', 'n1', 'host1', NULL, 60000)"
expect_ok "a position row for the lease deployment" "
  INSERT INTO sync_metadata.source_position (deployment, source_id, applied_seq) VALUES ('$ldep', '$src1', 0)"
expect_error "advance under a stale epoch is refused" "SL002" "is at epoch 3" \
  "SELECT sync_metadata.sluice_advance('$ldep', '$src1', 0, 10, 1, 2)"
expect_error "advance without an epoch (a version-3 agent) is refused" "SL002" "no lease" \
  "SELECT sync_metadata.sluice_advance('$ldep', '$src1', 0, 10, 1)"
expect_value "advance under the current epoch" "10" \
  "SELECT sync_metadata.sluice_advance('$ldep', '$src1', 0, 10, 1, 3)"
expect_value "applied_batches records the epoch" "3" \
  "SELECT epoch FROM sync_metadata.applied_batches WHERE deployment = '$ldep'"
expect_value "member can take and renew a lease" "t|t" "$(as_member "
  SELECT (SELECT held FROM sync_metadata.sluice_lease('m_$ldep', 'n1', 'h', NULL, 60000)),
         (SELECT held FROM sync_metadata.sluice_lease('m_$ldep', 'n1', 'h', 1, 60000))")"
expect_error "member cannot DELETE a lease" "42501" "permission denied" \
  "$(as_member "DELETE FROM sync_metadata.leader_election WHERE deployment = 'm_$ldep'")"

# Conflicts (version 5): the kinds and statuses external checks read are the
# only ones conflict_log admits; one pending entry per row.
expect_error "conflict_log refuses an unknown kind" "23514" "conflict_log_kind_check" \
  "INSERT INTO sync_metadata.conflict_log (deployment, table_name, kind, reason)
   VALUES ('$dep', 't', 'bogus', 'r')"
expect_error "conflict_log refuses an unknown status" "23514" "conflict_log_status_check" \
  "INSERT INTO sync_metadata.conflict_log (deployment, table_name, kind, reason, status)
   VALUES ('$dep', 't', 'rejected', 'r', 'open')"
expect_error "conflict_log holds one pending entry per row" "23505" "conflict_log_pending_row" \
  "INSERT INTO sync_metadata.conflict_log (deployment, table_name, row_key, kind, reason, status)
   VALUES ('$dep', 't', '[1]', 'insert_exists', 'r', 'pending'),
          ('$dep', 't', '[1]', 'insert_exists', 'r', 'pending')"
expect_value "the sync role may record outside deletes, never delete them" "t|f" \
  "SELECT has_table_privilege('sluice_sync', 'sync_metadata.outside_deletes', 'UPDATE'),
          has_table_privilege('sluice_sync', 'sync_metadata.outside_deletes', 'DELETE')"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
