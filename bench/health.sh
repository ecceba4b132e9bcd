#!/usr/bin/env bash
# The first health report on a database with 10,000 tables and 20,000 indexes: `warden
# health --json` end to end (a new process and a new connection each time, as a monitoring
# system runs it), before any snapshot was taken (a new database, or the maintenance worker
# not started yet) and with a fresh snapshot, against the same facts gathered the
# check_postgres way: one check_postgres run per action, each connecting with psql.
# Target: under 250 ms without a snapshot, and faster than the anchor. The three are
# measured in alternating rounds (the machine is shared: load hits all of them alike).
#
# check_postgres actions covering what the report covers:
#   connection, backends (connections vs max_connections), query_time, txn_time, txn_idle,
#   locks (blocking), hitratio, commitratio (rollback ratio), dbstats (deadlocks, temp
#   files), bloat and last_vacuum/last_analyze (table health), txn_wraparound, sequence,
#   replication_slots, database_size.
# (check_postgres has no invalid/duplicate/unused index check; pg_warden does those too.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_cluster
runs=${HEALTH_BENCH_RUNS:-7}
peer_runs=${HEALTH_BENCH_PEER_RUNS:-3}

psql -X -q -c 'CREATE DATABASE bench'
export PGDATABASE=bench
psql -X -q -c 'CREATE EXTENSION pg_warden'
# 10,000 tables with a primary key and one more index each, committed in batches so the
# lock table does not overflow; a few rows and dead tuples in every 100th table.
psql -X -q <<'SQL'
DO $$
BEGIN
    FOR i IN 1..10000 LOOP
        EXECUTE format('CREATE TABLE bench_t%s (id int PRIMARY KEY, v int, note text)', i);
        EXECUTE format('CREATE INDEX bench_t%s_v ON bench_t%s (v)', i, i);
        IF i % 100 = 0 THEN
            EXECUTE format('INSERT INTO bench_t%s SELECT g, g, ''x'' FROM generate_series(1, 1000) g', i);
            EXECUTE format('DELETE FROM bench_t%s WHERE id <= 200', i);
        END IF;
        IF i % 500 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;
CREATE SEQUENCE bench_seq MAXVALUE 1000;
SELECT setval('bench_seq', 900);
ANALYZE;
SQL
echo "tables: $(psql -X -At -c "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'bench\_t%'"), indexes: $(psql -X -At -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname LIKE 'bench\_t%'")"

# check_postgres: every action, each its own process and psql connection.
actions=(
  "connection"
  "backends --warning=80% --critical=95%"
  "query_time --warning=120s --critical=300s"
  "txn_time --warning=600s --critical=1800s"
  "txn_idle --warning=60s --critical=300s"
  "locks --warning=100 --critical=200"
  "hitratio --warning=99% --critical=95%"
  "commitratio --warning=95% --critical=80%"
  "dbstats"
  "bloat --warning=1GB --critical=5GB"
  "last_vacuum --warning=1d --critical=7d"
  "last_analyze --warning=1d --critical=7d"
  "txn_wraparound --warning=1000000000 --critical=1500000000"
  "sequence --warning=85% --critical=95%"
  "replication_slots --warning=1GB --critical=10GB"
  "database_size --warning=100GB --critical=200GB"
)
peer_round() {
  local start a
  start=$(date +%s%N)
  for a in "${actions[@]}"; do
    # shellcheck disable=SC2086
    check_postgres --host="$PGHOST" --port="$PGPORT" --dbuser=postgres --db=bench \
      --action=$a >/dev/null 2>&1 || true
  done
  peer_ms+=("$(( ($(date +%s%N) - start) / 1000000 ))")
}

# The snapshots are the bench's to take or remove: the worker's job is switched off.
psql -X -q -c "UPDATE warden.jobs SET enabled = false WHERE name = 'health_snapshot'"
psql -X -q -c 'SELECT length(warden.health_report()::text)' >/dev/null   # warm-up

# One `warden health --json`, end to end; its own split (connect, report) is kept too.
# $1: the array to add the total to; $2: the array for the report's share.
warden_run() {
  local -n total=$1 part=$2
  local start out
  start=$(date +%s%N)
  out=$("$WARDEN" health --json -d "dbname=bench" || true)
  total+=("$(( ($(date +%s%N) - start) / 1000000 ))")
  part+=("$(printf '%s' "$out" | sed -n 's/.*"report": *\([0-9.]*\).*/\1/p' | head -1)")
}

# CPU time the server spends on the report in a new connection (the backend's own
# /proc/self/schedstat before and after): what the report costs whatever else the machine
# is doing, next to the wall times above, which a shared machine inflates.
backend_cpu_ms() {
  psql -X -At -c "SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)" -c "$1" \
       -c "SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)" |
    awk 'NR == 1 {a = $1} END {printf "%.0f", ($1 - a) / 1e6}'
}

cold_ms=() cold_report_ms=() snap_ms=() snap_report_ms=() peer_ms=() cold_cpu_ms=()
have_peer=$(command -v check_postgres >/dev/null && echo 1 || echo 0)
[ "$have_peer" = 1 ] || echo "check_postgres not installed: no peer comparison"
no_snapshot() {
  psql -X -q -c 'DELETE FROM warden.health_snapshots'
  warden_run cold_ms cold_report_ms
  cold_cpu_ms+=("$(backend_cpu_ms 'SELECT length(warden.health_report()::text)')")
}
with_snapshot() { psql -X -q -c 'CALL warden.health_snapshot()'; warden_run snap_ms snap_report_ms; }
# The anchor takes seconds a round: it runs in the first peer_runs rounds only.
peer_due() { [ "$have_peer" = 1 ] && [ "$1" -le "$peer_runs" ]; }
for round in $(seq "$runs"); do
  if [ $((round % 2)) = 1 ]; then
    no_snapshot
    with_snapshot
    if peer_due "$round"; then peer_round; fi
  else
    if peer_due "$round"; then peer_round; fi
    with_snapshot
    no_snapshot
  fi
done

# The machine is shared: a CPU-bound yardstick in the same run shows how loaded it was
# (about 50 ms on an idle core).
yard_ms=()
for _ in 1 2 3; do
  yard_ms+=("$(psql -X -At -c '\timing on' -c 'SELECT count(*) FROM generate_series(1, 1000000)' |
               sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')")
done
echo "yardstick: SELECT count(*) FROM generate_series(1, 1000000) median $(median "${yard_ms[@]}") ms, $(backend_cpu_ms 'SELECT count(*) FROM generate_series(1, 1000000)') ms of CPU"

cold=$(median "${cold_ms[@]}")
snap=$(median "${snap_ms[@]}")
echo "warden health --json without a snapshot ms: ${cold_ms[*]} (of which the report query: ${cold_report_ms[*]})"
echo "warden health --json with a snapshot ms: ${snap_ms[*]} (of which the report query: ${snap_report_ms[*]})"
echo "server CPU of health_report() in a new connection without a snapshot ms: ${cold_cpu_ms[*]} (median $(median "${cold_cpu_ms[@]}"))"
ratio_line first_report_no_snapshot_vs_250ms "$cold" 250 ms "target < 1 (warden health --json end to end, no snapshot, 10,000 tables, 20,000 indexes)"
ratio_line first_report_with_snapshot_vs_250ms "$snap" 250 ms "target < 1 (the same with a snapshot of the last 15 minutes)"
if [ "$have_peer" = 1 ]; then
  peer=$(median "${peer_ms[@]}")
  echo "check_postgres ${#actions[@]} actions ms: ${peer_ms[*]}"
  ratio_line health_vs_check_postgres "$cold" "$peer" ms "target < 1 (warden health without a snapshot vs ${#actions[@]} check_postgres actions)"
fi
