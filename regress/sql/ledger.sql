-- The migration ledger: apply, skip, refuse, rollback, verify, status.
CREATE EXTENSION pg_warden;
\set VERBOSITY default

-- Applying records one row with the core checksum rule; the same script again is skipped,
-- also with CRLF line endings and a byte-order mark (same checksum).
SELECT warden.apply_migration('001', 'create_t', E'CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n', E'DROP TABLE t;\n');
SELECT warden.apply_migration('001', 'create_t', E'\uFEFFCREATE TABLE t (id int);\r\nCREATE INDEX t_id ON t (id);\r\n', E'DROP TABLE t;\n');
SELECT version, name, state, checksum = warden.checksum(E'CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n') AS checksum_ok,
       checksum_algorithm, down_sql, down_checksum = warden.checksum(E'DROP TABLE t;\n') AS down_ok,
       transactional, baseline, applied_by_session, applied_by_current, application_name,
       execution_ms >= 0 AS timed, transaction_id IS NOT NULL AS has_xid, applied_at IS NOT NULL AS has_time
FROM warden.migrations;
SELECT warden.current_version();

-- A changed script under an applied version is refused, naming both checksums.
SELECT warden.apply_migration('1', 'create_t', E'CREATE TABLE t (id bigint);\n');
\echo :LAST_ERROR_SQLSTATE

-- Versions compare as numbers: 10 after 9 after 2.
SELECT warden.apply_migration('2', 'two', 'CREATE TABLE two (a int);', 'DROP TABLE two;');
SELECT warden.apply_migration('10', 'ten', 'CREATE TABLE ten (a int);', 'DROP TABLE ten;');
SELECT warden.current_version();

-- Older than the latest applied: refused unless allowed.
SELECT warden.apply_migration('9', 'nine', 'CREATE TABLE nine (a int);', 'DROP TABLE nine;');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('9', 'nine', 'CREATE TABLE nine (a int);', 'DROP TABLE nine;', allow_out_of_order => true);

-- A failing script rolls everything back; the error names the migration and the line.
SELECT warden.apply_migration('11', 'bad_runtime', E'-- comment\nCREATE TABLE u (id int);\n\nINSERT INTO u\n  VALUES (1 / 0);\n');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('11', 'bad_syntax', E'CREATE TABLE u (id int);\n\nSELEC 1;\n');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('11', 'bad_relation', E'CREATE TABLE u (id int);\nSELECT *\n  FROM no_such_table;\n');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('11', 'bad_commit', E'CREATE TABLE u (id int);\nCOMMIT;\n');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('11', 'bad_cic', E'CREATE INDEX CONCURRENTLY t_id2 ON t (id);\n');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('u') AS u_absent, count(*) AS rows FROM warden.migrations;

-- Bad arguments.
SELECT warden.apply_migration('1a', 'x', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('12', '', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('12', 'x', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('12', 'x', E'-- warden:no-transaction\nSELECT 1;');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.apply_migration('12', 'x', E'-- warden:notransaction\nSELECT 1;');
\echo :LAST_ERROR_SQLSTATE

-- In the caller's transaction: rolled back with it.
BEGIN;
SELECT warden.apply_migration('12', 'in_tx', 'CREATE TABLE in_tx (a int);');
ROLLBACK;
SELECT to_regclass('in_tx') AS in_tx_absent, warden.current_version();

-- Status and verification in one call each.
SELECT version, name, state, transactional, has_down, applied_by FROM warden.migration_status;
SELECT * FROM warden.verify_migrations(jsonb_build_array(
    jsonb_build_object('version', '001', 'name', 'create_t', 'checksum', warden.checksum(E'CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n')),
    jsonb_build_object('version', '2', 'name', 'two', 'checksum', warden.checksum('CREATE TABLE two (b int);')),
    jsonb_build_object('version', '10', 'name', 'ten', 'checksum', warden.checksum('CREATE TABLE ten (a int);')),
    jsonb_build_object('version', '20', 'name', 'twenty', 'checksum', warden.checksum('SELECT 20;'))));
SELECT * FROM warden.verify_migrations('{"version": "1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.verify_migrations('[{"version": "x1", "checksum": "00"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.verify_migrations(jsonb_build_array(
    jsonb_build_object('version', '01', 'name', 'a', 'checksum', warden.checksum('a')),
    jsonb_build_object('version', '1', 'name', 'b', 'checksum', warden.checksum('b'))));
\echo :LAST_ERROR_SQLSTATE
-- The same comparison from text lines (what the utility sends): identical answer.
SELECT * FROM warden.verify_migration_lines(
    '001' || E'\t' || 'create_t' || E'\t' || warden.checksum(E'CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n') || E'\n' ||
    '2' || E'\t' || 'two' || E'\t' || warden.checksum('CREATE TABLE two (b int);') || E'\n' ||
    '10' || E'\t' || 'ten' || E'\t' || warden.checksum('CREATE TABLE ten (a int);') || E'\n' ||
    '20' || E'\t' || 'twenty' || E'\t' || warden.checksum('SELECT 20;'));
SELECT count(*) FROM warden.verify_migration_lines('');
SELECT * FROM warden.verify_migration_lines(E'1 a ' || warden.checksum('a'));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.verify_migration_lines(E'x1\ta\t00');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.verify_migration_lines(E'01\ta\t' || warden.checksum('a') || E'\n1\tb\t' || warden.checksum('b'));
\echo :LAST_ERROR_SQLSTATE

-- Rollback: the latest, then down to a target, newest first; each recorded.
SELECT * FROM warden.rollback_migration();
SELECT warden.current_version();
SELECT * FROM warden.rollback_migration('1');
SELECT to_regclass('two') AS two_absent, to_regclass('nine') AS nine_absent, to_regclass('t') AS t_present;
SELECT version, state FROM warden.migration_status;
SELECT version, state, applied_checksum IS NULL AS no_applied_checksum
FROM warden.verify_migrations(jsonb_build_array(
    jsonb_build_object('version', '001', 'name', 'create_t', 'checksum', warden.checksum(E'CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n')),
    jsonb_build_object('version', '2', 'name', 'two', 'checksum', warden.checksum('CREATE TABLE two (a int);')),
    jsonb_build_object('version', '10', 'name', 'ten', 'checksum', warden.checksum('CREATE TABLE ten (a int);'))));
-- A rolled-back migration is pending again and can be re-applied.
SELECT warden.apply_migration('2', 'two', 'CREATE TABLE two (a int);', 'DROP TABLE two;');
-- No down script: refused before anything runs.
SELECT warden.apply_migration('3', 'no_down', 'CREATE TABLE no_down (a int);');
SELECT * FROM warden.rollback_migration('0');
\echo :LAST_ERROR_SQLSTATE
SELECT version, state FROM warden.migration_status;
-- A failing down script rolls the whole rollback back and names the line.
SELECT warden.apply_migration('4', 'bad_down', 'CREATE TABLE bad_down (a int);', E'DROP TABLE bad_down;\nDROP TABLE no_such;');
SELECT * FROM warden.rollback_migration();
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('bad_down') AS bad_down_present;
SELECT * FROM warden.rollback_migration('x');
\echo :LAST_ERROR_SQLSTATE
-- Nothing above the target: nothing to do.
SELECT * FROM warden.rollback_migration('100');

-- The event log has every apply and rollback, in order.
SELECT event, version, name, execution_ms >= 0 AS timed FROM warden.migration_events WHERE event <> 'drift' ORDER BY id;

DROP EXTENSION pg_warden CASCADE;
DROP TABLE t, two, no_down, bad_down;
