-- Health: views over the statistics system and the catalogs, thresholds kept in a table,
-- one check function, a JSON report, Prometheus metrics and periodic snapshots for rates.
-- Everything here is readable by warden_monitor (a member of pg_monitor) without
-- superuser. The few facts pg_monitor cannot see (sequence positions, pg_warden's own
-- tables) come from small SECURITY DEFINER functions with a fixed search_path.

-- ---------------------------------------------------------------------------------------
-- Thresholds: one row per check. 'above' checks get worse as the value grows (warning
-- when value >= warning), 'below' checks as it shrinks (warning when value < warning).
-- A NULL level is never reached; a check with both NULL is informational.
CREATE TABLE warden.health_thresholds (
    check_name  text PRIMARY KEY,
    category    text NOT NULL CHECK (category IN ('server', 'activity', 'storage',
                                                  'replication', 'warden')),
    warning     numeric,
    critical    numeric,
    direction   text NOT NULL DEFAULT 'above' CHECK (direction IN ('above', 'below')),
    unit        text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL,
    CONSTRAINT health_thresholds_order CHECK (
        warning IS NULL OR critical IS NULL
        OR (direction = 'above' AND warning <= critical)
        OR (direction = 'below' AND warning >= critical))
);

-- Defaults follow the anchors: check_postgres, PgHero, postgres_exporter's alert rules.
INSERT INTO warden.health_thresholds
    (check_name, category, warning, critical, direction, unit, description) VALUES
('connections',             'server',   80,      95,      'above', '%',       'client connections as a share of max_connections'),
('cache_hit_ratio',         'server',   99,      95,      'below', '%',       'buffer cache hit ratio of this database'),
('rollback_ratio',          'server',   5,       20,      'above', '%',       'rolled back transactions as a share of all, since the statistics reset'),
('deadlocks',               'server',   1,       10,      'above', 'per hour', 'deadlocks per hour, from the snapshot nearest to an hour ago'),
('temp_bytes',              'server',   NULL,    NULL,    'above', 'bytes per hour', 'temporary file bytes written per hour, from snapshots'),
('wal_rate',                'server',   NULL,    NULL,    'above', 'bytes per minute', 'WAL written per minute, from snapshots'),
('database_size',           'server',   NULL,    NULL,    'above', 'bytes',   'size of this database'),
('xid_age',                 'server',   1000000000, 1500000000, 'above', 'transactions', 'oldest datfrozenxid age of any database (wraparound at 2^31)'),
('mxid_age',                'server',   1000000000, 1500000000, 'above', 'multixacts',   'oldest datminmxid age of any database'),
('long_queries',            'activity', 120,     300,     'above', 's',       'longest running statement'),
('long_transactions',       'activity', 600,     1800,    'above', 's',       'oldest open transaction'),
('idle_in_transaction',     'activity', 60,      300,     'above', 's',       'longest idle-in-transaction session'),
('blocked_sessions',        'activity', 30,      120,     'above', 's',       'longest wait of a session blocked by another''s lock'),
('slow_statements',         'activity', 1000,    5000,    'above', 'ms',      'highest mean time of a statement called at least 10 times (pg_stat_statements)'),
('dead_tuples',             'storage',  20,      50,      'above', '%',       'highest dead share of a table with at least 10,000 rows'),
('autovacuum_due',          'storage',  NULL,    NULL,    'above', 'tables',  'tables past their autovacuum threshold'),
('invalid_indexes',         'storage',  1,       NULL,    'above', 'indexes', 'indexes left invalid by a failed CREATE INDEX CONCURRENTLY'),
('duplicate_indexes',       'storage',  1,       NULL,    'above', 'indexes', 'indexes identical to another index of the same table'),
('unused_indexes',          'storage',  NULL,    NULL,    'above', 'indexes', 'non-unique indexes never scanned since the statistics reset'),
('sequences',               'storage',  85,      95,      'above', '%',       'most used non-cycling sequence, share of its range'),
('replication_lag_bytes',   'replication', 67108864, 1073741824, 'above', 'bytes', 'largest replay lag of a connected standby'),
('replication_lag_seconds', 'replication', 30,   300,     'above', 's',       'largest replay lag of a connected standby, in time'),
('replication_slots',       'replication', 1073741824, 10737418240, 'above', 'bytes', 'most WAL retained by a replication slot'),
('inactive_slots',          'replication', 1,    NULL,    'above', 'slots',   'replication slots with no consumer'),
('wal_receiver_down',       'replication', NULL, 1,       'above', 'receivers', 'warden wal receive is not connected to its slot warden_receiver'),
('wal_receiver_lag',        'replication', 16777216, 268435456, 'above', 'bytes', 'WAL not yet durable in the warden wal receive folder'),
('archive_failing',         'replication', 1,    NULL,    'above', 'archivers', 'archive_command (warden wal push) failing since its last success'),
('archive_lag',             'replication', 67108864, 1073741824, 'above', 'bytes', 'WAL written since the end of the last archived segment'),
('migrations_running',      'warden',   5,       15,      'above', 'min',     'longest running migration'),
('migrations_failed',       'warden',   NULL,    1,       'above', 'migrations', 'migrations in state failed'),
('migration_drift',         'warden',   1,       NULL,    'above', 'statements', 'DDL run outside migrations since the ledger last changed'),
('sessions_active',         'warden',   1000,    5000,    'above', 'sessions', 'live rows of the tables under an expiry policy (sessions, keys)'),
('session_expiry_backlog',  'warden',   10000,   100000,  'above', 'rows',    'expired rows still waiting for warden.expire_rows()'),
('session_expiry_age',      'warden',   60,      240,     'above', 'min',     'age of the oldest expired row still waiting'),
('failed_logins',           'warden',   10,      50,      'above', 'per hour', 'failed logins in the last hour'),
('lockouts',                'warden',   5,       20,      'above', 'per hour', 'accounts locked in the last hour'),
('audit_partitions_ahead',  'warden',   2,       1,       'below', 'partitions', 'audit_log partitions ready beyond the current one'),
('audit_retention_lag',     'warden',   1,       7,       'above', 'days',    'how far the oldest audit row is past the retention period'),
('job_failures',            'warden',   1,       5,       'above', 'runs',    'maintenance job runs failed or crashed in the last 24 hours'),
('jobs_last_run',           'warden',   60,      1440,    'above', 'min',     'time since the last finished maintenance job run'),
('backup_age',              'warden',   26,      50,      'above', 'h',       'age of the last verified backup');

GRANT SELECT ON warden.health_thresholds TO warden_monitor, warden_admin;
GRANT UPDATE (warning, critical, enabled) ON warden.health_thresholds TO warden_admin;

-- ---------------------------------------------------------------------------------------
-- Snapshots of cumulative counters, taken by the maintenance worker, so that rates
-- (deadlocks per hour, WAL per minute, failed logins per hour) and trends can be computed.
CREATE TABLE warden.health_snapshots (
    taken_at      timestamptz PRIMARY KEY,
    stats_reset   timestamptz,
    wal_lsn       pg_lsn,
    connections   integer NOT NULL,
    xact_commit   bigint NOT NULL,
    xact_rollback bigint NOT NULL,
    deadlocks     bigint NOT NULL,
    temp_files    bigint NOT NULL,
    temp_bytes    bigint NOT NULL,
    blks_hit      bigint NOT NULL,
    blks_read     bigint NOT NULL,
    database_size bigint NOT NULL,
    xid_age       bigint NOT NULL,
    failed_logins bigint,
    lockouts      bigint
);
GRANT SELECT ON warden.health_snapshots TO warden_monitor, warden_admin;

-- ---------------------------------------------------------------------------------------
-- Views. Each is cheap enough to read on a busy server; sizes are exact here, while the
-- report and the checks order by catalog estimates and size only the rows they show.

-- Client connections by state, against max_connections.
CREATE VIEW warden.health_connections AS
SELECT coalesce(a.state, 'unknown') AS state,
       count(*) AS connections,
       current_setting('max_connections')::integer AS max_connections,
       round(100.0 * count(*) / current_setting('max_connections')::integer, 1) AS pct_of_max
FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend'
GROUP BY 1;

-- Open transactions and running statements of other sessions, with their ages.
CREATE VIEW warden.health_long_running AS
SELECT a.pid, a.datname, a.usename, a.application_name, a.client_addr, a.state,
       now() - a.xact_start AS transaction_age,
       CASE WHEN a.state = 'active' THEN now() - a.query_start END AS query_age,
       CASE WHEN a.state LIKE 'idle in transaction%' THEN now() - a.state_change END AS idle_age,
       a.wait_event_type, a.wait_event,
       pg_catalog.age(a.backend_xmin) AS xmin_age,
       a.query
FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend'
  AND a.pid <> pg_catalog.pg_backend_pid()
  AND (a.xact_start IS NOT NULL OR a.state = 'active');

-- Sessions waiting for a lock, who blocks them, and the chain up to the session at its
-- root (the one to look at first). Only waiting sessions call pg_blocking_pids, which
-- takes the lock manager's partition locks.
CREATE VIEW warden.health_blocking AS
WITH RECURSIVE waiting AS (
    SELECT a.pid, pg_catalog.pg_blocking_pids(a.pid) AS blocked_by
    FROM pg_catalog.pg_stat_activity a
    WHERE a.wait_event_type = 'Lock'
), chain AS (
    SELECT w.pid AS start_pid, w.pid AS cur, ARRAY[w.pid] AS path
    FROM waiting w
    UNION ALL
    SELECT c.start_pid, w.blocked_by[1], c.path || w.blocked_by[1]
    FROM chain c JOIN waiting w ON w.pid = c.cur
    WHERE cardinality(w.blocked_by) > 0 AND NOT w.blocked_by[1] = ANY (c.path)
), longest AS (
    SELECT DISTINCT ON (start_pid) start_pid, path
    FROM chain
    ORDER BY start_pid, cardinality(path) DESC
)
SELECT w.pid, a.usename, a.datname,
       w.blocked_by,
       l.path[cardinality(l.path)] AS root_blocker,
       array_to_string(l.path, ' <- ') AS lock_chain,
       now() - (SELECT min(k.waitstart) FROM pg_catalog.pg_locks k
                WHERE k.pid = w.pid AND NOT k.granted) AS wait_age,
       a.query AS waiting_query,
       r.state AS root_state,
       r.query AS root_query
FROM waiting w
JOIN longest l ON l.start_pid = w.pid
JOIN pg_catalog.pg_stat_activity a ON a.pid = w.pid
LEFT JOIN pg_catalog.pg_stat_activity r ON r.pid = l.path[cardinality(l.path)]
WHERE cardinality(w.blocked_by) > 0;

-- A database's size. Summing every file of a database with 10,000 tables takes a quarter
-- of a second, so for this database a snapshot from the last 15 minutes is used when
-- there is one (the maintenance worker takes them); other databases are measured.
CREATE FUNCTION warden._database_size(db oid) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(
    (SELECT h.database_size FROM warden.health_snapshots h
     WHERE db = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
       AND h.taken_at > now() - interval '15 minutes'
     ORDER BY h.taken_at DESC LIMIT 1),
    pg_database_size(db))
$$;
GRANT EXECUTE ON FUNCTION warden._database_size(oid) TO warden_monitor, warden_admin;

-- Per database: size, cache hit ratio, rollback ratio, deadlocks, temp files, wraparound.
CREATE VIEW warden.health_databases AS
SELECT d.datname,
       warden._database_size(d.oid) AS size_bytes,
       s.numbackends,
       s.xact_commit, s.xact_rollback,
       round(100.0 * s.xact_rollback / nullif(s.xact_commit + s.xact_rollback, 0), 2) AS rollback_pct,
       s.blks_hit, s.blks_read,
       round(100.0 * s.blks_hit / nullif(s.blks_hit + s.blks_read, 0), 2) AS cache_hit_pct,
       s.deadlocks, s.temp_files, s.temp_bytes, s.conflicts,
       pg_catalog.age(d.datfrozenxid) AS xid_age,
       pg_catalog.mxid_age(d.datminmxid) AS mxid_age,
       s.stats_reset
FROM pg_catalog.pg_database d
JOIN pg_catalog.pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn;

-- A reloption's value (autovacuum settings per table), NULL when not set. STRICT: most
-- tables have no reloptions, and a strict function is then not even called. No SET
-- search_path (it would cost a settings save and restore per row); pg_catalog comes first.
CREATE FUNCTION warden._reloption(options text[], name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.substr(o, pg_catalog.length(name) + 2)
      FROM pg_catalog.unnest(options) o WHERE o LIKE name || '=%' LIMIT 1 $$;
GRANT EXECUTE ON FUNCTION warden._reloption(text[], text) TO warden_monitor, warden_admin;

-- Tables of this database (outside the system schemas): tuples, vacuum/analyze history,
-- whether autovacuum is due (its own formula: threshold + scale factor * reltuples,
-- per-table reloptions first), cache hit ratio and wraparound age. One pass over pg_class
-- in C (extension/health_relations.cpp): the same in SQL costs a statistics call per
-- column per row, which adds up on 10,000 tables.
-- No sizes here: pg_relation_size reads the files, so health_tables adds them and the
-- report sizes only the rows it shows.
CREATE FUNCTION warden._table_stats()
RETURNS TABLE(relid oid, schemaname name, relname name, relkind "char", relpages integer,
              reltuples real, n_live_tup bigint, n_dead_tup bigint, n_mod_since_analyze bigint,
              last_vacuum timestamptz, last_autovacuum timestamptz, last_analyze timestamptz,
              last_autoanalyze timestamptz, heap_blks_hit bigint, heap_blks_read bigint,
              autovacuum_due boolean, autoanalyze_due boolean, autovacuum_enabled boolean,
              xid_age integer, mxid_age integer)
AS 'MODULE_PATHNAME', 'warden_table_stats' LANGUAGE C STABLE ROWS 1000;

CREATE VIEW warden._table_health AS
SELECT s.relid, s.relid::regclass AS relation, s.schemaname, s.relname, s.relpages,
       s.n_live_tup, s.n_dead_tup,
       round(100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0), 1) AS dead_pct,
       s.n_mod_since_analyze,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       s.autovacuum_due, s.autoanalyze_due, s.autovacuum_enabled,
       round(100.0 * s.heap_blks_hit / nullif(s.heap_blks_hit + s.heap_blks_read, 0), 2) AS cache_hit_pct,
       s.xid_age, s.mxid_age
FROM warden._table_stats() s;

CREATE VIEW warden.health_tables AS
SELECT h.relation, h.schemaname, h.relname,
       pg_catalog.pg_total_relation_size(h.relid) AS total_bytes,
       pg_catalog.pg_relation_size(h.relid) AS table_bytes,
       h.n_live_tup, h.n_dead_tup, h.dead_pct, h.n_mod_since_analyze,
       h.last_vacuum, h.last_autovacuum, h.last_analyze, h.last_autoanalyze,
       h.autovacuum_due, h.autoanalyze_due, h.autovacuum_enabled, h.cache_hit_pct, h.xid_age
FROM warden._table_health h;

-- Indexes of this database: scans, and whether each is invalid, unused (never scanned,
-- not backing a constraint) or an exact duplicate of another index of its table (same
-- access method, columns, operator classes, collations, expressions and predicate). The
-- index kept is the primary key, else a unique one, else the oldest. Sizes are estimates
-- from relpages here; health_indexes adds the exact size and the definition.
-- System catalogs (OIDs below FirstNormalObjectId, 16384) are left out; TOAST indexes stay,
-- since an invalid one (a failed REINDEX CONCURRENTLY) is worth knowing about.
-- One pass over pg_class and pg_index in C, duplicates found by sorting definitions;
-- flagged_only leaves out the indexes that are fine (what the checks read).
CREATE FUNCTION warden._index_stats(flagged_only boolean DEFAULT false)
RETURNS TABLE(indexrelid oid, indrelid oid, estimated_bytes bigint, is_unique boolean, is_primary boolean, invalid boolean, unused boolean,
              duplicate_of oid)
AS 'MODULE_PATHNAME', 'warden_index_stats' LANGUAGE C STABLE STRICT ROWS 1000;

CREATE VIEW warden._index_health AS
SELECT s.indexrelid, s.indexrelid::regclass AS index, s.indrelid::regclass AS relation,
       s.estimated_bytes,
       pg_catalog.pg_stat_get_numscans(s.indexrelid) AS idx_scan,
       s.is_unique, s.is_primary, s.invalid, s.unused,
       s.duplicate_of::regclass AS duplicate_of
FROM warden._index_stats() s;

CREATE VIEW warden.health_indexes AS
SELECT h.index, h.relation,
       pg_catalog.pg_relation_size(h.indexrelid) AS index_bytes,
       h.estimated_bytes, h.idx_scan, h.is_unique, h.is_primary, h.invalid, h.unused,
       h.duplicate_of,
       pg_catalog.pg_get_indexdef(h.indexrelid) AS definition
FROM warden._index_health h;

-- Transaction-ID and multixact wraparound age: per database, and per table here.
-- autovacuum forces a freeze at autovacuum_freeze_max_age; wraparound stops writes at 2^31.
CREATE VIEW warden.health_wraparound_databases AS
SELECT d.datname,
       pg_catalog.age(d.datfrozenxid) AS xid_age,
       round(100.0 * pg_catalog.age(d.datfrozenxid) / 2147483648, 2) AS xid_pct_of_wraparound,
       round(100.0 * pg_catalog.age(d.datfrozenxid)
             / current_setting('autovacuum_freeze_max_age')::numeric, 2) AS xid_pct_of_freeze_max,
       pg_catalog.mxid_age(d.datminmxid) AS mxid_age,
       round(100.0 * pg_catalog.mxid_age(d.datminmxid) / 2147483648, 2) AS mxid_pct_of_wraparound
FROM pg_catalog.pg_database d;

CREATE VIEW warden.health_wraparound_tables AS
SELECT c.oid::regclass AS relation, c.relkind,
       pg_catalog.age(c.relfrozenxid) AS xid_age,
       pg_catalog.mxid_age(c.relminmxid) AS mxid_age,
       round(100.0 * pg_catalog.age(c.relfrozenxid)
             / coalesce(warden._reloption(c.reloptions, 'autovacuum_freeze_max_age')::numeric,
                        current_setting('autovacuum_freeze_max_age')::numeric), 2) AS xid_pct_of_freeze_max
FROM pg_catalog.pg_class c
WHERE c.relkind IN ('r', 'm', 't');

-- Sequences and how much of their range is used. pg_sequences hides last_value from
-- roles without USAGE on each sequence, so this one function reads it as the owner.
CREATE FUNCTION warden._health_sequences()
RETURNS TABLE(sequence regclass, data_type regtype, last_value bigint, min_value bigint,
              max_value bigint, increment_by bigint, cycle boolean, pct_used numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT format('%I.%I', s.schemaname, s.sequencename)::regclass, s.data_type, s.last_value,
       s.min_value, s.max_value, s.increment_by, s.cycle,
       round(100 * CASE WHEN s.last_value IS NULL THEN 0
                        WHEN s.increment_by > 0
                        THEN (s.last_value::numeric - s.min_value) / nullif(s.max_value::numeric - s.min_value, 0)
                        ELSE (s.max_value::numeric - s.last_value) / nullif(s.max_value::numeric - s.min_value, 0)
                   END, 2)
FROM pg_catalog.pg_sequences s
$$;
GRANT EXECUTE ON FUNCTION warden._health_sequences() TO warden_monitor, warden_admin;

CREATE VIEW warden.health_sequences AS
SELECT * FROM warden._health_sequences();

-- The WAL position that standbys and slots are measured against (on a standby: what it
-- has received).
CREATE FUNCTION warden._current_lsn() RETURNS pg_lsn
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END $$;
GRANT EXECUTE ON FUNCTION warden._current_lsn() TO warden_monitor, warden_admin;

-- Connected standbys and their lag in bytes and in time.
CREATE VIEW warden.health_replication AS
SELECT r.pid, r.application_name, r.client_addr, r.state, r.sync_state,
       pg_catalog.pg_wal_lsn_diff(warden._current_lsn(), r.sent_lsn) AS sent_lag_bytes,
       pg_catalog.pg_wal_lsn_diff(warden._current_lsn(), r.flush_lsn) AS flush_lag_bytes,
       pg_catalog.pg_wal_lsn_diff(warden._current_lsn(), r.replay_lsn) AS replay_lag_bytes,
       r.write_lag, r.flush_lag, r.replay_lag
FROM pg_catalog.pg_stat_replication r;

-- Replication slots: inactive ones, and how much WAL each keeps from being recycled.
CREATE VIEW warden.health_replication_slots AS
SELECT s.slot_name, s.slot_type, s.plugin, s.database, s.active, s.active_pid,
       s.wal_status, s.safe_wal_size,
       pg_catalog.pg_wal_lsn_diff(warden._current_lsn(), s.restart_lsn) AS retained_bytes,
       pg_catalog.age(s.xmin) AS xmin_age,
       pg_catalog.age(s.catalog_xmin) AS catalog_xmin_age
FROM pg_catalog.pg_replication_slots s;

-- ---------------------------------------------------------------------------------------
-- Slow statements, when pg_stat_statements is installed in this database and loaded.
-- NULL when it is usable, otherwise the reason (the note shown by checks and report).
CREATE FUNCTION warden._statements_note() RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_stat_statements') THEN
        RETURN 'pg_stat_statements is not installed in this database '
               '(add it to shared_preload_libraries, then CREATE EXTENSION pg_stat_statements)';
    END IF;
    IF NOT 'pg_stat_statements' = ANY (string_to_array(
               replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) THEN
        RETURN 'pg_stat_statements is installed but not loaded (add it to shared_preload_libraries)';
    END IF;
    RETURN NULL;
END
$$;
GRANT EXECUTE ON FUNCTION warden._statements_note() TO warden_monitor, warden_admin;

CREATE FUNCTION warden.health_slow_statements(max_rows integer DEFAULT 20, min_calls bigint DEFAULT 1)
RETURNS TABLE(queryid bigint, username name, calls bigint, total_ms double precision,
              mean_ms double precision, max_ms double precision, rows bigint,
              cache_hit_pct numeric, query text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    note text := warden._statements_note();
    schema name;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be a positive number'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF note IS NOT NULL THEN
        RAISE NOTICE '%', note;
        RETURN;
    END IF;
    SELECT n.nspname INTO schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_stat_statements';
    -- The extension lives in whatever schema it was created in: only that name varies,
    -- and it is quoted as an identifier.
    RETURN QUERY EXECUTE format(
        'SELECT s.queryid, r.rolname, s.calls, s.total_exec_time, s.mean_exec_time,
                s.max_exec_time, s.rows,
                round(100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 2),
                s.query
         FROM %I.pg_stat_statements s
         LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
         WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
           AND s.calls >= $2
         ORDER BY s.mean_exec_time DESC
         LIMIT $1', schema) USING max_rows, min_calls;
END
$$;
GRANT EXECUTE ON FUNCTION warden.health_slow_statements(integer, bigint) TO warden_monitor, warden_admin;

-- ---------------------------------------------------------------------------------------
-- Measurements. Each returns (check_name, value, detail, applicable); a NULL value with
-- applicable = false means "not measurable here" (a component not installed, no snapshot
-- yet, no pg_stat_statements): status unknown, but the overall status ignores it. A NULL
-- value of an applicable check (a measurement that failed) makes the overall unknown.

-- Rates from the snapshot taken nearest to an hour ago (at least a minute old).
CREATE FUNCTION warden._health_rates()
RETURNS TABLE(check_name text, value numeric, detail text, applicable boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snap warden.health_snapshots;
    now_stats record;
    seconds numeric;
BEGIN
    SELECT * INTO snap FROM warden.health_snapshots h
    WHERE h.taken_at <= now() - interval '1 minute'
    ORDER BY abs(extract(epoch FROM now() - h.taken_at) - 3600)
    LIMIT 1;
    SELECT s.deadlocks, s.temp_bytes, s.stats_reset INTO now_stats
    FROM pg_stat_database s WHERE s.datname = current_database();
    IF snap.taken_at IS NULL THEN
        RETURN QUERY SELECT n, NULL::numeric,
            'needs a snapshot at least a minute old (CALL warden.health_snapshot())', false
        FROM unnest(ARRAY['deadlocks', 'temp_bytes', 'wal_rate']) n;
        RETURN;
    END IF;
    seconds := extract(epoch FROM now() - snap.taken_at);
    IF snap.stats_reset IS DISTINCT FROM now_stats.stats_reset
       OR now_stats.deadlocks < snap.deadlocks THEN
        RETURN QUERY SELECT n, NULL::numeric,
            'statistics were reset since the last usable snapshot', false
        FROM unnest(ARRAY['deadlocks', 'temp_bytes']) n;
    ELSE
        RETURN QUERY VALUES
            ('deadlocks', round((now_stats.deadlocks - snap.deadlocks) * 3600 / seconds, 2),
             format('%s deadlocks since %s', now_stats.deadlocks - snap.deadlocks,
                    to_char(snap.taken_at, 'YYYY-MM-DD HH24:MI:SS TZ')), true),
            ('temp_bytes', round((now_stats.temp_bytes - snap.temp_bytes) * 3600 / seconds),
             format('%s written since %s',
                    pg_size_pretty((now_stats.temp_bytes - snap.temp_bytes)::numeric),
                    to_char(snap.taken_at, 'YYYY-MM-DD HH24:MI:SS TZ')), true);
    END IF;
    RETURN QUERY SELECT 'wal_rate',
        round(pg_wal_lsn_diff(warden._current_lsn(), snap.wal_lsn) * 60 / seconds),
        format('%s per minute', pg_size_pretty(round(pg_wal_lsn_diff(warden._current_lsn(),
                                                                     snap.wal_lsn) * 60 / seconds))),
        true;
END
$$;

-- pg_warden's own state. Each component's table may be absent (a part not installed);
-- to_regclass decides at run time, and the static queries below are only planned when
-- their table exists. SECURITY DEFINER: warden_monitor has no rights on these tables.
CREATE FUNCTION warden._health_components()
RETURNS TABLE(check_name text, value numeric, detail text, applicable boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    n bigint;
    total bigint := 0;
    per_table text[] := '{}';
BEGIN
    IF to_regclass('warden.migrations') IS NULL THEN
        RETURN QUERY SELECT c, NULL::numeric, 'component not installed', false
        FROM unnest(ARRAY['migrations_running', 'migrations_failed', 'migration_drift']) c;
    ELSE
        RETURN QUERY
        SELECT 'migrations_running',
               coalesce(round(max(extract(epoch FROM now() - coalesce(m.started_at, m.applied_at))) / 60, 1), 0),
               CASE WHEN count(*) = 0 THEN 'none running'
                    ELSE format('running: %s', string_agg(m.version, ', ' ORDER BY m.version)) END,
               true
        FROM warden.migrations m WHERE m.state = 'running';
        RETURN QUERY
        SELECT 'migrations_failed', count(*)::numeric,
               coalesce('failed: ' || string_agg(m.version, ', ' ORDER BY m.version), 'none failed'),
               true
        FROM warden.migrations m WHERE m.state = 'failed';
        -- Drift: DDL recorded outside migrations since the ledger last changed (as the
        -- warden.schema_drift view shows it).
        RETURN QUERY
        SELECT 'migration_drift', count(*)::numeric,
               CASE WHEN count(*) = 0 THEN 'no DDL outside migrations'
                    ELSE format('%s DDL statements outside migrations, the last at %s', count(*),
                                to_char(max(e.occurred_at), 'YYYY-MM-DD HH24:MI:SS TZ')) END,
               true
        FROM warden.migration_events e
        WHERE e.event = 'drift'
          AND e.id > coalesce((SELECT max(x.id) FROM warden.migration_events x
                               WHERE x.event IN ('applied', 'rolled_back', 'baseline', 'repaired')), 0);
    END IF;

    IF to_regclass('warden.expiry_runs') IS NULL OR to_regclass('warden.expiry_policies') IS NULL THEN
        RETURN QUERY SELECT c, NULL::numeric, 'component not installed', false
        FROM unnest(ARRAY['sessions_active', 'session_expiry_backlog', 'session_expiry_age']) c;
    ELSE
        -- Live rows of every table under an expiry policy: not past their expiry (and, for
        -- policies that mark rather than delete, not marked). Names are the policy's
        -- regclass and quoted identifiers; values are literals.
        FOR p IN SELECT * FROM warden.expiry_policies ORDER BY tbl::text LOOP
            EXECUTE format('SELECT count(*) FROM %s WHERE %I >= now() - $1', p.tbl, p.expires_column)
                    || CASE WHEN p.mode = 'mark'
                            THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                            ELSE '' END
                INTO n USING p.grace;
            total := total + n;
            per_table := per_table || format('%s %s', p.tbl, n);
        END LOOP;
        RETURN QUERY
        SELECT 'sessions_active', total::numeric,
               CASE WHEN cardinality(per_table) = 0 THEN 'no table under an expiry policy'
                    ELSE array_to_string(per_table, ', ') END,
               true;
        RETURN QUERY
        WITH latest AS (
            SELECT DISTINCT ON (r.tbl) r.tbl, r.backlog_rows, r.backlog_oldest, r.finished_at
            FROM warden.expiry_runs r
            JOIN warden.expiry_policies pol ON pol.tbl = r.tbl
            WHERE r.finished_at IS NOT NULL
            ORDER BY r.tbl, r.finished_at DESC
        )
        SELECT 'session_expiry_backlog', coalesce(sum(l.backlog_rows), 0)::numeric,
               format('%s tables, last run %s', count(*),
                      coalesce(to_char(max(l.finished_at), 'YYYY-MM-DD HH24:MI:SS TZ'), 'never')),
               true
        FROM latest l
        UNION ALL
        SELECT 'session_expiry_age',
               coalesce(round(max(extract(epoch FROM now() - l.backlog_oldest)) / 60, 1), 0),
               coalesce('oldest waiting row expired ' || to_char(min(l.backlog_oldest), 'YYYY-MM-DD HH24:MI:SS TZ'),
                        'no expired row waiting'),
               true
        FROM latest l;
    END IF;

    IF to_regclass('warden.security_events') IS NULL THEN
        RETURN QUERY SELECT c, NULL::numeric, 'component not installed', false
        FROM unnest(ARRAY['failed_logins', 'lockouts']) c;
    ELSE
        RETURN QUERY
        SELECT k.c, count(e.*)::numeric, format('%s in the last hour', count(e.*)), true
        FROM (VALUES ('failed_logins', 'login_failed'), ('lockouts', 'locked')) k(c, t)
        LEFT JOIN warden.security_events e
               ON e.occurred_at > now() - interval '1 hour' AND e.event_type = k.t
        GROUP BY k.c;
    END IF;

    IF to_regclass('warden.audit_log') IS NULL OR to_regclass('warden.audit_settings') IS NULL THEN
        RETURN QUERY SELECT c, NULL::numeric, 'component not installed', false
        FROM unnest(ARRAY['audit_partitions_ahead', 'audit_retention_lag']) c;
    ELSE
        -- Partitions whose range starts after now: ready for the intervals to come. With
        -- no table under audit nothing is written, and no partition is needed.
        IF NOT EXISTS (SELECT FROM warden.audit_tables t WHERE t.enabled) THEN
            RETURN QUERY SELECT 'audit_partitions_ahead', NULL::numeric, 'no table under audit', false;
        ELSE
            RETURN QUERY
            SELECT 'audit_partitions_ahead',
                   count(*) FILTER (WHERE b.lo > now())::numeric,
                   format('%s partitions, the last one ends %s', count(b.lo),
                          coalesce(to_char(max(b.hi), 'YYYY-MM-DD HH24:MI TZ'), 'never')),
                   true
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            LEFT JOIN LATERAL (
                SELECT m[1]::timestamptz AS lo, m[2]::timestamptz AS hi
                FROM regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                  $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) m) b ON true
            WHERE i.inhparent = 'warden.audit_log'::regclass;
        END IF;
        -- Rows older than the longest retention in force are overdue for cleanup.
        RETURN QUERY
        WITH r AS (
            SELECT greatest(s.retention, (SELECT max(t.retention) FROM warden.audit_tables t)) AS keep
            FROM warden.audit_settings s
        ), o AS (SELECT min(a.logged_at) AS oldest FROM warden.audit_log a)
        SELECT 'audit_retention_lag',
               greatest(round(extract(epoch FROM now() - o.oldest - r.keep) / 86400, 1), 0),
               CASE WHEN o.oldest IS NULL THEN 'no audit rows'
                    ELSE format('oldest row %s, retention %s',
                                to_char(o.oldest, 'YYYY-MM-DD HH24:MI TZ'), r.keep) END,
               true
        FROM r, o;
    END IF;

    IF to_regclass('warden.job_runs') IS NULL OR to_regclass('warden.jobs') IS NULL THEN
        RETURN QUERY SELECT c, NULL::numeric, 'component not installed', false
        FROM unnest(ARRAY['job_failures', 'jobs_last_run']) c;
    ELSE
        RETURN QUERY
        SELECT 'job_failures', count(*)::numeric,
               CASE WHEN count(*) = 0 THEN 'no failed run in the last 24 hours'
                    ELSE format('failed or crashed in the last 24 hours: %s',
                                string_agg(DISTINCT r.job, ', ')) END,
               true
        FROM warden.job_runs r
        WHERE r.status IN ('failed', 'crashed') AND r.started_at > now() - interval '24 hours';
        -- Minutes since a job run last finished; before the first run, how long the
        -- earliest enabled job has been due, so that a worker that never starts shows.
        RETURN QUERY
        WITH last AS (SELECT max(r.finished_at) AS at FROM warden.job_runs r),
             due AS (SELECT min(j.next_run_at) AS at,
                            count(*) FILTER (WHERE j.next_run_at < now() - j.schedule) AS overdue
                     FROM warden.jobs j WHERE j.enabled)
        SELECT 'jobs_last_run',
               greatest(round(extract(epoch FROM now() - coalesce(last.at, due.at, now())) / 60, 1), 0),
               CASE WHEN last.at IS NOT NULL
                    THEN format('last run finished %s; %s enabled jobs overdue',
                                to_char(last.at, 'YYYY-MM-DD HH24:MI:SS TZ'), due.overdue)
                    WHEN due.at IS NOT NULL
                    THEN format('no job has run yet; the first was due %s',
                                to_char(due.at, 'YYYY-MM-DD HH24:MI:SS TZ'))
                    ELSE 'no enabled job' END,
               true
        FROM last, due;
    END IF;

    IF to_regclass('warden.backups') IS NULL THEN
        RETURN QUERY SELECT 'backup_age', NULL::numeric, 'component not installed', false;
    ELSE
        -- No verified backup at all is worse than any age: infinity reaches every level.
        RETURN QUERY
        SELECT 'backup_age',
               coalesce(round(extract(epoch FROM now() - b.finished_at) / 3600, 1), 'Infinity'),
               CASE WHEN b.id IS NULL THEN 'no verified backup recorded'
                    ELSE format('backup %s taken %s, verified %s', b.id,
                                to_char(b.finished_at, 'YYYY-MM-DD HH24:MI TZ'),
                                to_char(b.verified_at, 'YYYY-MM-DD HH24:MI TZ')) END,
               true
        FROM (SELECT NULL) one
        LEFT JOIN LATERAL (SELECT * FROM warden.backups x WHERE x.status = 'verified'
                           ORDER BY x.finished_at DESC LIMIT 1) b ON true;
    END IF;
END
$$;

-- The generic database checks, in groups; a group that fails reports its checks as
-- unknown with the error, and the others still run.
-- WAL archiving (docs/wal.md): the receiver's slot warden_receiver and the archiver.
-- A check that does not apply (no receiver slot, archive_mode off) is ok and says why.
CREATE FUNCTION warden._health_wal()
RETURNS TABLE(check_name text, value numeric, detail text, applicable boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH slot AS (
    SELECT s.active, s.active_pid,
           pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn) AS retained
    FROM pg_replication_slots s WHERE s.slot_name = 'warden_receiver'
), rcv AS (
    SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), r.flush_lsn) AS behind, r.sync_state
    FROM pg_stat_replication r JOIN slot ON r.pid = slot.active_pid
), arch AS (
    SELECT a.*, current_setting('archive_mode') <> 'off' AS on,
           pg_size_bytes(current_setting('wal_segment_size')) AS seg
    FROM pg_stat_archiver a
), arch_end AS (
    -- End of the last archived segment, from its name (timeline, log, segment).
    SELECT (('x' || substr(a.last_archived_wal, 9, 8))::bit(32)::bigint * (4294967296 / a.seg)
            + ('x' || substr(a.last_archived_wal, 17, 8))::bit(32)::bigint + 1)::numeric * a.seg AS lsn
    FROM arch a WHERE a.last_archived_wal ~ '^[0-9A-F]{24}$'
)
SELECT 'wal_receiver_down',
       CASE WHEN EXISTS (SELECT FROM slot WHERE NOT active) THEN 1 ELSE 0 END::numeric,
       CASE WHEN NOT EXISTS (SELECT FROM slot) THEN 'no warden_receiver slot'
            WHEN EXISTS (SELECT FROM slot WHERE active) THEN 'receiver connected'
            ELSE format('receiver not connected; its slot retains %s',
                        (SELECT pg_size_pretty(retained) FROM slot)) END,
       EXISTS (SELECT FROM slot)
UNION ALL
SELECT 'wal_receiver_lag', coalesce((SELECT behind FROM rcv), 0),
       coalesce((SELECT format('%s behind (%s)', pg_size_pretty(behind), sync_state) FROM rcv),
                'no receiver connected'),
       EXISTS (SELECT FROM rcv)
UNION ALL
SELECT 'archive_failing',
       CASE WHEN a.on AND a.last_failed_time > coalesce(a.last_archived_time, '-infinity')
            THEN 1 ELSE 0 END::numeric,
       CASE WHEN NOT a.on THEN 'archive_mode is off'
            WHEN a.last_failed_time > coalesce(a.last_archived_time, '-infinity')
            THEN format('%s failing since %s (%s failures in all)', a.last_failed_wal,
                        a.last_failed_time, a.failed_count)
            ELSE format('%s archived, %s failed in all', a.archived_count, a.failed_count) END,
       a.on
FROM arch a
UNION ALL
SELECT 'archive_lag',
       CASE WHEN a.on THEN greatest(coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')
                                             - (SELECT lsn FROM arch_end), 0), 0) ELSE 0 END,
       CASE WHEN NOT a.on THEN 'archive_mode is off'
            WHEN a.last_archived_wal IS NULL THEN 'no segment archived yet'
            ELSE format('last archived %s at %s', a.last_archived_wal, a.last_archived_time) END,
       a.on
FROM arch a
$$;

CREATE FUNCTION warden._health_measure()
RETURNS TABLE(check_name text, value numeric, detail text, applicable boolean, facts jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    note text;
BEGIN
    BEGIN
        -- These checks carry no facts for the report.
        RETURN QUERY SELECT g.*, NULL::jsonb FROM (WITH a AS MATERIALIZED (
            SELECT s.pid, s.state, s.xact_start, s.query_start, s.state_change
            FROM pg_stat_activity s WHERE s.backend_type = 'client backend'
        ), others AS (
            SELECT * FROM a WHERE a.pid <> pg_backend_pid()
        ), q AS (
            SELECT o.pid, greatest(extract(epoch FROM now() - o.query_start), 0) AS secs
            FROM others o WHERE o.state = 'active' ORDER BY o.query_start LIMIT 1
        ), t AS (
            SELECT o.pid, greatest(extract(epoch FROM now() - o.xact_start), 0) AS secs
            FROM others o WHERE o.xact_start IS NOT NULL ORDER BY o.xact_start LIMIT 1
        ), i AS (
            SELECT o.pid, greatest(extract(epoch FROM now() - o.state_change), 0) AS secs
            FROM others o WHERE o.state LIKE 'idle in transaction%' ORDER BY o.state_change LIMIT 1
        ), w AS (
            SELECT count(DISTINCT k.pid) AS n,
                   greatest(max(extract(epoch FROM now() - k.waitstart)), 0) AS secs
            FROM pg_locks k WHERE NOT k.granted
        )
        SELECT 'connections',
               round(100.0 * (SELECT count(*) FROM a) / current_setting('max_connections')::numeric, 1),
               format('%s of %s connections: %s active, %s idle in transaction',
                      (SELECT count(*) FROM a), current_setting('max_connections'),
                      (SELECT count(*) FROM a WHERE a.state = 'active'),
                      (SELECT count(*) FROM a WHERE a.state LIKE 'idle in transaction%')),
               true
        UNION ALL
        SELECT 'long_queries', coalesce((SELECT round(q.secs, 1) FROM q), 0),
               coalesce((SELECT format('pid %s', q.pid) FROM q), 'no statement running'), true
        UNION ALL
        SELECT 'long_transactions', coalesce((SELECT round(t.secs, 1) FROM t), 0),
               coalesce((SELECT format('pid %s', t.pid) FROM t), 'no open transaction'), true
        UNION ALL
        SELECT 'idle_in_transaction', coalesce((SELECT round(i.secs, 1) FROM i), 0),
               coalesce((SELECT format('pid %s', i.pid) FROM i), 'no session idle in transaction'), true
        UNION ALL
        SELECT 'blocked_sessions', coalesce(round(w.secs, 1), 0),
               CASE WHEN w.n = 0 THEN 'no session waits for a lock'
                    ELSE format('%s sessions wait for a lock; chains: %s', w.n,
                                (SELECT string_agg(DISTINCT b.lock_chain, '; ')
                                 FROM warden.health_blocking b)) END,
               true
        FROM w) g;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['connections', 'long_queries', 'long_transactions',
                          'idle_in_transaction', 'blocked_sessions']) n;
    END;

    BEGIN
        -- These checks carry no facts for the report.
        RETURN QUERY SELECT g.*, NULL::jsonb FROM (WITH d AS (
            SELECT s.blks_hit, s.blks_read, s.xact_commit, s.xact_rollback
            FROM pg_stat_database s WHERE s.datname = current_database()
        ), x AS (
            SELECT db.datname, age(db.datfrozenxid) AS xid_age, mxid_age(db.datminmxid) AS mxid_age
            FROM pg_database db
        )
        -- A database that has hardly been used has read everything from disk once, and a
        -- handful of transactions make any ratio; neither says anything yet.
        SELECT 'cache_hit_ratio',
               CASE WHEN d.blks_hit + d.blks_read >= 100000
                    THEN round(100.0 * d.blks_hit / (d.blks_hit + d.blks_read), 2) END,
               CASE WHEN d.blks_hit + d.blks_read >= 100000
                    THEN format('%s hits, %s reads', d.blks_hit, d.blks_read)
                    ELSE format('only %s block accesses since the statistics reset; judged from 100000',
                                d.blks_hit + d.blks_read) END,
               d.blks_hit + d.blks_read >= 100000
        FROM d
        UNION ALL
        SELECT 'rollback_ratio',
               CASE WHEN d.xact_commit + d.xact_rollback >= 1000
                    THEN round(100.0 * d.xact_rollback / (d.xact_commit + d.xact_rollback), 2) END,
               CASE WHEN d.xact_commit + d.xact_rollback >= 1000
                    THEN format('%s rolled back, %s committed', d.xact_rollback, d.xact_commit)
                    ELSE format('only %s transactions since the statistics reset; judged from 1000',
                                d.xact_commit + d.xact_rollback) END,
               d.xact_commit + d.xact_rollback >= 1000
        FROM d
        UNION ALL
        SELECT 'database_size', z.size::numeric, pg_size_pretty(z.size), true
        FROM (SELECT warden._database_size(oid) AS size FROM pg_database
              WHERE datname = current_database()) z
        UNION ALL
        (SELECT 'xid_age', x.xid_age::numeric, format('database %s', x.datname), true
         FROM x ORDER BY x.xid_age DESC LIMIT 1)
        UNION ALL
        (SELECT 'mxid_age', x.mxid_age::numeric, format('database %s', x.datname), true
         FROM x ORDER BY x.mxid_age DESC LIMIT 1)) g;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['cache_hit_ratio', 'rollback_ratio', 'database_size', 'xid_age',
                          'mxid_age']) n;
    END;

    -- Tables and indexes: one pass each, and the lists the report shows ride along in
    -- facts, so that health_report() does not scan 10,000 tables a second time.
    BEGIN
        RETURN QUERY
        WITH t AS MATERIALIZED (
            -- Straight from the C pass: no per-row numeric work for 10,000 tables; the
            -- percentages are computed for the rows shown.
            SELECT s.relid, s.relpages, s.n_live_tup, s.n_dead_tup, s.autovacuum_due,
                   s.autoanalyze_due, s.last_autovacuum
            FROM warden._table_stats() s
        ), worst AS (
            SELECT t.relid, t.n_live_tup, t.n_dead_tup FROM t
            WHERE t.n_live_tup + t.n_dead_tup >= 10000
            ORDER BY t.n_dead_tup::float8 / (t.n_live_tup + t.n_dead_tup) DESC LIMIT 1
        )
        SELECT 'dead_tuples',
               coalesce((SELECT round(100.0 * w.n_dead_tup / (w.n_live_tup + w.n_dead_tup), 1)
                         FROM worst w), 0),
               coalesce((SELECT format('%s: %s dead tuples', w.relid::regclass, w.n_dead_tup)
                         FROM worst w),
                        'no table with 10,000 rows or more'),
               true,
               (SELECT coalesce(jsonb_agg(jsonb_build_object(
                           'relation', d.relid::regclass::text, 'n_dead_tup', d.n_dead_tup,
                           'dead_pct', round(100.0 * d.n_dead_tup / nullif(d.n_live_tup + d.n_dead_tup, 0), 1),
                           'last_autovacuum', d.last_autovacuum,
                           'autovacuum_due', d.autovacuum_due) ORDER BY d.n_dead_tup DESC), '[]')
                FROM (SELECT * FROM t WHERE t.n_dead_tup > 0 ORDER BY t.n_dead_tup DESC LIMIT 10) d)
        UNION ALL
        SELECT 'autovacuum_due', count(*) FILTER (WHERE t.autovacuum_due)::numeric,
               format('%s of %s tables', count(*) FILTER (WHERE t.autovacuum_due), count(*)), true,
               jsonb_build_object(
                   'count', count(*),
                   'autovacuum_due', count(*) FILTER (WHERE t.autovacuum_due),
                   'autoanalyze_due', count(*) FILTER (WHERE t.autoanalyze_due),
                   'largest', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                          'relation', l.relid::regclass::text,
                                          'total_bytes', pg_total_relation_size(l.relid))
                                          ORDER BY l.relpages DESC), '[]')
                               FROM (SELECT * FROM t ORDER BY t.relpages DESC LIMIT 10) l))
        FROM t;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['dead_tuples', 'autovacuum_due']) n;
    END;

    BEGIN
        RETURN QUERY
        WITH i AS MATERIALIZED (
            SELECT s.indexrelid::regclass AS index, s.invalid, s.unused,
                   s.duplicate_of::regclass AS duplicate_of, s.estimated_bytes
            FROM warden._index_stats(true) s
        )
        SELECT 'invalid_indexes', count(*)::numeric,
               coalesce(string_agg(i.index::text, ', ' ORDER BY i.index::text), 'none'), true,
               coalesce(jsonb_agg(i.index::text ORDER BY i.index::text), '[]')
        FROM i WHERE i.invalid
        UNION ALL
        SELECT 'duplicate_indexes', count(*)::numeric,
               coalesce(string_agg(format('%s duplicates %s', i.index, i.duplicate_of), ', '
                                   ORDER BY i.index::text), 'none'), true,
               coalesce(jsonb_agg(jsonb_build_object('index', i.index::text,
                                                     'duplicate_of', i.duplicate_of::text)
                                  ORDER BY i.index::text), '[]')
        FROM i WHERE i.duplicate_of IS NOT NULL
        UNION ALL
        SELECT 'unused_indexes', count(*)::numeric,
               format('%s unused, about %s', count(*), pg_size_pretty(coalesce(sum(i.estimated_bytes), 0))),
               true,
               jsonb_build_object(
                   'count', count(*),
                   'estimated_bytes', coalesce(sum(i.estimated_bytes), 0),
                   'largest', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                          'index', u.index::text, 'estimated_bytes', u.estimated_bytes)
                                          ORDER BY u.estimated_bytes DESC), '[]')
                               FROM (SELECT * FROM i WHERE i.unused
                                     ORDER BY i.estimated_bytes DESC LIMIT 10) u))
        FROM i WHERE i.unused;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['invalid_indexes', 'duplicate_indexes', 'unused_indexes']) n;
    END;

    BEGIN
        RETURN QUERY
        SELECT 'sequences', coalesce(max(s.pct_used), 0),
               coalesce((SELECT format('%s at %s of %s', s2.sequence,
                                       coalesce(s2.last_value::text, 'its start'), s2.max_value)
                         FROM warden._health_sequences() s2 WHERE NOT s2.cycle
                         ORDER BY s2.pct_used DESC NULLS LAST LIMIT 1), 'no sequence'),
               true, NULL::jsonb
        FROM warden._health_sequences() s WHERE NOT s.cycle;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT 'sequences', NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb;
    END;

    BEGIN
        -- These checks carry no facts for the report.
        RETURN QUERY SELECT g.*, NULL::jsonb FROM (WITH r AS (SELECT * FROM warden.health_replication),
             s AS (SELECT * FROM warden.health_replication_slots)
        SELECT 'replication_lag_bytes', coalesce(max(r.replay_lag_bytes), 0),
               CASE WHEN count(*) = 0 THEN 'no standby connected'
                    ELSE format('%s standbys', count(*)) END, true
        FROM r
        UNION ALL
        SELECT 'replication_lag_seconds',
               coalesce(round(max(extract(epoch FROM r.replay_lag)), 1), 0),
               CASE WHEN count(*) = 0 THEN 'no standby connected'
                    ELSE format('%s standbys', count(*)) END, true
        FROM r
        UNION ALL
        SELECT 'replication_slots', coalesce(max(s.retained_bytes), 0),
               CASE WHEN count(*) = 0 THEN 'no replication slot'
                    ELSE format('%s slots, most WAL retained: %s', count(*),
                                pg_size_pretty(coalesce(max(s.retained_bytes), 0))) END, true
        FROM s
        UNION ALL
        SELECT 'inactive_slots', count(*) FILTER (WHERE NOT s.active)::numeric,
               coalesce(string_agg(s.slot_name::text, ', ' ORDER BY s.slot_name)
                        FILTER (WHERE NOT s.active), 'none'), true
        FROM s) g;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['replication_lag_bytes', 'replication_lag_seconds',
                          'replication_slots', 'inactive_slots']) n;
    END;

    BEGIN
        RETURN QUERY SELECT w.*, NULL::jsonb FROM warden._health_wal() w;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['wal_receiver_down', 'wal_receiver_lag', 'archive_failing',
                          'archive_lag']) n;
    END;

    note := warden._statements_note();
    IF note IS NOT NULL THEN
        RETURN QUERY SELECT 'slow_statements', NULL::numeric, note, false, NULL::jsonb;
    ELSE
        BEGIN
            RETURN QUERY
            SELECT 'slow_statements', coalesce(round(max(s.mean_ms)::numeric, 1), 0),
                   coalesce(max(format('queryid %s: %s calls', s.queryid, s.calls)),
                            'no statement called 10 times yet'), true, NULL::jsonb
            FROM warden.health_slow_statements(1, 10) s;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT 'slow_statements', NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb;
        END;
    END IF;

    BEGIN
        RETURN QUERY SELECT r.*, NULL::jsonb FROM warden._health_rates() r;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT n, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM unnest(ARRAY['deadlocks', 'temp_bytes', 'wal_rate']) n;
    END;

    BEGIN
        RETURN QUERY SELECT c.*, NULL::jsonb FROM warden._health_components() c;
    EXCEPTION WHEN OTHERS THEN
        RETURN QUERY SELECT t.check_name, NULL::numeric, 'check failed: ' || SQLERRM, true, NULL::jsonb
        FROM warden.health_thresholds t WHERE t.category = 'warden';
    END;
END
$$;

-- Every enabled check with its status against warden.health_thresholds.
CREATE FUNCTION warden._health_evaluate()
RETURNS TABLE(check_name text, category text, status text, value numeric, warning numeric,
              critical numeric, unit text, detail text, applicable boolean, facts jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT t.check_name, t.category,
       CASE WHEN m.value IS NULL THEN 'unknown'
            WHEN t.direction = 'above' AND m.value >= t.critical THEN 'critical'
            WHEN t.direction = 'above' AND m.value >= t.warning THEN 'warning'
            WHEN t.direction = 'below' AND m.value < t.critical THEN 'critical'
            WHEN t.direction = 'below' AND m.value < t.warning THEN 'warning'
            ELSE 'ok' END,
       trim_scale(m.value), t.warning, t.critical, t.unit, m.detail, m.applicable, m.facts
FROM warden.health_thresholds t
JOIN warden._health_measure() m ON m.check_name = t.check_name
WHERE t.enabled
ORDER BY array_position(ARRAY['server', 'activity', 'storage', 'replication', 'warden'], t.category),
         t.check_name
$$;

-- The worst status: critical, then warning; unknown only when an applicable check could
-- not be measured; ok otherwise (also when checks are merely not applicable).
CREATE FUNCTION warden._health_overall(statuses text[], applicable boolean[]) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN 'critical' = ANY (statuses) THEN 'critical'
            WHEN 'warning' = ANY (statuses) THEN 'warning'
            WHEN EXISTS (SELECT FROM unnest(statuses, applicable) u(s, a) WHERE s = 'unknown' AND a)
            THEN 'unknown'
            ELSE 'ok' END
$$;

CREATE FUNCTION warden.health_check()
RETURNS TABLE(check_name text, status text, value text, warning text, critical text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT e.check_name, e.status, e.value::text, e.warning::text, e.critical::text, e.detail
FROM warden._health_evaluate() e
$$;

-- ---------------------------------------------------------------------------------------
-- Rates between consecutive snapshots: the trend. A counter that went backwards (a
-- statistics reset) gives NULL for that interval rather than a negative rate.
CREATE VIEW warden.health_rates AS
WITH s AS (
    SELECT h.*, lag(h) OVER (ORDER BY h.taken_at) AS p
    FROM warden.health_snapshots h
)
SELECT s.taken_at,
       extract(epoch FROM s.taken_at - (s.p).taken_at) AS seconds,
       CASE WHEN s.deadlocks >= (s.p).deadlocks AND s.stats_reset IS NOT DISTINCT FROM (s.p).stats_reset
            THEN round((s.deadlocks - (s.p).deadlocks) * 3600
                       / extract(epoch FROM s.taken_at - (s.p).taken_at), 2) END AS deadlocks_per_hour,
       CASE WHEN s.temp_bytes >= (s.p).temp_bytes AND s.stats_reset IS NOT DISTINCT FROM (s.p).stats_reset
            THEN round((s.temp_bytes - (s.p).temp_bytes) * 3600
                       / extract(epoch FROM s.taken_at - (s.p).taken_at)) END AS temp_bytes_per_hour,
       CASE WHEN s.xact_commit >= (s.p).xact_commit AND s.stats_reset IS NOT DISTINCT FROM (s.p).stats_reset
            THEN round((s.xact_commit + s.xact_rollback - (s.p).xact_commit - (s.p).xact_rollback)
                       / extract(epoch FROM s.taken_at - (s.p).taken_at), 2) END AS transactions_per_second,
       CASE WHEN s.wal_lsn >= (s.p).wal_lsn
            THEN round(pg_catalog.pg_wal_lsn_diff(s.wal_lsn, (s.p).wal_lsn) * 60
                       / extract(epoch FROM s.taken_at - (s.p).taken_at)) END AS wal_bytes_per_minute,
       s.failed_logins AS failed_logins_last_hour,
       s.lockouts AS lockouts_last_hour,
       s.connections, s.database_size, s.xid_age
FROM s
WHERE (s.p).taken_at IS NOT NULL AND s.taken_at > (s.p).taken_at;

-- Takes one snapshot and prunes those older than warden.health_snapshot_retention. Run by
-- the maintenance worker (or pg_cron); does nothing on a standby, which cannot write.
CREATE PROCEDURE warden.health_snapshot()
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    failed bigint;
    locked bigint;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN;
    END IF;
    IF to_regclass('warden.security_events') IS NOT NULL THEN
        SELECT count(*) FILTER (WHERE e.event_type = 'login_failed'),
               count(*) FILTER (WHERE e.event_type = 'locked')
        INTO failed, locked
        FROM warden.security_events e
        WHERE e.occurred_at > now() - interval '1 hour';
    END IF;
    -- Two snapshots in one transaction (or at one instant) are one snapshot.
    INSERT INTO warden.health_snapshots
    SELECT now(), s.stats_reset, pg_current_wal_lsn(),
           (SELECT count(*) FROM pg_stat_activity a WHERE a.backend_type = 'client backend'),
           s.xact_commit, s.xact_rollback, s.deadlocks, s.temp_files, s.temp_bytes,
           s.blks_hit, s.blks_read, pg_database_size(current_database()),
           (SELECT max(age(d.datfrozenxid)) FROM pg_database d),
           failed, locked
    FROM pg_stat_database s
    WHERE s.datname = current_database()
    ON CONFLICT (taken_at) DO NOTHING;
    DELETE FROM warden.health_snapshots h
    WHERE h.taken_at < now() - current_setting('warden.health_snapshot_retention')::interval;
END
$$;

-- ---------------------------------------------------------------------------------------
-- The whole picture as one JSON document; "status" is the overall status. Lists are
-- capped (the ten worst) and ordered by catalog estimates, so that the report stays fast
-- on databases with tens of thousands of tables.
CREATE FUNCTION warden.health_report() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    facts jsonb;
    checks jsonb;
    overall text;
    summary jsonb;
    note text := warden._statements_note();
    report jsonb;
BEGIN
    SELECT coalesce(jsonb_object_agg(e.check_name, e.facts) FILTER (WHERE e.facts IS NOT NULL), '{}'),
           coalesce(jsonb_agg(jsonb_build_object(
               'check', e.check_name, 'category', e.category, 'status', e.status,
               'value', CASE WHEN e.value <> 'Infinity' THEN e.value END,
               'warning', e.warning, 'critical', e.critical, 'unit', e.unit,
               'detail', e.detail, 'applicable', e.applicable)), '[]'),
           warden._health_overall(array_agg(e.status), array_agg(e.applicable)),
           jsonb_build_object('ok', count(*) FILTER (WHERE e.status = 'ok'),
                              'warning', count(*) FILTER (WHERE e.status = 'warning'),
                              'critical', count(*) FILTER (WHERE e.status = 'critical'),
                              'unknown', count(*) FILTER (WHERE e.status = 'unknown'))
    INTO facts, checks, overall, summary
    FROM warden._health_evaluate() e;

    report := jsonb_build_object(
        'status', overall,
        'summary', summary,
        'generated_at', now(),
        'database', current_database(),
        'server_version', current_setting('server_version'),
        'in_recovery', pg_is_in_recovery(),
        'pg_warden_version', warden.version(),
        'checks', checks,
        'connections', jsonb_build_object(
            'max_connections', current_setting('max_connections')::integer,
            'by_state', (SELECT coalesce(jsonb_object_agg(c.state, c.connections), '{}')
                         FROM warden.health_connections c)),
        'databases', (SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.datname), '[]')
                      FROM warden.health_databases d),
        'long_running', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                    'pid', l.pid, 'datname', l.datname, 'usename', l.usename,
                                    'state', l.state, 'transaction_age', l.transaction_age,
                                    'query_age', l.query_age, 'idle_age', l.idle_age,
                                    'query', left(l.query, 200))), '[]')
                         FROM (SELECT * FROM warden.health_long_running
                               ORDER BY transaction_age DESC NULLS LAST LIMIT 10) l),
        'blocking', (SELECT coalesce(jsonb_agg(to_jsonb(b)), '[]') FROM warden.health_blocking b));

    report := report || jsonb_build_object(
        -- Lists gathered by the checks themselves (absent when a check is disabled).
        'tables', facts->'autovacuum_due',
        'most_dead_tuples', facts->'dead_tuples',
        'indexes', jsonb_build_object('invalid', facts->'invalid_indexes',
                                      'duplicate', facts->'duplicate_indexes',
                                      'unused', facts->'unused_indexes'),
        'wraparound', jsonb_build_object(
            'databases', (SELECT coalesce(jsonb_agg(to_jsonb(w) ORDER BY w.xid_age DESC), '[]')
                          FROM warden.health_wraparound_databases w),
            'oldest_tables', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                         'relation', w.relation::text, 'xid_age', w.xid_age,
                                         'mxid_age', w.mxid_age)), '[]')
                              FROM (SELECT * FROM warden.health_wraparound_tables
                                    ORDER BY xid_age DESC LIMIT 10) w)),
        'sequences', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                 'sequence', s.sequence::text, 'last_value', s.last_value,
                                 'max_value', s.max_value, 'pct_used', s.pct_used)), '[]')
                      FROM (SELECT * FROM warden._health_sequences()
                            ORDER BY pct_used DESC NULLS LAST LIMIT 10) s),
        'replication', jsonb_build_object(
            'standbys', (SELECT coalesce(jsonb_agg(to_jsonb(r)), '[]') FROM warden.health_replication r),
            'slots', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM warden.health_replication_slots s)),
        'slow_statements', CASE WHEN note IS NOT NULL
            THEN jsonb_build_object('available', false, 'note', note)
            ELSE jsonb_build_object('available', true, 'statements',
                     (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]')
                      FROM warden.health_slow_statements(10) s)) END,
        'trend', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.taken_at), '[]')
                  FROM (SELECT DISTINCT ON (date_trunc('hour', h.taken_at)) h.*
                        FROM warden.health_rates h
                        WHERE h.taken_at > now() - interval '24 hours'
                        ORDER BY date_trunc('hour', h.taken_at), h.taken_at DESC) r));
    RETURN report;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Prometheus text exposition format (version 0.0.4).

-- Label set {k1="v1",k2="v2"} from alternating names and values; values escaped as the
-- format requires (backslash, double quote, newline). NULL values are left out.
CREATE FUNCTION warden._prom_labels(VARIADIC kv text[]) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT coalesce('{' || pg_catalog.string_agg(
           kv[i] || '="' || pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
               kv[i + 1], E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n') || '"', ',' ORDER BY i)
           || '}', '')
FROM pg_catalog.generate_series(1, pg_catalog.cardinality(kv) - 1, 2) i
WHERE kv[i + 1] IS NOT NULL
$$;

CREATE FUNCTION warden.metrics() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH e AS MATERIALIZED (
    SELECT * FROM warden._health_evaluate()
), samples(ord, family, kind, help, labels, value) AS (
    SELECT 1, 'warden_health_status', 'gauge',
           'Status of each pg_warden health check: 0 ok, 1 warning, 2 critical, 3 unknown.',
           warden._prom_labels('check', e.check_name, 'category', e.category),
           array_position(ARRAY['ok', 'warning', 'critical', 'unknown'], e.status) - 1::numeric
    FROM e
    UNION ALL
    SELECT 2, 'warden_health_value', 'gauge', 'Measured value of each health check, in its unit.',
           warden._prom_labels('check', e.check_name, 'unit', e.unit), e.value
    FROM e WHERE e.value IS NOT NULL AND e.value <> 'Infinity'
    UNION ALL
    SELECT 3, 'warden_health_overall_status', 'gauge',
           'Overall pg_warden health status: 0 ok, 1 warning, 2 critical, 3 unknown.', '',
           array_position(ARRAY['ok', 'warning', 'critical', 'unknown'],
                          warden._health_overall(array_agg(e.status), array_agg(e.applicable))) - 1::numeric
    FROM e
    UNION ALL
    SELECT 4, 'warden_connections', 'gauge', 'Client connections by state.',
           warden._prom_labels('state', c.state), c.connections::numeric
    FROM warden.health_connections c
    UNION ALL
    SELECT 5, 'warden_max_connections', 'gauge', 'The max_connections setting.', '',
           current_setting('max_connections')::numeric
    UNION ALL
    SELECT 6, 'warden_database_size_bytes', 'gauge', 'Size of each database.',
           warden._prom_labels('datname', d.datname), d.size_bytes::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 7, 'warden_xact_commit_total', 'counter', 'Committed transactions.',
           warden._prom_labels('datname', d.datname), d.xact_commit::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 8, 'warden_xact_rollback_total', 'counter', 'Rolled back transactions.',
           warden._prom_labels('datname', d.datname), d.xact_rollback::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 9, 'warden_deadlocks_total', 'counter', 'Deadlocks detected.',
           warden._prom_labels('datname', d.datname), d.deadlocks::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 10, 'warden_temp_files_total', 'counter', 'Temporary files created by queries.',
           warden._prom_labels('datname', d.datname), d.temp_files::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 11, 'warden_temp_bytes_total', 'counter', 'Bytes written to temporary files.',
           warden._prom_labels('datname', d.datname), d.temp_bytes::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 12, 'warden_blocks_hit_total', 'counter', 'Block reads served by the buffer cache.',
           warden._prom_labels('datname', d.datname), d.blks_hit::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 13, 'warden_blocks_read_total', 'counter', 'Block reads that missed the buffer cache.',
           warden._prom_labels('datname', d.datname), d.blks_read::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 14, 'warden_xid_age', 'gauge', 'Age of datfrozenxid (wraparound at 2^31).',
           warden._prom_labels('datname', w.datname), w.xid_age::numeric
    FROM warden.health_wraparound_databases w
    UNION ALL
    SELECT 15, 'warden_mxid_age', 'gauge', 'Age of datminmxid.',
           warden._prom_labels('datname', w.datname), w.mxid_age::numeric
    FROM warden.health_wraparound_databases w
    UNION ALL
    SELECT 16, 'warden_sequence_used_ratio', 'gauge', 'Share of its range a sequence has used (0 to 1).',
           warden._prom_labels('sequence', s.sequence::text), round(s.pct_used / 100, 4)
    FROM warden._health_sequences() s
    UNION ALL
    SELECT 17, 'warden_replication_lag_bytes', 'gauge', 'Replay lag of a connected standby.',
           warden._prom_labels('application_name', r.application_name, 'client_addr', host(r.client_addr)),
           r.replay_lag_bytes
    FROM warden.health_replication r
    UNION ALL
    SELECT 18, 'warden_replication_lag_seconds', 'gauge', 'Replay lag of a connected standby, in time.',
           warden._prom_labels('application_name', r.application_name, 'client_addr', host(r.client_addr)),
           round(extract(epoch FROM r.replay_lag), 3)
    FROM warden.health_replication r WHERE r.replay_lag IS NOT NULL
    UNION ALL
    SELECT 19, 'warden_replication_slot_retained_bytes', 'gauge', 'WAL kept by a replication slot.',
           warden._prom_labels('slot_name', s.slot_name::text, 'slot_type', s.slot_type,
                               'active', s.active::text), s.retained_bytes
    FROM warden.health_replication_slots s WHERE s.retained_bytes IS NOT NULL
    UNION ALL
    SELECT 20, 'warden_wal_position_bytes', 'counter', 'WAL position (written, or received on a standby).',
           '', pg_wal_lsn_diff(warden._current_lsn(), '0/0')
    WHERE warden._current_lsn() IS NOT NULL
)
SELECT string_agg(f.block, '' ORDER BY f.ord)
FROM (SELECT min(s.ord) AS ord,
             format(E'# HELP %s %s\n# TYPE %s %s\n', s.family, s.help, s.family, s.kind)
             || string_agg(s.family || s.labels || ' ' || trim_scale(s.value)::text || E'\n', '' ORDER BY s.labels) AS block
      FROM samples s
      WHERE s.value IS NOT NULL
      GROUP BY s.family, s.kind, s.help) f
$$;

-- ---------------------------------------------------------------------------------------
GRANT SELECT ON warden._table_health, warden._index_health,
                warden.health_connections, warden.health_long_running, warden.health_blocking,
                warden.health_databases, warden.health_tables, warden.health_indexes,
                warden.health_wraparound_databases, warden.health_wraparound_tables,
                warden.health_sequences, warden.health_replication,
                warden.health_replication_slots, warden.health_rates
      TO warden_monitor, warden_admin;
GRANT EXECUTE ON FUNCTION warden._table_stats(), warden._index_stats(boolean),
                          warden._health_rates(), warden._health_components(), warden._health_wal(),
                          warden._health_measure(), warden._health_evaluate(),
                          warden._health_overall(text[], boolean[]),
                          warden._prom_labels(text[]),
                          warden.health_check(), warden.health_report(), warden.metrics()
      TO warden_monitor, warden_admin;
GRANT EXECUTE ON PROCEDURE warden.health_snapshot() TO warden_admin;
