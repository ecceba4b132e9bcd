-- Role lockout (docs/login-hygiene.md, "Database roles"): with warden.role_lockout = on,
-- failed password authentications of database roles are counted in shared memory by the
-- client-authentication hook (extension/role_lockout.cpp); the role lockout worker keeps
-- the counters and locks in warden.role_login_attempts of warden.role_lockout_database
-- (and loads them back at start) and writes the hook's events into warden.security_events
-- ('role_login_failed', 'role_locked', 'role_source_throttled'; 'role_unlocked' below).

-- The persisted copy, one row per role that failed; the shared counters decide.
CREATE TABLE warden.role_login_attempts (
    role_name       text        PRIMARY KEY,
    failures        integer     NOT NULL DEFAULT 0,
    window_start    timestamptz,
    last_failure_at timestamptz,
    lockouts        integer     NOT NULL DEFAULT 0,
    locked_until    timestamptz
);

-- Resets the role's shared counter when the caller's transaction commits; was it locked.
CREATE FUNCTION warden._unlock_role(role name) RETURNS boolean
AS 'MODULE_PATHNAME', 'warden_unlock_role'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- The role counters as they stand in shared memory (the server's, whichever database).
CREATE FUNCTION warden._role_lockouts(OUT role_name text, OUT failures integer,
                                      OUT window_start timestamptz, OUT last_failure_at timestamptz,
                                      OUT lockouts integer, OUT locked_until timestamptz,
                                      OUT locked boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'warden_role_lockouts'
LANGUAGE C VOLATILE;

CREATE VIEW warden.role_lockouts AS
SELECT role_name, failures, window_start, last_failure_at, lockouts, locked_until, locked
FROM warden._role_lockouts();

-- Administrator: lifts a role's lock and clears its counter. In the database named by
-- warden.role_lockout_database, where the locks and their events are kept.
CREATE FUNCTION warden.unlock_role(role name) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    was_locked boolean;
BEGIN
    was_locked := warden._unlock_role(role);
    UPDATE warden.role_login_attempts r
       SET failures = 0, window_start = NULL, lockouts = 0, locked_until = NULL
     WHERE r.role_name = unlock_role.role;
    INSERT INTO warden.security_events (event_type, principal, detail)
    VALUES ('role_unlocked', role, CASE WHEN was_locked THEN 'by administrator'
                                        ELSE 'by administrator; was not locked' END);
    RETURN was_locked;
END
$fn$;

GRANT SELECT ON warden.role_login_attempts, warden.role_lockouts TO warden_admin, warden_monitor;
GRANT EXECUTE ON FUNCTION warden._role_lockouts() TO warden_admin, warden_monitor;
GRANT EXECUTE ON FUNCTION warden.unlock_role(name) TO warden_admin;
