-- A fast first report (issue 19): `warden health` on a database with 10,000 tables and
-- 20,000 indexes answers in well under a quarter of a second even before the maintenance
-- worker has taken its first snapshot, and the report includes the custom checks.
--
-- What the first report used to pay for: the size of this database, which without a
-- snapshot of the last 15 minutes was summed file by file (pg_database_size: a stat() of
-- every file, tens of thousands of them) and that twice per report (the database_size
-- check and the databases section); and the ten oldest tables for wraparound, sorted after
-- computing every table's share of its freeze age. Nothing here runs with more rights than
-- before: no function below is SECURITY DEFINER.

-- Two passes over pg_class in C (extension/health_relations.cpp), each reading only the
-- fixed part of every row: the total of relpages, and the n relations with the oldest
-- relfrozenxid. The same in SQL costs a tuple deform and an expression per row of 50,000.
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
