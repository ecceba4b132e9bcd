-- Time partitions of warden.audit_log: created ahead, the day boundary, writes when no
-- partition covers the time, and retention (whole partitions dropped, straddling ones
-- trimmed in bounded batches, per-table overrides).
CREATE EXTENSION pg_warden;
\set SHOW_CONTEXT never
CREATE TABLE items (id int PRIMARY KEY, v text);
CREATE TABLE logins (id int PRIMARY KEY, v text);
SELECT warden.enable_audit('items'), warden.enable_audit('logins');

-- Partitions cover today and the next 7 days, one UTC day each.
SELECT count(*) FILTER (WHERE range_end > now() + interval '7 days') >= 1 AS seven_days_ahead,
       count(*) FILTER (WHERE now() >= range_start AND now() < range_end) = 1 AS today_covered,
       bool_and(range_start = date_bin('1 day', range_start, '2000-01-01 00:00+00')) AS aligned_to_utc_midnight,
       bool_and(range_end - range_start = interval '1 day') AS daily
FROM warden.audit_partitions WHERE range_start IS NOT NULL;

-- The day boundary: the last microsecond of today and midnight go to two adjacent
-- partitions, neither of them the default one.
SELECT date_bin('1 day', now(), '2000-01-01 00:00+00') + interval '1 day' AS midnight \gset
SELECT warden.audit_partition_for(:'midnight'::timestamptz - interval '1 microsecond') AS before \gset
SELECT warden.audit_partition_for(:'midnight') AS after \gset
SELECT :'before'::regclass <> :'after'::regclass AS different,
       (SELECT range_end FROM warden.audit_partitions WHERE partition = :'before'::regclass) = :'midnight' AS before_ends_at_midnight,
       (SELECT range_start FROM warden.audit_partitions WHERE partition = :'after'::regclass) = :'midnight' AS after_starts_at_midnight,
       'warden.audit_log_default'::regclass NOT IN (:'before'::regclass, :'after'::regclass) AS not_default;

-- Running the maintenance again is harmless (at most one partition when a day just began).
SELECT warden.audit_create_partitions() <= 1 AS idempotent;

-- The maintenance job has been down for longer than the partitions made ahead: every
-- dated partition is gone. Audited writes still succeed, in one transaction as in many,
-- caught by the default partition...
DO $$
DECLARE p regclass;
BEGIN
    FOR p IN SELECT partition FROM warden.audit_partitions WHERE range_start IS NOT NULL LOOP
        EXECUTE format('DROP TABLE %s', p);
    END LOOP;
END $$;
BEGIN;
INSERT INTO items VALUES (1, 'a');
UPDATE items SET v = 'b' WHERE id = 1;
COMMIT;
SELECT op, tableoid::regclass FROM warden.audit_log ORDER BY logged_at;
-- ... and the next maintenance run gives them their partition.
SELECT warden.audit_create_partitions() >= 8 AS recreated;
SELECT op, tableoid::regclass = warden.audit_partition_for(logged_at) AS in_its_partition,
       tableoid <> 'warden.audit_log_default'::regclass AS not_default
FROM warden.audit_log ORDER BY logged_at;
SELECT count(*) AS left_in_default FROM warden.audit_log_default;

-- Retention. Old events, written straight into the log by the superuser, land in the
-- default partition; maintenance moves them into partitions of their own.
CREATE FUNCTION old_event(tbl text, days int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO warden.audit_log (logged_at, op, relid, schema_name, table_name, record_key,
                                  statement_at, transaction_at, txid, session_user_name, current_user_name)
    VALUES (now() - days * interval '1 day', 'INSERT', tbl::regclass, 'public', tbl,
            jsonb_build_object('days', days), now(), now(), '1', 'postgres', 'postgres')
$$;
SELECT old_event(t, d) FROM unnest(ARRAY[400, 390, 366, 40, 10, 2]) d, unnest(ARRAY['items', 'logins']) t;
SELECT count(*) AS in_default FROM warden.audit_log_default;
SELECT warden.audit_create_partitions() >= 6 AS created_for_old_rows;
SELECT count(*) AS in_default FROM warden.audit_log_default;

-- The default retention (365 days): three whole days are dropped, partitions and all.
SELECT warden.cleanup_audit() AS removed;
SELECT count(*) AS partitions_older_than_a_year FROM warden.audit_partitions
WHERE range_end <= now() - interval '365 days';

-- A per-table override: logins keeps 30 days. Its 40-day-old row shares a partition
-- with an items row that is kept, so it is trimmed by DELETE.
SELECT warden.set_audit_retention('logins', '30 days');
SELECT warden.cleanup_audit() AS removed;
-- Partitions trimmed for a retention are remembered and not scanned again for it.
SELECT count(*) > 0 AS progress_recorded FROM warden.audit_trim_progress WHERE retention = '30 days';

-- An explicit retention replaces the default for one call (not below the floor
-- warden.audit_min_retention, 7 days by default); overrides still apply.
SELECT warden.cleanup_audit('8 days') AS removed;
SELECT table_name, record_key->>'days' AS days FROM warden.audit_log
WHERE record_key ? 'days' ORDER BY 1, 2;

-- Trimming goes in bounded batches; what is left waits for the next run.
UPDATE warden.audit_settings SET trim_batch_size = 1, trim_max_batches = 2;
SELECT old_event('logins', 35) FROM generate_series(1, 3);
SELECT warden.cleanup_audit() AS removed;
SELECT warden.cleanup_audit() AS removed;
SELECT warden.cleanup_audit() AS removed;
UPDATE warden.audit_settings SET trim_batch_size = DEFAULT, trim_max_batches = DEFAULT;

-- Bad input.
SELECT warden.cleanup_audit('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.set_audit_retention('warden.audit_settings', '1 day');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE unaudited (id int);
SELECT warden.set_audit_retention('unaudited', '1 day');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.audit_settings SET partition_interval = '1 month';
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.audit_settings SET retention = '0';
\echo :LAST_ERROR_SQLSTATE

-- The partition interval is configurable: new partitions after the existing ones are
-- six hours long.
UPDATE warden.audit_settings SET partition_interval = '6 hours', partitions_ahead = 40;
SELECT warden.audit_create_partitions() > 0 AS created;
SELECT DISTINCT range_end - range_start AS length FROM warden.audit_partitions
WHERE range_start > now() + interval '8 days' ORDER BY 1;

-- A member of warden_admin runs the maintenance job.
CREATE ROLE regress_audit_admin;
GRANT warden_admin TO regress_audit_admin;
SET ROLE regress_audit_admin;
CALL warden.audit_maintenance();
SELECT warden.cleanup_audit() AS removed;
RESET ROLE;
DROP ROLE regress_audit_admin;

DROP TABLE items, logins, unaudited;
DROP FUNCTION old_event(text, int);
DROP EXTENSION pg_warden CASCADE;
