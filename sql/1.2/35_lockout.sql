-- Account locking, 1.2: warden.security_events becomes append-only for every role but a
-- superuser, retention changes are security events, and the cleanup of old events keeps
-- the floor warden.audit_min_retention (see docs/audit.md, "Retention floor").

-- The floor set by a superuser (extension/audit_floor.cpp). A C function rather than
-- current_setting(): calling it loads the library, which defines the setting, first.
CREATE FUNCTION warden._audit_min_retention() RETURNS interval
AS 'MODULE_PATHNAME', 'warden_audit_min_retention'
LANGUAGE C STABLE PARALLEL SAFE;

-- UPDATE, DELETE and TRUNCATE of the events are refused unless the role that asked (not
-- the owner a SECURITY DEFINER routine runs as) is a superuser; _cleanup_login_attempts
-- deletes old login events in retention mode.
CREATE FUNCTION warden._security_events_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_security_events_guard'
LANGUAGE C;
CREATE TRIGGER security_events_append_only BEFORE UPDATE OR DELETE ON warden.security_events
    FOR EACH ROW EXECUTE FUNCTION warden._security_events_guard();
CREATE TRIGGER security_events_no_truncate BEFORE TRUNCATE ON warden.security_events
    FOR EACH STATEMENT EXECUTE FUNCTION warden._security_events_guard();

-- A row trigger on the tables that hold a retention of the trail (TG_ARGV[0] names the
-- column): a new value below the floor is refused, any other change is recorded as a
-- 'retention_changed' event, and so is a per-table override moved to another table (its
-- relid changed), which changes that table's retention too. Values that are not positive
-- are left to the tables' CHECK constraints. SECURITY DEFINER: the role changing a
-- setting cannot write events itself.
CREATE FUNCTION warden._retention_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    col       constant text := TG_ARGV[0];
    floor_    constant interval := warden._audit_min_retention();
    new_row   constant jsonb := pg_catalog.to_jsonb(NEW);
    new_value constant interval := (new_row ->> col)::interval;
    old_row   jsonb;
    old_value interval;
    what      text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        old_row := pg_catalog.to_jsonb(OLD);
        old_value := (old_row ->> col)::interval;
    END IF;
    IF new_value IS NOT DISTINCT FROM old_value
       AND (old_row IS NULL OR (old_row -> 'relid') IS NOT DISTINCT FROM (new_row -> 'relid')) THEN
        RETURN NEW;
    END IF;
    -- An audited table is named by its relid (what the caller wrote in the name columns
    -- may say anything).
    what := CASE TG_TABLE_NAME
        WHEN 'audit_tables' THEN pg_catalog.format('audit retention of %s', (new_row ->> 'relid')::oid::regclass)
        ELSE pg_catalog.format('warden.%I.%I', TG_TABLE_NAME, col) END;
    IF old_row IS NOT NULL AND (old_row -> 'relid') IS DISTINCT FROM (new_row -> 'relid') THEN
        what := pg_catalog.format('%s, moved from %s', what, (old_row ->> 'relid')::oid::regclass);
    END IF;
    IF new_value > interval '0' AND new_value < floor_ THEN
        RAISE LOG 'pg_warden: role % was refused setting % to % (below warden.audit_min_retention %)',
            session_user, what, new_value, floor_;
        RAISE EXCEPTION '% cannot be %: the floor warden.audit_min_retention is %', what, new_value, floor_
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only a superuser lowers the floor (ALTER SYSTEM SET warden.audit_min_retention).';
    END IF;
    INSERT INTO warden.security_events (event_type, detail)
    VALUES ('retention_changed', pg_catalog.format('%s: %s -> %s', what,
                                                  coalesce(old_value::text, 'default'),
                                                  coalesce(new_value::text, 'default')));
    RETURN NEW;
END
$fn$;

-- UPDATE only: warden_admin cannot INSERT the policy row, and a superuser's pg_restore
-- does (that is neither a change to record nor one to refuse).
CREATE TRIGGER lockout_policy_event_retention BEFORE UPDATE ON warden.lockout_policy
    FOR EACH ROW EXECUTE FUNCTION warden._retention_changed('event_retention');

-- warden._cleanup_login_attempts (1.1's, except that only login events go, never younger
-- than the floor, how many went is itself an event, and what it removes is recorded for the
-- seals' verify) is defined once, in 45_audit_seals.sql.

-- Not SECURITY DEFINER, but the maintenance drivers run it as a superuser: its one call
-- resolves under the pinned path too.
ALTER PROCEDURE warden.cleanup_login_attempts() SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------------------
-- Failures that no rollback erases (see docs/login-hygiene.md, "What a rollback or a crash
-- can lose"). With pg_warden preloaded, login_failed decides on counters in shared memory
-- and queues its events there; a writer per database (a background worker) copies both
-- into the tables below in transactions of its own. These tables are then a copy that
-- lags by one writer transaction.

-- Waits until every failure, lock and event recorded in this database before the call is
-- in the tables (committed); false if that took more than 30 seconds.
CREATE FUNCTION warden.lockout_flush() RETURNS boolean
AS 'MODULE_PATHNAME', 'warden_lockout_flush'
LANGUAGE C VOLATILE;

-- What a transaction writes into the counters itself (an administrator's lock or unlock,
-- an UPDATE, the cleanup, TRUNCATE, a restore) reaches the shared counters when it
-- commits. The writer's own writes are skipped.
CREATE FUNCTION warden._lockout_row_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_lockout_row_changed'
LANGUAGE C;
CREATE TRIGGER login_attempts_changed AFTER INSERT OR UPDATE OR DELETE ON warden.login_attempts
    FOR EACH ROW EXECUTE FUNCTION warden._lockout_row_changed();
CREATE TRIGGER login_attempts_truncated AFTER TRUNCATE ON warden.login_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION warden._lockout_row_changed();
CREATE TRIGGER login_source_failures_changed AFTER INSERT OR UPDATE OR DELETE
    ON warden.login_source_failures
    FOR EACH ROW EXECUTE FUNCTION warden._lockout_row_changed();
CREATE TRIGGER login_source_failures_truncated AFTER TRUNCATE ON warden.login_source_failures
    FOR EACH STATEMENT EXECUTE FUNCTION warden._lockout_row_changed();

-- Readers and administrators of the tables first wait for the writer, so that they see
-- every failure recorded before they were called (is_locked becomes VOLATILE: a STABLE
-- function would read with the snapshot its caller's statement took before the wait).
CREATE OR REPLACE FUNCTION warden.is_locked(principal text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM warden._check_principal(principal);
    PERFORM warden.lockout_flush();
    RETURN EXISTS (SELECT 1 FROM warden.login_attempts a
                   WHERE a.principal = is_locked.principal AND NOT a.known_source
                     AND a.locked_until > now());
END
$fn$;

CREATE OR REPLACE FUNCTION warden.is_locked(principal text, source inet) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.lockout_policy;
    known boolean;
BEGIN
    PERFORM warden._check_principal(principal);
    PERFORM warden.lockout_flush();
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

CREATE OR REPLACE FUNCTION warden.unlock(principal text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    was_locked boolean;
BEGIN
    PERFORM warden._check_principal(principal);
    PERFORM warden.lockout_flush();
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

CREATE OR REPLACE FUNCTION warden.lock(principal text, duration interval DEFAULT NULL)
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
    PERFORM warden.lockout_flush();
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

GRANT EXECUTE ON FUNCTION warden.lockout_flush() TO warden_admin;
