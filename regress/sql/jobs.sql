-- Maintenance jobs: the job tables, run_job / run_maintenance from psql, retries with
-- backoff, time budgets, history pruning and bad input. The background worker itself is
-- tested by tests/t/05*_worker_*.pl. Test jobs are disabled so the worker of this
-- database never picks them up; run_job runs a job whether enabled or not.
CREATE EXTENSION pg_warden;

SELECT name, procedure, schedule, enabled, time_budget, max_retries, builtin
FROM warden.jobs ORDER BY id;
-- Built-in jobs first run one interval after installation.
SELECT count(*) AS due_right_after_install FROM warden.jobs WHERE next_run_at <= now();

CREATE TABLE jobs_log (note text, at timestamptz DEFAULT clock_timestamp());
-- Commits between batches, as warden.expire_rows does.
CREATE PROCEDURE public.jobs_ok() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs_log (note) VALUES ('batch 1');
    COMMIT;
    INSERT INTO jobs_log (note) VALUES ('batch 2');
    COMMIT;
    PERFORM warden.report_job_rows(2);
END $$;
CREATE PROCEDURE public.jobs_fail() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs_log (note) VALUES ('committed before the failure');
    COMMIT;
    RAISE EXCEPTION 'jobs_fail failed on purpose' USING ERRCODE = 'data_exception',
        DETAIL = 'second batch';
END $$;
CREATE PROCEDURE public.jobs_slow() LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(10);
END $$;

BEGIN;
SELECT (warden.schedule_job('jobs_ok', 'public.jobs_ok', '1 hour')).name;
SELECT (warden.schedule_job('jobs_fail', 'public.jobs_fail', '1 hour', max_retries => 2,
                            retry_backoff => '1 minute')).name;
SELECT (warden.schedule_job('jobs_slow', 'public.jobs_slow', '1 hour',
                            time_budget => '1 second')).name;
UPDATE warden.jobs SET enabled = false WHERE NOT builtin;
COMMIT;

-- A job that commits per batch runs through run_job; its row count is recorded.
CALL warden.run_job('jobs_ok');
SELECT note FROM jobs_log ORDER BY at;
SELECT job, status, rows_affected, error_message, driver, finished_at >= started_at AS finished
FROM warden.job_runs WHERE job = 'jobs_ok';

-- A failing job: a warning, a 'failed' run with the error, and a retry after 1 minute,
-- then 2 minutes; after max_retries it waits for its schedule (1 hour).
CALL warden.run_job('jobs_fail');
SELECT status, sqlstate, error_message FROM warden.job_runs WHERE job = 'jobs_fail';
SELECT note FROM jobs_log WHERE note LIKE 'committed%';
SELECT consecutive_failures,
       next_run_at - now() BETWEEN interval '55 seconds' AND interval '61 seconds' AS retry_in_1_min
FROM warden.jobs WHERE name = 'jobs_fail';
CALL warden.run_job('jobs_fail');
SELECT consecutive_failures,
       next_run_at - now() BETWEEN interval '115 seconds' AND interval '121 seconds' AS retry_in_2_min
FROM warden.jobs WHERE name = 'jobs_fail';
CALL warden.run_job('jobs_fail');
SELECT consecutive_failures, next_run_at - now() > interval '59 minutes' AS back_to_schedule
FROM warden.jobs WHERE name = 'jobs_fail';
-- A success resets the failure count.
UPDATE warden.jobs SET procedure = 'public.jobs_ok' WHERE name = 'jobs_fail';
CALL warden.run_job('jobs_fail');
SELECT consecutive_failures, last_success_at IS NOT NULL AS succeeded
FROM warden.jobs WHERE name = 'jobs_fail';

-- A job over its time budget is cancelled.
CALL warden.run_job('jobs_slow');
SELECT status, sqlstate, error_message, finished_at - started_at < interval '5 seconds' AS quick
FROM warden.job_runs WHERE job = 'jobs_slow';

-- The caller's own statement_timeout (like a cancel request) stops the whole CALL; the
-- job's run is recorded first.
SET statement_timeout = '300ms';
CALL warden.run_job('jobs_slow');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT status, error_message FROM warden.job_runs WHERE job = 'jobs_slow' ORDER BY id DESC LIMIT 1;

-- A job whose procedure does not exist (yet) is skipped, not an error.
INSERT INTO warden.jobs (name, procedure, schedule, enabled)
VALUES ('jobs_ghost', 'public.no_such_procedure', '1 hour', false);
CALL warden.run_job('jobs_ghost');
SELECT status, error_message FROM warden.job_runs WHERE job = 'jobs_ghost';

-- run_maintenance runs the enabled jobs that are due, and only those.
UPDATE warden.jobs SET next_run_at = now() + interval '1 hour';
UPDATE warden.jobs SET enabled = true, next_run_at = now() - interval '1 second'
WHERE name = 'jobs_ok';
UPDATE warden.jobs SET next_run_at = now() - interval '1 second' WHERE name = 'jobs_slow';
CALL warden.run_maintenance();
UPDATE warden.jobs SET enabled = false WHERE name = 'jobs_ok';
SELECT job, count(*) FROM warden.job_runs WHERE driver = 'psql' AND job LIKE 'jobs\_%'
GROUP BY job ORDER BY job;

-- One row per job in the status view.
SELECT job, enabled, last_status, consecutive_failures
FROM warden.maintenance_status WHERE job LIKE 'jobs\_%' ORDER BY job;

-- A 'running' run whose session is gone is marked crashed.
INSERT INTO warden.job_runs (job_id, job, status, driver, pid)
SELECT id, name, 'running', 'worker', 999999 FROM warden.jobs WHERE name = 'jobs_ok';
SELECT warden._mark_crashed_runs() AS crashed;
SELECT status, error_message FROM warden.job_runs WHERE pid = 999999;

-- History is pruned by age and by count per job.
UPDATE warden.jobs SET history_max_runs = 10 WHERE name = 'jobs_ghost';
INSERT INTO warden.job_runs (job_id, job, status, finished_at, driver)
SELECT id, name, 'skipped', now(), 'psql' FROM warden.jobs, generate_series(1, 25)
WHERE name = 'jobs_ghost';
INSERT INTO warden.job_runs (job_id, job, status, started_at, finished_at, driver)
SELECT id, name, 'succeeded', now() - interval '30 days', now() - interval '30 days', 'psql'
FROM warden.jobs WHERE name = 'jobs_ok';
CALL warden.run_job('prune_job_runs');
SELECT job, count(*) FROM warden.job_runs WHERE job IN ('jobs_ghost', 'jobs_ok')
GROUP BY job ORDER BY job;
SELECT status, rows_affected FROM warden.job_runs WHERE job = 'prune_job_runs';

-- The built-in expiry job names an overloaded procedure (expire_rows() and
-- expire_rows(regclass)): it runs the argument-less one rather than being skipped.
CALL warden.run_job('expire_rows');
SELECT status, error_message FROM warden.job_runs WHERE job = 'expire_rows';

-- Bad input.
CALL warden.run_job('no_such_job');
\echo :LAST_ERROR_SQLSTATE
CALL warden.run_job(NULL);
\echo :LAST_ERROR_SQLSTATE
BEGIN;
CALL warden.run_job('jobs_ok');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
DO $$ BEGIN CALL warden.run_maintenance(); END $$;
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('jobs_bad', 'public.jobs_ok', '0 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('jobs_bad', 'public.jobs_ok', '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('jobs_bad', 'public.jobs_ok', 'soon');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('jobs_bad', 'public.jobs_ok', '1 hour', time_budget => '0');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('Bad Name', 'public.jobs_ok', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('jobs_bad', 'public.no_such_procedure', '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- (terse: the failing row's detail holds a timestamp)
\set VERBOSITY terse
INSERT INTO warden.jobs (name, procedure, schedule) VALUES ('jobs_bad', 'public.jobs_ok', '-5 minutes');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT warden.unschedule_job('prune_job_runs');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.unschedule_job('no_such_job');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.unschedule_job('jobs_ghost');
SELECT count(*) AS ghost_runs_left FROM warden.job_runs WHERE job = 'jobs_ghost';

-- warden_admin tunes any job, but only a job's owner (or a superuser) chooses what it
-- calls, and a job runs as the role that adds it, which must be able to log in: not the
-- group role warden_admin itself. (regress/sql/security_jobs.sql has the rest.)
SET ROLE warden_admin;
UPDATE warden.jobs SET schedule = interval '2 hours', enabled = false WHERE name = 'jobs_ok';
SELECT name, schedule, enabled FROM warden.jobs WHERE name = 'jobs_ok';
UPDATE warden.jobs SET procedure = 'public.jobs_fail' WHERE name = 'jobs_ok';
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('jobs_admin', 'public.jobs_ok', '1 hour');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- warden_monitor reads the status but cannot run jobs.
SET ROLE warden_monitor;
SELECT count(*) > 0 AS can_read FROM warden.maintenance_status;
CALL warden.run_maintenance();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The worker's settings: reload-time only, checked on the way in.
SELECT name, boot_val, unit, context FROM pg_settings
WHERE name IN ('warden.maintenance_enabled', 'warden.maintenance_naptime', 'warden.databases')
ORDER BY name;
SET warden.maintenance_naptime = 5;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET warden.maintenance_naptime = 0;
\echo :LAST_ERROR_SQLSTATE
ALTER SYSTEM SET warden.databases = '"unterminated';
\echo :LAST_ERROR_SQLSTATE

DROP PROCEDURE public.jobs_ok(), public.jobs_fail(), public.jobs_slow();
DROP TABLE jobs_log;
DROP EXTENSION pg_warden;
