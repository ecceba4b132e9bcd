-- Real deployments (see docs/migrations.md, "Folder layouts", "Several appliers at once",
-- "Non-transactional down scripts" and "Adopting another tool's history"): down scripts
-- that must run outside a transaction, a migration lock a client can wait for without
-- holding a snapshot, and migrations another tool applied recorded without running them.
--
-- Security: begin_rollback returns the stored down script for the caller to run as
-- itself, and only to a caller with the privileges of the role that applied the
-- migration (as rollback_migration runs it as that role). The lock functions take and
-- release one advisory lock; nothing here runs with the owner's rights.

-- The applied migrations rollback_migration(to_version) would roll back, newest first,
-- and whether each down script is marked "-- warden:no-transaction".
CREATE FUNCTION warden.rollback_plan(to_version text DEFAULT NULL)
RETURNS TABLE (version text, name text, no_transaction boolean, down_checksum text)
AS 'MODULE_PATHNAME', 'warden_rollback_plan' LANGUAGE C STABLE;

-- The non-transactional protocol for down scripts: begin_rollback commits the latest
-- applied migration's row as 'running', holds the session-level migration lock and
-- returns the down script; the client runs it statement by statement at top level;
-- finish_rollback (rolled back) or fail_migration (failed) closes the row.
CREATE FUNCTION warden.begin_rollback(version text)
RETURNS text AS 'MODULE_PATHNAME', 'warden_begin_rollback' LANGUAGE C VOLATILE;
CREATE FUNCTION warden.finish_rollback(version text)
RETURNS text AS 'MODULE_PATHNAME', 'warden_finish_rollback' LANGUAGE C VOLATILE;

-- The migration lock at session level without waiting: NULL once taken, else who holds
-- it. Called outside a transaction between short sleeps, so a waiting applier holds no
-- snapshot that another applier's CREATE INDEX CONCURRENTLY would wait for.
CREATE FUNCTION warden.try_migration_lock()
RETURNS text AS 'MODULE_PATHNAME', 'warden_try_migration_lock' LANGUAGE C VOLATILE;
CREATE FUNCTION warden.release_migration_lock()
RETURNS boolean AS 'MODULE_PATHNAME', 'warden_release_migration_lock' LANGUAGE C VOLATILE;

-- Records a migration another tool applied (flyway, golang-migrate, dbmate,
-- node-pg-migrate: `warden migrate adopt`) as applied with its file's checksum, without
-- running it: 'adopted', or 'skipped' when already applied with that checksum.
CREATE FUNCTION warden.adopt_migration(version text, name text, up_sql text, down_sql text,
                                       source text)
RETURNS text AS 'MODULE_PATHNAME', 'warden_adopt_migration' LANGUAGE C VOLATILE;

-- Flyway's repeatable migrations (R__name.sql): one row per name with the checksum last
-- applied; `warden migrate up` re-applies one, after the versioned migrations, whenever its
-- file's checksum differs. Written only by apply_repeatable, like the ledger.
CREATE TABLE warden.repeatable_migrations (
    name               text PRIMARY KEY,
    checksum           text NOT NULL,
    checksum_algorithm text NOT NULL,
    applied_at         timestamptz NOT NULL,
    execution_ms       double precision NOT NULL,
    applied_by         text NOT NULL,
    applications       integer NOT NULL DEFAULT 1
);
CREATE TRIGGER repeatable_migrations_guard BEFORE INSERT OR UPDATE OR DELETE
    ON warden.repeatable_migrations FOR EACH ROW EXECUTE FUNCTION warden._ledger_guard();
CREATE TRIGGER repeatable_migrations_guard_truncate BEFORE TRUNCATE
    ON warden.repeatable_migrations FOR EACH STATEMENT EXECUTE FUNCTION warden._ledger_guard();
SELECT pg_catalog.pg_extension_config_dump('warden.repeatable_migrations', '');
REVOKE ALL ON warden.repeatable_migrations FROM PUBLIC;
GRANT SELECT ON warden.repeatable_migrations TO warden_admin, warden_monitor;

-- Runs a repeatable migration in the caller's transaction, as the caller, under the
-- migration lock: 'applied', or 'skipped' when its checksum is the one last applied.
CREATE FUNCTION warden.apply_repeatable(name text, script text)
RETURNS text AS 'MODULE_PATHNAME', 'warden_apply_repeatable' LANGUAGE C VOLATILE;

GRANT EXECUTE ON FUNCTION
    warden.apply_repeatable(text, text),
    warden.adopt_migration(text, text, text, text, text),
    warden.rollback_plan(text),
    warden.begin_rollback(text),
    warden.finish_rollback(text),
    warden.try_migration_lock(),
    warden.release_migration_lock()
TO warden_admin;
