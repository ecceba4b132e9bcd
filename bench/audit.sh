#!/usr/bin/env bash
# Audit trail benchmarks, one run, one throwaway cluster:
#  1. single-row UPDATE throughput (pgbench, 4 clients) on a 10-column table with no
#     trigger, with pg_warden's C++ audit trigger, and with a plain PL/pgSQL trigger
#     writing to_jsonb(OLD)/to_jsonb(NEW) into a plain table. Targets: pg_warden's overhead
#     (1 - tps/tps_none) at most 0.25 of the PL/pgSQL trigger's, and at least 0.90 of the
#     no-trigger throughput (on a quiet machine).
#  2. retention: removing the oldest 30 of 100 days from a 10,000,000-row audit log with
#     warden.cleanup_audit() (drops partitions) against DELETE + VACUUM on an unpartitioned
#     copy; time and WAL. Targets: under 1 s, >= 10x faster, >= 100x less WAL. And against
#     its floor, a plain DROP TABLE of the same 30 partitions (of a copy) in one
#     transaction: target at most 2x.
# The pgbench part runs with synchronous_commit = off for its sessions: with a WAL flush
# per commit, throughput measures the disk and hides what a trigger costs.
# Knobs: AUDIT_BENCH_PART (update, retention or all), AUDIT_BENCH_SECONDS (per pgbench run, 10), AUDIT_BENCH_ROUNDS (3),
#        AUDIT_BENCH_ROWS (10000000).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
seconds=${AUDIT_BENCH_SECONDS:-10}
rounds=${AUDIT_BENCH_ROUNDS:-3}
rows=${AUDIT_BENCH_ROWS:-10000000}
part=${AUDIT_BENCH_PART:-all}

bench_cluster
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_q <<'SQL'
CREATE EXTENSION pg_warden;
CREATE TABLE bench_none (id int PRIMARY KEY, c1 int, c2 int, c3 text, c4 text, c5 bigint,
                         c6 numeric, c7 boolean, c8 timestamptz, c9 text);
INSERT INTO bench_none
SELECT i, i, i % 100, 'name ' || i, md5(i::text), i * 10, i / 7.0, i % 2 = 0,
       '2026-01-01'::timestamptz + i * interval '1 minute', repeat('x', 40)
FROM generate_series(1, 10000) i;
CREATE TABLE bench_warden (LIKE bench_none INCLUDING ALL);
INSERT INTO bench_warden SELECT * FROM bench_none;
CREATE TABLE bench_plpgsql (LIKE bench_none INCLUDING ALL);
INSERT INTO bench_plpgsql SELECT * FROM bench_none;

SELECT warden.enable_audit('bench_warden');
-- The seal job is driven by hand below (one-second slices while pgbench writes).
UPDATE warden.jobs SET enabled = false WHERE name = 'seal_audit';

CREATE TABLE plpgsql_log (id bigserial PRIMARY KEY, op text, table_name text,
                          old_values jsonb, new_values jsonb, logged_at timestamptz DEFAULT now(),
                          actor text DEFAULT current_setting('warden.actor', true));
CREATE FUNCTION plpgsql_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO plpgsql_log (op, table_name, old_values, new_values)
    VALUES (TG_OP, TG_TABLE_NAME,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON bench_plpgsql
    FOR EACH ROW EXECUTE FUNCTION plpgsql_audit();
VACUUM ANALYZE;
SQL

script_dir="$BENCH_WORK/scripts"
mkdir -p "$script_dir"
for t in none warden plpgsql; do
  printf '\\set id random(1, 10000)\nUPDATE bench_%s SET c2 = c2 + 1 WHERE id = :id;\n' "$t" >"$script_dir/$t.sql"
done

if [ "$part" != retention ]; then
declare -A tps
cp "$script_dir/warden.sql" "$script_dir/chain.sql"
for round in $(seq "$rounds"); do
  for t in none warden plpgsql chain; do
    sealer=
    if [ "$t" = chain ]; then
      # The chain's cost to writers: the same trigger while the trail is sealed every
      # second in one-second slices (the job's work, at sixty times its default pace).
      psql_q -c "UPDATE warden.audit_settings SET seal_interval = '1 second'"
      ( while :; do psql -X -q -c 'SELECT warden.seal_audit()' >/dev/null 2>&1; sleep 1; done ) &
      sealer=$!
    fi
    v=$(PGOPTIONS='-c synchronous_commit=off' pgbench -n -c 4 -j 2 -T "$seconds" -f "$script_dir/$t.sql" 2>/dev/null |
        sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    if [ -n "$sealer" ]; then
      kill "$sealer"; wait "$sealer" 2>/dev/null || true
      psql_q -c "UPDATE warden.audit_settings SET seal_interval = '1 minute'"
    fi
    tps[$t]="${tps[$t]:-} $v"
    echo "round $round: $t $v tps"
  done
done
chain=$(median ${tps[chain]})
# The trigger's own cost per row, without pgbench's client round trips and with many rows
# per transaction (where its per-transaction state pays): one session inserting 50,000
# rows in one statement into each table, median of the rounds.
declare -A bulk
for round in $(seq "$rounds"); do
  for t in none warden plpgsql; do
    v=$(psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
SET synchronous_commit = off;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO bench_$t SELECT i, i, i % 100, 'name ' || i, md5(i::text), i * 10, i / 7.0, i % 2 = 0,
       '2026-01-01'::timestamptz + i * interval '1 minute', repeat('x', 40)
FROM generate_series(1000001, 1050000) i;
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric * 1000, 1);
DELETE FROM bench_$t WHERE id > 1000000;
SQL
)
    v=$(echo "$v" | head -1)
    bulk[$t]="${bulk[$t]:-} $v"
    echo "round $round: bulk insert of 50,000 rows into $t: $v ms"
  done
done
bulk_none=$(median ${bulk[none]})
bulk_warden=$(median ${bulk[warden]})
bulk_plpgsql=$(median ${bulk[plpgsql]})
echo "seals written while pgbench ran: $(psql -X -At -c "SELECT count(*) || ' over ' || coalesce(sum(row_count), 0) || ' rows' FROM warden.audit_seals")"
none=$(median ${tps[none]})
warden=$(median ${tps[warden]})
plpgsql=$(median ${tps[plpgsql]})
ovh_warden=$(awk -v a="$warden" -v b="$none" 'BEGIN {printf "%.4f", 1 - a / b}')
ovh_plpgsql=$(awk -v a="$plpgsql" -v b="$none" 'BEGIN {printf "%.4f", 1 - a / b}')
echo "median tps: none $none, pg_warden $warden, plpgsql $plpgsql"
echo "overhead (1 - tps/tps_none): pg_warden $ovh_warden, plpgsql $ovh_plpgsql"
ratio_line audit_update_overhead_vs_plpgsql "$ovh_warden" "$ovh_plpgsql" "overhead" "target <= 0.25"
ratio_line audit_update_tps_vs_no_trigger "$warden" "$none" "tps" "target >= 0.90 (plpgsql keeps $(awk -v a="$plpgsql" -v b="$none" 'BEGIN {printf "%.3f", a / b}'))"
ratio_line audit_bulk_insert_overhead_vs_plpgsql "$(awk -v a="$bulk_warden" -v b="$bulk_none" 'BEGIN {printf "%.1f", a - b}')" \
  "$(awk -v a="$bulk_plpgsql" -v b="$bulk_none" 'BEGIN {printf "%.1f", a - b}')" "ms" "(50,000 rows in one INSERT; no trigger $bulk_none ms)"
ratio_line audit_update_tps_sealed_vs_unsealed "$chain" "$warden" "tps" "(writers while the trail is sealed every second, against none sealed)"
fi
[ "$part" != update ] || exit 0

# --- Retention ---------------------------------------------------------------------
# 100 daily partitions in the past, each holding rows from 00:01 to 23:59 UTC, so that a
# retention ending at midnight 30 days after the first day leaves no straddling rows.
echo "loading $rows audit rows over 100 days"
psql_q <<SQL
CREATE TEMP TABLE origin AS SELECT date_bin('1 day', now(), '2000-01-01 00:00+00') - interval '100 days' AS t0;
DO \$\$
DECLARE t0 timestamptz := (SELECT t0 FROM origin);
BEGIN
    FOR d IN 0..99 LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS warden.%I PARTITION OF warden.audit_log FOR VALUES FROM (%L) TO (%L)',
                       'audit_log_p' || to_char((t0 + d * interval '1 day') AT TIME ZONE 'UTC', 'YYYYMMDD'),
                       t0 + d * interval '1 day', t0 + (d + 1) * interval '1 day');
    END LOOP;
END \$\$;
INSERT INTO warden.audit_log
SELECT (SELECT t0 FROM origin) + (i % 100) * interval '1 day' + interval '1 minute'
           + ((i / 100) % 86000) * interval '1 second',
       'UPDATE', 'bench_warden'::regclass, 'public', 'bench_warden',
       jsonb_build_object('id', i % 10000), jsonb_build_object('c2', i % 100),
       jsonb_build_object('c2', i % 100 + 1), NULL,
       now(), now(), '1000'::xid8, 'postgres', 'postgres', 'web:' || (i % 500), 'pgbench', NULL
FROM generate_series(0, $rows - 1) i;
CREATE TABLE audit_copy AS SELECT * FROM warden.audit_log;
-- The floor: the same 100 partitions and rows in a plain partitioned table, whose oldest 30
-- are dropped with one DROP TABLE in one transaction.
CREATE TABLE floor_log (LIKE warden.audit_log) PARTITION BY RANGE (logged_at);
DO \$\$
DECLARE t0 timestamptz := (SELECT t0 FROM origin);
BEGIN
    FOR d IN 0..99 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF floor_log FOR VALUES FROM (%L) TO (%L)',
                       'floor_p' || d, t0 + d * interval '1 day', t0 + (d + 1) * interval '1 day');
    END LOOP;
END \$\$;
INSERT INTO floor_log SELECT * FROM warden.audit_log WHERE logged_at < (SELECT t0 FROM origin) + interval '100 days';
VACUUM ANALYZE warden.audit_log, audit_copy, floor_log;
CHECKPOINT;
SQL
cutoff_expr="(SELECT t0 FROM origin) + interval '30 days'"

run_timed() {  # prints "seconds wal_bytes result" for the SQL in $1 (one session)
  psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE origin AS SELECT date_bin('1 day', now(), '2000-01-01 00:00+00') - interval '100 days' AS t0;
SELECT pg_current_wal_insert_lsn() AS lsn0, clock_timestamp() AS t_start \gset
$1
SELECT round(extract(epoch FROM clock_timestamp() - :'t_start')::numeric, 3),
       pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0'), :'result';
SQL
}

# The chain's own cost: sealing the whole log once (what the job does a minute at a time),
# on a fresh chain (the seals of the pgbench part are removed first, as a superuser may).
psql_q -c "DELETE FROM warden.audit_seals" -c "DELETE FROM warden.audit_seal_removals"
seal=$(run_timed "SELECT warden.seal_audit() AS result \\gset")
read -r seal_s seal_wal seal_n <<<"$(echo "$seal" | tail -1 | tr '|' ' ')"
seal_rows=$(psql -X -At -c "SELECT sum(row_count) FROM warden.audit_seals WHERE chain = 'audit_log'")
echo "sealing $seal_rows rows ($seal_n seals): $seal_s s, $(awk -v s="$seal_s" -v n="$seal_rows" 'BEGIN {printf "%.1f", s * 1e6 / n}') us per row, in the worker (writers do none of it)"

floor_sql="BEGIN; DROP TABLE $(seq -s, -f 'floor_p%g' 0 29 | sed 's/,/, /g'); COMMIT; SELECT 30 AS result \\gset"
floor=$(run_timed "$floor_sql")
ours=$(run_timed "SELECT warden.cleanup_audit(now() - ($cutoff_expr)) AS result \\gset")
peer_delete=$(run_timed "WITH d AS (DELETE FROM audit_copy WHERE logged_at < $cutoff_expr RETURNING 1) SELECT count(*) AS result FROM d \\gset
VACUUM audit_copy;")
read -r ours_s ours_wal ours_rows <<<"$(echo "$ours" | tail -1 | tr '|' ' ')"
read -r peer_s peer_wal peer_rows <<<"$(echo "$peer_delete" | tail -1 | tr '|' ' ')"
read -r floor_s floor_wal floor_parts <<<"$(echo "$floor" | tail -1 | tr '|' ' ')"
echo "cleanup_audit: $ours_s s, $ours_wal bytes of WAL, $ours_rows rows removed"
echo "DELETE + VACUUM: $peer_s s, $peer_wal bytes of WAL, $peer_rows rows removed"
echo "DROP TABLE of the same $floor_parts partitions in one transaction (the floor): $floor_s s, $floor_wal bytes of WAL"
echo "partitions left: $(psql -X -At -c "SELECT count(*) FROM warden.audit_partitions WHERE range_end <= now()")"
ratio_line audit_retention_time_vs_delete_vacuum "$ours_s" "$peer_s" s "target <= 0.1 and pg_warden < 1 s"
ratio_line audit_retention_wal_vs_delete_vacuum "$ours_wal" "$peer_wal" bytes "target <= 0.01"
ratio_line audit_retention_time_vs_drop_table_floor "$ours_s" "$floor_s" s "target <= 2 (cleanup_audit against DROP TABLE of the same partitions)"
