-- warden.backups and the functions `warden backup` records through.
CREATE EXTENSION pg_warden;

SELECT warden.record_backup('20261123T031500Z', 'physical', 'completed',
       '2026-11-23 03:15:00+00', '2026-11-23 03:16:00+00', 1000, 100,
       '{"label": "nightly", "system_identifier": "7300000000000000001",
         "start_lsn": "0/2000028", "stop_lsn": "0/2000100"}');
SELECT warden.record_backup('20261123T041500Z', 'logical', 'completed',
       NULL, '2026-11-23 04:16:00+00', 500, 50, '{"database": "app", "stop_lsn": "0/3000000"}');
SELECT id, kind, status, label, database, start_lsn, stop_lsn, verified_at IS NULL AS unverified
FROM warden.backups ORDER BY id;

-- A verification, then the backup recorded again (from another host): the outcome stays.
SELECT warden.record_backup_verification('20261123T031500Z', true, '2026-11-23 05:00:00+00', 'ok');
SELECT warden.record_backup('20261123T031500Z', 'physical', 'completed',
       '2026-11-23 03:15:00+00', '2026-11-23 03:16:00+00', 1000, 100, '{"label": "nightly"}');
SELECT warden.record_backup_verification('20261123T041500Z', false, '2026-11-23 05:00:00+00',
       'dump: pg_restore failed');
SELECT id, status, verified_at, verify_detail FROM warden.backups ORDER BY id;

-- Bad input.
SELECT warden.record_backup('../etc', 'physical', 'completed', NULL, now(), 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.record_backup('20261123T031500Z', 'incremental', 'completed', NULL, now(), 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.record_backup('20261123T031500Z', 'physical', 'verified', NULL, now(), 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.record_backup('20261123T031500Z', 'physical', 'completed', NULL, NULL, 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.record_backup_verification('20991231T000000Z', true, now());
\echo :LAST_ERROR_SQLSTATE

-- Who may record and read.
SELECT has_function_privilege('warden_admin',
         'warden.record_backup(text,text,text,timestamptz,timestamptz,bigint,bigint,jsonb)', 'EXECUTE') AS admin_records,
       has_function_privilege('warden_monitor',
         'warden.record_backup(text,text,text,timestamptz,timestamptz,bigint,bigint,jsonb)', 'EXECUTE') AS monitor_records,
       has_table_privilege('warden_monitor', 'warden.backups', 'SELECT') AS monitor_reads,
       has_table_privilege('warden_monitor', 'warden.backups', 'INSERT') AS monitor_writes;

DROP EXTENSION pg_warden CASCADE;
