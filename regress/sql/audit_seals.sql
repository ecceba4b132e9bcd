-- Seals over the audit trail: closed slices hashed and chained, verify names the first
-- slice where a row was deleted, changed or forged, or whose partition was dropped by
-- hand; nobody but a superuser changes a seal, and an altered seal is found too. Rows are
-- written straight into the log at fixed past times (as the superuser), so that the
-- slices are known; the worker's job is off.
CREATE EXTENSION pg_warden;
\set SHOW_CONTEXT never
UPDATE warden.jobs SET enabled = false WHERE name = 'seal_audit';

CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE TABLE other (id int PRIMARY KEY, v text);
SELECT warden.enable_audit('items'), warden.enable_audit('other');
CREATE FUNCTION log_at(t timestamptz, tbl regclass, k int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO warden.audit_log (logged_at, op, relid, schema_name, table_name, record_key, new_values,
                                  statement_at, transaction_at, txid, session_user_name, current_user_name)
    VALUES (t, 'INSERT', tbl, 'public', tbl::text, jsonb_build_object('id', k),
            jsonb_build_object('id', k, 'v', 'value ' || k), t, t, '1000', 'app', 'app')
$$;
SET TimeZone = 'UTC';
-- A day with its own partition, the rest in the default partition.
SELECT warden._audit_add_partition('2026-01-02 00:00+00', '2026-01-03 00:00+00');
SELECT log_at('2026-01-01 10:00:10+00', 'items', 1), log_at('2026-01-01 10:00:20+00', 'other', 2),
       log_at('2026-01-01 10:02:30+00', 'items', 3), log_at('2026-01-01 10:05:00+00', 'items', 4),
       log_at('2026-01-02 10:00:00+00', 'items', 5), log_at('2026-01-02 10:00:59.999999+00', 'other', 6);

-- Security events at the same times (recorded_at places them; occurred_at may be earlier).
INSERT INTO warden.security_events (occurred_at, recorded_at, event_type, principal, detail) VALUES
    ('2026-01-01 10:00:29+00', '2026-01-01 10:00:30+00', 'login_failed', 'mallory', 'bad password'),
    ('2026-01-01 10:00:29+00', '2026-01-01 10:00:31+00', 'locked', 'mallory', 'too many failures'),
    ('2026-01-01 10:02:59+00', '2026-01-01 10:03:10+00', 'login_failed', 'mallory', 'bad password');

-- Nothing sealed yet: verify has nothing to check and says so.
SELECT chain, ok, seals, rows_checked, sealed_through FROM warden.verify_audit() ORDER BY chain;

-- Sealing up to 2026-01-03: slices with rows are one minute each, empty stretches one
-- seal each; the first seal starts at the oldest row's slice.
SELECT warden.seal_audit('2026-01-03 00:00+00');
SELECT seq, slice_start, slice_end, row_count, cardinality(groups) AS groups, partitions,
       prev_seal IS NOT DISTINCT FROM lag(seal) OVER (ORDER BY seq) AS linked
FROM warden.audit_seals WHERE chain = 'audit_log' ORDER BY seq;
SELECT warden.seal_audit('2026-01-03 00:00+00') AS nothing_new;
SELECT chain, ok, seals, rows_checked, sealed_through, problem FROM warden.verify_audit() ORDER BY chain;
SELECT chain, seq, slice_end, length(seal) AS hex_length FROM warden.audit_head() ORDER BY chain;

-- Each tampering is undone by ROLLBACK before the next one.
-- A deleted row: its slice (seal 3) is named.
BEGIN;
SELECT warden._audit_retention_mode(true);
DELETE FROM warden.audit_log WHERE record_key = '{"id": 3}';
SELECT ok, first_bad_seq, slice_start, slice_end, problem, detail ~ 'public.items' AS names_table, problems
FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- An edited row (seal 5).
BEGIN;
SELECT warden._audit_retention_mode(true);
UPDATE warden.audit_log SET new_values = '{"id": 4, "v": "forged"}' WHERE record_key = '{"id": 4}';
SELECT ok, first_bad_seq, slice_start, slice_end, problem, detail ~ '1 row\(s\) sealed, 1 found' AS counts
FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- A changed time moves a row to another slice: deleted from one, inserted into another.
BEGIN;
SELECT warden._audit_retention_mode(true);
UPDATE warden.audit_log SET logged_at = '2026-01-01 10:03:00+00' WHERE record_key = '{"id": 4}';
SELECT ok, first_bad_seq, problem, problems FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- A forged row inserted into an empty stretch (seal 4), and one older than the first seal.
BEGIN;
SELECT log_at('2026-01-01 10:04:00+00', 'items', 99);
SELECT ok, first_bad_seq, slice_start, slice_end, problem, detail ~ '0 row\(s\) sealed, 1 found' AS counts
FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;
BEGIN;
SELECT log_at('2026-01-01 09:59:59+00', 'items', 98);
SELECT ok, first_bad_seq, slice_end, problem, detail FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- A partition dropped by hand (seal 7 held its rows).
BEGIN;
DROP TABLE warden.audit_log_p20260102;
SELECT ok, first_bad_seq, slice_start, problem,
       detail ~ '^partition warden.audit_log_p20260102, which held' AS names_partition
FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- since: only the seals ending after it are recomputed (the forged row before is not seen).
BEGIN;
SELECT warden._audit_retention_mode(true);
DELETE FROM warden.audit_log WHERE record_key = '{"id": 1}';
SELECT ok, seals, problem FROM warden.verify_audit('2026-01-01 10:01:00+00') WHERE chain = 'audit_log';
SELECT ok, first_bad_seq, problem FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- The seals themselves: a superuser who edits one is found (its hash no longer matches,
-- or the next seal no longer names it).
BEGIN;
UPDATE warden.audit_seals SET counts = '{2}', row_count = 2 WHERE chain = 'audit_log' AND seq = 3;
SELECT ok, first_bad_seq, problem, detail FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;
BEGIN;
DELETE FROM warden.audit_seals WHERE chain = 'audit_log' AND seq = 4;
SELECT ok, first_bad_seq, problem, detail FROM warden.verify_audit() WHERE chain = 'audit_log';
ROLLBACK;

-- The security events' chain, per event type: a deleted and an edited event.
BEGIN;
DELETE FROM warden.security_events WHERE event_type = 'locked';
SELECT chain, ok, first_bad_seq, slice_start, problem, detail FROM warden.verify_audit() WHERE chain = 'security_events';
ROLLBACK;
BEGIN;
UPDATE warden.security_events SET principal = 'alice' WHERE recorded_at = '2026-01-01 10:03:10+00';
SELECT chain, ok, first_bad_seq, slice_start, problem, detail FROM warden.verify_audit() WHERE chain = 'security_events';
ROLLBACK;

-- Retention removes what is past it and says so: verify tells its removals from tampering,
-- and the seals stay.
SELECT warden.cleanup_audit('30 days') AS removed;
SELECT warden._cleanup_login_attempts();
-- (trims of the log are cut at a seal boundary 30 days ago: shown as 2026-02-01)
SELECT chain, grp IS NULL AS every_group, grp = 'locked' AS locked_group, removed_from,
       least(removed_before, '2026-02-01') AS removed_before
FROM warden.audit_seal_removals ORDER BY id;
SELECT (SELECT count(*) FROM warden.audit_log WHERE logged_at < '2026-02-01') AS old_audit_rows,
       (SELECT count(*) FROM warden.security_events WHERE recorded_at < '2026-02-01') AS old_events,
       (SELECT count(*) FROM warden.audit_seals WHERE slice_end <= '2026-01-03') AS seals_kept;
SELECT chain, ok, seals, problem FROM warden.verify_audit() ORDER BY chain;

-- The ledger's chain, in real time: one-second slices, a migration, the slice waited for.
UPDATE warden.audit_settings SET seal_interval = '1 second';
SELECT warden.apply_migration('1', 'create_m', 'CREATE TABLE m (id int);', 'DROP TABLE m;');
DO $$
BEGIN
    WHILE clock_timestamp() < date_trunc('second', (SELECT max(occurred_at) FROM warden.migration_events))
                              + interval '1.1 second' LOOP
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;
SELECT warden.seal_audit() > 0 AS sealed;
SELECT chain, ok, problem FROM warden.verify_audit() ORDER BY chain;
SELECT (SELECT count(*) FROM warden.migration_events)
       = (SELECT sum(row_count) FROM warden.audit_seals WHERE chain = 'migration_events') AS every_event_sealed;
BEGIN;
ALTER TABLE warden.migration_events DISABLE TRIGGER migration_events_guard;
UPDATE warden.migration_events SET checksum = 'forged' WHERE event = 'applied';
SELECT chain, ok, first_bad_seq > 0 AS named, problem, detail FROM warden.verify_audit() WHERE chain = 'migration_events';
ROLLBACK;
UPDATE warden.audit_settings SET seal_interval = '1 minute';

-- No warden role changes a seal, nor writes one; the sealing routine's mode is not theirs.
CREATE ROLE regress_seal_admin;
GRANT warden_admin TO regress_seal_admin;
SET ROLE regress_seal_admin;
SELECT count(*) > 0 AS admin_reads FROM warden.audit_seals;
UPDATE warden.audit_seals SET row_count = 0;
DELETE FROM warden.audit_seal_removals;
INSERT INTO warden.audit_seals (chain, seq, slice_start, slice_end, row_count, groups, counts, hashes, seal)
VALUES ('audit_log', 100, now(), now() + interval '1 minute', 0, '{}', '{}', '{}', '\x00');
SELECT warden._audit_seal_mode(true);
SELECT chain, ok FROM warden.verify_audit() ORDER BY chain;
RESET ROLE;
-- A role granted the table by mistake still does not pass the guard outside seal mode.
CREATE ROLE regress_seal_owner;
GRANT USAGE ON SCHEMA warden TO regress_seal_owner;
GRANT SELECT, INSERT, UPDATE ON warden.audit_seals TO regress_seal_owner;
SET ROLE regress_seal_owner;
UPDATE warden.audit_seals SET row_count = 0 WHERE seq = 1;
INSERT INTO warden.audit_seals (chain, seq, slice_start, slice_end, row_count, groups, counts, hashes, seal)
VALUES ('audit_log', 100, now(), now() + interval '1 minute', 0, '{}', '{}', '{}', '\x00');
RESET ROLE;
REVOKE ALL ON warden.audit_seals FROM regress_seal_owner;
REVOKE USAGE ON SCHEMA warden FROM regress_seal_owner;

-- Sealing needs READ COMMITTED: an older snapshot could miss a committed row.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT warden.seal_audit();
ROLLBACK;

-- The interval of slices divides an hour.
UPDATE warden.audit_settings SET seal_interval = '7 seconds';
UPDATE warden.audit_settings SET seal_interval = '7 minutes';
UPDATE warden.audit_settings SET seal_interval = '90 seconds';

-- The trigger keeps its partition state for the backend and takes the locks once per
-- transaction: a savepoint rolled back releases them, and the next row takes them again.
SELECT warden.audit_partition_for(now()) AS part \gset
BEGIN;
SAVEPOINT s;
INSERT INTO items VALUES (1, 'a');
ROLLBACK TO s;
SELECT count(*) AS log_locks_after_rollback_to FROM pg_locks
WHERE pid = pg_backend_pid() AND relation = 'warden.audit_log'::regclass;
INSERT INTO items VALUES (2, 'b');
INSERT INTO items VALUES (3, 'c');
SELECT mode, granted FROM pg_locks
WHERE pid = pg_backend_pid() AND relation IN ('warden.audit_log'::regclass, :'part'::regclass);
COMMIT;
SELECT record_key FROM warden.audit_log WHERE table_name = 'items' AND logged_at > now() - interval '1 hour'
ORDER BY logged_at;

DROP ROLE regress_seal_admin;
DROP ROLE regress_seal_owner;
DROP TABLE items, other, m;
DROP FUNCTION log_at;
DROP EXTENSION pg_warden;
