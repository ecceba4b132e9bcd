-- Health checks and user tables (issue 13). sessions_active counted the live rows of every
-- table under an expiry policy as pg_warden's owner, inside this SECURITY DEFINER
-- function; it now counts each as the table's owner, under SECURITY_RESTRICTED_OPERATION
-- (extension/table_owner_sql.cpp). Everything else here reads pg_warden's own tables and
-- the catalogs, with search_path pinned.

-- pg_warden's own state. Each component's table may be absent (a part not installed);
-- to_regclass decides at run time, and the static queries below are only planned when
-- their table exists. SECURITY DEFINER: warden_monitor has no rights on these tables.
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
        FOR p IN SELECT * FROM warden.expiry_policies ORDER BY tbl::text LOOP
            SELECT c.n INTO n
            FROM warden._owner_count(
                     p.tbl,
                     format('SELECT count(*), NULL::pg_catalog.timestamptz FROM %s WHERE %I >= $1',
                            p.tbl, p.expires_column)
                     || CASE WHEN p.mode = 'mark'
                             THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                             ELSE '' END,
                     now() - p.grace) c;
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
