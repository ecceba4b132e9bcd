-- A login role that is only granted warden_monitor reads every health view and function
-- without superuser, and cannot change thresholds or write snapshots.
CREATE EXTENSION pg_warden;
CREATE ROLE regress_health_watcher LOGIN;
GRANT warden_monitor TO regress_health_watcher;
CREATE ROLE regress_health_admin LOGIN;
GRANT warden_admin TO regress_health_admin;
-- A sequence owned by someone else: pg_sequences alone would hide its position.
CREATE SEQUENCE health_private_seq MAXVALUE 10;
SELECT setval('health_private_seq', 9);

SET ROLE regress_health_watcher;
SELECT rolsuper FROM pg_roles WHERE rolname = current_user;
-- Every health view of schema warden can be read.
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_class c
             WHERE c.relnamespace = 'warden'::regnamespace AND c.relkind = 'v'
               AND c.relname LIKE 'health\_%'
             ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT count(*) FROM %s', v);
        RAISE NOTICE 'read %', v;
    END LOOP;
END
$$;
SELECT count(*) > 0 AS thresholds FROM warden.health_thresholds;
SELECT count(*) >= 0 AS snapshots FROM warden.health_snapshots;
SELECT sequence, last_value, pct_used FROM warden.health_sequences WHERE sequence = 'health_private_seq'::regclass;
SELECT check_name, status, value FROM warden.health_check() WHERE check_name = 'sequences';
SELECT count(*) FILTER (WHERE detail LIKE 'check failed%') AS failed_checks FROM warden.health_check();
SELECT warden.health_report()->>'status' IS NOT NULL AS report_has_status;
SELECT warden.metrics() LIKE '# HELP warden_health_status %' AS metrics;
SELECT count(*) FROM warden.health_slow_statements();

-- Read-only: no threshold changes, no snapshots.
UPDATE warden.health_thresholds SET warning = 1 WHERE check_name = 'sequences';
\echo :LAST_ERROR_SQLSTATE
CALL warden.health_snapshot();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- warden_admin edits the levels and takes snapshots, but cannot rename or add checks.
SET ROLE regress_health_admin;
UPDATE warden.health_thresholds SET warning = 50, critical = 60 WHERE check_name = 'sequences';
SELECT check_name, status FROM warden.health_check() WHERE check_name = 'sequences';
UPDATE warden.health_thresholds SET check_name = 'renamed' WHERE check_name = 'sequences';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO warden.health_thresholds (check_name, category, unit, description)
VALUES ('made_up', 'server', 'x', 'y');
\echo :LAST_ERROR_SQLSTATE
CALL warden.health_snapshot();
SELECT count(*) FROM warden.health_snapshots;
RESET ROLE;

-- Nothing of the health part is executable by PUBLIC.
SELECT p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'warden'::regnamespace AND p.proname LIKE '%health%'
  AND has_function_privilege('public', p.oid, 'EXECUTE')
  AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE a.grantee = 0);
-- SECURITY DEFINER functions run with a fixed search_path.
SELECT p.proname, p.proconfig FROM pg_proc p
WHERE p.pronamespace = 'warden'::regnamespace AND p.prosecdef AND p.proname LIKE '%health%'
ORDER BY 1;

DROP SEQUENCE health_private_seq;
DROP EXTENSION pg_warden CASCADE;
DROP ROLE regress_health_watcher;
DROP ROLE regress_health_admin;
