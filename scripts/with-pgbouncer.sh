#!/usr/bin/env bash
# with-pgbouncer.sh CMD...: run inside pg_virtualenv. Starts pgbouncer in
# transaction mode (the stand-in for Supabase's pooler) in front of the
# throw-away cluster, exports SLUICE_TEST_PG / SLUICE_TEST_PGBOUNCER, runs CMD,
# stops pgbouncer. SLUICE_TEST_PGBOUNCER_POOL1 names a database alias of the
# same pgbouncer whose pool is ONE server connection: every client of it takes
# turns on that connection, so session state one of them leaves behind (a named
# prepared statement, a plain SET) is seen by the next.
set -euo pipefail
: "${PGHOST:?run me inside pg_virtualenv}"

dir=$(mktemp -d /tmp/sluice-pgbouncer.XXXXXX)
port=$(( 20000 + RANDOM % 20000 ))
cat > "$dir/pgbouncer.ini" <<INI
[databases]
sluice_pool1 = host=$PGHOST port=${PGPORT:-5432} dbname=$PGDATABASE user=$PGUSER password=$PGPASSWORD pool_size=1
* = host=$PGHOST port=${PGPORT:-5432} user=$PGUSER password=$PGPASSWORD
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
runas=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres "$dir"
  runas=(-u postgres)
fi
/usr/sbin/pgbouncer -d "${runas[@]}" "$dir/pgbouncer.ini"
cleanup() {
  [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 50); do
  psql "host=127.0.0.1 port=$port dbname=$PGDATABASE user=$PGUSER" -tAc 'select 1' >/dev/null 2>&1 && break
  sleep 0.1
done

export SLUICE_TEST_PG="host=$PGHOST port=${PGPORT:-5432} dbname=$PGDATABASE user=$PGUSER password=$PGPASSWORD"
export SLUICE_TEST_PGBOUNCER="host=127.0.0.1 port=$port dbname=$PGDATABASE user=$PGUSER"
export SLUICE_TEST_PGBOUNCER_POOL1="host=127.0.0.1 port=$port dbname=sluice_pool1 user=$PGUSER"
"$@"
