-- pg_warden 1.0 -> 1.1. Released and frozen: never edit. Changes go in sql/1.2/*.sql.
\echo Use "ALTER EXTENSION pg_warden UPDATE" to load this file. \quit

-- ==== sql/1.1/10_checksum.sql
-- The migration checksum rule (see core/checksum.hpp): BOM stripped, CRLF/CR -> LF,
-- SHA-256, lowercase hex. The utility computes exactly the same value.
CREATE FUNCTION warden.checksum(script text) RETURNS text
AS 'MODULE_PATHNAME', 'warden_checksum'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

GRANT EXECUTE ON FUNCTION warden.checksum(text) TO warden_admin, warden_app, warden_monitor;

-- ==== sql/1.1/15_jobs.sql
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

-- ==== sql/1.1/20_ledger.sql
-- The migration ledger (see docs/migrations.md). Only pg_warden's C functions write these
-- tables: they switch to the tables' owner for the write and a guard trigger refuses any
-- other INSERT, UPDATE or DELETE, so the ledger says what really ran.

CREATE TABLE warden.migrations (
    version              text PRIMARY KEY CHECK (version ~ '^[0-9]+$'),
    -- Versions are digits compared as numbers: 2 < 10 and 001 is the same version as 1.
    version_number       numeric GENERATED ALWAYS AS (version::numeric) STORED UNIQUE,
    name                 text NOT NULL,
    checksum             text,            -- NULL only for a baseline marker
    checksum_algorithm   text,
    down_sql             text,
    down_checksum        text,
    state                text NOT NULL
                         CHECK (state IN ('applied', 'running', 'failed', 'rolled_back')),
    transactional        boolean NOT NULL DEFAULT true,
    baseline             boolean NOT NULL DEFAULT false,
    started_at           timestamptz,
    applied_at           timestamptz,
    execution_ms         double precision,
    applied_by_session   text,
    applied_by_current   text,
    application_name     text,
    client_addr          inet,
    transaction_id       xid8,
    -- The backend running a non-transactional migration, to tell "running" from
    -- "interrupted" (a crashed runner leaves the row behind).
    runner_pid           integer,
    runner_backend_start timestamptz,
    error                text
);
CREATE INDEX migrations_unfinished ON warden.migrations (version_number)
    WHERE state IN ('running', 'failed');
CREATE INDEX migrations_baseline ON warden.migrations (version_number) WHERE baseline;

-- Append-only: every apply, rollback, failure, baseline, repair and schema drift.
CREATE TABLE warden.migration_events (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    event             text NOT NULL CHECK (event IN ('applied', 'started', 'failed', 'rolled_back',
                                                     'baseline', 'repaired', 'drift')),
    version           text,
    name              text,
    checksum          text,
    execution_ms      double precision,
    detail            jsonb,
    session_user_name text NOT NULL DEFAULT session_user,
    current_user_name text,
    application_name  text DEFAULT pg_catalog.current_setting('application_name'),
    client_addr       inet DEFAULT pg_catalog.inet_client_addr(),
    transaction_id    xid8 DEFAULT pg_catalog.pg_current_xact_id(),
    pid               integer DEFAULT pg_catalog.pg_backend_pid()
);
CREATE INDEX migration_events_occurred_at ON warden.migration_events (occurred_at);

CREATE FUNCTION warden._ledger_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_ledger_guard' LANGUAGE C;
CREATE TRIGGER migrations_guard BEFORE INSERT OR UPDATE OR DELETE ON warden.migrations
    FOR EACH ROW EXECUTE FUNCTION warden._ledger_guard();
CREATE TRIGGER migrations_guard_truncate BEFORE TRUNCATE ON warden.migrations
    FOR EACH STATEMENT EXECUTE FUNCTION warden._ledger_guard();
CREATE TRIGGER migration_events_guard BEFORE INSERT OR UPDATE OR DELETE ON warden.migration_events
    FOR EACH ROW EXECUTE FUNCTION warden._ledger_guard();
CREATE TRIGGER migration_events_guard_truncate BEFORE TRUNCATE ON warden.migration_events
    FOR EACH STATEMENT EXECUTE FUNCTION warden._ledger_guard();

-- The ledger is data: pg_dump includes it. A superuser's pg_restore reloads it (the guard
-- lets a superuser INSERT; every UPDATE, DELETE and TRUNCATE outside pg_warden is refused).
SELECT pg_catalog.pg_extension_config_dump('warden.migrations', '');
SELECT pg_catalog.pg_extension_config_dump('warden.migration_events', '');
SELECT pg_catalog.pg_extension_config_dump('warden.migration_events_id_seq', '');

REVOKE ALL ON warden.migrations, warden.migration_events FROM PUBLIC;
GRANT SELECT ON warden.migrations, warden.migration_events TO warden_admin, warden_monitor;

-- Applies one migration in the caller's transaction, as the caller: 'applied' or 'skipped'.
CREATE FUNCTION warden.apply_migration(version text, name text, up_sql text,
                                       down_sql text DEFAULT NULL,
                                       allow_out_of_order boolean DEFAULT false)
RETURNS text AS 'MODULE_PATHNAME', 'warden_apply_migration' LANGUAGE C VOLATILE;

-- Runs the stored down scripts, newest first: the latest migration, or every one above
-- to_version. Returns the versions rolled back.
CREATE FUNCTION warden.rollback_migration(to_version text DEFAULT NULL)
RETURNS SETOF text AS 'MODULE_PATHNAME', 'warden_rollback_migration' LANGUAGE C VOLATILE;

-- Marks every version up to `version` as applied without running anything (an existing
-- database adopting migrations). Only on a ledger with nothing applied.
CREATE FUNCTION warden.baseline_migrations(version text, name text DEFAULT 'baseline')
RETURNS text AS 'MODULE_PATHNAME', 'warden_baseline_migrations' LANGUAGE C VOLATILE;

-- The non-transactional protocol (-- warden:no-transaction): begin_migration commits a
-- 'running' row and holds a session-level lock; the client runs the script statement by
-- statement at top level; finish_migration or fail_migration closes the row.
CREATE FUNCTION warden.begin_migration(version text, name text, up_sql text,
                                       down_sql text DEFAULT NULL,
                                       allow_out_of_order boolean DEFAULT false)
RETURNS text AS 'MODULE_PATHNAME', 'warden_begin_migration' LANGUAGE C VOLATILE;
CREATE FUNCTION warden.finish_migration(version text)
RETURNS text AS 'MODULE_PATHNAME', 'warden_finish_migration' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION warden.fail_migration(version text, error text)
RETURNS text AS 'MODULE_PATHNAME', 'warden_fail_migration' LANGUAGE C VOLATILE;

-- Resolves a failed or interrupted non-transactional migration: 'retry' makes it pending
-- again, 'applied' accepts what it did (after the operator completed it by hand).
CREATE FUNCTION warden.repair_migration(version text, resolution text DEFAULT 'retry')
RETURNS text AS 'MODULE_PATHNAME', 'warden_repair_migration' LANGUAGE C VOLATILE;

-- Records the failure of a transactional migration, after its transaction rolled back.
CREATE FUNCTION warden.record_migration_failure(version text, name text, error text)
RETURNS void AS 'MODULE_PATHNAME', 'warden_record_migration_failure' LANGUAGE C VOLATILE;

-- The statements of a script as the server's parser splits them, with their first line:
-- how a client runs a non-transactional script one statement at a time.
CREATE FUNCTION warden.split_script(script text)
RETURNS TABLE (line integer, statement text)
AS 'MODULE_PATHNAME', 'warden_split_script' LANGUAGE C STRICT STABLE;

-- Indexes left invalid (by a failed CREATE INDEX CONCURRENTLY, for instance).
CREATE FUNCTION warden.invalid_indexes() RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.indexrelid::regclass::text
    FROM pg_catalog.pg_index i
    WHERE NOT i.indisvalid
    ORDER BY 1
$$;

CREATE FUNCTION warden.current_version() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.version FROM warden.migrations m
    WHERE m.state = 'applied'
    ORDER BY m.version_number DESC
    LIMIT 1
$$;

-- One row per ledger entry; 'interrupted' is a running row whose backend is gone.
CREATE VIEW warden.migration_status AS
SELECT m.version,
       m.name,
       CASE WHEN m.state = 'running' AND NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_stat_activity a
                WHERE a.pid = m.runner_pid AND a.backend_start = m.runner_backend_start)
            THEN 'interrupted' ELSE m.state END AS state,
       m.baseline,
       m.transactional,
       m.down_sql IS NOT NULL AS has_down,
       m.applied_at,
       m.execution_ms,
       m.applied_by_session AS applied_by,
       m.application_name,
       m.checksum,
       m.error
FROM warden.migrations m
ORDER BY m.version_number;

-- DDL recorded while no migration was running, since the ledger last changed.
CREATE VIEW warden.schema_drift AS
SELECT e.occurred_at,
       e.detail ->> 'command' AS command,
       e.detail -> 'objects' AS objects,
       e.session_user_name,
       e.application_name
FROM warden.migration_events e
WHERE e.event = 'drift'
  AND e.id > coalesce((SELECT max(x.id) FROM warden.migration_events x
                       WHERE x.event IN ('applied', 'rolled_back', 'baseline', 'repaired')), 0)
ORDER BY e.id;

GRANT SELECT ON warden.migration_status, warden.schema_drift TO warden_admin, warden_monitor;

-- Compares the files (an array of {"version","name","checksum"}) with the ledger in one
-- call: ok, modified, missing_file, pending or failed per version, in version order.
CREATE FUNCTION warden.verify_migrations(files jsonb)
RETURNS TABLE (version text, name text, state text, file_checksum text, applied_checksum text)
AS 'MODULE_PATHNAME', 'warden_verify_migrations' LANGUAGE C STABLE;

-- The same, with the files as text lines "version<TAB>name<TAB>checksum": what `warden
-- migrate` sends, since parsing 10,000 lines costs a tenth of parsing the JSON.
CREATE FUNCTION warden.verify_migration_lines(lines text)
RETURNS TABLE (version text, name text, state text, file_checksum text, applied_checksum text)
AS 'MODULE_PATHNAME', 'warden_verify_migration_lines' LANGUAGE C STABLE;

CREATE FUNCTION warden._record_drift() RETURNS event_trigger
AS 'MODULE_PATHNAME', 'warden_record_drift' LANGUAGE C;
CREATE EVENT TRIGGER warden_drift_ddl ON ddl_command_end
    EXECUTE FUNCTION warden._record_drift();
CREATE EVENT TRIGGER warden_drift_drop ON sql_drop
    EXECUTE FUNCTION warden._record_drift();

GRANT EXECUTE ON FUNCTION
    warden.apply_migration(text, text, text, text, boolean),
    warden.rollback_migration(text),
    warden.baseline_migrations(text, text),
    warden.begin_migration(text, text, text, text, boolean),
    warden.finish_migration(text),
    warden.fail_migration(text, text),
    warden.repair_migration(text, text),
    warden.record_migration_failure(text, text, text),
    warden.split_script(text),
    warden.verify_migrations(jsonb),
    warden.verify_migration_lines(text)
TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.current_version(), warden.invalid_indexes()
TO warden_admin, warden_monitor;

-- ==== sql/1.1/30_expiry.sql
-- Session expiry: any table with an expiry timestamp can be registered; expired rows are
-- deleted or marked in small batches that commit on their own (CALL warden.expire_rows()).
-- Batches address rows by a primary or unique key, never by ctid, so partitioned tables
-- work, and they take rows with FOR UPDATE SKIP LOCKED, so an application updating a
-- session is never waited for: its row is simply left for the next batch.

CREATE TABLE warden.expiry_policies (
    tbl            regclass PRIMARY KEY,
    expires_column name        NOT NULL,
    expires_type   regtype     NOT NULL,
    mode           text        NOT NULL CHECK (mode IN ('delete', 'mark')),
    status_column  name,
    status_value   text,
    batch_size     integer     NOT NULL CHECK (batch_size BETWEEN 1 AND 1000000),
    grace          interval    NOT NULL DEFAULT '0' CHECK (grace >= '0'),
    key_columns    name[]      NOT NULL CHECK (cardinality(key_columns) >= 1),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    registered_by  name        NOT NULL DEFAULT session_user,
    CHECK ((mode = 'mark') = (status_column IS NOT NULL AND status_value IS NOT NULL))
);
SELECT pg_catalog.pg_extension_config_dump('warden.expiry_policies', '');

-- Backends keep copies of some tables (the lockout policy; session_valid's plans made from
-- the expiry policies): this statement trigger tells them all to drop their copies.
CREATE FUNCTION warden._cached_table_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_cached_table_changed'
LANGUAGE C;
CREATE TRIGGER expiry_policies_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON warden.expiry_policies
    FOR EACH STATEMENT EXECUTE FUNCTION warden._cached_table_changed();

-- One row per table per run; counters are updated in the same transaction as each batch,
-- so after a crash they match exactly what was committed.
CREATE TABLE warden.expiry_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl            regclass    NOT NULL,
    table_name     text        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    status         text        NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'budget_exhausted', 'failed')),
    rows_expired   bigint      NOT NULL DEFAULT 0,
    batches        integer     NOT NULL DEFAULT 0,
    duration       interval    GENERATED ALWAYS AS (finished_at - started_at) STORED,
    backlog_rows   bigint,
    backlog_oldest timestamptz,
    error          text,
    pid            integer     NOT NULL DEFAULT pg_backend_pid()
);
CREATE INDEX expiry_runs_tbl_started ON warden.expiry_runs (tbl, started_at DESC);
CREATE INDEX expiry_runs_started ON warden.expiry_runs (started_at);

-- Resolves and validates a registration; raises a clear error for each kind of mistake.
-- Returns the key columns batches will use.
CREATE FUNCTION warden._expiry_validate(tbl regclass, expires_column name, mode text,
                                        status_column name, status_value text,
                                        batch_size integer, grace interval,
                                        OUT key_columns name[], OUT expires_type regtype)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    kind "char";
    col record;
    needed text := CASE mode WHEN 'mark' THEN 'UPDATE' ELSE 'DELETE' END;
BEGIN
    IF tbl IS NULL OR expires_column IS NULL THEN
        RAISE EXCEPTION 'table and expiry column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF mode IS NULL OR mode NOT IN ('delete', 'mark') THEN
        RAISE EXCEPTION 'unknown expiry mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''delete'' to remove expired rows or ''mark'' to set a status column.';
    END IF;
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'batch size % is out of range', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a batch size between 1 and 1000000; small batches hold row locks briefly.';
    END IF;
    IF grace IS NULL OR grace < '0' THEN
        RAISE EXCEPTION 'grace period % is negative', coalesce(grace::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary and partitioned tables can be registered for expiry.';
    END IF;
    IF NOT pg_catalog.has_table_privilege(session_user, tbl, needed) THEN
        RAISE EXCEPTION 'role "%" may not % rows of table %', session_user, needed, tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Registration needs the privilege the expiry itself uses.';
    END IF;

    SELECT a.atttypid::regtype AS typ INTO col
    FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = expires_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', expires_column, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    IF col.typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'expiry column "%" has type %, not a timestamp', expires_column, col.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column.';
    END IF;
    expires_type := col.typ;

    IF mode = 'delete' THEN
        IF status_column IS NOT NULL OR status_value IS NOT NULL THEN
            RAISE EXCEPTION 'a status column and value are only used in mode ''mark'''
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF status_column IS NULL OR status_value IS NULL THEN
            RAISE EXCEPTION 'mode ''mark'' needs a status column and a status value'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example status_column => ''status'', status_value => ''expired''.';
        END IF;
        SELECT a.atttypid, a.atttypmod INTO col
        FROM pg_attribute a
        WHERE a.attrelid = tbl AND a.attname = status_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', status_column, tbl
                USING ERRCODE = 'undefined_column';
        END IF;
        BEGIN
            -- The status value must be valid input for the column's type (text, enum, ...).
            EXECUTE format('SELECT %L::%s', status_value, format_type(col.atttypid, col.atttypmod));
        EXCEPTION WHEN data_exception OR invalid_text_representation THEN
            RAISE EXCEPTION 'status value "%" is not valid for column "%" of type %',
                    status_value, status_column, format_type(col.atttypid, col.atttypmod)
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;

    -- Batches address rows through a key: the primary key, else the narrowest unique,
    -- non-partial index on plain NOT NULL columns.
    SELECT array_agg(a.attname ORDER BY k.ord) INTO key_columns
    FROM (
        SELECT i.indkey, i.indexrelid
        FROM pg_index i
        WHERE i.indrelid = tbl AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
          AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) n(attnum)
                          JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = n.attnum
                          WHERE NOT a.attnotnull)
        ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid
        LIMIT 1
    ) best
    CROSS JOIN LATERAL unnest(best.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum
    WHERE k.ord <= (SELECT indnkeyatts FROM pg_index WHERE indexrelid = best.indexrelid);
    IF key_columns IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key or unique key on NOT NULL columns', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Expiry batches address rows by key, never by ctid.',
                  HINT = 'Add a primary key to the table.';
    END IF;
END
$fn$;

CREATE FUNCTION warden.register_expiry(tbl regclass, expires_column name,
                                       mode text DEFAULT 'delete',
                                       status_column name DEFAULT NULL,
                                       status_value text DEFAULT NULL,
                                       batch_size integer DEFAULT 10000,
                                       grace interval DEFAULT '0')
RETURNS warden.expiry_policies
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v record;
    result warden.expiry_policies;
BEGIN
    SELECT * INTO v FROM warden._expiry_validate(tbl, expires_column, mode, status_column,
                                                 status_value, batch_size, grace);
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = tbl AND a.attname = expires_column) THEN
        RAISE WARNING 'no index on %(%) leads with the expiry column', tbl, expires_column
            USING HINT = 'Each batch then scans the table; create an index on the expiry column.';
    END IF;
    INSERT INTO warden.expiry_policies AS p
           (tbl, expires_column, expires_type, mode, status_column, status_value, batch_size,
            grace, key_columns)
    VALUES (tbl, expires_column, v.expires_type, mode, status_column, status_value, batch_size,
            grace, v.key_columns)
    ON CONFLICT ON CONSTRAINT expiry_policies_pkey DO UPDATE
       SET expires_column = EXCLUDED.expires_column, expires_type = EXCLUDED.expires_type,
           mode = EXCLUDED.mode, status_column = EXCLUDED.status_column,
           status_value = EXCLUDED.status_value, batch_size = EXCLUDED.batch_size,
           grace = EXCLUDED.grace, key_columns = EXCLUDED.key_columns,
           registered_at = now(), registered_by = session_user
    RETURNING p.* INTO result;
    RETURN result;
END
$fn$;

CREATE FUNCTION warden.unregister_expiry(tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM warden.expiry_policies p WHERE p.tbl = unregister_expiry.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not registered for expiry', tbl
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN true;
END
$fn$;

-- The predicate "expired and not yet handled" of a policy, as SQL text built only from
-- identifiers (quoted with %I) and literals (%L). $1 is the cutoff.
CREATE FUNCTION warden._expiry_predicate(p warden.expiry_policies) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT format('%I < $1::%s', p.expires_column, p.expires_type)
        || CASE WHEN p.mode = 'mark'
                THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                ELSE '' END
$fn$;

-- One batch: locks at most batch_size expired rows that nobody else holds, deletes or
-- marks them, and adds the count to the run. The caller commits.
CREATE FUNCTION warden._expire_batch(run_id bigint, cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.expiry_policies;
    keys text;
    pick text;
    n integer;
BEGIN
    SELECT pol.* INTO p
    FROM warden.expiry_runs r JOIN warden.expiry_policies pol ON pol.tbl = r.tbl
    WHERE r.id = run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'expiry run % has no policy', run_id USING ERRCODE = 'undefined_object';
    END IF;
    -- Never later than the policy allows, whatever the caller passes (this runs as owner).
    cutoff := least(cutoff, pg_catalog.now() - p.grace);
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl) THEN
        RAISE EXCEPTION 'the table with OID % no longer exists', p.tbl::oid
            USING ERRCODE = 'undefined_table',
                  HINT = format('Remove its policy with SELECT warden.unregister_expiry(%s).', p.tbl::oid);
    END IF;
    SELECT string_agg(format('%I', k), ', ') INTO keys FROM unnest(p.key_columns) k;
    pick := format('SELECT %s FROM %s WHERE %s ORDER BY %I LIMIT %s FOR UPDATE SKIP LOCKED',
                   keys, p.tbl, warden._expiry_predicate(p), p.expires_column, p.batch_size);
    -- A single-column key becomes "= ANY(array)", which always runs as an index scan.
    IF cardinality(p.key_columns) = 1 THEN
        IF p.mode = 'delete' THEN
            EXECUTE format('DELETE FROM %s WHERE %s = ANY (ARRAY(%s))', p.tbl, keys, pick)
                USING cutoff;
        ELSE
            EXECUTE format('UPDATE %s SET %I = %L WHERE %s = ANY (ARRAY(%s))',
                           p.tbl, p.status_column, p.status_value, keys, pick)
                USING cutoff;
        END IF;
    ELSE
        IF p.mode = 'delete' THEN
            EXECUTE format('WITH b AS (%s) DELETE FROM %s t USING b WHERE (%s) = (%s)',
                           pick, p.tbl,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(p.key_columns) k),
                           (SELECT string_agg(format('b.%I', k), ', ') FROM unnest(p.key_columns) k))
                USING cutoff;
        ELSE
            EXECUTE format('WITH b AS (%s) UPDATE %s t SET %I = %L FROM b WHERE (%s) = (%s)',
                           pick, p.tbl, p.status_column, p.status_value,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(p.key_columns) k),
                           (SELECT string_agg(format('b.%I', k), ', ') FROM unnest(p.key_columns) k))
                USING cutoff;
        END IF;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE warden.expiry_runs
       SET rows_expired = rows_expired + n, batches = batches + 1
     WHERE id = run_id;
    RETURN n;
END
$fn$;

-- Opens a run. Runs left 'running' by a session that is gone (a crash, a disconnect) or
-- by this very session (a cancelled CALL) are closed as failed first: their counts are
-- exactly what they committed.
CREATE FUNCTION warden._expiry_run_start(tbl regclass) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    UPDATE warden.expiry_runs r
       SET status = 'failed', finished_at = clock_timestamp(),
           error = 'interrupted: the session running it ended or cancelled it'
     WHERE r.status = 'running'
       AND (r.pid = pg_backend_pid()
            OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                           WHERE a.pid = r.pid AND a.backend_start <= r.started_at));
    INSERT INTO warden.expiry_runs (tbl, table_name) VALUES (tbl, tbl::text) RETURNING id;
$fn$;

-- Closes a run and records the backlog: expired rows still present and the oldest one.
CREATE FUNCTION warden._expiry_run_finish(run_id bigint, status text, error text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.expiry_policies;
    backlog bigint;
    oldest timestamptz;
BEGIN
    SELECT pol.* INTO p
    FROM warden.expiry_runs r JOIN warden.expiry_policies pol ON pol.tbl = r.tbl
    WHERE r.id = run_id;
    IF FOUND THEN
        BEGIN
            EXECUTE format('SELECT count(*), min(%I)::timestamptz FROM %s WHERE %s',
                           p.expires_column, p.tbl, warden._expiry_predicate(p))
                INTO backlog, oldest
                USING now() - p.grace;
        EXCEPTION WHEN OTHERS THEN
            error := coalesce(error || '; ', '') || 'backlog: ' || SQLERRM;
        END;
    END IF;
    UPDATE warden.expiry_runs r
       SET finished_at = clock_timestamp(), status = _expiry_run_finish.status,
           error = _expiry_run_finish.error, backlog_rows = backlog, backlog_oldest = oldest
     WHERE r.id = run_id;
END
$fn$;

-- The worker of both expire_rows procedures. Commits after every batch, so locks are held
-- for one batch only and progress survives a crash, and rests warden.expiry_batch_pause
-- between batches. Stops when the time budget (warden.expiry_time_budget) is spent; the
-- rest is left for the next run. A failing
-- table (lock_timeout, a dropped column, ...) is recorded and the next table goes on.
CREATE PROCEDURE warden._expire_tables(tables regclass[])
LANGUAGE plpgsql
AS $fn$
DECLARE
    deadline timestamptz := clock_timestamp()
        + pg_catalog.current_setting('warden.expiry_time_budget')::interval;
    pause double precision := extract(epoch FROM
        pg_catalog.current_setting('warden.expiry_batch_pause')::interval);
    t regclass;
    run bigint;
    cutoff timestamptz;
    size integer;
    n integer;
    failure text;
    final text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        SELECT pg_catalog.now() - p.grace, p.batch_size INTO cutoff, size
        FROM warden.expiry_policies p WHERE p.tbl = t;
        CONTINUE WHEN NOT FOUND;
        run := warden._expiry_run_start(t);
        COMMIT;
        failure := NULL;
        final := 'succeeded';
        LOOP
            IF pg_catalog.clock_timestamp() >= deadline THEN
                final := 'budget_exhausted';
                EXIT;
            END IF;
            BEGIN
                n := warden._expire_batch(run, cutoff);
            EXCEPTION WHEN OTHERS THEN
                failure := SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')';
            END;
            IF failure IS NOT NULL THEN
                final := 'failed';
                EXIT;
            END IF;
            COMMIT;
            EXIT WHEN n < size;
            IF pause > 0 THEN
                PERFORM pg_catalog.pg_sleep(pause);
            END IF;
        END LOOP;
        PERFORM warden._expiry_run_finish(run, final, failure);
        COMMIT;
    END LOOP;
END
$fn$;

-- CALL warden.expire_rows(): every registered table, within one time budget; then run
-- rows older than 30 days are pruned.
CREATE PROCEDURE warden.expire_rows()
LANGUAGE plpgsql
AS $fn$
DECLARE
    tables regclass[];
BEGIN
    SELECT coalesce(array_agg(p.tbl ORDER BY p.tbl::oid), '{}') INTO tables
    FROM warden.expiry_policies p;
    CALL warden._expire_tables(tables);
    PERFORM warden.prune_expiry_runs();
END
$fn$;

-- CALL warden.expire_rows('user_sessions'): one registered table.
CREATE PROCEDURE warden.expire_rows(tbl regclass)
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'CALL warden.expire_rows() runs every registered table.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM warden.expiry_policies p WHERE p.tbl = expire_rows.tbl) THEN
        RAISE EXCEPTION 'table % is not registered for expiry', tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it with warden.register_expiry().';
    END IF;
    CALL warden._expire_tables(ARRAY[tbl]);
END
$fn$;

-- For applications, one row at a time: is this row (session) still valid? Expired counts
-- as invalid as soon as the expiry time passes, before any cleanup ran; in mode 'mark' a
-- row carrying the status value is invalid; a missing row is invalid. Runs with the
-- caller's rights: the caller must be able to read the table. C++ (extension/expiry.cpp):
-- the query is prepared once per backend, table and key type.
CREATE FUNCTION warden.session_valid(tbl regclass, key_value anyelement) RETURNS boolean
AS 'MODULE_PATHNAME', 'warden_session_valid'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

-- The validity query of a policy (identifiers quoted with %I, the status value with %L):
-- $1 the key value, $2 the current time. Used by session_valid.
CREATE FUNCTION warden._session_valid_query(tbl regclass, OUT key_columns integer, OUT query text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT cardinality(p.key_columns),
           format('SELECT coalesce(%I > $2::%s, true)', p.expires_column, p.expires_type)
           || CASE WHEN p.mode = 'mark'
                   THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                   ELSE '' END
           || format(' FROM %s WHERE %I = $1', p.tbl, p.key_columns[1])
    FROM warden.expiry_policies p WHERE p.tbl = _session_valid_query.tbl
$fn$;

-- Policies with the outcome of their latest run, for psql and the health views.
CREATE VIEW warden.expiry_status AS
SELECT p.tbl, p.expires_column, p.mode, p.status_column, p.status_value, p.batch_size,
       p.grace, p.key_columns, r.started_at AS last_run_at, r.status AS last_status,
       r.rows_expired AS last_rows_expired, r.batches AS last_batches,
       r.duration AS last_duration, r.backlog_rows, r.backlog_oldest, r.error AS last_error
FROM warden.expiry_policies p
LEFT JOIN LATERAL (
    SELECT * FROM warden.expiry_runs x WHERE x.tbl = p.tbl ORDER BY x.started_at DESC LIMIT 1
) r ON true;

-- Keeps expiry_runs from growing without bound; CALL warden.expire_rows() calls it.
CREATE FUNCTION warden.prune_expiry_runs(keep interval DEFAULT '30 days') RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH gone AS (DELETE FROM warden.expiry_runs WHERE started_at < now() - keep RETURNING 1)
    SELECT count(*) FROM gone
$fn$;

GRANT SELECT ON warden.expiry_policies, warden.expiry_runs, warden.expiry_status
    TO warden_admin, warden_monitor;
GRANT SELECT ON warden.expiry_policies TO warden_app;
GRANT EXECUTE ON FUNCTION warden.register_expiry(regclass, name, text, name, text, integer, interval),
                          warden.unregister_expiry(regclass),
                          warden.prune_expiry_runs(interval),
                          warden._expiry_validate(regclass, name, text, name, text, integer, interval),
                          warden._expiry_predicate(warden.expiry_policies),
                          warden._expire_batch(bigint, timestamptz),
                          warden._expiry_run_start(regclass),
                          warden._expiry_run_finish(bigint, text, text)
    TO warden_admin;
GRANT EXECUTE ON PROCEDURE warden.expire_rows(), warden.expire_rows(regclass),
                           warden._expire_tables(regclass[])
    TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.session_valid(regclass, anyelement),
                          warden._session_valid_query(regclass)
    TO warden_app, warden_admin;

-- ==== sql/1.1/35_lockout.sql
-- Account locking for application accounts (principals are any text: e-mail, user id).
-- login_failed and login_succeeded are C++ (extension/lockout.cpp): plans prepared once
-- per backend, one row lock per principal taken by a single UPSERT, no lock at all while
-- a principal is already locked. Everything else here is plain SQL.

-- The policy: one row, changed with UPDATE by warden_admin.
CREATE TABLE warden.lockout_policy (
    id                 boolean  PRIMARY KEY DEFAULT true CHECK (id),
    threshold          integer  NOT NULL DEFAULT 5 CHECK (threshold >= 1),
    observation_window interval NOT NULL DEFAULT '15 minutes' CHECK (observation_window > '0'),
    lock_duration      interval NOT NULL DEFAULT '15 minutes' CHECK (lock_duration > '0'),
    -- Each further lockout doubles the duration, up to max_lock_duration.
    backoff            boolean  NOT NULL DEFAULT true,
    max_lock_duration  interval NOT NULL DEFAULT '24 hours' CHECK (max_lock_duration > '0'),
    -- After this many lockouts in a row (no success between) the lock is permanent.
    permanent_after    integer  CHECK (permanent_after >= 1),
    -- Failures one source address may cause per window before its attempts are refused
    -- and stop counting against accounts. NULL disables per-source throttling.
    source_threshold   integer  DEFAULT 20 CHECK (source_threshold >= 1),
    source_window      interval NOT NULL DEFAULT '15 minutes' CHECK (source_window > '0'),
    -- Sources never throttled (a load balancer, an office); failures still count.
    allowed_sources    cidr[]   NOT NULL DEFAULT '{}',
    -- How long cleanup_login_attempts keeps idle counters, known sources and events.
    attempt_retention  interval NOT NULL DEFAULT '7 days' CHECK (attempt_retention > '0'),
    known_source_retention interval NOT NULL DEFAULT '90 days' CHECK (known_source_retention > '0'),
    event_retention    interval NOT NULL DEFAULT '90 days' CHECK (event_retention > '0')
);
INSERT INTO warden.lockout_policy DEFAULT VALUES;

-- Inserting the policy row replaces the one there, so that pg_restore can bring back a
-- changed policy over the default row CREATE EXTENSION made.
CREATE FUNCTION warden._lockout_policy_replace() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM warden.lockout_policy p WHERE p.id = NEW.id;
    RETURN NEW;
END
$fn$;
CREATE TRIGGER lockout_policy_replace BEFORE INSERT ON warden.lockout_policy
    FOR EACH ROW EXECUTE FUNCTION warden._lockout_policy_replace();
SELECT pg_catalog.pg_extension_config_dump('warden.lockout_policy', '');

-- login_failed keeps a copy of the policy in each backend; any change invalidates them all.
CREATE TRIGGER lockout_policy_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON warden.lockout_policy
    FOR EACH STATEMENT EXECUTE FUNCTION warden._cached_table_changed();

-- Failure counters. Each principal has two: failures from sources it has logged in from
-- successfully before (known_source) and from everywhere else, so that an attacker
-- elsewhere cannot lock the owner out of their usual address.
CREATE TABLE warden.login_attempts (
    principal       text        NOT NULL,
    known_source    boolean     NOT NULL,
    failures        integer     NOT NULL DEFAULT 0,
    window_start    timestamptz,
    last_failure_at timestamptz,
    lockouts        integer     NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    PRIMARY KEY (principal, known_source)
);
-- No index besides the key: every failure updates the row, and an index on a changing
-- column would turn those HOT updates into index insertions. Cleanup scans instead.
ALTER TABLE warden.login_attempts SET (fillfactor = 80);

CREATE TABLE warden.login_known_sources (
    principal       text        NOT NULL,
    source          inet        NOT NULL,
    last_success_at timestamptz NOT NULL,
    PRIMARY KEY (principal, source)
);

CREATE TABLE warden.login_source_failures (
    source       inet        PRIMARY KEY,
    failures     integer     NOT NULL,
    window_start timestamptz NOT NULL
);

-- Every failure, lockout, throttled source and unlock, for the health views and audit.
CREATE TABLE warden.security_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- 'login_failed', 'locked', 'unlocked', 'source_throttled'. No CHECK constraint: it
    -- would be read back and prepared on every insert, on the login path.
    event_type   text        NOT NULL,
    principal    text,
    source       inet,
    failures     integer,
    locked_until timestamptz,
    actor        text        NOT NULL DEFAULT session_user,
    detail       text
);
CREATE INDEX security_events_occurred ON warden.security_events (occurred_at);
-- pg_dump keeps the events and the locks in force (an account locked for good stays
-- locked after a restore); counters and throttles are transient and are not dumped.
SELECT pg_catalog.pg_extension_config_dump('warden.security_events', '');
SELECT pg_catalog.pg_extension_config_dump('warden.security_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('warden.login_attempts', 'WHERE locked_until > now()');
CREATE INDEX security_events_principal ON warden.security_events (principal, occurred_at);

CREATE FUNCTION warden.login_failed(principal text, source inet DEFAULT NULL,
                                    OUT locked boolean, OUT locked_until timestamptz,
                                    OUT failures integer, OUT retry_after_seconds integer)
AS 'MODULE_PATHNAME', 'warden_login_failed'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION warden.login_succeeded(principal text, source inet DEFAULT NULL,
                                       OUT locked boolean, OUT locked_until timestamptz,
                                       OUT failures integer, OUT retry_after_seconds integer)
AS 'MODULE_PATHNAME', 'warden_login_succeeded'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Rejects what no login path should send; the C++ functions apply the same rule.
CREATE FUNCTION warden._check_principal(principal text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF principal IS NULL THEN
        RAISE EXCEPTION 'principal must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF principal = '' OR octet_length(principal) > 512 THEN
        RAISE EXCEPTION 'principal must be 1 to 512 bytes long'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$fn$;

-- Is the principal locked for a login from an unfamiliar source (or from source, when
-- given)? A throttled source counts as locked too.
CREATE FUNCTION warden.is_locked(principal text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM warden._check_principal(principal);
    RETURN EXISTS (SELECT 1 FROM warden.login_attempts a
                   WHERE a.principal = is_locked.principal AND NOT a.known_source
                     AND a.locked_until > now());
END
$fn$;

CREATE FUNCTION warden.is_locked(principal text, source inet) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.lockout_policy;
    known boolean;
BEGIN
    PERFORM warden._check_principal(principal);
    SELECT * INTO p FROM warden.lockout_policy;
    known := source IS NOT NULL AND EXISTS (
        SELECT 1 FROM warden.login_known_sources k
        WHERE k.principal = is_locked.principal AND k.source = is_locked.source);
    RETURN EXISTS (SELECT 1 FROM warden.login_attempts a
                   WHERE a.principal = is_locked.principal AND a.known_source = known
                     AND a.locked_until > now())
        OR (source IS NOT NULL AND p.source_threshold IS NOT NULL
            AND NOT source <<= ANY (p.allowed_sources::inet[])
            AND EXISTS (SELECT 1 FROM warden.login_source_failures s
                        WHERE s.source = is_locked.source AND s.failures > p.source_threshold
                          AND s.window_start > now() - p.source_window));
END
$fn$;

-- Administrator: lifts the lock and clears the counters (both of them). Returns whether
-- the principal was locked.
CREATE FUNCTION warden.unlock(principal text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    was_locked boolean;
BEGIN
    PERFORM warden._check_principal(principal);
    SELECT coalesce(bool_or(a.locked_until > now()), false) INTO was_locked
    FROM (SELECT * FROM warden.login_attempts x WHERE x.principal = unlock.principal FOR UPDATE) a;
    UPDATE warden.login_attempts a
       SET failures = 0, window_start = NULL, lockouts = 0, locked_until = NULL
     WHERE a.principal = unlock.principal;
    INSERT INTO warden.security_events (event_type, principal, detail)
    VALUES ('unlocked', principal, CASE WHEN was_locked THEN 'by administrator'
                                        ELSE 'by administrator; was not locked' END);
    RETURN was_locked;
END
$fn$;

-- Administrator: locks a principal for duration, or permanently (NULL), from every source.
CREATE FUNCTION warden.lock(principal text, duration interval DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    until timestamptz;
BEGIN
    PERFORM warden._check_principal(principal);
    IF duration IS NOT NULL AND duration <= '0' THEN
        RAISE EXCEPTION 'lock duration % is not positive', duration
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL (the default) for a permanent lock.';
    END IF;
    until := CASE WHEN duration IS NULL THEN 'infinity'::timestamptz
                  ELSE now() + duration END;
    INSERT INTO warden.login_attempts AS a (principal, known_source, locked_until)
    SELECT principal, k, until FROM (VALUES (false), (true)) v(k)
    ON CONFLICT ON CONSTRAINT login_attempts_pkey DO UPDATE SET locked_until = EXCLUDED.locked_until;
    INSERT INTO warden.security_events (event_type, principal, locked_until, detail)
    VALUES ('locked', principal, until, 'by administrator');
    RETURN until;
END
$fn$;

-- Maintenance job: drops counters idle for attempt_retention (unless locked), throttle
-- rows whose window ended, known sources and events past their retention.
CREATE PROCEDURE warden.cleanup_login_attempts()
LANGUAGE plpgsql
AS $fn$
BEGIN
    PERFORM warden._cleanup_login_attempts();
END
$fn$;

CREATE FUNCTION warden._cleanup_login_attempts() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.lockout_policy;
BEGIN
    SELECT * INTO p FROM warden.lockout_policy;
    DELETE FROM warden.login_attempts a
     WHERE coalesce(a.last_failure_at, '-infinity') < now() - p.attempt_retention
       AND (a.locked_until IS NULL OR a.locked_until < now());
    DELETE FROM warden.login_source_failures s
     WHERE s.window_start < now() - p.source_window;
    DELETE FROM warden.login_known_sources k
     WHERE k.last_success_at < now() - p.known_source_retention;
    DELETE FROM warden.security_events e
     WHERE e.occurred_at < now() - p.event_retention;
END
$fn$;

GRANT SELECT ON warden.lockout_policy, warden.security_events, warden.login_attempts
    TO warden_admin, warden_monitor;
GRANT UPDATE ON warden.lockout_policy TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.login_failed(text, inet), warden.login_succeeded(text, inet),
                          warden.is_locked(text), warden.is_locked(text, inet)
    TO warden_app, warden_admin;
GRANT EXECUTE ON FUNCTION warden.unlock(text), warden.lock(text, interval),
                          warden._cleanup_login_attempts()
    TO warden_admin;
GRANT EXECUTE ON FUNCTION warden._check_principal(text) TO warden_app, warden_admin;
GRANT EXECUTE ON PROCEDURE warden.cleanup_login_attempts() TO warden_admin;

-- ==== sql/1.1/40_audit.sql
-- Audit trail: a C++ row trigger (extension/audit_trigger.cpp) writes one row per change
-- into warden.audit_log, a table range-partitioned by time. Retention drops whole
-- partitions; see docs/audit.md.

-- One row of settings. Partition boundaries are aligned to multiples of
-- partition_interval counted from 2000-01-01 00:00 UTC (daily partitions start at UTC
-- midnight).
CREATE TABLE warden.audit_settings (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    partition_interval interval NOT NULL DEFAULT '1 day'
        CHECK (partition_interval >= interval '1 hour'
               AND date_part('month', partition_interval) = 0
               AND date_part('year', partition_interval) = 0),
    partitions_ahead   integer NOT NULL DEFAULT 7 CHECK (partitions_ahead BETWEEN 1 AND 366),
    retention          interval NOT NULL DEFAULT '365 days' CHECK (retention > interval '0'),
    trim_batch_size    integer NOT NULL DEFAULT 10000 CHECK (trim_batch_size > 0),
    trim_max_batches   integer NOT NULL DEFAULT 50 CHECK (trim_max_batches > 0),
    lock_timeout_ms    integer NOT NULL DEFAULT 100 CHECK (lock_timeout_ms BETWEEN 1 AND 60000)
);
INSERT INTO warden.audit_settings DEFAULT VALUES;

-- Tables under audit. A disabled table keeps its row (and its retention override) so
-- that its history stays readable and is still cleaned up on its own schedule.
-- relid is an OID rather than regclass so that pg_upgrade accepts the table.
CREATE TABLE warden.audit_tables (
    relid           oid PRIMARY KEY,
    schema_name     text NOT NULL,
    table_name      text NOT NULL,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    full_row        boolean NOT NULL DEFAULT false,
    operations      text[] NOT NULL DEFAULT '{INSERT,UPDATE,DELETE,TRUNCATE}',
    retention       interval CHECK (retention > interval '0'),
    enabled         boolean NOT NULL DEFAULT true,
    enabled_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

-- How far retention has trimmed each partition, per retention class, so that a
-- partition is not scanned again for rows it no longer has.
CREATE TABLE warden.audit_trim_progress (
    partition_oid  oid NOT NULL,
    retention      interval NOT NULL,
    trimmed_before timestamptz NOT NULL,
    PRIMARY KEY (partition_oid, retention)
);

-- The log. logged_at is the clock time of the write (the partition key); the statement
-- and transaction start times are kept beside it.
CREATE TABLE warden.audit_log (
    logged_at         timestamptz NOT NULL,
    op                text NOT NULL,
    relid             oid NOT NULL,
    schema_name       text NOT NULL,
    table_name        text NOT NULL,
    record_key        jsonb,
    old_values        jsonb,
    new_values        jsonb,
    excluded_changed  text[],
    statement_at      timestamptz NOT NULL,
    transaction_at    timestamptz NOT NULL,
    txid              xid8 NOT NULL,
    session_user_name text NOT NULL,
    current_user_name text NOT NULL,
    actor             text,
    application_name  text,
    client_addr       inet
) PARTITION BY RANGE (logged_at);

-- Catches any write whose time no partition covers (the maintenance job was down for
-- longer than partitions_ahead): an audited write never fails for lack of a partition.
-- audit_create_partitions moves such rows into proper partitions later.
CREATE TABLE warden.audit_log_default PARTITION OF warden.audit_log DEFAULT;

-- pg_dump keeps the events (partitions made later are not extension members and are
-- dumped anyway). The settings row and audit_tables are not dumped: CREATE EXTENSION
-- recreates the former, and the latter is keyed by OIDs that a restore changes (the
-- audit triggers themselves come back with their tables).
SELECT pg_catalog.pg_extension_config_dump('warden.audit_log_default', '');

-- The row trigger and the statement-level TRUNCATE trigger (one C function for both).
-- Arguments: 'full' or 'diff', then the names of the excluded columns (names survive a
-- dump and restore; a trigger naming a column that no longer exists refuses to write
-- rather than risk storing a renamed secret).
CREATE FUNCTION warden.audit_trigger() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_audit_trigger'
LANGUAGE C;

-- Refuses UPDATE, DELETE and TRUNCATE on the log unless the retention routine is running.
CREATE FUNCTION warden.audit_log_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_audit_log_guard'
LANGUAGE C;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON warden.audit_log
    FOR EACH ROW EXECUTE FUNCTION warden.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON warden.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON warden.audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_log_guard();

-- Lets this backend's retention routine past the guard until the transaction (or
-- subtransaction) ends. Not granted to anyone: only the SECURITY DEFINER routines below
-- (owned by the extension owner) call it.
CREATE FUNCTION warden._audit_retention_mode(on_off boolean) RETURNS void
AS 'MODULE_PATHNAME', 'warden_audit_retention_mode'
LANGUAGE C STRICT VOLATILE;

-- The partition the trigger would route a row logged at ts to (the code path the trigger
-- uses), for tests and for operators checking coverage.
CREATE FUNCTION warden.audit_partition_for(ts timestamptz) RETURNS regclass
AS 'MODULE_PATHNAME', 'warden_audit_partition_for'
LANGUAGE C STRICT STABLE;

-- Every partition with its bounds (the default partition has NULL bounds).
CREATE VIEW warden.audit_partitions AS
SELECT c.oid::regclass AS partition,
       b.m[1]::timestamptz AS range_start,
       b.m[2]::timestamptz AS range_end,
       c.reltuples::bigint AS estimated_rows
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
LEFT JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                          $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) AS b(m) ON true
WHERE i.inhparent = 'warden.audit_log'::regclass;

-- Adds the partition [lo, hi), moving into it any rows the default partition caught for
-- that range; returns false if another run made an overlapping one first. Takes the
-- parent's lock first (callers set a short lock_timeout and catch lock_not_available).
-- Runs as the caller of the SECURITY DEFINER routines below; not granted to anyone.
CREATE FUNCTION warden._audit_add_partition(lo timestamptz, hi timestamptz) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    part_name text := 'audit_log_p' || pg_catalog.to_char(lo AT TIME ZONE 'UTC',
        CASE WHEN (lo AT TIME ZONE 'UTC')::time = '00:00' THEN 'YYYYMMDD' ELSE 'YYYYMMDD_HH24MISS' END);
BEGIN
    -- Parent first, like every DDL on the log, so that no two of them deadlock.
    LOCK TABLE warden.audit_log IN ACCESS EXCLUSIVE MODE;
    -- Another run may have created it while this one waited for the lock.
    IF EXISTS (SELECT FROM warden.audit_partitions p WHERE p.range_start < hi AND p.range_end > lo) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT FROM warden.audit_log_default WHERE logged_at >= lo AND logged_at < hi) THEN
        EXECUTE pg_catalog.format('CREATE TABLE warden.%I (LIKE warden.audit_log)', part_name);
        PERFORM warden._audit_retention_mode(true);
        EXECUTE pg_catalog.format(
            'WITH moved AS (DELETE FROM warden.audit_log_default WHERE logged_at >= $1 AND logged_at < $2 RETURNING *)
             INSERT INTO warden.%I SELECT * FROM moved', part_name) USING lo, hi;
        PERFORM warden._audit_retention_mode(false);
        EXECUTE pg_catalog.format('ALTER TABLE warden.audit_log ATTACH PARTITION warden.%I FOR VALUES FROM (%L) TO (%L)',
                                  part_name, lo, hi);
    ELSE
        EXECUTE pg_catalog.format('CREATE TABLE warden.%I PARTITION OF warden.audit_log FOR VALUES FROM (%L) TO (%L)',
                                  part_name, lo, hi);
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON warden.%I
         FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_log_guard()', part_name);
    RETURN true;
END
$fn$;

-- Creates the partitions covering now .. now + partitions_ahead intervals, and one for
-- each range for which the default partition caught rows (those rows move into it).
-- Returns the number of partitions created. A busy log (the parent's lock not granted
-- within lock_timeout_ms) is left for the next run.
CREATE FUNCTION warden.audit_create_partitions() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $fn$
DECLARE
    s          warden.audit_settings;
    origin     constant timestamptz := '2000-01-01 00:00:00+00';
    lo         timestamptz;
    hi         timestamptz;
    target     timestamptz;
    covered_hi timestamptz;
    created    integer := 0;
BEGIN
    SELECT * INTO STRICT s FROM warden.audit_settings;
    PERFORM pg_catalog.set_config('lock_timeout', s.lock_timeout_ms || 'ms', true);

    FOR lo IN SELECT DISTINCT pg_catalog.date_bin(s.partition_interval, d.logged_at, origin)
              FROM warden.audit_log_default d ORDER BY 1 LOOP
        CONTINUE WHEN EXISTS (SELECT FROM warden.audit_partitions p WHERE p.range_start <= lo AND lo < p.range_end);
        hi := coalesce((SELECT min(p.range_start) FROM warden.audit_partitions p
                        WHERE p.range_start > lo AND p.range_start < lo + s.partition_interval),
                       lo + s.partition_interval);
        BEGIN
            IF warden._audit_add_partition(lo, hi) THEN
                created := created + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; partitions left for the next run';
            RETURN created;
        END;
    END LOOP;

    lo := pg_catalog.date_bin(s.partition_interval, pg_catalog.now(), origin);
    target := pg_catalog.now() + s.partition_interval * s.partitions_ahead;
    WHILE lo < target LOOP
        SELECT p.range_end INTO covered_hi FROM warden.audit_partitions p
        WHERE p.range_start <= lo AND lo < p.range_end;
        IF FOUND THEN
            lo := covered_hi;
            CONTINUE;
        END IF;
        hi := coalesce((SELECT min(p.range_start) FROM warden.audit_partitions p
                        WHERE p.range_start > lo AND p.range_start < lo + s.partition_interval),
                       lo + s.partition_interval);
        BEGIN
            IF warden._audit_add_partition(lo, hi) THEN
                created := created + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; partitions left for the next run';
            RETURN created;
        END;
        lo := hi;
    END LOOP;
    RETURN created;
END
$fn$;

-- Removes audit rows older than their retention: the per-table override, else the
-- retention given here, else warden.audit_settings.retention. Partitions straddling a
-- cutoff (and the default partition) are trimmed first, by DELETE in bounded batches,
-- without any lock on the parent beyond an ordinary writer's. Then partitions whose every
-- row is expired are detached and dropped under locks taken parent first with a short
-- lock_timeout: a busy log is retried on the next run instead of waited for.
-- Returns the number of rows removed (for dropped partitions, as counted by their
-- statistics).
CREATE FUNCTION warden.cleanup_audit(retention interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $fn$
DECLARE
    s          warden.audit_settings;
    v_now      constant timestamptz := pg_catalog.now();
    v_default  interval;
    longest    interval;
    shortest   interval;
    p          record;
    r          interval;
    cutoff     timestamptz;
    doomed     regclass[] := '{}';
    n          bigint;
    removed    bigint := 0;
    batches    integer := 0;
BEGIN
    IF retention IS NOT NULL AND retention <= interval '0' THEN
        RAISE EXCEPTION 'retention must be a positive interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL to use warden.audit_settings.retention.';
    END IF;
    SELECT * INTO STRICT s FROM warden.audit_settings;
    PERFORM pg_catalog.set_config('lock_timeout', s.lock_timeout_ms || 'ms', true);
    v_default := coalesce(retention, s.retention);
    SELECT greatest(v_default, max(t.retention)), least(v_default, min(t.retention))
      INTO longest, shortest FROM warden.audit_tables t;

    -- Straddling partitions: some rows expired, not all. They are trimmed per retention
    -- class (the default and each override); a partition already trimmed up to a class's
    -- cutoff is not scanned again for it.
    DELETE FROM warden.audit_trim_progress g
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = g.partition_oid);
    PERFORM warden._audit_retention_mode(true);
    FOR p IN SELECT * FROM warden.audit_partitions
             WHERE range_start IS NULL
                OR (range_start < v_now - shortest AND range_end > v_now - longest)
             ORDER BY range_start NULLS FIRST LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_inherits WHERE inhrelid = p.partition);
        FOR r IN SELECT DISTINCT c.x FROM (SELECT v_default UNION ALL SELECT t.retention FROM warden.audit_tables t
                                           WHERE t.retention IS NOT NULL) AS c(x) LOOP
            cutoff := v_now - r;
            CONTINUE WHEN p.range_start >= cutoff;
            CONTINUE WHEN p.range_start IS NOT NULL AND EXISTS (
                SELECT FROM warden.audit_trim_progress g
                WHERE g.partition_oid = p.partition::oid AND g.retention = r
                  AND g.trimmed_before >= least(cutoff, p.range_end));
            LOOP
                EXIT WHEN batches >= s.trim_max_batches;
                EXECUTE pg_catalog.format(
                    'DELETE FROM %s WHERE ctid = ANY (ARRAY(
                         SELECT a.ctid FROM %s a LEFT JOIN warden.audit_tables t ON t.relid = a.relid
                         WHERE a.logged_at < $1 AND coalesce(t.retention, $2) = $3 LIMIT $4))',
                    p.partition, p.partition) USING cutoff, v_default, r, s.trim_batch_size;
                GET DIAGNOSTICS n = ROW_COUNT;
                removed := removed + n;
                IF n > 0 THEN
                    batches := batches + 1;
                END IF;
                IF n < s.trim_batch_size THEN
                    IF p.range_start IS NOT NULL THEN
                        INSERT INTO warden.audit_trim_progress AS g VALUES (p.partition, r, least(cutoff, p.range_end))
                        ON CONFLICT ON CONSTRAINT audit_trim_progress_pkey DO UPDATE SET trimmed_before = EXCLUDED.trimmed_before;
                    END IF;
                    EXIT;
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    PERFORM warden._audit_retention_mode(false);

    -- Whole partitions: every row in them is older than the longest retention. Their
    -- rows are counted from the statistics VACUUM keeps (exact when VACUUM last read the
    -- whole partition, as it does for a closed insert-only one; autovacuum does so by
    -- itself): counting by reading them all would cost what dropping partitions saves.
    -- A partition never vacuumed nor analyzed is counted by reading it (under the lock:
    -- nothing can drop it meanwhile).
    FOR p IN SELECT * FROM warden.audit_partitions
             WHERE range_end <= v_now - longest ORDER BY range_start LOOP
        doomed := doomed || p.partition;
    END LOOP;
    IF cardinality(doomed) > 0 THEN
        BEGIN
            LOCK TABLE warden.audit_log IN ACCESS EXCLUSIVE MODE;
            FOR i IN 1 .. cardinality(doomed) LOOP
                -- Another run may have dropped it while this one waited for the lock.
                CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_inherits
                                          WHERE inhrelid = doomed[i] AND inhparent = 'warden.audit_log'::regclass);
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', doomed[i]);
                SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END INTO n
                FROM pg_catalog.pg_class c WHERE c.oid = doomed[i];
                IF n IS NULL THEN
                    EXECUTE pg_catalog.format('SELECT count(*) FROM %s', doomed[i]) INTO n;
                END IF;
                EXECUTE pg_catalog.format('ALTER TABLE warden.audit_log DETACH PARTITION %s', doomed[i]);
                EXECUTE pg_catalog.format('DROP TABLE %s', doomed[i]);
                removed := removed + n;
            END LOOP;
            DELETE FROM warden.audit_trim_progress WHERE partition_oid = ANY (doomed::oid[]);
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; % expired partition(s) left for the next run',
                cardinality(doomed);
        END;
    END IF;
    RETURN removed;
END
$fn$;

-- The maintenance job: retention first (its trimming needs no lock on the parent), then
-- partitions ahead; both take the parent's lock last, only for DDL, and keep it to commit.
CREATE PROCEDURE warden.audit_maintenance()
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM warden.cleanup_audit();
    PERFORM warden.audit_create_partitions();
END
$fn$;

-- Sets the application actor (e.g. the user id of a web request) for the current
-- transaction; it is the warden.actor setting, which may also be SET directly.
CREATE FUNCTION warden.set_actor(actor text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pg_catalog.set_config('warden.actor', coalesce(actor, ''), true) $fn$;

-- Starts (or reconfigures) auditing of a table. Run it as the table's owner. Idempotent:
-- returns 'enabled', 'updated' or 'unchanged'.
CREATE FUNCTION warden.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}',
                                    full_row boolean DEFAULT false,
                                    operations text[] DEFAULT '{INSERT,UPDATE,DELETE,TRUNCATE}')
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    c        pg_catalog.pg_class;
    nsp      text;
    pk       text[];
    col      text;
    excl     text[] := '{}';
    ops      text[];
    row_ops  text[];
    n        int2;
    old      warden.audit_tables;
    args     text;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO STRICT c FROM pg_catalog.pg_class WHERE oid = tbl;
    nsp := (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = c.relnamespace);
    IF c.relkind <> 'r' THEN
        RAISE EXCEPTION '% is not an ordinary table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary tables can be audited (a partitioned table: audit its partitions).';
    END IF;
    IF c.relpersistence = 't' THEN
        RAISE EXCEPTION '% is a temporary table', tbl
            USING ERRCODE = 'feature_not_supported', DETAIL = 'Temporary tables are not audited.';
    END IF;
    IF nsp IN ('warden', 'pg_catalog', 'information_schema') OR nsp LIKE 'pg\_toast%' THEN
        RAISE EXCEPTION 'tables in schema % cannot be audited', nsp
            USING ERRCODE = 'feature_not_supported';
    END IF;

    ops := ARRAY(SELECT DISTINCT upper(o) FROM unnest(operations) o ORDER BY 1);
    IF operations IS NULL OR cardinality(ops) = 0
       OR NOT ops <@ ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'] OR array_position(ops, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'operations must be a non-empty subset of INSERT, UPDATE, DELETE, TRUNCATE'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('Got %s.', operations);
    END IF;

    SELECT array_agg(a.attname::text) INTO pk
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = tbl AND i.indisprimary;

    IF exclude_columns IS NULL OR array_position(exclude_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'exclude_columns must not be or contain NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH col IN ARRAY ARRAY(SELECT DISTINCT x FROM unnest(exclude_columns) x ORDER BY 1) LOOP
        SELECT attnum INTO n FROM pg_catalog.pg_attribute
        WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of % does not exist', col, tbl
                USING ERRCODE = 'undefined_column',
                      HINT = 'exclude_columns takes column names as they are stored (case-sensitive).';
        END IF;
        IF col = ANY (pk) THEN
            RAISE EXCEPTION 'column "%" is part of the primary key of % and cannot be excluded', col, tbl
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'The primary key identifies the row in record_key.';
        END IF;
        excl := excl || col;
    END LOOP;

    row_ops := ARRAY(SELECT o FROM unnest(ops) o WHERE o <> 'TRUNCATE');
    SELECT * INTO old FROM warden.audit_tables WHERE relid = tbl FOR UPDATE;
    IF FOUND AND old.enabled AND old.exclude_columns = excl AND old.full_row = enable_audit.full_row
       AND old.operations = ops
       AND (SELECT count(*) FROM pg_catalog.pg_trigger
            WHERE tgrelid = tbl AND tgname IN ('warden_audit', 'warden_audit_truncate'))
           = (CASE WHEN cardinality(row_ops) > 0 THEN 1 ELSE 0 END)
             + (CASE WHEN 'TRUNCATE' = ANY (ops) THEN 1 ELSE 0 END) THEN
        RETURN 'unchanged';
    END IF;

    FOR col IN SELECT tgname FROM pg_catalog.pg_trigger
               WHERE tgrelid = tbl AND tgname IN ('warden_audit', 'warden_audit_truncate') LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', col, tbl);
    END LOOP;
    args := pg_catalog.array_to_string(
        ARRAY[pg_catalog.quote_literal(CASE WHEN enable_audit.full_row THEN 'full' ELSE 'diff' END)]
        || ARRAY(SELECT pg_catalog.quote_literal(x) FROM unnest(excl) x), ', ');
    IF cardinality(row_ops) > 0 THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER warden_audit AFTER %s ON %s FOR EACH ROW EXECUTE FUNCTION warden.audit_trigger(%s)',
            pg_catalog.array_to_string(row_ops, ' OR '), tbl, args);
    END IF;
    IF 'TRUNCATE' = ANY (ops) THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER warden_audit_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_trigger(%s)',
            tbl, args);
    END IF;

    INSERT INTO warden.audit_tables AS t (relid, schema_name, table_name, exclude_columns, full_row, operations)
    VALUES (tbl, nsp, c.relname, excl, enable_audit.full_row, ops)
    ON CONFLICT (relid) DO UPDATE
        SET schema_name = EXCLUDED.schema_name, table_name = EXCLUDED.table_name,
            exclude_columns = EXCLUDED.exclude_columns,
            full_row = EXCLUDED.full_row, operations = EXCLUDED.operations,
            enabled = true, enabled_at = CASE WHEN t.enabled THEN t.enabled_at ELSE pg_catalog.now() END,
            disabled_at = NULL;

    IF pk IS NULL THEN
        RAISE NOTICE '% has no primary key: its events have record_key NULL and UPDATE stores the whole old row', tbl;
    END IF;
    PERFORM warden.audit_create_partitions();
    RETURN CASE WHEN old.relid IS NULL OR NOT old.enabled THEN 'enabled' ELSE 'updated' END;
END
$fn$;

-- Stops auditing a table; its history stays in warden.audit_log.
CREATE FUNCTION warden.disable_audit(tbl regclass) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    had_triggers boolean;
    trigger_name name;
BEGIN
    had_triggers := false;
    FOR trigger_name IN SELECT tgname FROM pg_catalog.pg_trigger
                        WHERE tgrelid = tbl AND tgname IN ('warden_audit', 'warden_audit_truncate') LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trigger_name, tbl);
        had_triggers := true;
    END LOOP;
    UPDATE warden.audit_tables SET enabled = false, disabled_at = pg_catalog.now()
    WHERE relid = tbl AND enabled;
    RETURN had_triggers;
END
$fn$;

-- A per-table retention override (NULL: back to the default).
CREATE FUNCTION warden.set_audit_retention(tbl regclass, retention interval) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    UPDATE warden.audit_tables t SET retention = set_audit_retention.retention WHERE t.relid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not audited', tbl
            USING ERRCODE = 'undefined_object', HINT = 'Call warden.enable_audit first.';
    END IF;
END
$fn$;

-- Reading the log.
CREATE VIEW warden.audit_recent AS
SELECT logged_at, op, schema_name, table_name, record_key, actor, current_user_name,
       application_name, client_addr, old_values, new_values, excluded_changed, txid
FROM warden.audit_log
WHERE logged_at >= pg_catalog.now() - interval '1 day'
ORDER BY logged_at DESC;

CREATE VIEW warden.audit_row_history AS
SELECT schema_name, table_name, record_key, logged_at, op, actor, current_user_name,
       old_values, new_values, excluded_changed, txid
FROM warden.audit_log
WHERE record_key IS NOT NULL;

CREATE FUNCTION warden.audit_history(tbl regclass, record_key jsonb)
RETURNS SETOF warden.audit_row_history
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT h.* FROM warden.audit_row_history h
    JOIN pg_catalog.pg_class c ON c.oid = tbl
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE h.schema_name = n.nspname::text
      AND h.table_name = c.relname::text AND h.record_key = audit_history.record_key
    ORDER BY h.logged_at, h.txid
$fn$;

CREATE VIEW warden.audit_daily_counts AS
SELECT (logged_at AT TIME ZONE 'UTC')::date AS day, schema_name, table_name,
       count(*) FILTER (WHERE op = 'INSERT') AS inserts,
       count(*) FILTER (WHERE op = 'UPDATE') AS updates,
       count(*) FILTER (WHERE op = 'DELETE') AS deletes,
       count(*) FILTER (WHERE op = 'TRUNCATE') AS truncates,
       count(*) AS total
FROM warden.audit_log
GROUP BY 1, 2, 3;

-- Privileges: the log is read by admins; monitors see counts only; nobody writes to it
-- but the trigger (which inserts below the privilege system) and the SECURITY DEFINER
-- routines above.
REVOKE ALL ON warden.audit_log, warden.audit_log_default, warden.audit_tables, warden.audit_settings,
    warden.audit_trim_progress FROM PUBLIC;
GRANT SELECT ON warden.audit_log, warden.audit_tables, warden.audit_settings, warden.audit_partitions,
                warden.audit_recent, warden.audit_row_history, warden.audit_daily_counts TO warden_admin;
GRANT INSERT, UPDATE ON warden.audit_tables TO warden_admin;
GRANT UPDATE ON warden.audit_settings TO warden_admin;
GRANT SELECT ON warden.audit_daily_counts, warden.audit_partitions TO warden_monitor;
GRANT EXECUTE ON FUNCTION warden.audit_trigger(), warden.enable_audit(regclass, text[], boolean, text[]),
    warden.disable_audit(regclass), warden.set_audit_retention(regclass, interval),
    warden.cleanup_audit(interval), warden.audit_create_partitions(),
    warden.audit_partition_for(timestamptz), warden.audit_history(regclass, jsonb) TO warden_admin;
GRANT EXECUTE ON PROCEDURE warden.audit_maintenance() TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.set_actor(text) TO warden_app, warden_admin;

-- ==== sql/1.1/70_backups.sql
-- Backups taken and verified by `warden backup` (the files live in the backup folder;
-- this is what the database knows of them, for the health views). The utility records
-- each backup and each verification or drill through the two functions below when the
-- extension is installed in the database it connects to.
CREATE TABLE warden.backups (
    id                text PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('physical', 'logical')),
    status            text NOT NULL CHECK (status IN ('completed', 'verified', 'verify_failed')),
    label             text,
    database          text,
    system_identifier text,
    start_lsn         pg_lsn,
    stop_lsn          pg_lsn,
    started_at        timestamptz,
    finished_at       timestamptz NOT NULL,
    verified_at       timestamptz,
    verify_detail     text,
    original_bytes    bigint,
    stored_bytes      bigint,
    details           jsonb NOT NULL DEFAULT '{}',
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backups_finished_at ON warden.backups (finished_at);
-- A logical backup of this database carries the history of its backups.
SELECT pg_catalog.pg_extension_config_dump('warden.backups', '');
GRANT SELECT ON warden.backups TO warden_admin, warden_monitor;

-- Records (or refreshes) a completed backup; a verification already recorded is kept.
CREATE FUNCTION warden.record_backup(backup_id text, kind text, status text,
                                     started_at timestamptz, finished_at timestamptz,
                                     original_bytes bigint, stored_bytes bigint,
                                     details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF backup_id IS NULL OR backup_id !~ '^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$' THEN
        RAISE EXCEPTION 'invalid backup ID %', coalesce(quote_literal(backup_id), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Backup IDs are UTC timestamps such as 20261123T031500Z.';
    END IF;
    IF kind IS NULL OR kind NOT IN ('physical', 'logical') THEN
        RAISE EXCEPTION 'invalid backup kind %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use physical or logical.';
    END IF;
    IF status IS DISTINCT FROM 'completed' THEN
        RAISE EXCEPTION 'a backup is recorded as completed, not %', coalesce(quote_literal(status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Verifications go through warden.record_backup_verification().';
    END IF;
    IF finished_at IS NULL THEN
        RAISE EXCEPTION 'finished_at is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO warden.backups AS b
        (id, kind, status, label, database, system_identifier, start_lsn, stop_lsn,
         started_at, finished_at, original_bytes, stored_bytes, details)
    VALUES (backup_id, kind, status, details ->> 'label', nullif(details ->> 'database', ''),
            details ->> 'system_identifier', nullif(details ->> 'start_lsn', '')::pg_lsn,
            nullif(details ->> 'stop_lsn', '')::pg_lsn, started_at, finished_at,
            original_bytes, stored_bytes, coalesce(details, '{}'))
    ON CONFLICT (id) DO UPDATE
        SET kind = excluded.kind, label = excluded.label, database = excluded.database,
            system_identifier = excluded.system_identifier, start_lsn = excluded.start_lsn,
            stop_lsn = excluded.stop_lsn, started_at = excluded.started_at,
            finished_at = excluded.finished_at, original_bytes = excluded.original_bytes,
            stored_bytes = excluded.stored_bytes, details = excluded.details,
            recorded_at = now();
END
$$;

-- Records the outcome of `warden backup verify` or `warden backup drill`.
CREATE FUNCTION warden.record_backup_verification(backup_id text, ok boolean,
                                                  verified_at timestamptz, detail text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ok IS NULL OR verified_at IS NULL THEN
        RAISE EXCEPTION 'ok and verified_at are required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE warden.backups b
       SET status = CASE WHEN ok THEN 'verified' ELSE 'verify_failed' END,
           verified_at = record_backup_verification.verified_at,
           verify_detail = detail
     WHERE b.id = backup_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown backup %', quote_literal(backup_id)
            USING ERRCODE = 'no_data_found', HINT = 'Record it with warden.record_backup() first.';
    END IF;
END
$$;

GRANT EXECUTE ON FUNCTION warden.record_backup(text, text, text, timestamptz, timestamptz, bigint, bigint, jsonb)
    TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.record_backup_verification(text, boolean, timestamptz, text) TO warden_admin;

-- The exact number of rows of a table in the current snapshot, as count(*) gives it, at a
-- fraction of the CPU (extension/row_count.cpp): `warden backup --logical` counts every
-- table beside the running pg_dump. NULL when it does not apply (a table access method
-- other than heap, or row-level security for the caller): use count(*) then. Not
-- SECURITY DEFINER: the caller needs SELECT on the table, as for count(*).
CREATE FUNCTION warden.count_rows(rel regclass) RETURNS bigint
AS 'MODULE_PATHNAME', 'warden_count_rows' LANGUAGE C STABLE STRICT;
GRANT EXECUTE ON FUNCTION warden.count_rows(regclass) TO warden_admin, warden_monitor;

-- ==== sql/1.1/80_health.sql
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

-- ==== sql/1.1/99_privileges.sql
-- Safety net, last in the script: no function of pg_warden stays executable by PUBLIC.
-- Each part grants what it means to grant to warden_admin, warden_app or warden_monitor.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA warden FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA warden FROM PUBLIC;
