-- Non-transactional migrations, repair, baseline and script splitting.
CREATE EXTENSION pg_warden;
CREATE TABLE t (id int);
INSERT INTO t VALUES (1), (1);

-- The protocol: begin commits a 'running' row, the script runs at top level, finish closes.
SELECT warden.begin_migration('001', 'index_t', E'-- warden:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n', 'DROP INDEX CONCURRENTLY t_id;');
SELECT version, state, transactional FROM warden.migration_status;
-- While it is open, this session can't start another migration.
SELECT warden.apply_migration('002', 'other', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
CREATE INDEX CONCURRENTLY t_id ON t (id);
SELECT warden.finish_migration('001');
SELECT version, state, transactional, execution_ms >= 0 AS timed FROM warden.migration_status;
-- Begun again with the same script: skipped. Finishing something not begun: refused.
SELECT warden.begin_migration('001', 'index_t', E'-- warden:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n');
SELECT warden.finish_migration('001');
\echo :LAST_ERROR_SQLSTATE
-- Not inside a transaction block: the running row must commit first.
BEGIN;
SELECT warden.begin_migration('002', 'x', 'SELECT 1');
ROLLBACK;

-- A failing CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index: recorded as
-- failed, reported, and every later migration is blocked until repaired.
SELECT warden.begin_migration('002', 'unique_t', E'-- warden:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (id);\n');
CREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (id);
SELECT warden.fail_migration('002', 'could not create unique index "t_unique"');
SELECT version, state, error FROM warden.migration_status;
SELECT * FROM warden.invalid_indexes();
SELECT warden.apply_migration('003', 'later', 'CREATE TABLE later (a int);');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.rollback_migration();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.verify_migrations('[]');

-- Repair: bad resolution, not-failed migration, unknown version; then retry.
SELECT warden.repair_migration('002', 'later');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.repair_migration('001');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.repair_migration('999');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.repair_migration('002', 'retry');
DROP INDEX t_unique;
DELETE FROM t;
SELECT warden.begin_migration('002', 'unique_t', E'-- warden:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (id);\n');
CREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (id);
SELECT warden.finish_migration('002');
SELECT version, state FROM warden.migration_status;

-- An interrupted runner (its session ended without finish) shows as interrupted and
-- is resolved as applied by the operator.
\c
SELECT warden.begin_migration('003', 'interrupted', E'-- warden:no-transaction\nSELECT 1;\n');
SELECT pg_backend_pid() AS runner \gset
\c
-- Wait until the old session is really gone (its exit is asynchronous).
SET client_min_messages = error;
SELECT pg_terminate_backend(:runner, 10000) IS NOT NULL AS runner_gone;
RESET client_min_messages;
SELECT version, state FROM warden.migration_status WHERE version = '003';
SELECT warden.apply_migration('004', 'blocked', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.repair_migration('003', 'applied');
SELECT version, state FROM warden.migration_status;
SELECT event, version, detail FROM warden.migration_events WHERE event <> 'drift' ORDER BY id;

-- Baseline: only on an empty ledger; versions up to it count as applied.
SELECT warden.baseline_migrations('5');
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION pg_warden CASCADE;
CREATE EXTENSION pg_warden;
SELECT warden.baseline_migrations('5', 'existing schema');
SELECT warden.apply_migration('3', 'below', 'CREATE TABLE below (a int);');
SELECT warden.apply_migration('6', 'above', 'CREATE TABLE above (a int);');
SELECT to_regclass('below') AS below_absent, warden.current_version();
SELECT * FROM warden.verify_migrations(jsonb_build_array(
    jsonb_build_object('version', '3', 'name', 'below', 'checksum', warden.checksum('x')),
    jsonb_build_object('version', '6', 'name', 'above', 'checksum', warden.checksum('CREATE TABLE above (a int);'))));
SELECT * FROM warden.rollback_migration('0');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.baseline_migrations('x1');
\echo :LAST_ERROR_SQLSTATE

-- The server's parser splits scripts for clients, with each statement's first line.
SELECT * FROM warden.split_script(E'-- header\nCREATE TABLE a (x text DEFAULT \';\');\n\n/* c; */ CREATE FUNCTION f() RETURNS int\n  LANGUAGE sql AS $$ SELECT 1; $$;\nSELECT 3');
SELECT * FROM warden.split_script(E'SELECT 1;\nSELEC 2;');
\echo :LAST_ERROR_SQLSTATE

DROP EXTENSION pg_warden CASCADE;
DROP TABLE t, above;
