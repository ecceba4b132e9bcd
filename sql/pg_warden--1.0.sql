-- pg_warden 1.0: the foundation. Schema, roles and the C++ error-bridge self test.
\echo Use "CREATE EXTENSION pg_warden" to load this file. \quit

-- Three roles carry every privilege pg_warden hands out; nothing goes to PUBLIC.
--   warden_admin:   migrations, policies, unlocks, retention, thresholds
--   warden_app:     what applications call on their login and request paths
--   warden_monitor: read-only health views and metrics (member of pg_monitor)
-- Roles are cluster-wide and outlive the extension, so they are created only if absent.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'warden_admin') THEN
        CREATE ROLE warden_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'warden_app') THEN
        CREATE ROLE warden_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'warden_monitor') THEN
        CREATE ROLE warden_monitor NOLOGIN;
    END IF;
END
$roles$;

GRANT pg_monitor TO warden_monitor;

REVOKE ALL ON SCHEMA warden FROM PUBLIC;
GRANT USAGE ON SCHEMA warden TO warden_admin, warden_app, warden_monitor;

-- The installed version of the SQL objects (the library's version is in the utility).
CREATE FUNCTION warden.version() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$ SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_warden' $$;

-- Raises errors across the C++/PostgreSQL boundary on purpose; for the test suite.
CREATE FUNCTION warden._bridge_selftest(mode text) RETURNS text
AS 'MODULE_PATHNAME', 'warden_bridge_selftest'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA warden FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.version() TO warden_admin, warden_app, warden_monitor;
