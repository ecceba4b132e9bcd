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
