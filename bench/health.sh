#!/usr/bin/env bash
# The full health report on a database with 10,000 tables and 20,000 indexes, against the
# same facts gathered the check_postgres way: one check_postgres run per action, each
# connecting with psql. Target: health_report() under 250 ms and faster than the anchor.
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

# The maintenance worker takes a snapshot every few minutes; the report reads the
# database size from it instead of summing 30,000 files.
psql -X -q -c 'CALL warden.health_snapshot()'

# pg_warden: the report's server time (psql \timing), and `warden health` end to end.
psql -X -q -At -c 'SELECT length(warden.health_report()::text)' >/dev/null   # warm-up
report_ms=() warden_ms=()
for _ in $(seq "$runs"); do
  report_ms+=("$(psql -X -At -c '\timing on' -c 'SELECT length(warden.health_report()::text)' |
                 sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')")
  start=$(date +%s%N)
  "$WARDEN" health --json -d "dbname=bench" >/dev/null || true
  warden_ms+=("$(( ($(date +%s%N) - start) / 1000000 ))")
done

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
peer_ms=()
for _ in $(seq "$peer_runs"); do
  start=$(date +%s%N)
  for a in "${actions[@]}"; do
    # shellcheck disable=SC2086
    check_postgres --host="$PGHOST" --port="$PGPORT" --dbuser=postgres --db=bench \
      --action=$a >/dev/null 2>&1 || true
  done
  peer_ms+=("$(( ($(date +%s%N) - start) / 1000000 ))")
done

# The machine is shared: a CPU-bound yardstick in the same run shows how loaded it was
# (about 50 ms on an idle core).
yard_ms=()
for _ in 1 2 3; do
  yard_ms+=("$(psql -X -At -c '\timing on' -c 'SELECT count(*) FROM generate_series(1, 1000000)' |
               sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')")
done
echo "yardstick: SELECT count(*) FROM generate_series(1, 1000000) median $(median "${yard_ms[@]}") ms"

report=$(median "${report_ms[@]}")
whole=$(median "${warden_ms[@]}")
peer=$(median "${peer_ms[@]}")
echo "health_report() ms: ${report_ms[*]}; warden health ms: ${warden_ms[*]}; check_postgres ${#actions[@]} actions ms: ${peer_ms[*]}"
ratio_line health_vs_check_postgres "$whole" "$peer" ms "target < 1 (warden health end to end vs ${#actions[@]} check_postgres actions)"
ratio_line health_report_vs_250ms "$report" 250 ms "target < 1 (server time of warden.health_report(), 10,000 tables, 20,000 indexes)"
