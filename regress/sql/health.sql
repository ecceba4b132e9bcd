-- Health checks: thresholds, views, checks driven into warning and critical by fixtures,
-- rates from snapshots, the JSON report and the Prometheus metrics.
CREATE EXTENSION pg_warden;

-- The thresholds and their defaults (from check_postgres, PgHero, postgres_exporter).
SELECT check_name, category, warning, critical, direction, unit
FROM warden.health_thresholds ORDER BY category, check_name;

-- One row per enabled check, each with one of the four statuses.
SELECT count(*) = (SELECT count(*) FROM warden.health_thresholds) AS one_row_per_check,
       bool_and(status IN ('ok', 'warning', 'critical', 'unknown')) AS statuses_valid
FROM warden.health_check();

-- pg_warden's own checks are measured when their component's table exists and say
-- 'component not installed' (not applicable, not a failure) otherwise.
SELECT e.check_name,
       (e.detail = 'component not installed') = (to_regclass(t.tbl) IS NULL) AS consistent,
       e.applicable OR e.status = 'unknown' AS applicable_or_unknown
FROM warden._health_evaluate() e
JOIN (VALUES ('migrations_running', 'warden.migrations'), ('migrations_failed', 'warden.migrations'),
             ('migration_drift', 'warden.migration_events'), ('sessions_active', 'warden.expiry_policies'),
             ('session_expiry_backlog', 'warden.expiry_runs'), ('session_expiry_age', 'warden.expiry_runs'),
             ('failed_logins', 'warden.security_events'), ('lockouts', 'warden.security_events'),
             ('audit_partitions_ahead', 'warden.audit_log'), ('audit_retention_lag', 'warden.audit_settings'),
             ('job_failures', 'warden.job_runs'), ('jobs_last_run', 'warden.job_runs'),
             ('backup_age', 'warden.backups')) t(check_name, tbl) USING (check_name)
ORDER BY 1;

-- pg_stat_statements: detected at run time, with a clear note when it can't be used.
SELECT status, detail FROM warden.health_check() WHERE check_name = 'slow_statements';
SELECT count(*) FROM warden.health_slow_statements();
CREATE EXTENSION pg_stat_statements;
SELECT status, detail FROM warden.health_check() WHERE check_name = 'slow_statements';
DROP EXTENSION pg_stat_statements;
SELECT * FROM warden.health_slow_statements(0);
\echo :LAST_ERROR_SQLSTATE

-- A sequence near its maximum: warning at 85 %, critical at 95 %.
CREATE SEQUENCE health_seq MAXVALUE 100;
SELECT check_name, status, value FROM warden.health_check() WHERE check_name = 'sequences';
SELECT setval('health_seq', 90);
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'sequences';
SELECT setval('health_seq', 97);
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'sequences';
SELECT sequence, last_value, max_value, pct_used FROM warden.health_sequences
WHERE sequence = 'health_seq'::regclass;
-- A cycling sequence never runs out, so it is not a risk.
ALTER SEQUENCE health_seq CYCLE;
SELECT check_name, status, value FROM warden.health_check() WHERE check_name = 'sequences';
DROP SEQUENCE health_seq;

-- A lowered threshold: one connection is 1 % of max_connections.
UPDATE warden.health_thresholds SET warning = 0.5, critical = 50 WHERE check_name = 'connections';
SELECT check_name, status FROM warden.health_check() WHERE check_name = 'connections';
UPDATE warden.health_thresholds SET warning = 0.5, critical = 0.9 WHERE check_name = 'connections';
SELECT check_name, status FROM warden.health_check() WHERE check_name = 'connections';
-- Thresholds in the wrong order are refused.
UPDATE warden.health_thresholds SET warning = 90, critical = 80 WHERE check_name = 'connections';
\echo :LAST_ERROR_SQLSTATE
-- A disabled check is not reported.
UPDATE warden.health_thresholds SET enabled = false WHERE check_name = 'connections';
SELECT count(*) FROM warden.health_check() WHERE check_name = 'connections';
UPDATE warden.health_thresholds SET enabled = true, warning = 80, critical = 95
WHERE check_name = 'connections';

-- Duplicate and invalid indexes (a failed CREATE UNIQUE INDEX CONCURRENTLY leaves one).
CREATE TABLE health_t (a int, b int);
INSERT INTO health_t VALUES (1, 1), (2, 1);
CREATE INDEX health_t_a ON health_t (a);
CREATE INDEX health_t_a_again ON health_t (a);
CREATE INDEX health_t_a_partial ON health_t (a) WHERE b > 0;
-- Another access method is not a duplicate; a unique index is the one kept.
CREATE INDEX health_t_a_hash ON health_t USING hash (a);
-- Nor is another sort order.
CREATE INDEX health_t_a_desc ON health_t (a DESC);
CREATE UNIQUE INDEX health_t_a_unique ON health_t (a);
CREATE UNIQUE INDEX CONCURRENTLY health_t_b ON health_t (b);
\echo :LAST_ERROR_SQLSTATE
SELECT index, relation, invalid, unused, duplicate_of FROM warden.health_indexes
WHERE relation = 'health_t'::regclass ORDER BY 1;
SELECT check_name, status, value, detail FROM warden.health_check()
WHERE check_name IN ('duplicate_indexes', 'invalid_indexes') ORDER BY 1;
SELECT check_name, status, value::int >= 3 AS counts_ours FROM warden.health_check()
WHERE check_name = 'unused_indexes';
DROP TABLE health_t;

-- Dead tuples: 60 % of a 10,000-row table (autovacuum kept away) is critical.
CREATE TABLE health_dead (id int) WITH (autovacuum_enabled = false);
INSERT INTO health_dead SELECT generate_series(1, 10000);
DELETE FROM health_dead WHERE id <= 6000;
SELECT pg_stat_force_next_flush();
SELECT relation, n_live_tup, n_dead_tup, dead_pct, autovacuum_due, autovacuum_enabled
FROM warden.health_tables WHERE relation = 'health_dead'::regclass;
SELECT check_name, status, value, detail FROM warden.health_check()
WHERE check_name = 'dead_tuples';
SELECT check_name, status, value::int >= 1 AS due FROM warden.health_check()
WHERE check_name = 'autovacuum_due';
-- A per-table threshold (reloptions) comes before the setting.
ALTER TABLE health_dead SET (autovacuum_vacuum_threshold = 100000);
SELECT autovacuum_due FROM warden.health_tables WHERE relation = 'health_dead'::regclass;
DROP TABLE health_dead;

-- Views answer on a quiet server: no blocking, no standby, no slot.
SELECT count(*) FROM warden.health_blocking;
SELECT count(*) FROM warden.health_replication;
SELECT count(*) FROM warden.health_replication_slots;
SELECT count(*) > 0 AS has_states FROM warden.health_connections;
SELECT datname, xid_age > 0 AS has_xid_age FROM warden.health_databases
WHERE datname = current_database();
SELECT count(*) > 0 AS has_tables FROM warden.health_wraparound_tables;

-- A replication slot nobody consumes: inactive_slots warns, and the WAL it keeps shows.
SELECT 1 FROM pg_create_physical_replication_slot('health_slot', true);
SELECT slot_name, active, retained_bytes >= 0 AS retains FROM warden.health_replication_slots;
SELECT check_name, status, value, detail FROM warden.health_check()
WHERE check_name = 'inactive_slots';
SELECT check_name, status, value::numeric > 0 AS retains FROM warden.health_check()
WHERE check_name = 'replication_slots';
SELECT pg_drop_replication_slot('health_slot');

-- Rates come from snapshots: none yet, so the rate checks are not applicable.
SELECT check_name, status, applicable FROM warden._health_evaluate()
WHERE check_name IN ('deadlocks', 'temp_bytes', 'wal_rate') ORDER BY 1;
-- A snapshot an hour old with 20 fewer deadlocks: 20 per hour is critical.
INSERT INTO warden.health_snapshots
SELECT now() - interval '1 hour', s.stats_reset, pg_current_wal_lsn(), 1, s.xact_commit,
       s.xact_rollback, s.deadlocks - 20, s.temp_files, s.temp_bytes, s.blks_hit, s.blks_read,
       0, 0, NULL, NULL
FROM pg_stat_database s WHERE s.datname = current_database();
SELECT check_name, status, round(value::numeric) AS value FROM warden.health_check()
WHERE check_name = 'deadlocks';
-- Two snapshots in one transaction are one; the trend has one interval.
BEGIN;
CALL warden.health_snapshot();
CALL warden.health_snapshot();
COMMIT;
SELECT count(*) FROM warden.health_snapshots;
SELECT round(deadlocks_per_hour) AS deadlocks_per_hour, wal_bytes_per_minute >= 0 AS wal_rate
FROM warden.health_rates;
-- Snapshots older than warden.health_snapshot_retention are pruned.
SET warden.health_snapshot_retention = '30min';
CALL warden.health_snapshot();
SELECT count(*), min(taken_at) > now() - interval '30 minutes' AS only_recent FROM warden.health_snapshots;
SET warden.health_snapshot_retention = '1min';
\echo :LAST_ERROR_SQLSTATE
RESET warden.health_snapshot_retention;

-- The report: every section, and its status is the worst of the checks.
SELECT array_agg(k ORDER BY k) AS sections FROM jsonb_object_keys(warden.health_report()) k;
SELECT r->>'status' = warden._health_overall(array_agg(e.status), array_agg(e.applicable)) AS consistent,
       (r->'summary'->>'critical')::int = count(*) FILTER (WHERE e.status = 'critical') AS summary,
       r->'slow_statements'->>'available' AS statements_available,
       jsonb_typeof(r->'checks') AS checks
FROM warden.health_report() r, warden._health_evaluate() e GROUP BY r;

-- The report includes the custom checks (marked custom), in its summary and status;
-- report_with_custom_checks then finds nothing to add.
SELECT warden.add_check('health_custom_seven', 'SELECT 7, ''seven''', 5, 10);
SELECT c->>'status' AS status, c->>'value' AS value, c->>'detail' AS detail, c->'custom' AS custom,
       (SELECT count(*) FROM jsonb_array_elements(r->'checks') x WHERE x ? 'custom') AS custom_checks,
       (SELECT sum(v::int) FROM jsonb_each_text(r->'summary') x(k, v)) = jsonb_array_length(r->'checks') AS summary_counts_all,
       r->>'status' IN ('warning', 'critical') AS overall_at_least_warning,
       jsonb_array_length(warden.report_with_custom_checks(r)->'checks') = jsonb_array_length(r->'checks') AS nothing_added
FROM warden.health_report() r, jsonb_array_elements(r->'checks') c
WHERE c->>'check' = 'health_custom_seven';
SELECT warden.drop_check('health_custom_seven');

-- The size of this database without summing its files: a snapshot of the last 15
-- minutes, else the catalogs' estimate (relpages), the same order of magnitude.
SELECT e.source LIKE 'snapshot of %' AS from_snapshot,
       e.size_bytes = (SELECT h.database_size FROM warden.health_snapshots h ORDER BY h.taken_at DESC LIMIT 1) AS snapshot_size
FROM warden._database_size_estimate() e;
DELETE FROM warden.health_snapshots;
SELECT e.source,
       e.size_bytes = warden._database_pages() * current_setting('block_size')::bigint AS pages_times_block,
       e.size_bytes BETWEEN pg_database_size(current_database()) / 4
                        AND pg_database_size(current_database()) * 2 AS same_magnitude
FROM warden._database_size_estimate() e;
SELECT d.size_bytes = e.size_bytes AS view_uses_it
FROM warden.health_databases d, warden._database_size_estimate() e WHERE d.datname = current_database();
SELECT c->>'value' = e.size_bytes::text AS check_uses_it,
       c->>'detail' = format('about %s (catalog estimate (relpages), no snapshot in the last 15 minutes)',
                             pg_size_pretty(e.size_bytes)) AS detail_says_so
FROM warden.health_report() r, jsonb_array_elements(r->'checks') c, warden._database_size_estimate() e
WHERE c->>'check' = 'database_size';
-- The oldest tables for wraparound, as the view orders them; none for 0; a negative count
-- is refused.
SELECT (SELECT array_agg(o.xid_age) FROM warden._oldest_tables(5) o)
       = (SELECT array_agg(w.xid_age) FROM (SELECT t.xid_age FROM warden.health_wraparound_tables t
                                            ORDER BY t.xid_age DESC LIMIT 5) w) AS same_ages,
       (SELECT count(*) FROM warden._oldest_tables(5)) AS five,
       (SELECT count(*) FROM warden._oldest_tables(0)) AS none;
SELECT * FROM warden._oldest_tables(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT jsonb_array_length(r->'wraparound'->'oldest_tables') AS oldest_tables,
       (SELECT array_agg((x->>'xid_age')::int) FROM jsonb_array_elements(r->'wraparound'->'oldest_tables') x)
       = (SELECT array_agg(o.xid_age) FROM warden._oldest_tables(10) o) AS from_top_ten
FROM warden.health_report() r;

-- The overall status: critical over warning over unknown; checks that are merely not
-- applicable don't make it unknown.
SELECT warden._health_overall('{ok,warning,critical}', '{t,t,t}') AS critical,
       warden._health_overall('{ok,unknown,warning}', '{t,t,t}') AS warning,
       warden._health_overall('{ok,unknown}', '{t,t}') AS unknown,
       warden._health_overall('{ok,unknown}', '{t,f}') AS ok;

-- Prometheus text format: HELP and TYPE before each family, then name{labels} value.
SELECT count(*) FILTER (WHERE l ~ '^# HELP [a-z_]+ .+$')
       = count(*) FILTER (WHERE l ~ '^# TYPE [a-z_]+ (gauge|counter)$') AS typed,
       count(*) FILTER (WHERE l !~ '^#' AND l !~ '^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.]+(e[-+]?[0-9]+)?$') AS bad_lines
FROM regexp_split_to_table(rtrim(warden.metrics(), E'\n'), E'\n') l;
-- Label values are escaped: a backslash, a double quote and a line feed in a name.
CREATE SEQUENCE "odd\se""q
name";
SELECT l FROM regexp_split_to_table(warden.metrics(), E'\n') l
WHERE l LIKE 'warden_sequence_used_ratio{sequence="public.\\"odd%';
SELECT warden._prom_labels('a', 'x', 'b', NULL, 'c', 'y') AS labels, warden._prom_labels(VARIADIC '{}'::text[]) AS none;
DROP SEQUENCE "odd\se""q
name";

DROP EXTENSION pg_warden CASCADE;
