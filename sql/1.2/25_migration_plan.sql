-- Migration safety (see docs/migrations.md, "Migration safety"): the plan of a migration,
-- the policy `warden migrate up` judges it by, and the health check of the longest
-- ACCESS EXCLUSIVE holds.
--
-- Security: nothing here runs with the owner's rights. warden._plan_migration (C,
-- extension/ledger_plan.cpp) runs the caller's own script as the caller, in a
-- subtransaction that is always rolled back, and reads the catalogs and the policy on the
-- pinned path pg_catalog, pg_temp. The table_rewrite event trigger only notes a table's oid
-- in backend memory while a plan runs.

-- Limits on what one migration statement may do. A limit is `warn` (reported) or `refuse`
-- (`warden migrate up` applies nothing); `-- warden:allow rewrite|lock|scan` in a
-- migration lifts a refusal for that migration, and its applied event records it.
CREATE TABLE warden.migration_policy (
    rule        text PRIMARY KEY CHECK (rule IN ('access_exclusive_rows', 'access_exclusive_bytes',
                                                 'access_exclusive_ms', 'rewrite_bytes',
                                                 'validation_rows')),
    threshold   numeric NOT NULL CHECK (threshold >= 0),
    action      text NOT NULL CHECK (action IN ('warn', 'refuse')),
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL
);
INSERT INTO warden.migration_policy (rule, threshold, action, description) VALUES
('access_exclusive_rows',  1000000,    'warn',   'ACCESS EXCLUSIVE on a table above this many rows'),
('access_exclusive_bytes', 1073741824, 'warn',   'ACCESS EXCLUSIVE on a table above this many bytes'),
('access_exclusive_ms',    1000,       'warn',   'ACCESS EXCLUSIVE on a table with rows held longer than this (ms)'),
('rewrite_bytes',          104857600,  'refuse', 'a table rewrite above this many bytes'),
('validation_rows',        1000000,    'refuse', 'a validation scan under a blocking lock above this many rows');
GRANT SELECT ON warden.migration_policy TO warden_admin, warden_monitor;
GRANT UPDATE (threshold, action, enabled) ON warden.migration_policy TO warden_admin;

CREATE FUNCTION warden._plan_migration(version text, up_sql text, run boolean DEFAULT true)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'warden_plan_migration_facts' LANGUAGE C VOLATILE;

-- One row per statement of the migration: its line, the locks it took and how long they
-- were held (to the end of the migration), the tables it rewrote and scanned, the size
-- and row estimate of each table it touched, its duration here, and the findings with
-- their code, message, safe alternative and the policy's verdict. A transactional
-- migration really runs, as the caller, and is rolled back; a non-transactional one is
-- judged by its text (ran = false).
-- No SET search_path: the script must run on the caller's own path, as `up` runs it. The
-- body names everything with its schema instead.
CREATE FUNCTION warden.plan_migration(version text, up_sql text)
RETURNS TABLE (line integer, statement text, ran boolean, duration_ms double precision,
               locks jsonb, rewrites jsonb, scans jsonb, tables jsonb, findings jsonb,
               verdict text)
LANGUAGE sql VOLATILE
AS $$
SELECT (s OPERATOR(pg_catalog.->>) 'line')::pg_catalog.int4,
       s OPERATOR(pg_catalog.->>) 'statement',
       (s OPERATOR(pg_catalog.->>) 'ran')::pg_catalog.bool,
       (s OPERATOR(pg_catalog.->>) 'duration_ms')::pg_catalog.float8,
       s OPERATOR(pg_catalog.->) 'locks', s OPERATOR(pg_catalog.->) 'rewrites',
       s OPERATOR(pg_catalog.->) 'scans',
       (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                   'relation', t OPERATOR(pg_catalog.->) 'relation',
                   'rows', t OPERATOR(pg_catalog.->) 'rows',
                   'bytes', t OPERATOR(pg_catalog.->) 'bytes',
                   'new', t OPERATOR(pg_catalog.->) 'new')), '[]'::pg_catalog.jsonb)
        FROM pg_catalog.jsonb_array_elements(s OPERATOR(pg_catalog.->) 'tables') t),
       s OPERATOR(pg_catalog.->) 'findings', s OPERATOR(pg_catalog.->>) 'verdict'
FROM pg_catalog.jsonb_array_elements(warden._plan_migration(version, up_sql)) s
$$;

-- Notes, while a plan runs, which tables the server rewrites and why.
CREATE FUNCTION warden._plan_table_rewrite() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'warden_plan_table_rewrite' LANGUAGE C;
CREATE EVENT TRIGGER warden_plan_rewrite ON table_rewrite
    EXECUTE FUNCTION warden._plan_table_rewrite();

-- The migrations that held ACCESS EXCLUSIVE longest (from the statement that first took
-- it to the end of the migration), over the last 30 days: a health check in the shape of
-- warden._health_evaluate(), tuned and disabled like the others in warden.health_thresholds.
-- Its value is the longest hold, in ms.
INSERT INTO warden.health_thresholds
    (check_name, category, warning, critical, direction, unit, description) VALUES
('migration_lock_holds', 'warden', 1000, 10000, 'above', 'ms',
 'longest ACCESS EXCLUSIVE hold by a migration in the last 30 days');

CREATE FUNCTION warden._migration_lock_check()
RETURNS TABLE(check_name text, category text, status text, value numeric, warning numeric,
              critical numeric, unit text, detail text, applicable boolean, facts jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH holds AS (
    SELECT e.version, e.name, (e.detail->>'access_exclusive_ms')::numeric AS ms, e.occurred_at
    FROM warden.migration_events e
    WHERE e.event = 'applied' AND e.detail ? 'access_exclusive_ms'
      AND e.occurred_at > now() - interval '30 days'
), top AS (
    SELECT * FROM holds ORDER BY ms DESC, occurred_at DESC LIMIT 3
), measured AS (
    SELECT coalesce(round(max(top.ms), 1), 0) AS value,
           coalesce('longest ACCESS EXCLUSIVE holds: '
                    || string_agg(format('%s (%s) %s ms', top.version, top.name, round(top.ms)), ', '
                                  ORDER BY top.ms DESC),
                    'no migration held ACCESS EXCLUSIVE in the last 30 days') AS detail,
           jsonb_build_object('migrations', coalesce(jsonb_agg(jsonb_build_object(
               'version', top.version, 'name', top.name, 'access_exclusive_ms', top.ms,
               'applied_at', top.occurred_at) ORDER BY top.ms DESC), '[]')) AS facts
    FROM top
)
SELECT t.check_name, t.category,
       CASE WHEN m.value >= t.critical THEN 'critical'
            WHEN m.value >= t.warning THEN 'warning' ELSE 'ok' END,
       m.value, t.warning, t.critical, t.unit, m.detail, true, m.facts
FROM warden.health_thresholds t, measured m
WHERE t.check_name = 'migration_lock_holds' AND t.enabled
$$;

GRANT EXECUTE ON FUNCTION warden._plan_migration(text, text, boolean),
                          warden.plan_migration(text, text) TO warden_admin;
GRANT EXECUTE ON FUNCTION warden._migration_lock_check() TO warden_admin, warden_monitor;
