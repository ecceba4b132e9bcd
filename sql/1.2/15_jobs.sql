-- Jobs run as the role that owns them (issue 13), as pg_cron's do. In 1.1 the worker ran
-- every job as a superuser, so only a superuser could add one; now the owner is recorded,
-- each job runs with its owner's rights under SECURITY_RESTRICTED_OPERATION
-- (extension/jobs.cpp), and anyone with warden_admin may add jobs that run as themselves.
-- Built-in jobs run as pg_warden's owner with search_path pinned. See docs/maintenance.md.

-- The role a job runs as. Existing jobs (added by a superuser in 1.1) get the owner of
-- the procedure they call: whoever could already change what the job does, and no more.
-- A job whose procedure does not exist, and every built-in job, gets pg_warden's owner.
ALTER TABLE warden.jobs ADD COLUMN owner regrole;
COMMENT ON COLUMN warden.jobs.owner IS
    'The role the job runs as: whoever added it (built-in jobs: pg_warden''s owner)';
UPDATE warden.jobs j
   SET owner = coalesce(
           CASE WHEN NOT j.builtin THEN
               (SELECT p.proowner FROM pg_catalog.pg_proc p
                 WHERE p.oid OPERATOR(pg_catalog.=) warden._job_procedure(j.procedure)::pg_catalog.oid)
           END,
           (SELECT e.extowner FROM pg_catalog.pg_extension e
             WHERE e.extname OPERATOR(pg_catalog.=) 'pg_warden'))::pg_catalog.regrole;
ALTER TABLE warden.jobs ALTER COLUMN owner SET NOT NULL;

-- Why a job must not run as run_as, or NULL when it may: its owner is gone or cannot log
-- in (built-in jobs run as pg_warden's owner and are exempt), or its procedure belongs to
-- a role without run_as's rights, which could then change what runs with those rights.
-- A procedure that does not exist yet is no problem here (the run is skipped for that).
CREATE FUNCTION warden._job_run_problem(procedure text, run_as oid, builtin boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE
         WHEN r.oid IS NULL
         THEN format('its owner (role OID %s) no longer exists', run_as)
         WHEN NOT builtin AND NOT r.rolcanlogin
         THEN format('its owner %I cannot log in', r.rolname)
         WHEN p.oid IS NOT NULL AND NOT pg_has_role(p.proowner, r.oid, 'USAGE')
         THEN format('procedure %s() belongs to role %I, which could change what runs as %I',
                     procedure, pg_get_userbyid(p.proowner), r.rolname)
       END
  FROM (SELECT) one
  LEFT JOIN pg_roles r ON r.oid = run_as
  LEFT JOIN pg_proc p ON p.oid = warden._job_procedure(procedure)
$$;

-- Only the job's owner (or a member of it) or a superuser changes what a job calls; only
-- a superuser adds a job for someone else, changes an owner or makes a job built in.
-- Pinned search_path: a private "=" operator of the caller cannot answer these checks.
CREATE OR REPLACE FUNCTION warden._jobs_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me oid;
    super boolean;
    problem text;
BEGIN
    SELECT r.oid, r.rolsuper INTO me, super FROM pg_roles r WHERE r.rolname = current_user;
    IF TG_OP = 'INSERT' THEN
        IF NEW.builtin AND NOT super THEN
            RAISE EXCEPTION 'only a superuser adds a built-in maintenance job'
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Built-in jobs run as the owner of pg_warden.';
        END IF;
        IF NEW.owner IS NULL THEN
            NEW.owner := me;
        ELSIF NEW.owner <> me AND NOT super THEN
            RAISE EXCEPTION 'a maintenance job runs as the role that adds it, not as %', NEW.owner
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Leave owner out; to add a job for another role, SET ROLE to it first.';
        END IF;
    ELSE
        IF (NEW.owner IS DISTINCT FROM OLD.owner OR NEW.builtin IS DISTINCT FROM OLD.builtin)
           AND NOT super THEN
            RAISE EXCEPTION 'only a superuser changes the owner of maintenance job "%" or whether it is built in', OLD.name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.procedure IS DISTINCT FROM OLD.procedure AND NOT pg_has_role(me, OLD.owner, 'USAGE') THEN
            RAISE EXCEPTION 'only role % or a superuser changes the procedure of maintenance job "%"',
                    OLD.owner, OLD.name
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'The job runs as its owner.',
                      HINT = 'You may change the schedule, budget, retries and enabled.';
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.procedure IS DISTINCT FROM OLD.procedure
       OR NEW.owner IS DISTINCT FROM OLD.owner THEN
        problem := warden._job_run_problem(
            NEW.procedure,
            CASE WHEN NEW.builtin
                 THEN (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_warden')
                 ELSE NEW.owner END,
            NEW.builtin);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'maintenance job "%" could not run: %', NEW.name, problem
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A job runs as its owner, a role that can log in; its procedure must belong to that role (or to a superuser).';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

-- First half of a run, committed before the job starts (replaces 1.1's _job_begin):
-- takes the job's advisory lock, resolves its procedure, records a 'running' row, and
-- says as whom the job runs and which procedure (by OID: the runner locks it and checks its
-- owner again before the CALL, which names it). Returns no row when the job is skipped (already running
-- elsewhere, procedure missing, owner gone or unable to log in); that is recorded too.
-- only_if_due (run_maintenance): a job that another driver ran, removed or disabled since
-- the list of due jobs was read is left alone, so a period's run never happens twice; so
-- is a job the caller may not run (it waits for the worker or another driver).
-- Who may run a job: a built-in one, whoever may call run_job (it runs as pg_warden's
-- owner and does only what pg_warden defines); any other, its owner, the owner's members
-- and superusers.
CREATE FUNCTION warden._job_start(job_name text, only_if_due boolean,
                                  OUT run_id bigint, OUT call_sql text, OUT budget_ms bigint,
                                  OUT run_as oid, OUT builtin boolean, OUT proc oid)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j warden.jobs;
    drv text := warden._job_driver();
    holder int;
    problem text;
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
    IF NOT j.builtin AND NOT pg_has_role(current_user, j.owner, 'USAGE') THEN
        IF only_if_due THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'maintenance job "%" runs as role %, which you may not act as', job_name, j.owner
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Its owner, a member of its owner or a superuser runs it; the worker runs it on schedule.';
    END IF;

    IF NOT pg_try_advisory_lock(warden._job_lock_key(), j.id) THEN
        SELECT l.pid INTO holder FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.classid = warden._job_lock_key()::oid AND l.objid = j.id::oid
           AND l.objsubid = 2
         LIMIT 1;
        INSERT INTO warden.job_runs (job_id, job, status, finished_at, error_message, driver)
        VALUES (j.id, j.name, 'skipped', clock_timestamp(),
                format('already running in another session (pid %s)',
                       coalesce(holder::text, 'unknown')), drv);
        RETURN;
    END IF;

    IF only_if_due THEN
        -- A fresh look now that the lock is held (each statement takes a new snapshot).
        SELECT * INTO j FROM warden.jobs WHERE id = j.id;
        IF NOT FOUND OR NOT j.enabled OR j.next_run_at > clock_timestamp() THEN
            PERFORM pg_advisory_unlock(warden._job_lock_key(), j.id);
            RETURN;
        END IF;
    END IF;

    run_as := CASE WHEN j.builtin
                   THEN (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_warden')
                   ELSE j.owner END;
    builtin := j.builtin;
    proc := warden._job_procedure(j.procedure)::oid;
    IF proc IS NULL OR NOT EXISTS (
           SELECT FROM pg_proc p
            WHERE p.oid = proc AND p.prokind = 'p' AND p.pronargs = p.pronargdefaults) THEN
        problem := format('procedure %s() does not exist (or takes arguments); '
                          'the job is skipped until it is installed', j.procedure);
    ELSE
        problem := warden._job_run_problem(j.procedure, run_as, j.builtin);
        IF problem IS NOT NULL THEN
            problem := 'the job does not run: ' || problem;
        END IF;
    END IF;
    IF problem IS NOT NULL THEN
        INSERT INTO warden.job_runs (job_id, job, status, finished_at, error_message, driver)
        VALUES (j.id, j.name, 'skipped', clock_timestamp(), problem, drv);
        UPDATE warden.jobs SET next_run_at = now() + schedule, last_run_at = now()
         WHERE id = j.id;
        PERFORM pg_advisory_unlock(warden._job_lock_key(), j.id);
        RETURN;
    END IF;

    INSERT INTO warden.job_runs (job_id, job, status, driver)
    VALUES (j.id, j.name, 'running', drv)
    RETURNING id INTO run_id;
    -- Not due for the other driver while it runs.
    UPDATE warden.jobs SET next_run_at = now() + schedule, last_run_at = now()
     WHERE id = j.id;
    SELECT format('CALL %I.%I()', n.nspname, p.proname)
      INTO call_sql
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid = proc;
    budget_ms := (extract(epoch FROM j.time_budget) * 1000)::bigint;
    RETURN NEXT;
END
$$;

DROP FUNCTION warden._job_begin(text, boolean);

-- Everything else the drivers and warden_admin call resolves nothing through the
-- caller's search_path either (prune_job_runs does not COMMIT, so it may have SET).
ALTER FUNCTION warden._job_lock_key() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION warden._job_procedure(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION warden._mark_crashed_runs() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION warden._job_driver() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION warden._job_finish(bigint, text, bigint, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION warden.schedule_job(text, text, interval, interval, int, interval)
    SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION warden.unschedule_job(text) SET search_path = pg_catalog, pg_temp;
ALTER PROCEDURE warden.prune_job_runs() SET search_path = pg_catalog, pg_temp;

GRANT EXECUTE ON FUNCTION warden._job_start(text, boolean),
                          warden._job_run_problem(text, oid, boolean) TO warden_admin;
