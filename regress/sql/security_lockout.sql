-- Least privilege in account locking. login_failed, login_succeeded, is_locked, lock,
-- unlock and the cleanup run as the extension's (superuser) owner: an application role
-- or a warden_admin member plants operators, functions and pg_temp domains to hijack
-- them, and tries to erase security events. Every attempt must fail; the legitimate
-- calls keep working.
CREATE EXTENSION pg_warden;
\set SHOW_CONTEXT never
\set d 'locked, locked_until IS NOT NULL AS until_set, failures'
CREATE ROLE regress_sl_app;
GRANT warden_app TO regress_sl_app;
CREATE ROLE regress_sl_admin;
GRANT warden_admin TO regress_sl_admin;

-- The planted objects. Were one of them called by code running as the owner, it would
-- make regress_sl_app a superuser; it records every call in any case. The drift recorder
-- (the ledger's event trigger) is left out: only account locking is to meet them.
CREATE SCHEMA regress_sl_evil AUTHORIZATION regress_sl_app;
GRANT USAGE ON SCHEMA regress_sl_evil TO regress_sl_admin;
SET warden.record_drift = off;
SET SESSION AUTHORIZATION regress_sl_app;
CREATE TABLE regress_sl_evil.calls (who name, what text);
GRANT INSERT ON regress_sl_evil.calls TO PUBLIC;
CREATE FUNCTION regress_sl_evil.escalate(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO regress_sl_evil.calls VALUES (current_user, what);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE regress_sl_app SUPERUSER;
    END IF;
END $$;
CREATE FUNCTION regress_sl_evil.text_eq(a text, b text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('text ='); RETURN a = b; END $$;
CREATE OPERATOR regress_sl_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_sl_evil.text_eq);
CREATE FUNCTION regress_sl_evil.inet_le(a inet, b inet) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('inet <<='); RETURN a <<= b; END $$;
CREATE OPERATOR regress_sl_evil.<<= (LEFTARG = inet, RIGHTARG = inet, FUNCTION = regress_sl_evil.inet_le);
CREATE FUNCTION regress_sl_evil.ts_gt(a timestamptz, b timestamptz) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('timestamptz >'); RETURN a > b; END $$;
CREATE OPERATOR regress_sl_evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_sl_evil.ts_gt);
CREATE FUNCTION regress_sl_evil.ts_minus(a timestamptz, b interval) RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('timestamptz -'); RETURN a - b; END $$;
CREATE OPERATOR regress_sl_evil.- (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = regress_sl_evil.ts_minus);
CREATE FUNCTION regress_sl_evil.int_lt(a integer, b integer) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('integer <'); RETURN a < b; END $$;
CREATE OPERATOR regress_sl_evil.< (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_sl_evil.int_lt);
CREATE FUNCTION regress_sl_evil.now() RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('now()'); RETURN now(); END $$;
CREATE FUNCTION regress_sl_evil.yes() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sl_evil.escalate('domain check'); RETURN true; END $$;
RESET SESSION AUTHORIZATION;

-- An application, its path leading with pg_temp domains and the planted schema.
SET SESSION AUTHORIZATION regress_sl_app;
CREATE DOMAIN pg_temp.inet AS pg_catalog.inet CHECK (regress_sl_evil.yes());
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (regress_sl_evil.yes());
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (regress_sl_evil.yes());
SET search_path = pg_temp, regress_sl_evil, pg_catalog;
SELECT :d FROM warden.login_failed('mallory', '192.0.2.1');
SELECT :d FROM warden.login_failed('mallory', '192.0.2.1');
SELECT :d FROM warden.login_failed('mallory', '192.0.2.1');
SELECT :d FROM warden.login_failed('mallory', '192.0.2.1');
SELECT :d FROM warden.login_failed('mallory', '192.0.2.1');
SELECT :d FROM warden.login_succeeded('mallory', '192.0.2.1');
SELECT :d FROM warden.login_succeeded('walter', '192.0.2.2');
SELECT :d FROM warden.login_failed('walter');
SELECT warden.is_locked('mallory') AS mallory_locked, warden.is_locked('walter', '192.0.2.2') AS walter_locked;
-- ... and what it may not do.
DELETE FROM warden.security_events;
\echo :LAST_ERROR_SQLSTATE
SELECT warden._cleanup_login_attempts();
\echo :LAST_ERROR_SQLSTATE
SELECT warden.unlock('mallory');
\echo :LAST_ERROR_SQLSTATE
RESET search_path;
RESET SESSION AUTHORIZATION;

-- An administrator with the same path (and the same session's pg_temp domains) locks,
-- unlocks and cleans up.
SET SESSION AUTHORIZATION regress_sl_admin;
SET search_path = pg_temp, regress_sl_evil, pg_catalog;
SELECT warden.unlock('mallory') AS was_locked;
SELECT warden.lock('walter', '1 hour') IS NOT NULL AS walter_locked_until;
SELECT warden.is_locked('walter') AS walter_locked;
UPDATE warden.lockout_policy SET threshold = 6;
CALL warden.cleanup_login_attempts();
RESET search_path;
RESET SESSION AUTHORIZATION;
DROP DOMAIN pg_temp.inet, pg_temp.timestamptz, pg_temp.text;

-- The C functions pin the path themselves: with the SET clause of their definitions
-- removed (by a superuser, for this transaction only), a caller's path still reaches none
-- of their statements, not even those prepared earlier in this session.
\c
SET warden.record_drift = off;
SET SESSION AUTHORIZATION regress_sl_app;
SELECT :d FROM warden.login_failed('trudy', '192.0.2.9');
SELECT :d FROM warden.login_succeeded('trudy', '192.0.2.9');
RESET SESSION AUTHORIZATION;
BEGIN;
ALTER FUNCTION warden.login_failed(text, inet) RESET search_path;
ALTER FUNCTION warden.login_succeeded(text, inet) RESET search_path;
SET LOCAL SESSION AUTHORIZATION regress_sl_app;
CREATE DOMAIN pg_temp.inet AS pg_catalog.inet CHECK (regress_sl_evil.yes());
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (regress_sl_evil.yes());
SET LOCAL search_path = pg_temp, regress_sl_evil, pg_catalog;
SELECT :d FROM warden.login_failed('trudy', '192.0.2.9');
SELECT :d FROM warden.login_failed('trudy', '192.0.2.10');
SELECT :d FROM warden.login_succeeded('trudy', '192.0.2.9');
SELECT pg_catalog.count(*) AS evil_calls_as_owner FROM regress_sl_evil.calls;
SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'regress_sl_app';
ROLLBACK;
SELECT proconfig FROM pg_proc WHERE oid = 'warden.login_failed(text, inet)'::regprocedure;

SELECT who, what FROM regress_sl_evil.calls;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN ('regress_sl_admin', 'regress_sl_app') ORDER BY rolname;
-- The failures of the rolled-back transaction above count too (one from its known
-- source, one from elsewhere).
SELECT warden.lockout_flush() \gset
SELECT principal, known_source, failures, locked_until IS NOT NULL AS locked
FROM warden.login_attempts ORDER BY 1, 2;

-- Security events: no warden role deletes, updates or empties them, not even with
-- privileges granted by mistake (the guard); the retention of login events has the
-- floor of the audit trail.
SET SESSION AUTHORIZATION regress_sl_admin;
DELETE FROM warden.security_events;
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.lockout_policy SET event_retention = '1 hour';
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
GRANT DELETE, UPDATE, TRUNCATE ON warden.security_events TO regress_sl_admin;
SET SESSION AUTHORIZATION regress_sl_admin;
DELETE FROM warden.security_events WHERE principal = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.security_events SET principal = 'someone else';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE warden.security_events;
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
REVOKE DELETE, UPDATE, TRUNCATE ON warden.security_events FROM regress_sl_admin;

-- Old events (aged by the superuser): login events past the retention go, other events
-- stay, and the removal is itself an event.
SELECT warden.lockout_flush() \gset
UPDATE warden.security_events SET occurred_at = now() - interval '10 days' WHERE principal = 'mallory';
UPDATE warden.security_events SET occurred_at = now() - interval '400 days' WHERE event_type = 'retention_changed';
SELECT count(*) AS events_before FROM warden.security_events;
SET SESSION AUTHORIZATION regress_sl_admin;
UPDATE warden.lockout_policy SET event_retention = '8 days';
CALL warden.cleanup_login_attempts();
RESET SESSION AUTHORIZATION;
SELECT event_type, principal, actor, detail FROM warden.security_events
WHERE principal IS NULL OR principal = 'mallory' ORDER BY id;

-- A setting stored below the floor (by a superuser who lowered it for a moment) gives
-- way to the floor when a warden_admin member cleans up.
UPDATE warden.security_events SET occurred_at = now() - interval '3 days' WHERE principal = 'walter';
SET warden.audit_min_retention = '1h';
UPDATE warden.lockout_policy SET event_retention = '2 hours';
RESET warden.audit_min_retention;
SET SESSION AUTHORIZATION regress_sl_admin;
CALL warden.cleanup_login_attempts();
RESET SESSION AUTHORIZATION;
SELECT count(*) AS walter_events_kept FROM warden.security_events WHERE principal = 'walter';

DROP SCHEMA regress_sl_evil CASCADE;
DROP EXTENSION pg_warden CASCADE;
DROP ROLE regress_sl_app, regress_sl_admin;
