-- Jobs and least privilege (issue 13). A job runs as the role that owns it, the role that
-- added it; only that role (or a member of it) or a superuser changes what it calls; and
-- the built-in jobs, which run as pg_warden's owner, resolve nothing that another role
-- can define. Each attack is planted by an unprivileged role and must leave it
-- unprivileged; the legitimate use goes on working. The background worker runs the same
-- code: tests/t/055_worker_security.pl.
CREATE EXTENSION pg_warden;
SELECT current_user AS superuser_name \gset
SELECT pg_get_userbyid(datdba) AS db_owner FROM pg_database WHERE datname = current_database() \gset

CREATE ROLE regress_jobs_alice LOGIN;
CREATE ROLE regress_jobs_mallory LOGIN;
CREATE ROLE regress_jobs_dbo LOGIN;
GRANT warden_admin TO regress_jobs_alice, regress_jobs_mallory;
CREATE SCHEMA alice_app AUTHORIZATION regress_jobs_alice;
CREATE SCHEMA mallory AUTHORIZATION regress_jobs_mallory;
-- Who ran each job procedure, and with which rights.
CREATE TABLE public.job_witness (job text, run_as name, super boolean,
                                 session_as name DEFAULT session_user);
GRANT INSERT ON public.job_witness TO PUBLIC;
CREATE FUNCTION pg_temp.roles() RETURNS TABLE (rolname name, rolsuper boolean)
LANGUAGE sql AS $$ SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'regress_jobs%' ORDER BY 1 $$;

-- 1. The legitimate use: a warden_admin member adds a job; it runs as her, whoever drives
-- it, and she (not other warden_admin members) may change what it calls.
SET ROLE regress_jobs_alice;
CREATE PROCEDURE alice_app.nightly() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.job_witness
    SELECT 'alice_nightly', current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
    COMMIT;
END $$;
SELECT name, owner FROM warden.schedule_job('alice_nightly', 'alice_app.nightly', '1 hour');
UPDATE warden.jobs SET enabled = false WHERE name = 'alice_nightly';
CALL warden.run_job('alice_nightly');
-- The driver's identity comes back after the job: still SET ROLE to her here, and the
-- superuser's session below.
SELECT current_user, session_user = :'superuser_name' AS superuser_session;
RESET ROLE;
CALL warden.run_job('alice_nightly');
SELECT current_user = :'superuser_name' AS superuser_again, session_user = :'superuser_name' AS superuser_session;
SELECT job, run_as, super, session_as, count(*) FROM public.job_witness GROUP BY 1, 2, 3, 4;
SELECT status, driver FROM warden.job_runs WHERE job = 'alice_nightly' ORDER BY id;
-- Another warden_admin member may neither run her job nor change what it calls; her
-- run_maintenance() leaves it due for the worker (_job_start gives her nothing to run:
-- shown in a transaction rolled back, so that this database's worker never sees the job
-- due).
SET ROLE regress_jobs_mallory;
CALL warden.run_job('alice_nightly');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.jobs SET procedure = 'mallory.anything' WHERE name = 'alice_nightly';
\echo :LAST_ERROR_SQLSTATE
BEGIN;
UPDATE warden.jobs SET enabled = true, next_run_at = now() - interval '1 second'
WHERE name = 'alice_nightly';
SELECT count(*) AS runs_for_mallory FROM warden._job_start('alice_nightly', true);
ROLLBACK;
SELECT count(*) AS runs_still_two FROM warden.job_runs WHERE job = 'alice_nightly';
RESET ROLE;

-- 2. A warden_admin member with a private "=" in front of pg_catalog. The 1.1 guard
-- compared with = and IS DISTINCT FROM through the caller's search_path: this operator
-- made every comparison true, so it let her retarget a superuser's job at her own
-- procedure, which the worker then ran as a superuser.
CREATE PROCEDURE public.super_task() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.job_witness
    SELECT 'super_task', current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
END $$;
SELECT name, owner = current_user::regrole AS owned_by_superuser
FROM warden.schedule_job('super_task', 'public.super_task', '1 hour');
UPDATE warden.jobs SET enabled = false WHERE name = 'super_task';
SET ROLE regress_jobs_mallory;
CREATE PROCEDURE mallory.evil() LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE regress_jobs_mallory SUPERUSER';
END $$;
CREATE FUNCTION mallory.always(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR mallory.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mallory.always);
CREATE FUNCTION mallory.always(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR mallory.= (LEFTARG = name, RIGHTARG = name, FUNCTION = mallory.always);
CREATE FUNCTION mallory.always(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR mallory.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = mallory.always);
SET search_path = mallory, pg_catalog;
SELECT 'a'::text = 'b'::text AS operator_armed;
UPDATE warden.jobs SET procedure = 'mallory.evil' WHERE name = 'super_task';
\echo :LAST_ERROR_SQLSTATE
SELECT warden.schedule_job('super_task', 'mallory.evil', '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- Nor may she add a job for someone else, hand hers over, or make one built in.
INSERT INTO warden.jobs (name, procedure, schedule, owner)
VALUES ('mallory_as_super', 'mallory.evil', '1 hour', :'superuser_name');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO warden.jobs (name, procedure, schedule, builtin)
VALUES ('mallory_builtin', 'mallory.evil', '1 hour', true);
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM warden.schedule_job('mallory_own', 'mallory.evil', '1 hour');
UPDATE warden.jobs SET owner = :'superuser_name' WHERE name = 'mallory_own';
\echo :LAST_ERROR_SQLSTATE
RESET search_path;
UPDATE warden.jobs SET enabled = false WHERE name = 'mallory_own';
RESET ROLE;
-- The superuser's job still calls its own procedure and runs as the superuser; hers runs
-- as her, so her ALTER ROLE fails inside her own job.
SELECT name, procedure FROM warden.jobs WHERE name IN ('super_task', 'mallory_own') ORDER BY 1;
CALL warden.run_job('super_task');
CALL warden.run_job('mallory_own');
SELECT status, sqlstate FROM warden.job_runs WHERE job = 'mallory_own';
SELECT job, run_as = :'superuser_name' AS ran_as_superuser, super FROM public.job_witness
WHERE job = 'super_task';
SELECT * FROM pg_temp.roles();

-- Code that relies on session_user sees the job's owner, not the driver (here a
-- superuser's session): her job cannot register somebody else's table for expiry
-- (register_expiry checks that session_user may DELETE its rows), which would have the
-- expiry job delete them as their owner.
CREATE TABLE public.victim (id int PRIMARY KEY, expires_at timestamptz NOT NULL);
SET ROLE regress_jobs_mallory;
CREATE PROCEDURE mallory.register_victim() LANGUAGE plpgsql AS $$
BEGIN
    PERFORM warden.register_expiry('public.victim', 'expires_at');
END $$;
SELECT name FROM warden.schedule_job('mallory_register', 'mallory.register_victim', '1 hour');
UPDATE warden.jobs SET enabled = false WHERE name = 'mallory_register';
RESET ROLE;
CALL warden.run_job('mallory_register');
SELECT count(*) AS victim_registered FROM warden.expiry_policies WHERE tbl = 'public.victim'::regclass;
DROP TABLE public.victim;

-- 3. Whoever owns a job's procedure could change what the job does. A superuser's job on
-- a procedure in mallory's schema: she drops it and puts her own in its place. The job is
-- skipped, with the reason, rather than run as a superuser.
CREATE PROCEDURE mallory.cleanup() LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
SELECT name FROM warden.schedule_job('mallory_cleanup', 'mallory.cleanup', '1 hour');
UPDATE warden.jobs SET enabled = false WHERE name = 'mallory_cleanup';
SET ROLE regress_jobs_mallory;
DROP PROCEDURE mallory.cleanup();
CREATE PROCEDURE mallory.cleanup() LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'ALTER ROLE regress_jobs_mallory SUPERUSER';
END $$;
RESET ROLE;
CALL warden.run_job('mallory_cleanup');
SELECT status, error_message FROM warden.job_runs WHERE job = 'mallory_cleanup';
-- Scheduling a superuser's job on her procedure is refused outright.
SELECT warden.schedule_job('mallory_cleanup2', 'mallory.cleanup', '1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.roles();

-- 4. A database owner that is no superuser plants an exact-type aggregate and operator in
-- public, ahead of pg_catalog's polymorphic array_agg(anynonarray) and numeric * numeric:
-- expire_rows aggregated regclass values and _job_begin multiplied numeric by integer,
-- both as a superuser with "$user", public.
ALTER DATABASE :"DBNAME" OWNER TO regress_jobs_dbo;
SET ROLE regress_jobs_dbo;
CREATE TABLE public.dbo_witness (who name);
GRANT INSERT ON public.dbo_witness TO PUBLIC;
CREATE FUNCTION public.dbo_escalate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.dbo_witness VALUES (current_user);
    BEGIN
        EXECUTE 'ALTER ROLE regress_jobs_dbo SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
END $$;
CREATE FUNCTION public.dbo_agg(regclass[], regclass) RETURNS regclass[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.dbo_escalate();
    RETURN $1 || $2;
END $$;
CREATE AGGREGATE public.array_agg(regclass) (SFUNC = public.dbo_agg, STYPE = regclass[]);
CREATE FUNCTION public.dbo_mul(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
    PERFORM public.dbo_escalate();
    RETURN $1 * $2::numeric;
END $$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.dbo_mul);
RESET ROLE;
-- The traps are armed: any role with the default search_path walks into them.
SET ROLE regress_jobs_alice;
SELECT array_length(array_agg(c), 1) AS agg, 2.5 * 2 AS mul
FROM (VALUES ('pg_class'::regclass)) v(c);
RESET ROLE;
SELECT who, count(*) FROM public.dbo_witness GROUP BY who;
TRUNCATE public.dbo_witness;

-- A table under expiry, so that expire_rows aggregates something.
CREATE TABLE public.sec_sessions (id int PRIMARY KEY, expires_at timestamptz NOT NULL);
INSERT INTO public.sec_sessions SELECT g, now() - interval '1 hour' FROM generate_series(1, 3) g;
SELECT tbl FROM warden.register_expiry('public.sec_sessions', 'expires_at');
SHOW search_path;
-- The built-in jobs, as the worker and pg_cron run them (run_maintenance with nothing
-- due, so that this database's worker takes no part, then each through run_job), and
-- the procedures called directly.
CALL warden.run_maintenance();
CALL warden.run_job('expire_rows');
CALL warden.run_job('prune_job_runs');
CALL warden.run_job('cleanup_login_attempts');
CALL warden.run_job('health_snapshot');
CALL warden.run_job('audit_maintenance');
CALL warden.expire_rows();
CALL warden.prune_job_runs();
SELECT count(*) AS trap_runs FROM public.dbo_witness;
SELECT * FROM pg_temp.roles();
SELECT job, status, driver FROM warden.job_runs
WHERE job IN ('expire_rows', 'prune_job_runs', 'cleanup_login_attempts', 'health_snapshot',
              'audit_maintenance')
ORDER BY id;
SELECT count(*) AS sessions_left FROM public.sec_sessions;
ALTER DATABASE :"DBNAME" OWNER TO :"db_owner";

-- 5. A job whose owner can no longer log in, or no longer exists, does not run; the run
-- is recorded as skipped with the reason. Built-in jobs are unaffected.
ALTER ROLE regress_jobs_alice NOLOGIN;
CALL warden.run_job('alice_nightly');
ALTER ROLE regress_jobs_alice LOGIN;
CREATE ROLE regress_jobs_gone LOGIN;
GRANT warden_admin TO regress_jobs_gone;
SET ROLE regress_jobs_gone;
SELECT name FROM warden.schedule_job('gone_job', 'public.super_task', '1 hour');
RESET ROLE;
UPDATE warden.jobs SET enabled = false WHERE name = 'gone_job';
DROP ROLE regress_jobs_gone;
CALL warden.run_job('gone_job');
SELECT job, status, regexp_replace(error_message, 'OID [0-9]+', 'OID n') AS error_message
FROM warden.job_runs WHERE job IN ('alice_nightly', 'gone_job') AND status = 'skipped' ORDER BY id;
-- A group role (NOLOGIN) cannot own a job: it would never run.
SET ROLE warden_admin;
SELECT warden.schedule_job('group_job', 'public.super_task', '1 hour');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP EXTENSION pg_warden;

-- 6. Upgrading from 1.1, where only superusers added jobs and every job ran as a
-- superuser: a job gets the owner of its procedure (who could already change what it
-- does), or pg_warden's owner when the procedure does not exist; built-in jobs get
-- pg_warden's owner. Every row is kept.
CREATE EXTENSION pg_warden VERSION '1.1';
INSERT INTO warden.jobs (name, procedure, schedule, enabled) VALUES
    ('alice_nightly', 'alice_app.nightly', '1 hour', false),
    ('super_task', 'public.super_task', '1 hour', false),
    ('not_there', 'public.not_there', '1 hour', false);
ALTER EXTENSION pg_warden UPDATE;
SELECT name, builtin,
       CASE WHEN owner = :'superuser_name'::regrole THEN 'pg_warden''s owner' ELSE owner::text END AS owner
FROM warden.jobs ORDER BY builtin, name;
CALL warden.run_job('alice_nightly');
SELECT job, run_as, super, session_as, count(*) FROM public.job_witness WHERE job = 'alice_nightly'
GROUP BY 1, 2, 3, 4;
DROP EXTENSION pg_warden;

DROP TABLE public.job_witness, public.sec_sessions;
DROP PROCEDURE public.super_task();
DROP OWNED BY regress_jobs_alice, regress_jobs_mallory, regress_jobs_dbo;
DROP ROLE regress_jobs_alice, regress_jobs_mallory, regress_jobs_dbo;
