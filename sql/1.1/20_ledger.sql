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
