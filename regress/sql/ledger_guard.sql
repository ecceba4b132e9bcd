-- Protection of the ledger, privileges, drift recording and settings.
CREATE EXTENSION pg_warden;
CREATE ROLE regress_ledger_admin IN ROLE warden_admin;
CREATE ROLE regress_ledger_app IN ROLE warden_app;
CREATE SCHEMA ledger_app AUTHORIZATION regress_ledger_admin;

-- A migration runs as its caller (here a warden_admin member), not as the ledger's owner.
SET ROLE regress_ledger_admin;
SELECT warden.apply_migration('1', 'as_admin', E'CREATE TABLE ledger_app.accounts (id int);\nSELECT current_user;', 'DROP TABLE ledger_app.accounts;');
SELECT pg_get_userbyid(relowner) AS table_owner FROM pg_class WHERE oid = 'ledger_app.accounts'::regclass;
SELECT version, applied_by_session, applied_by_current FROM warden.migrations;
-- Even warden_admin can't write the ledger directly.
INSERT INTO warden.migrations (version, name, state) VALUES ('2', 'forged', 'applied');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.migrations SET checksum = NULL;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM warden.migration_events;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- An application role can neither run migrations nor read or write the ledger.
SET ROLE regress_ledger_app;
SELECT warden.apply_migration('2', 'x', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.rollback_migration();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM warden.migrations;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO warden.migration_events (event) VALUES ('applied');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Not even the owner writes around the functions; the event log is append-only.
INSERT INTO warden.migrations (version, name, state) VALUES ('2', 'forged', 'applied');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.migrations SET state = 'rolled_back';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM warden.migrations;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE warden.migrations;
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.migration_events SET detail = NULL;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE warden.migration_events;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS ledger_rows FROM warden.migrations;

-- Nothing of the ledger is executable by PUBLIC; warden_monitor reads, warden_admin runs.
SELECT p.proname, has_function_privilege('warden_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('warden_monitor', p.oid, 'EXECUTE') AS monitor,
       has_function_privilege('warden_app', p.oid, 'EXECUTE') AS app
FROM pg_proc p
WHERE p.pronamespace = 'warden'::regnamespace
  AND p.proname ~ 'migration|current_version|split_script|invalid_indexes|_ledger|_record_drift'
ORDER BY 1;
SELECT c.relname, has_table_privilege('warden_monitor', c.oid, 'SELECT') AS monitor_reads,
       has_table_privilege('warden_admin', c.oid, 'INSERT') AS admin_inserts,
       has_table_privilege('warden_app', c.oid, 'SELECT') AS app_reads
FROM pg_class c WHERE c.relnamespace = 'warden'::regnamespace AND c.relkind IN ('r', 'v')
  AND c.relname ~ 'migration|drift'
ORDER BY 1;

-- Drift: DDL outside a migration is recorded with the objects it touched; DDL inside a
-- migration, on temporary objects, or with warden.record_drift off is not.
CREATE TABLE drifted (a int);
ALTER TABLE drifted ADD COLUMN b int;
CREATE TEMP TABLE scratch (a int);
DROP TABLE drifted;
SET warden.record_drift = off;
CREATE TABLE quiet (a int);
RESET warden.record_drift;
SELECT warden.apply_migration('2', 'in_migration', 'CREATE TABLE in_migration (a int);', 'DROP TABLE in_migration;');
CREATE INDEX in_migration_a ON in_migration (a);
SELECT command, objects FROM warden.schema_drift;
-- A migration that catches an error itself (a subtransaction rolled back inside the
-- script) is still a migration for the DDL after it.
SELECT warden.apply_migration('3', 'catches', $m$
DO $$ BEGIN CREATE TABLE in_migration (a int); EXCEPTION WHEN duplicate_table THEN NULL; END $$;
CREATE TABLE after_catch (a int);
$m$, 'DROP TABLE after_catch;');
SELECT detail FROM warden.migration_events WHERE event = 'drift' ORDER BY id;
-- Application roles can't turn drift recording off.
SET ROLE regress_ledger_app;
SET warden.record_drift = off;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Settings: the lock timeout is a duration; misspelt warden.* settings are refused.
SET warden.migration_lock_timeout = '2s';
SHOW warden.migration_lock_timeout;
SET warden.migration_lock_timeout = -1;
\echo :LAST_ERROR_SQLSTATE
SET warden.migration_lock_timout = '1s';
\echo :LAST_ERROR_SQLSTATE
RESET warden.migration_lock_timeout;

-- Called directly, the trigger functions refuse.
SELECT warden._ledger_guard();
\echo :LAST_ERROR_SQLSTATE

-- pg_warden's own DDL (audit partitions and their triggers, in schema warden) is not drift.
SELECT count(*) AS drift_before FROM warden.migration_events WHERE event = 'drift' \gset
CALL warden.audit_maintenance();
SELECT count(*) - :drift_before AS new_drift FROM warden.migration_events WHERE event = 'drift';
DROP EXTENSION pg_warden CASCADE;
DROP TABLE quiet, in_migration;
DROP SCHEMA ledger_app CASCADE;
DROP ROLE regress_ledger_admin, regress_ledger_app;
