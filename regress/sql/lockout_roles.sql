-- Role lockout's SQL side with warden.role_lockout off (the default): the view is empty,
-- unlocking says why it cannot, and only warden_admin may unlock, only warden_admin and
-- warden_monitor read. warden.lockout_flush is warden_admin's. The writer of a database
-- whose settings shadow functions with a schema of its owner never calls them.
CREATE EXTENSION pg_warden;
SHOW warden.role_lockout;
SHOW warden.role_lockout_exempt;
SHOW warden.role_lockout_database;
SELECT * FROM warden.role_lockouts;
SELECT warden.unlock_role('bob');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.unlock_role(NULL);
\echo :LAST_ERROR_SQLSTATE

CREATE ROLE regress_lr_app IN ROLE warden_app;
CREATE ROLE regress_lr_monitor IN ROLE warden_monitor;
SET ROLE regress_lr_app;
SELECT warden.unlock_role('bob');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.role_lockouts;
\echo :LAST_ERROR_SQLSTATE
SELECT warden.lockout_flush();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden._unlock_role('bob');
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_lr_monitor;
SELECT count(*) FROM warden.role_lockouts;
SELECT count(*) FROM warden.role_login_attempts;
RESET ROLE;
DROP ROLE regress_lr_app, regress_lr_monitor;
DROP EXTENSION pg_warden;

-- A database whose owner set a search_path that shadows unnest with a function of its
-- own schema: the lockout writer (a superuser) pins its path and qualifies its calls.
CREATE ROLE regress_lr_evil;
CREATE DATABASE regress_lockout_writer OWNER regress_lr_evil;
\c regress_lockout_writer
CREATE EXTENSION pg_warden;
SET SESSION AUTHORIZATION regress_lr_evil;
CREATE SCHEMA regress_lr_evil;
CREATE TABLE regress_lr_evil.calls (who text, super boolean);
GRANT INSERT ON regress_lr_evil.calls TO PUBLIC;
CREATE FUNCTION regress_lr_evil.unnest(anyarray) RETURNS SETOF anyelement
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_lr_evil.calls
    SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
    RETURN QUERY SELECT * FROM pg_catalog.unnest($1);
END $$;
ALTER DATABASE regress_lockout_writer SET search_path = regress_lr_evil, pg_catalog;
RESET SESSION AUTHORIZATION;
SELECT locked, failures FROM warden.login_failed('mallory', '192.0.2.1');
SELECT locked, failures FROM warden.login_failed('mallory', '192.0.2.1');
SELECT warden.lockout_flush();
SELECT count(*) AS evil_calls FROM regress_lr_evil.calls;
SELECT principal, failures FROM warden.login_attempts;
SELECT event_type, principal, host(source), failures FROM warden.security_events ORDER BY id;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_lr_evil';
\c regression
DROP DATABASE regress_lockout_writer WITH (FORCE);
DROP ROLE regress_lr_evil;
