-- The audit trigger: every operation, excluded columns, no-op updates, composite and
-- missing primary keys, TRUNCATE, the actor, validation and tampering.
CREATE EXTENSION pg_warden;
\set SHOW_CONTEXT never
SET client_min_messages = notice;

-- What an event looks like, without the columns that vary from run to run.
CREATE VIEW events AS
SELECT op, table_name, record_key, old_values, new_values, excluded_changed, actor
FROM warden.audit_log ORDER BY logged_at;

CREATE TABLE accounts (
    id bigint PRIMARY KEY, email text, password_hash text, api_secret text, balance numeric,
    active boolean, born date, seen_at timestamptz, tags text[], profile jsonb, score int
);

-- Enabling validates and is idempotent.
SELECT warden.enable_audit('accounts', '{password_hash,api_secret}');
SELECT warden.enable_audit('accounts', '{api_secret,password_hash}');
SELECT relid::regclass, exclude_columns, full_row, operations, enabled FROM warden.audit_tables;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'accounts'::regclass ORDER BY 1;

-- INSERT stores the new row without the excluded columns, and the actor set for the
-- transaction.
BEGIN;
SELECT warden.set_actor('user:7');
INSERT INTO accounts VALUES (1, 'a@example.com', 'hash-1', 'sk-1', 10.50, true, '1990-02-03',
                             '2026-01-02 03:04:05+00', '{a,b}', '{"theme": "dark"}', NULL);
COMMIT;
SELECT * FROM events;

-- UPDATE stores the changed columns only; the actor was for the last transaction only.
UPDATE accounts SET balance = 11, tags = '{a}' WHERE id = 1;
SELECT * FROM events WHERE op = 'UPDATE';

-- An UPDATE that changes nothing writes nothing.
UPDATE accounts SET balance = 11, email = email WHERE id = 1;
SELECT count(*) AS events_after_noop FROM warden.audit_log;

-- Changing an excluded column records that it changed, never its value.
SET warden.actor = 'user:8';
UPDATE accounts SET password_hash = 'hash-2' WHERE id = 1;
UPDATE accounts SET password_hash = 'hash-3', api_secret = 'sk-2', score = 5 WHERE id = 1;
RESET warden.actor;
SELECT * FROM events WHERE excluded_changed IS NOT NULL;
SELECT count(*) AS secrets_stored FROM warden.audit_log
WHERE (old_values::text || new_values::text) ~ 'hash-|sk-';

-- DELETE stores the old row.
DELETE FROM accounts WHERE id = 1;
SELECT * FROM events WHERE op = 'DELETE';

-- A rolled-back change leaves no audit row: the log is written in the same transaction.
BEGIN;
INSERT INTO accounts (id, email) VALUES (2, 'b@example.com');
ROLLBACK;
SELECT count(*) AS events_for_id_2 FROM warden.audit_log WHERE record_key = '{"id": 2}';

-- TRUNCATE is one statement-level event.
INSERT INTO accounts (id, email) VALUES (3, 'c@example.com'), (4, 'd@example.com');
TRUNCATE accounts;
SELECT * FROM events WHERE op = 'TRUNCATE';

-- Who and when: session and current user, application name, timestamps, transaction id.
SET application_name = 'audit-regress';
BEGIN;
INSERT INTO accounts (id) VALUES (5);
SELECT session_user_name, current_user_name, application_name, client_addr IS NULL AS unix_socket,
       txid = pg_current_xact_id() AS this_txid, transaction_at = now() AS tx_time,
       statement_at <= logged_at AS stmt_before_write
FROM warden.audit_log WHERE record_key = '{"id": 5}';
COMMIT;
RESET application_name;

-- full_row: UPDATE stores whole rows (still without the excluded columns).
SELECT warden.enable_audit('accounts', '{password_hash,api_secret}', true);
UPDATE accounts SET score = 1 WHERE id = 5;
SELECT old_values, new_values FROM warden.audit_log WHERE op = 'UPDATE' AND record_key = '{"id": 5}';

-- Only the chosen operations are audited.
SELECT warden.enable_audit('accounts', '{password_hash,api_secret}', false, '{insert,DELETE}');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'accounts'::regclass ORDER BY 1;
UPDATE accounts SET score = 2 WHERE id = 5;
TRUNCATE accounts;
INSERT INTO accounts (id) VALUES (6);
SELECT op, record_key FROM events WHERE record_key IN ('{"id": 5}', '{"id": 6}') OR op = 'TRUNCATE';

-- New columns are picked up (the per-table cache is invalidated by ALTER TABLE).
SELECT warden.enable_audit('accounts', '{password_hash,api_secret}');
ALTER TABLE accounts ADD COLUMN nickname text;
UPDATE accounts SET nickname = 'six' WHERE id = 6;
SELECT new_values FROM warden.audit_log WHERE op = 'UPDATE' AND record_key = '{"id": 6}';

-- A renamed excluded column: writes are refused rather than store it under a new name.
ALTER TABLE accounts RENAME COLUMN api_secret TO token;
UPDATE accounts SET token = 'sk-9' WHERE id = 6;
\echo :LAST_ERROR_SQLSTATE
SELECT warden.enable_audit('accounts', '{password_hash,token}');
UPDATE accounts SET token = 'sk-9' WHERE id = 6;
SELECT excluded_changed FROM warden.audit_log WHERE excluded_changed IS NOT NULL ORDER BY logged_at DESC LIMIT 1;

-- Composite primary keys: record_key has every key column; changing the key stores the
-- new key and the old key values in old_values.
CREATE TABLE memberships (user_id int, role_id int, granted_by text, PRIMARY KEY (user_id, role_id));
SELECT warden.enable_audit('memberships');
INSERT INTO memberships VALUES (1, 2, 'root');
UPDATE memberships SET role_id = 3 WHERE user_id = 1;
SELECT op, record_key, old_values, new_values FROM events WHERE table_name = 'memberships';
SELECT op, record_key FROM warden.audit_history('memberships', '{"user_id": 1, "role_id": 3}');

-- A table without a primary key: record_key is NULL and an UPDATE stores the whole old
-- row (it is what identifies the row), the new values of the changed columns.
CREATE TABLE notes (body text, author text);
SELECT warden.enable_audit('notes');
INSERT INTO notes VALUES ('hello', 'ann');
UPDATE notes SET body = 'hello!';
SELECT op, record_key, old_values, new_values FROM events WHERE table_name = 'notes';

-- Values of every kind are converted as to_jsonb() converts them.
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TYPE point2 AS (x int, y int);
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE kinds (id uuid PRIMARY KEY, s smallint, f float8, n numeric, c char(3), vc varchar(5),
                    j json, b bytea, ip inet, iv interval, ts timestamp, tz timestamptz, m mood,
                    p point2, d positive, arr int[]);
SELECT warden.enable_audit('kinds');
INSERT INTO kinds VALUES ('00000000-0000-0000-0000-000000000001', -2, 1.5, 'NaN', 'ab', 'xyz',
                          '{"k": [1, 2]}', '\x0102', '10.0.0.1/8', '1 day 2 hours', '2026-03-04 05:06:07',
                          'infinity', 'busy', ROW(1, 2), 7, '{1,NULL,3}');
UPDATE kinds SET n = 2.50, tz = '-infinity', p = ROW(1, 3);
SELECT op, record_key, old_values, new_values FROM events WHERE table_name = 'kinds';

-- Validation: clear errors, nothing half-applied.
SELECT warden.enable_audit('accounts', '{no_such_column}');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.enable_audit('accounts', ARRAY[NULL]::text[]);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.enable_audit('accounts', '{}', false, '{SELECT}');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.enable_audit('accounts', '{}', false, '{}');
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW accounts_view AS SELECT * FROM accounts;
SELECT warden.enable_audit('accounts_view');
\echo :LAST_ERROR_SQLSTATE
CREATE TEMP TABLE scratch (id int PRIMARY KEY);
SELECT warden.enable_audit('scratch');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.enable_audit('warden.audit_settings');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.enable_audit('no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT exclude_columns FROM warden.audit_tables WHERE relid = 'accounts'::regclass;

-- The trigger function refuses to be misused.
CREATE TABLE misuse (id int);
CREATE TRIGGER bad BEFORE INSERT ON misuse FOR EACH ROW EXECUTE FUNCTION warden.audit_trigger('diff');
INSERT INTO misuse VALUES (1);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER bad ON misuse;
CREATE TRIGGER bad AFTER INSERT ON misuse FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_trigger('diff');
INSERT INTO misuse VALUES (1);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER bad ON misuse;
CREATE TRIGGER bad AFTER INSERT ON misuse FOR EACH ROW EXECUTE FUNCTION warden.audit_trigger('everything');
INSERT INTO misuse VALUES (1);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.audit_trigger();
\echo :LAST_ERROR_SQLSTATE

-- Disabling stops auditing and keeps the history; enabling again resumes.
SELECT count(*) AS before_disable FROM warden.audit_log WHERE table_name = 'notes';
SELECT warden.disable_audit('notes');
SELECT warden.disable_audit('notes');
INSERT INTO notes VALUES ('unaudited', 'bob');
SELECT count(*) AS after_disable FROM warden.audit_log WHERE table_name = 'notes';
SELECT enabled, disabled_at IS NOT NULL AS disabled FROM warden.audit_tables WHERE relid = 'notes'::regclass;
SELECT warden.enable_audit('notes');

-- Tampering: UPDATE, DELETE and TRUNCATE of the log are refused, for the superuser too,
-- on the parent and on a partition.
UPDATE warden.audit_log SET actor = 'someone else';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM warden.audit_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE warden.audit_log;
\echo :LAST_ERROR_SQLSTATE
SELECT format('DELETE FROM %s', warden.audit_partition_for(now())) AS delete_partition \gset
:delete_partition;
\echo :LAST_ERROR_SQLSTATE
SELECT format('TRUNCATE %s', warden.audit_partition_for(now())) AS truncate_partition \gset
:truncate_partition;
\echo :LAST_ERROR_SQLSTATE

-- An application role writes audited tables and sets its actor, but cannot read, write
-- or tamper with the log, nor switch on retention mode.
CREATE ROLE regress_audit_app;
GRANT warden_app TO regress_audit_app;
GRANT ALL ON accounts TO regress_audit_app;
SET ROLE regress_audit_app;
BEGIN;
SELECT warden.set_actor('request-99');
INSERT INTO accounts (id, email) VALUES (7, 'app@example.com');
COMMIT;
SELECT count(*) FROM warden.audit_log;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO warden.audit_log (logged_at, op, relid, schema_name, table_name, statement_at,
                              transaction_at, txid, session_user_name, current_user_name)
VALUES (now(), 'INSERT', 0, 'x', 'y', now(), now(), '1', 'x', 'y');
\echo :LAST_ERROR_SQLSTATE
SELECT warden._audit_retention_mode(true);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.cleanup_audit();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT session_user_name, current_user_name, actor FROM warden.audit_log WHERE record_key = '{"id": 7}';

-- A table owner who is a member of warden_admin (not a superuser) enables auditing.
CREATE ROLE regress_audit_owner;
GRANT warden_admin TO regress_audit_owner;
GRANT CREATE ON SCHEMA public TO regress_audit_owner;
SET ROLE regress_audit_owner;
CREATE TABLE owned (id int PRIMARY KEY, secret text);
SELECT warden.enable_audit('owned', '{secret}');
INSERT INTO owned VALUES (1, 's');
SELECT op, new_values, current_user_name FROM warden.audit_log WHERE table_name = 'owned';
SELECT warden.disable_audit('owned');
DROP TABLE owned;
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_audit_owner;
DROP ROLE regress_audit_owner;

-- warden.* settings other than the defined ones are still refused.
SET warden.actr = 'typo';
\echo :LAST_ERROR_SQLSTATE

-- The reading views.
SELECT op, table_name, record_key, actor FROM warden.audit_recent WHERE table_name = 'memberships';
SELECT schema_name, table_name, inserts, updates, deletes, truncates, total
FROM warden.audit_daily_counts ORDER BY table_name;
SELECT count(*) > 0 AS monitor_reads_counts FROM warden.audit_daily_counts;
SELECT has_table_privilege('warden_monitor', 'warden.audit_daily_counts', 'SELECT') AS monitor_counts,
       has_table_privilege('warden_monitor', 'warden.audit_log', 'SELECT') AS monitor_log,
       has_table_privilege('warden_app', 'warden.audit_log', 'SELECT') AS app_log;

-- With an index on the log (optional, for frequent history reads) the trigger, which
-- inserts below the executor, maintains it too.
CREATE INDEX audit_log_key ON warden.audit_log (table_name, record_key);
INSERT INTO memberships VALUES (5, 6, 'indexed');
SET enable_seqscan = off;
SELECT count(*) AS found_by_index FROM warden.audit_log
WHERE table_name = 'memberships' AND record_key = '{"user_id": 5, "role_id": 6}';
RESET enable_seqscan;
DROP INDEX warden.audit_log_key;

DROP TABLE accounts, memberships, notes, misuse, kinds CASCADE;
DROP TYPE mood, point2;
DROP DOMAIN positive;
DROP VIEW events;
DROP OWNED BY regress_audit_app;
DROP ROLE regress_audit_app;
DROP EXTENSION pg_warden CASCADE;
