-- Backups taken and verified by `warden backup` (the files live in the backup folder;
-- this is what the database knows of them, for the health views). The utility records
-- each backup and each verification or drill through the two functions below when the
-- extension is installed in the database it connects to.
CREATE TABLE warden.backups (
    id                text PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('physical', 'logical')),
    status            text NOT NULL CHECK (status IN ('completed', 'verified', 'verify_failed')),
    label             text,
    database          text,
    system_identifier text,
    start_lsn         pg_lsn,
    stop_lsn          pg_lsn,
    started_at        timestamptz,
    finished_at       timestamptz NOT NULL,
    verified_at       timestamptz,
    verify_detail     text,
    original_bytes    bigint,
    stored_bytes      bigint,
    details           jsonb NOT NULL DEFAULT '{}',
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backups_finished_at ON warden.backups (finished_at);
-- A logical backup of this database carries the history of its backups.
SELECT pg_catalog.pg_extension_config_dump('warden.backups', '');
GRANT SELECT ON warden.backups TO warden_admin, warden_monitor;

-- Records (or refreshes) a completed backup; a verification already recorded is kept.
CREATE FUNCTION warden.record_backup(backup_id text, kind text, status text,
                                     started_at timestamptz, finished_at timestamptz,
                                     original_bytes bigint, stored_bytes bigint,
                                     details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF backup_id IS NULL OR backup_id !~ '^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$' THEN
        RAISE EXCEPTION 'invalid backup ID %', coalesce(quote_literal(backup_id), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Backup IDs are UTC timestamps such as 20261123T031500Z.';
    END IF;
    IF kind IS NULL OR kind NOT IN ('physical', 'logical') THEN
        RAISE EXCEPTION 'invalid backup kind %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use physical or logical.';
    END IF;
    IF status IS DISTINCT FROM 'completed' THEN
        RAISE EXCEPTION 'a backup is recorded as completed, not %', coalesce(quote_literal(status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Verifications go through warden.record_backup_verification().';
    END IF;
    IF finished_at IS NULL THEN
        RAISE EXCEPTION 'finished_at is required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO warden.backups AS b
        (id, kind, status, label, database, system_identifier, start_lsn, stop_lsn,
         started_at, finished_at, original_bytes, stored_bytes, details)
    VALUES (backup_id, kind, status, details ->> 'label', nullif(details ->> 'database', ''),
            details ->> 'system_identifier', nullif(details ->> 'start_lsn', '')::pg_lsn,
            nullif(details ->> 'stop_lsn', '')::pg_lsn, started_at, finished_at,
            original_bytes, stored_bytes, coalesce(details, '{}'))
    ON CONFLICT (id) DO UPDATE
        SET kind = excluded.kind, label = excluded.label, database = excluded.database,
            system_identifier = excluded.system_identifier, start_lsn = excluded.start_lsn,
            stop_lsn = excluded.stop_lsn, started_at = excluded.started_at,
            finished_at = excluded.finished_at, original_bytes = excluded.original_bytes,
            stored_bytes = excluded.stored_bytes, details = excluded.details,
            recorded_at = now();
END
$$;

-- Records the outcome of `warden backup verify` or `warden backup drill`.
CREATE FUNCTION warden.record_backup_verification(backup_id text, ok boolean,
                                                  verified_at timestamptz, detail text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ok IS NULL OR verified_at IS NULL THEN
        RAISE EXCEPTION 'ok and verified_at are required' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE warden.backups b
       SET status = CASE WHEN ok THEN 'verified' ELSE 'verify_failed' END,
           verified_at = record_backup_verification.verified_at,
           verify_detail = detail
     WHERE b.id = backup_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown backup %', quote_literal(backup_id)
            USING ERRCODE = 'no_data_found', HINT = 'Record it with warden.record_backup() first.';
    END IF;
END
$$;

GRANT EXECUTE ON FUNCTION warden.record_backup(text, text, text, timestamptz, timestamptz, bigint, bigint, jsonb)
    TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.record_backup_verification(text, boolean, timestamptz, text) TO warden_admin;

-- The exact number of rows of a table in the current snapshot, as count(*) gives it, at a
-- fraction of the CPU (extension/row_count.cpp): `warden backup --logical` counts every
-- table beside the running pg_dump. NULL when it does not apply (a table access method
-- other than heap, or row-level security for the caller): use count(*) then. Not
-- SECURITY DEFINER: the caller needs SELECT on the table, as for count(*).
CREATE FUNCTION warden.count_rows(rel regclass) RETURNS bigint
AS 'MODULE_PATHNAME', 'warden_count_rows' LANGUAGE C STABLE STRICT;
GRANT EXECUTE ON FUNCTION warden.count_rows(regclass) TO warden_admin, warden_monitor;
