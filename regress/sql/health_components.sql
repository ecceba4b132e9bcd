-- pg_warden's own state in the health checks, driven through each component's own API:
-- migrations, login failures and lockouts, session expiry, audit partitions, maintenance
-- jobs and verified backups.
CREATE EXTENSION pg_warden;

-- Migrations: one running (with the warning lowered to 0 minutes), then failed (critical).
SELECT warden.begin_migration('001', 'create t', 'CREATE TABLE health_mig (id int)');
UPDATE warden.health_thresholds SET warning = 0, critical = 60 WHERE check_name = 'migrations_running';
SELECT check_name, status, detail FROM warden.health_check()
WHERE check_name IN ('migrations_running', 'migrations_failed') ORDER BY 1;
UPDATE warden.health_thresholds SET warning = 5, critical = 15 WHERE check_name = 'migrations_running';
SELECT warden.fail_migration('001', 'boom');
SELECT check_name, status, detail FROM warden.health_check()
WHERE check_name IN ('migrations_running', 'migrations_failed') ORDER BY 1;

-- Failed logins and lockouts of the last hour: 12 failures (warning at 10), locking the
-- account on the way.
SELECT count(*) FROM (SELECT warden.login_failed('mallory@example.com') FROM generate_series(1, 12)) f;
-- The events are written outside the caller's transaction, a moment later: wait for them.
SELECT warden.lockout_flush() \gset
SELECT check_name, status, value, detail FROM warden.health_check()
WHERE check_name IN ('failed_logins', 'lockouts') ORDER BY 1;

-- Sessions: live rows of a table under an expiry policy.
CREATE TABLE health_sessions (id int PRIMARY KEY, expires_at timestamptz NOT NULL);
INSERT INTO health_sessions SELECT g, now() + (g - 3) * interval '1 hour' FROM generate_series(1, 10) g;
SELECT tbl FROM warden.register_expiry('health_sessions', 'expires_at');
UPDATE warden.health_thresholds SET warning = 5, critical = 9 WHERE check_name = 'sessions_active';
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'sessions_active';
-- A large table is counted up to a cap (ten times the highest level, at least 10,000 rows),
-- not in full on every poll; the detail says so.
INSERT INTO health_sessions SELECT g, now() + interval '1 day' FROM generate_series(11, 12010) g;
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'sessions_active';
DELETE FROM health_sessions WHERE id > 10;

-- Audit: partitions are judged once a table is under audit.
SELECT check_name, status, detail FROM warden.health_check() WHERE check_name = 'audit_partitions_ahead';
CREATE TABLE health_audited (id int PRIMARY KEY);
SELECT count(*) FROM (SELECT warden.enable_audit('health_audited')) e;
SELECT warden.audit_create_partitions() IS NOT NULL AS ran;
SELECT check_name, status, value::int >= 2 AS ahead FROM warden.health_check()
WHERE check_name = 'audit_partitions_ahead';

-- Maintenance jobs: a failed run in the last 24 hours.
INSERT INTO warden.job_runs (job_id, job, started_at, finished_at, status, driver)
SELECT id, name, now() - interval '5 minutes', now() - interval '4 minutes', 'failed', 'psql'
FROM warden.jobs WHERE name = 'health_snapshot';
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'job_failures';
SELECT check_name, status, value FROM warden.health_check() WHERE check_name = 'jobs_last_run';

-- Backups: none verified is critical; one verified 30 hours ago is a warning.
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'backup_age';
SELECT warden.record_backup('20261121T000000Z', 'physical', 'completed',
                            now() - interval '31 hours', now() - interval '30 hours', 100, 50);
SELECT warden.record_backup_verification('20261121T000000Z', true, now() - interval '29 hours');
SELECT check_name, status, value FROM warden.health_check() WHERE check_name = 'backup_age';

-- The DDL of this test ran outside migrations: the ledger recorded it as drift.
SELECT check_name, status, value::int > 0 AS recorded FROM warden.health_check()
WHERE check_name = 'migration_drift';

-- The monitor role sees all of it through health_check (SECURITY DEFINER underneath).
CREATE ROLE regress_health_component_watcher;
GRANT warden_monitor TO regress_health_component_watcher;
SET ROLE regress_health_component_watcher;
SELECT check_name, status FROM warden.health_check()
WHERE check_name IN (SELECT check_name FROM warden.health_thresholds WHERE category = 'warden')
ORDER BY 1;
RESET ROLE;

DROP TABLE health_sessions, health_audited;
DROP EXTENSION pg_warden CASCADE;
DROP ROLE regress_health_component_watcher;
