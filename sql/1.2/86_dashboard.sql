-- The dashboard (`warden dashboard`, `warden health --html`): the series its charts need
-- in warden.health_snapshots, one view of them over time, and a table bloat estimate.
-- Everything else it shows comes from the views and functions the JSON report reads.

-- Series the charts draw that the 1.1 snapshots did not keep. NULL in older rows.
ALTER TABLE warden.health_snapshots
    ADD COLUMN connections_active integer,
    ADD COLUMN connections_idle integer,
    ADD COLUMN connections_idle_in_transaction integer,
    ADD COLUMN connections_waiting integer,
    ADD COLUMN dead_tuples bigint,
    ADD COLUMN replication_lag_bytes numeric,
    ADD COLUMN archive_lag_bytes numeric,
    ADD COLUMN job_failures bigint,
    ADD COLUMN backup_age_hours numeric;

-- The 1.1 snapshot plus those series. Runs as the owner (it writes the table and reads
-- pg_warden's own tables): search_path pinned, and it calls nothing a caller can define.
CREATE OR REPLACE PROCEDURE warden.health_snapshot()
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    failed bigint;
    locked bigint;
    job_failed bigint;
    backup_hours numeric;
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
    IF to_regclass('warden.job_runs') IS NOT NULL THEN
        SELECT count(*) INTO job_failed FROM warden.job_runs r
        WHERE r.status IN ('failed', 'crashed') AND r.started_at > now() - interval '1 hour';
    END IF;
    IF to_regclass('warden.backups') IS NOT NULL THEN
        SELECT round(extract(epoch FROM now() - max(b.finished_at)) / 3600, 2) INTO backup_hours
        FROM warden.backups b WHERE b.status = 'verified';
    END IF;
    -- Two snapshots in one transaction (or at one instant) are one snapshot.
    INSERT INTO warden.health_snapshots
        (taken_at, stats_reset, wal_lsn, connections, xact_commit, xact_rollback, deadlocks,
         temp_files, temp_bytes, blks_hit, blks_read, database_size, xid_age, failed_logins,
         lockouts, connections_active, connections_idle, connections_idle_in_transaction,
         connections_waiting, dead_tuples, replication_lag_bytes, archive_lag_bytes,
         job_failures, backup_age_hours)
    SELECT now(), s.stats_reset, pg_current_wal_lsn(),
           a.total, s.xact_commit, s.xact_rollback, s.deadlocks, s.temp_files, s.temp_bytes,
           s.blks_hit, s.blks_read, pg_database_size(current_database()),
           (SELECT max(age(d.datfrozenxid)) FROM pg_database d),
           failed, locked, a.active, a.idle, a.idle_in_transaction, a.waiting,
           (SELECT sum(t.n_dead_tup) FROM pg_stat_all_tables t),
           (SELECT max(r.replay_lag_bytes) FROM warden.health_replication r),
           (SELECT w.value FROM warden._health_wal() w WHERE w.check_name = 'archive_lag' AND w.applicable),
           job_failed, backup_hours
    FROM pg_stat_database s,
         (SELECT count(*) AS total,
                 count(*) FILTER (WHERE x.state = 'active') AS active,
                 count(*) FILTER (WHERE x.state = 'idle') AS idle,
                 count(*) FILTER (WHERE x.state LIKE 'idle in transaction%') AS idle_in_transaction,
                 count(*) FILTER (WHERE x.wait_event_type = 'Lock') AS waiting
          FROM pg_stat_activity x WHERE x.backend_type = 'client backend') a
    WHERE s.datname = current_database()
    ON CONFLICT (taken_at) DO NOTHING;
    DELETE FROM warden.health_snapshots h
    WHERE h.taken_at < now() - current_setting('warden.health_snapshot_retention')::interval;
END
$$;

-- Every series the dashboard charts, one row per snapshot. Rates come from the snapshot
-- before; a counter that went backwards (a statistics reset) gives NULL, as in health_rates.
CREATE VIEW warden.dashboard_series AS
WITH s AS (
    SELECT h.*, lag(h) OVER (ORDER BY h.taken_at) AS p
    FROM warden.health_snapshots h
), d AS (
    SELECT s.*, extract(epoch FROM s.taken_at - (s.p).taken_at) AS seconds,
           s.stats_reset IS NOT DISTINCT FROM (s.p).stats_reset
           AND s.xact_commit >= (s.p).xact_commit AND s.blks_hit >= (s.p).blks_hit AS same_stats
    FROM s
)
SELECT d.taken_at,
       d.connections, d.connections_active, d.connections_idle,
       d.connections_idle_in_transaction, d.connections_waiting,
       CASE WHEN d.same_stats AND d.seconds > 0
            THEN round((d.xact_commit - (d.p).xact_commit) / d.seconds, 2) END AS commits_per_second,
       CASE WHEN d.same_stats AND d.seconds > 0 AND d.xact_rollback >= (d.p).xact_rollback
            THEN round((d.xact_rollback - (d.p).xact_rollback) / d.seconds, 2) END AS rollbacks_per_second,
       CASE WHEN d.same_stats AND d.blks_read >= (d.p).blks_read
            THEN round(100.0 * (d.blks_hit - (d.p).blks_hit)
                       / nullif(d.blks_hit - (d.p).blks_hit + d.blks_read - (d.p).blks_read, 0), 2) END AS cache_hit_pct,
       d.dead_tuples,
       CASE WHEN d.wal_lsn >= (d.p).wal_lsn AND d.seconds > 0
            THEN round(pg_catalog.pg_wal_lsn_diff(d.wal_lsn, (d.p).wal_lsn) * 60 / d.seconds) END AS wal_bytes_per_minute,
       d.replication_lag_bytes, d.archive_lag_bytes,
       d.failed_logins AS failed_logins_last_hour, d.lockouts AS lockouts_last_hour,
       d.job_failures AS job_failures_last_hour, d.backup_age_hours,
       d.database_size
FROM d
WHERE (d.p).taken_at IS NOT NULL AND d.taken_at > (d.p).taken_at;

-- Estimated bloat of the largest tables: their size against what their rows would take
-- packed at the table's fillfactor (row widths from pg_statistic, which warden_monitor
-- cannot read: hence SECURITY DEFINER; only sizes and widths leave it, never values).
-- An estimate in the manner of check_postgres and PgHero: tables without statistics
-- (never analyzed) are left out.
CREATE FUNCTION warden.dashboard_bloat(max_rows integer DEFAULT 20)
RETURNS TABLE(relation regclass, table_bytes bigint, expected_bytes bigint, bloat_bytes bigint,
              bloat_pct numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH t AS (
    SELECT c.oid, c.relpages, c.reltuples,
           coalesce((SELECT (regexp_match(o, '^fillfactor=(\d+)$'))[1]::numeric
                     FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
           (SELECT sum(st.stawidth) FROM pg_statistic st
            WHERE st.starelid = c.oid AND NOT st.stainherit) AS row_width
    FROM pg_class c
    WHERE c.relkind IN ('r', 'm') AND c.oid >= 16384 AND c.reltuples > 0
      AND c.relnamespace <> 'pg_catalog'::regnamespace
    ORDER BY c.relpages DESC
    LIMIT greatest(max_rows, 0) * 5
), e AS (
    SELECT t.oid, pg_relation_size(t.oid) AS table_bytes,
           -- 24 bytes of tuple header and 4 of line pointer per row; 24 of page header.
           (ceil(t.reltuples * (t.row_width + 28)
                 / ((current_setting('block_size')::numeric - 24) * t.fillfactor / 100))
            * current_setting('block_size')::numeric)::bigint AS expected_bytes
    FROM t WHERE t.row_width IS NOT NULL
)
SELECT e.oid::regclass, e.table_bytes, e.expected_bytes,
       greatest(e.table_bytes - e.expected_bytes, 0),
       round(100.0 * greatest(e.table_bytes - e.expected_bytes, 0) / nullif(e.table_bytes, 0), 1)
FROM e
ORDER BY greatest(e.table_bytes - e.expected_bytes, 0) DESC, e.table_bytes DESC
LIMIT greatest(max_rows, 0)
$$;

GRANT SELECT ON warden.dashboard_series TO warden_monitor, warden_admin;
GRANT EXECUTE ON FUNCTION warden.dashboard_bloat(integer) TO warden_monitor, warden_admin;
