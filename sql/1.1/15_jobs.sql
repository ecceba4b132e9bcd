-- Maintenance jobs: one job model, two drivers. The background worker and pg_cron (or
-- psql) both run `CALL warden.run_maintenance()`, which runs every due job through
-- `CALL warden.run_job(name)`; a session-level advisory lock per job keeps two drivers
-- from running one job at the same time. See docs/maintenance.md.

CREATE TABLE warden.jobs (
    id                   int GENERATED ALWAYS AS IDENTITY UNIQUE,
    name                 text PRIMARY KEY
                         CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    -- Schema-qualified name of a procedure without arguments; it may not exist yet
    -- (a job whose procedure is missing is recorded as skipped).
    procedure            text NOT NULL
                         CHECK (procedure ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'),
    schedule             interval NOT NULL CHECK (schedule >= interval '1 second'),
    enabled              boolean NOT NULL DEFAULT true,
    time_budget          interval NOT NULL DEFAULT interval '5 minutes'
                         CHECK (time_budget >= interval '1 second'),
    max_retries          int NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 100),
    retry_backoff        interval NOT NULL DEFAULT interval '10 seconds'
                         CHECK (retry_backoff >= interval '1 second'),
    history_retention    interval NOT NULL DEFAULT interval '14 days'
                         CHECK (history_retention >= interval '1 minute'),
    history_max_runs     int NOT NULL DEFAULT 1000 CHECK (history_max_runs >= 10),
    next_run_at          timestamptz NOT NULL DEFAULT now(),
    consecutive_failures int NOT NULL DEFAULT 0,
    last_run_at          timestamptz,
    last_success_at      timestamptz,
    builtin              boolean NOT NULL DEFAULT false,
    description          text
);
COMMENT ON TABLE warden.jobs IS
    'Maintenance jobs run by the pg_warden worker and by CALL warden.run_maintenance()';

CREATE TABLE warden.job_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id         int NOT NULL REFERENCES warden.jobs (id) ON DELETE CASCADE,
    job            text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    status         text NOT NULL
                   CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled',
                                     'crashed', 'skipped')),
    rows_affected  bigint,
    error_message  text,
    sqlstate       text,
    driver         text NOT NULL CHECK (driver IN ('worker', 'pg_cron', 'psql')),
    pid            int NOT NULL DEFAULT pg_backend_pid(),
    CHECK ((status = 'running') = (finished_at IS NULL))
);
-- The worker runs jobs as a superuser, so only a superuser chooses what a job calls:
-- others (warden_admin) may tune schedules, budgets and retries, or disable jobs.
CREATE FUNCTION warden._jobs_guard() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF (TG_OP = 'INSERT' OR NEW.procedure IS DISTINCT FROM OLD.procedure)
       AND NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                          WHERE r.rolname = pg_catalog.current_user()), false) THEN
        RAISE EXCEPTION 'only a superuser can add a maintenance job or change its procedure'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The background worker runs job procedures with superuser rights.',
                  HINT = 'Ask a superuser to run warden.schedule_job(...); you may change the schedule, budget, retries and enabled.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_guard BEFORE INSERT OR UPDATE ON warden.jobs
    FOR EACH ROW EXECUTE FUNCTION warden._jobs_guard();

-- Jobs added by users survive pg_dump; built-in rows come back with CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('warden.jobs', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('warden.jobs_id_seq', '');

CREATE INDEX job_runs_job_started ON warden.job_runs (job_id, started_at DESC);
CREATE INDEX job_runs_running ON warden.job_runs (job_id) WHERE status = 'running';

-- The built-in jobs. Procedures other than prune_job_runs come with other parts of
-- pg_warden; until they exist their runs are recorded as skipped. Each first runs one
-- interval after installation, not in the middle of CREATE EXTENSION's aftermath.
INSERT INTO warden.jobs (name, procedure, schedule, time_budget, builtin, description) VALUES
    ('expire_rows', 'warden.expire_rows', interval '1 minute', interval '5 minutes', true,
     'expire sessions and rows under warden.expiry_policies, in batches'),
    ('cleanup_login_attempts', 'warden.cleanup_login_attempts', interval '10 minutes',
     interval '5 minutes', true, 'forget old failed-login counters and lockouts'),
    ('audit_maintenance', 'warden.audit_maintenance', interval '1 hour', interval '10 minutes',
     true, 'create audit partitions ahead and apply audit retention'),
    ('health_snapshot', 'warden.health_snapshot', interval '5 minutes', interval '1 minute',
     true, 'record a health snapshot'),
    ('prune_job_runs', 'warden.prune_job_runs', interval '1 hour', interval '5 minutes', true,
     'prune warden.job_runs by each job''s history_retention and history_max_runs');
UPDATE warden.jobs SET next_run_at = now() + schedule;

-- Key space of the per-job advisory locks: pg_try_advisory_lock(22340, jobs.id).
CREATE FUNCTION warden._job_lock_key() RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 22340 $$;

-- The argument-less procedure a job names ("schema.name"), NULL when there is none:
-- to_regproc alone gives NULL for an overloaded name, such as warden.expire_rows() beside
-- warden.expire_rows(regclass). A procedure whose arguments all have defaults is found
-- by to_regproc when its name is not overloaded.
CREATE FUNCTION warden._job_procedure(name text) RETURNS regproc
LANGUAGE sql STABLE
AS $$ SELECT coalesce(pg_catalog.to_regprocedure(name || '()')::oid,
                      pg_catalog.to_regproc(name)::oid)::regproc $$;

-- Runs left 'running' by a session that is gone (a crash, a killed backend, a restart):
-- such a run's session no longer holds the job's advisory lock.
CREATE FUNCTION warden._mark_crashed_runs() RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
    n int;
BEGIN
    WITH crashed AS (
        UPDATE warden.job_runs r
           SET status = 'crashed', finished_at = pg_catalog.clock_timestamp(),
               error_message = pg_catalog.format(
                   'the %s session (pid %s) ended while the job was running', r.driver, r.pid)
         WHERE r.status = 'running'
           AND NOT EXISTS (
               SELECT FROM pg_catalog.pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.pid = r.pid
                  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                     WHERE d.datname = pg_catalog.current_database())
                  AND l.classid = warden._job_lock_key()::oid
                  AND l.objid = r.job_id::oid AND l.objsubid = 2)
        RETURNING r.job_id
    )
    UPDATE warden.jobs j
       SET consecutive_failures = j.consecutive_failures + c.n
      FROM (SELECT job_id, count(*)::int AS n FROM crashed GROUP BY job_id) c
     WHERE j.id = c.job_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Which driver is running us: the pg_warden worker, a pg_cron job, or anything else.
CREATE FUNCTION warden._job_driver() RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
             WHEN a.backend_type = 'pg_warden maintenance' THEN 'worker'
             WHEN a.backend_type = 'pg_cron' OR a.application_name = 'pg_cron' THEN 'pg_cron'
             ELSE 'psql'
           END
      FROM pg_catalog.pg_stat_activity a
     WHERE a.pid = pg_catalog.pg_backend_pid()
$$;

-- First half of a run, committed before the job starts: takes the job's advisory lock,
-- resolves its procedure, and records a 'running' row. Returns no row when the job is
-- skipped (already running elsewhere, procedure missing); that is recorded too.
-- only_if_due (run_maintenance): a job that another driver ran, removed or disabled since
-- the list of due jobs was read is left alone, so a period's run never happens twice.
CREATE FUNCTION warden._job_begin(job_name text, only_if_due boolean,
                                  OUT run_id bigint, OUT call_sql text, OUT budget_ms bigint)
RETURNS SETOF record
LANGUAGE plpgsql
AS $$
DECLARE
    j warden.jobs;
    proc regproc;
    drv text := warden._job_driver();
    holder int;
BEGIN
    SELECT * INTO j FROM warden.jobs WHERE name = job_name;
    IF NOT FOUND THEN
        IF only_if_due THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'maintenance job "%" does not exist', job_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM warden.jobs lists the jobs.';
    END IF;

    IF NOT pg_catalog.pg_try_advisory_lock(warden._job_lock_key(), j.id) THEN
        SELECT l.pid INTO holder FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.classid = warden._job_lock_key()::oid AND l.objid = j.id::oid
           AND l.objsubid = 2
         LIMIT 1;
        INSERT INTO warden.job_runs (job_id, job, status, finished_at, error_message, driver)
        VALUES (j.id, j.name, 'skipped', pg_catalog.clock_timestamp(),
                pg_catalog.format('already running in another session (pid %s)',
                                  coalesce(holder::text, 'unknown')), drv);
        RETURN;
    END IF;

    IF only_if_due THEN
        -- A fresh look now that the lock is held (each statement takes a new snapshot).
        SELECT * INTO j FROM warden.jobs WHERE id = j.id;
        IF NOT FOUND OR NOT j.enabled OR j.next_run_at > pg_catalog.clock_timestamp() THEN
            PERFORM pg_catalog.pg_advisory_unlock(warden._job_lock_key(), j.id);
            RETURN;
        END IF;
    END IF;

    proc := warden._job_procedure(j.procedure);
    IF proc IS NULL OR NOT EXISTS (
           SELECT FROM pg_catalog.pg_proc p
            WHERE p.oid = proc AND p.prokind = 'p' AND p.pronargs = p.pronargdefaults) THEN
        INSERT INTO warden.job_runs (job_id, job, status, finished_at, error_message, driver)
        VALUES (j.id, j.name, 'skipped', pg_catalog.clock_timestamp(),
                pg_catalog.format('procedure %s() does not exist (or takes arguments); '
                                  'the job is skipped until it is installed', j.procedure),
                drv);
        UPDATE warden.jobs SET next_run_at = pg_catalog.now() + schedule, last_run_at = pg_catalog.now()
         WHERE id = j.id;
        PERFORM pg_catalog.pg_advisory_unlock(warden._job_lock_key(), j.id);
        RETURN;
    END IF;

    INSERT INTO warden.job_runs (job_id, job, status, driver)
    VALUES (j.id, j.name, 'running', drv)
    RETURNING id INTO run_id;
    -- Not due for the other driver while it runs.
    UPDATE warden.jobs SET next_run_at = pg_catalog.now() + schedule, last_run_at = pg_catalog.now()
     WHERE id = j.id;
    SELECT pg_catalog.format('CALL %I.%I()', n.nspname, p.proname)
      INTO call_sql
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid = proc;
    budget_ms := (extract(epoch FROM j.time_budget) * 1000)::bigint;
    RETURN NEXT;
END
$$;

-- Second half of a run: records the outcome, schedules the next run (with exponential
-- backoff after a failure, up to max_retries), and releases the job's advisory lock.
CREATE FUNCTION warden._job_finish(p_run_id bigint, p_status text, p_rows bigint,
                                   p_error text, p_sqlstate text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    j warden.jobs;
BEGIN
    UPDATE warden.job_runs
       SET status = p_status, finished_at = pg_catalog.clock_timestamp(),
           rows_affected = p_rows, error_message = p_error, sqlstate = p_sqlstate
     WHERE id = p_run_id;
    SELECT jb.* INTO j FROM warden.jobs jb JOIN warden.job_runs r ON r.job_id = jb.id
     WHERE r.id = p_run_id;
    IF p_status = 'succeeded' THEN
        UPDATE warden.jobs SET consecutive_failures = 0, last_success_at = pg_catalog.now()
         WHERE id = j.id;
    ELSE
        UPDATE warden.jobs
           SET consecutive_failures = consecutive_failures + 1,
               next_run_at = CASE
                   WHEN consecutive_failures + 1 <= max_retries THEN
                       pg_catalog.clock_timestamp()
                       + least(retry_backoff * (2 ^ least(consecutive_failures, 20)), schedule)
                   ELSE pg_catalog.clock_timestamp() + schedule
               END
         WHERE id = j.id;
    END IF;
    PERFORM pg_catalog.pg_advisory_unlock(warden._job_lock_key(), j.id);
END
$$;

-- Runs one job now, whether due or not. Must be a top-level CALL (psql, pg_cron, the
-- worker) because the run commits its bookkeeping around the job and the job itself may
-- commit per batch.
CREATE PROCEDURE warden.run_job(job_name text)
AS 'MODULE_PATHNAME', 'warden_run_job'
LANGUAGE C;

-- Runs every enabled job whose next_run_at has come; a failing job never stops the rest.
CREATE PROCEDURE warden.run_maintenance()
AS 'MODULE_PATHNAME', 'warden_run_maintenance'
LANGUAGE C;

-- A job may report how many rows it affected; run_job stores the sum in rows_affected.
CREATE FUNCTION warden.report_job_rows(n bigint) RETURNS void
AS 'MODULE_PATHNAME', 'warden_report_job_rows'
LANGUAGE C STRICT VOLATILE;

-- Adds or changes a job; validates what a CHECK constraint can't say clearly.
CREATE FUNCTION warden.schedule_job(job_name text, procedure text, every interval,
                                    time_budget interval DEFAULT interval '5 minutes',
                                    max_retries int DEFAULT 3,
                                    retry_backoff interval DEFAULT interval '10 seconds')
RETURNS warden.jobs
LANGUAGE plpgsql
AS $$
DECLARE
    j warden.jobs;
BEGIN
    IF job_name IS NULL OR job_name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid job name "%"', job_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use lower-case letters, digits and underscores, starting with a letter.';
    END IF;
    IF every IS NULL OR every < interval '1 second' THEN
        RAISE EXCEPTION 'invalid schedule interval "%" for job "%"', every, job_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The interval between runs must be at least 1 second.';
    END IF;
    IF time_budget IS NULL OR time_budget < interval '1 second' THEN
        RAISE EXCEPTION 'invalid time budget "%" for job "%"', time_budget, job_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The time budget must be at least 1 second.';
    END IF;
    IF warden._job_procedure(procedure) IS NULL THEN
        RAISE EXCEPTION 'procedure %() does not exist', procedure
            USING ERRCODE = 'undefined_function',
                  HINT = 'Give a schema-qualified procedure without arguments, e.g. app.nightly_cleanup.';
    END IF;
    INSERT INTO warden.jobs AS t (name, procedure, schedule, time_budget, max_retries, retry_backoff)
    VALUES (job_name, procedure, every, time_budget, max_retries, retry_backoff)
    ON CONFLICT (name) DO UPDATE
       SET procedure = EXCLUDED.procedure, schedule = EXCLUDED.schedule,
           time_budget = EXCLUDED.time_budget, max_retries = EXCLUDED.max_retries,
           retry_backoff = EXCLUDED.retry_backoff
    RETURNING t.* INTO j;
    RETURN j;
END
$$;

-- Removes a job and its history; built-in jobs can only be disabled.
CREATE FUNCTION warden.unschedule_job(job_name text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF EXISTS (SELECT FROM warden.jobs WHERE name = job_name AND builtin) THEN
        RAISE EXCEPTION 'job "%" is built in and cannot be removed', job_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('UPDATE warden.jobs SET enabled = false WHERE name = %L;', job_name);
    END IF;
    DELETE FROM warden.jobs WHERE name = job_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'maintenance job "%" does not exist', job_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM warden.jobs lists the jobs.';
    END IF;
END
$$;

-- The job history stays bounded: older than each job's history_retention, or beyond its
-- newest history_max_runs, goes. Runs still 'running' are never pruned.
CREATE PROCEDURE warden.prune_job_runs()
LANGUAGE plpgsql
AS $$
DECLARE
    old_runs bigint;
    extra_runs bigint;
BEGIN
    DELETE FROM warden.job_runs r
     USING warden.jobs j
     WHERE r.job_id = j.id AND r.status <> 'running'
       AND r.started_at < pg_catalog.now() - j.history_retention;
    GET DIAGNOSTICS old_runs = ROW_COUNT;
    DELETE FROM warden.job_runs r
     WHERE r.id IN (SELECT x.id
                      FROM (SELECT r2.id, j.history_max_runs,
                                   pg_catalog.row_number() OVER (PARTITION BY r2.job_id
                                                                 ORDER BY r2.id DESC) AS rn
                              FROM warden.job_runs r2 JOIN warden.jobs j ON j.id = r2.job_id
                             WHERE r2.status <> 'running') x
                     WHERE x.rn > x.history_max_runs);
    GET DIAGNOSTICS extra_runs = ROW_COUNT;
    PERFORM warden.report_job_rows(old_runs + extra_runs);
END
$$;

-- The worker processes as the launcher sees them (empty without shared_preload_libraries).
CREATE FUNCTION warden.maintenance_workers(
    OUT role text, OUT pid int, OUT database name, OUT state text,
    OUT started_at timestamptz, OUT last_wake timestamptz, OUT restarts int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'warden_maintenance_workers'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW warden.maintenance_workers AS
    SELECT * FROM warden.maintenance_workers();

-- One row per job: its schedule, last run and failures, and this database's worker.
CREATE VIEW warden.maintenance_status AS
    SELECT j.name AS job, j.enabled, j.schedule, j.next_run_at, j.consecutive_failures,
           r.status AS last_status, r.started_at AS last_started_at,
           r.finished_at AS last_finished_at, r.driver AS last_driver,
           r.error_message AS last_error, j.last_success_at,
           w.pid AS worker_pid, w.state AS worker_state, w.last_wake AS worker_last_wake
      FROM warden.jobs j
      LEFT JOIN LATERAL (SELECT * FROM warden.job_runs x WHERE x.job_id = j.id
                          ORDER BY x.id DESC LIMIT 1) r ON true
      LEFT JOIN (SELECT * FROM warden.maintenance_workers() m
                  WHERE m.role = 'worker' AND m.database = pg_catalog.current_database()) w
             ON true;

GRANT SELECT, INSERT, UPDATE, DELETE ON warden.jobs, warden.job_runs TO warden_admin;
GRANT SELECT ON warden.jobs, warden.job_runs, warden.maintenance_status,
                warden.maintenance_workers TO warden_monitor, warden_admin;
GRANT EXECUTE ON FUNCTION warden._job_lock_key(), warden._mark_crashed_runs(), warden._job_procedure(text),
    warden._job_driver(), warden._job_begin(text, boolean),
    warden._job_finish(bigint, text, bigint, text, text),
    warden.report_job_rows(bigint),
    warden.schedule_job(text, text, interval, interval, int, interval),
    warden.unschedule_job(text) TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.maintenance_workers() TO warden_admin, warden_monitor;
GRANT EXECUTE ON PROCEDURE warden.run_job(text), warden.run_maintenance(),
    warden.prune_job_runs() TO warden_admin;
