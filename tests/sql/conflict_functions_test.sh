#!/usr/bin/env bash
# conflict_functions_test.sh SQL_DIR TEST_SQL: in a database of its own on the
# server in SLUICE_TEST_PG, applies SQL_DIR/01-control-plane.sql and runs
# TEST_SQL (tests/sql/conflict_functions.sql), whose checks print "ok NAME" or
# stop at the first "FAILED NAME: got ..., want ...". Exit 77 (skip) without a
# server, unless CI=true, where that is a failure.
set -uo pipefail

sql_dir=${1:?usage: conflict_functions_test.sh SQL_DIR TEST_SQL}
test_sql=${2:?usage: conflict_functions_test.sh SQL_DIR TEST_SQL}
if [[ -z "${SLUICE_TEST_PG:-}" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "SLUICE_TEST_PG is not set under CI=true: run tests through scripts/test.sh" >&2
    exit 1
  fi
  echo "SKIP: SLUICE_TEST_PG not set (scripts/test.sh sets it inside pg_virtualenv)"
  exit 77
fi

db="sluice_conflicts_$$_${RANDOM}"
psql "$SLUICE_TEST_PG" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" || exit 1
trap 'psql "$SLUICE_TEST_PG" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
conn="$SLUICE_TEST_PG dbname=$db"
psql "$conn" -X -q -v ON_ERROR_STOP=1 -f "$sql_dir/01-control-plane.sql" || exit 1
out=$(psql "$conn" -X -q -v ON_ERROR_STOP=1 -f "$test_sql" 2>&1)
rc=$?
printf '%s\n' "$out" | sed -e 's/^psql:[^ ]* NOTICE:  //'
checks=$(printf '%s\n' "$out" | grep -c 'NOTICE:  ok ')
echo "$checks check(s) passed"
if [[ $rc -ne 0 ]]; then
  echo "FAILED (psql exit $rc)"
  exit 1
fi
# A check that silently stopped running would shrink this number.
[[ $checks -ge 41 ]] || { echo "expected at least 41 checks, ran $checks"; exit 1; }
