-- A fast first report (issue 19): `warden health` on a database with 10,000 tables and
-- 20,000 indexes costs the same whether or not the maintenance worker has taken a
-- snapshot yet (bench/health.sh, figures in docs/health.md), and the report includes the
-- custom checks.
--
-- What the first report used to pay for: the size of this database, which without a
-- snapshot of the last 15 minutes was summed file by file (pg_database_size: a stat() of
-- every file, tens of thousands of them) and that twice per report (the database_size
-- check and the databases section); and the ten oldest tables for wraparound, sorted after
-- computing every table's share of its freeze age. Nothing here runs with more rights than
-- before: the one SECURITY DEFINER function below, _health_components, was one in 1.1 and
-- keeps its pinned search_path; user tables are still counted as their owners.

-- Two passes over pg_class in C (extension/health_relations.cpp), each reading only the
-- fixed part of every row: the total of relpages, and the n relations with the oldest
-- relfrozenxid. In SQL the sum was a second seq scan per report, and the top ten a sort of
-- every table after computing its share of the freeze age.
CREATE FUNCTION warden._database_pages() RETURNS bigint
AS 'MODULE_PATHNAME', 'warden_database_pages' LANGUAGE C STABLE;
CREATE FUNCTION warden._oldest_tables(max_rows integer)
RETURNS TABLE(relid oid, xid_age integer, mxid_age integer)
AS 'MODULE_PATHNAME', 'warden_oldest_tables' LANGUAGE C STABLE STRICT ROWS 10;
GRANT EXECUTE ON FUNCTION warden._database_pages(), warden._oldest_tables(integer)
      TO warden_monitor, warden_admin;

-- The size of this database without summing its files: the newest snapshot of the last
-- 15 minutes (exact when it was taken), else the catalogs' estimate, relpages of every
-- relation times the block size, as of each relation's last VACUUM, ANALYZE or CREATE
-- INDEX (an order of magnitude: a table loaded since its last VACUUM counts too little).
CREATE FUNCTION warden._database_size_estimate(OUT size_bytes bigint, OUT source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
-- coalesce() calls _database_pages() only when no snapshot answers.
SELECT coalesce(s.database_size,
                warden._database_pages() * current_setting('block_size')::bigint),
       CASE WHEN s.database_size IS NOT NULL
            THEN format('snapshot of %s', to_char(s.taken_at, 'YYYY-MM-DD HH24:MI:SS TZ'))
            ELSE 'catalog estimate (relpages), no snapshot in the last 15 minutes' END
FROM (SELECT) one
LEFT JOIN LATERAL (SELECT h.database_size, h.taken_at FROM warden.health_snapshots h
                   WHERE h.taken_at > now() - interval '15 minutes'
                   ORDER BY h.taken_at DESC LIMIT 1) s ON true
$$;
GRANT EXECUTE ON FUNCTION warden._database_size_estimate() TO warden_monitor, warden_admin;

-- A database's size, as health_databases and metrics() show it: this database's from
-- _database_size_estimate(), other databases measured (their catalogs cannot be read
-- from here).
CREATE OR REPLACE FUNCTION warden._database_size(db oid) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN db = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
            THEN (SELECT e.size_bytes FROM warden._database_size_estimate() e)
            ELSE pg_database_size(db) END
$$;

-- The 1.1 measurements with one change: the database_size check says where its value
-- comes from (a snapshot, or "about" and the catalog estimate).
CREATE OR REPLACE FUNCTION warden._health_measure()
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
        SELECT 'database_size', z.size_bytes::numeric,
               format('%s%s (%s)', CASE WHEN z.source LIKE 'snapshot %' THEN '' ELSE 'about ' END,
                      pg_size_pretty(z.size_bytes), z.source), true
        FROM warden._database_size_estimate() z
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

-- The 1.1 report with two changes: the checks come from _health_evaluate_all(), so the
-- custom checks (warden.add_check) are in the report, its summary and its status
-- (marked "custom": true, as report_with_custom_checks marks them; that function still
-- works and now finds nothing to add); and the ten oldest tables for wraparound are a
-- top ten kept during one pass over pg_class (_oldest_tables), no longer a sort of every
-- table with its share of the freeze age computed.
CREATE OR REPLACE FUNCTION warden.health_report() RETURNS jsonb
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
               'detail', e.detail, 'applicable', e.applicable)
               || CASE WHEN NOT EXISTS (SELECT FROM warden.health_thresholds t
                                        WHERE t.check_name = e.check_name)
                       THEN jsonb_build_object('custom', true) ELSE '{}' END), '[]'),
           warden._health_overall(array_agg(e.status), array_agg(e.applicable)),
           jsonb_build_object('ok', count(*) FILTER (WHERE e.status = 'ok'),
                              'warning', count(*) FILTER (WHERE e.status = 'warning'),
                              'critical', count(*) FILTER (WHERE e.status = 'critical'),
                              'unknown', count(*) FILTER (WHERE e.status = 'unknown'))
    INTO facts, checks, overall, summary
    FROM warden._health_evaluate_all() e;

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
                              FROM (SELECT o.relid::regclass AS relation, o.xid_age, o.mxid_age
                                    FROM warden._oldest_tables(10) o) w)),
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

-- pg_warden's own state. Each component's table may be absent (a part not installed);
-- to_regclass decides at run time. SECURITY DEFINER: warden_monitor has no rights on
-- these tables. sessions_active counts each table under an expiry policy as that table's
-- owner under SECURITY_RESTRICTED_OPERATION (_owner_count, extension/table_owner_sql.cpp),
-- never as pg_warden's owner, and only up to a cap instead of every live row on every
-- poll; the cap is a number formatted by %s.
CREATE OR REPLACE FUNCTION warden._health_components()
RETURNS TABLE(check_name text, value numeric, detail text, applicable boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    n bigint;
    total bigint := 0;
    per_table text[] := '{}';
    cap bigint;
    capped boolean := false;
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
        -- Counted as each table's owner (warden._owner_count), never as pg_warden's: the
        -- owner's code (a domain's CHECK on the status value, a column type's operators)
        -- runs with the owner's rights only.
        -- Counted up to a cap, ten times the highest level in force (at least 10,000 rows):
        -- a poll every minute then never reads a table of millions of sessions in full,
        -- and the status is the same, since the cap lies beyond every level. A table that
        -- reaches the cap shows as "at least" in the detail.
        -- (A level beyond any table's size still gives a number: the cap stops at 10^12.)
        SELECT least(greatest(coalesce(greatest(t.warning, t.critical), 0) * 10, 10000), 1e12)::bigint INTO cap
        FROM warden.health_thresholds t WHERE t.check_name = 'sessions_active';
        cap := coalesce(cap, 10000);
        FOR p IN SELECT * FROM warden.expiry_policies ORDER BY tbl::text LOOP
            SELECT c.n INTO n
            FROM warden._owner_count(
                     p.tbl,
                     format('SELECT count(*), NULL::pg_catalog.timestamptz FROM (SELECT FROM %s WHERE %I >= $1',
                            p.tbl, p.expires_column)
                     || CASE WHEN p.mode = 'mark'
                             THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                             ELSE '' END
                     || format(' LIMIT %s) live', cap),
                     now() - p.grace) c;
            total := total + n;
            capped := capped OR n >= cap;
            per_table := per_table || format('%s %s%s', p.tbl, CASE WHEN n >= cap THEN 'at least ' ELSE '' END, n);
        END LOOP;
        RETURN QUERY
        SELECT 'sessions_active', total::numeric,
               CASE WHEN cardinality(per_table) = 0 THEN 'no table under an expiry policy'
                    ELSE array_to_string(per_table, ', ')
                         || CASE WHEN capped THEN format(' (counted up to %s rows a table)', cap) ELSE '' END END,
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
