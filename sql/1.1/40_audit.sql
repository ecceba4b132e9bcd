-- Audit trail: a C++ row trigger (extension/audit_trigger.cpp) writes one row per change
-- into warden.audit_log, a table range-partitioned by time. Retention drops whole
-- partitions; see docs/audit.md.

-- One row of settings. Partition boundaries are aligned to multiples of
-- partition_interval counted from 2000-01-01 00:00 UTC (daily partitions start at UTC
-- midnight).
CREATE TABLE warden.audit_settings (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    partition_interval interval NOT NULL DEFAULT '1 day'
        CHECK (partition_interval >= interval '1 hour'
               AND date_part('month', partition_interval) = 0
               AND date_part('year', partition_interval) = 0),
    partitions_ahead   integer NOT NULL DEFAULT 7 CHECK (partitions_ahead BETWEEN 1 AND 366),
    retention          interval NOT NULL DEFAULT '365 days' CHECK (retention > interval '0'),
    trim_batch_size    integer NOT NULL DEFAULT 10000 CHECK (trim_batch_size > 0),
    trim_max_batches   integer NOT NULL DEFAULT 50 CHECK (trim_max_batches > 0),
    lock_timeout_ms    integer NOT NULL DEFAULT 100 CHECK (lock_timeout_ms BETWEEN 1 AND 60000)
);
INSERT INTO warden.audit_settings DEFAULT VALUES;

-- Tables under audit. A disabled table keeps its row (and its retention override) so
-- that its history stays readable and is still cleaned up on its own schedule.
-- relid is an OID rather than regclass so that pg_upgrade accepts the table.
CREATE TABLE warden.audit_tables (
    relid           oid PRIMARY KEY,
    schema_name     text NOT NULL,
    table_name      text NOT NULL,
    exclude_columns text[] NOT NULL DEFAULT '{}',
    full_row        boolean NOT NULL DEFAULT false,
    operations      text[] NOT NULL DEFAULT '{INSERT,UPDATE,DELETE,TRUNCATE}',
    retention       interval CHECK (retention > interval '0'),
    enabled         boolean NOT NULL DEFAULT true,
    enabled_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

-- How far retention has trimmed each partition, per retention class, so that a
-- partition is not scanned again for rows it no longer has.
CREATE TABLE warden.audit_trim_progress (
    partition_oid  oid NOT NULL,
    retention      interval NOT NULL,
    trimmed_before timestamptz NOT NULL,
    PRIMARY KEY (partition_oid, retention)
);

-- The log. logged_at is the clock time of the write (the partition key); the statement
-- and transaction start times are kept beside it.
CREATE TABLE warden.audit_log (
    logged_at         timestamptz NOT NULL,
    op                text NOT NULL,
    relid             oid NOT NULL,
    schema_name       text NOT NULL,
    table_name        text NOT NULL,
    record_key        jsonb,
    old_values        jsonb,
    new_values        jsonb,
    excluded_changed  text[],
    statement_at      timestamptz NOT NULL,
    transaction_at    timestamptz NOT NULL,
    txid              xid8 NOT NULL,
    session_user_name text NOT NULL,
    current_user_name text NOT NULL,
    actor             text,
    application_name  text,
    client_addr       inet
) PARTITION BY RANGE (logged_at);

-- Catches any write whose time no partition covers (the maintenance job was down for
-- longer than partitions_ahead): an audited write never fails for lack of a partition.
-- audit_create_partitions moves such rows into proper partitions later.
CREATE TABLE warden.audit_log_default PARTITION OF warden.audit_log DEFAULT;

-- pg_dump keeps the events (partitions made later are not extension members and are
-- dumped anyway). The settings row and audit_tables are not dumped: CREATE EXTENSION
-- recreates the former, and the latter is keyed by OIDs that a restore changes (the
-- audit triggers themselves come back with their tables).
SELECT pg_catalog.pg_extension_config_dump('warden.audit_log_default', '');

-- The row trigger and the statement-level TRUNCATE trigger (one C function for both).
-- Arguments: 'full' or 'diff', then the names of the excluded columns (names survive a
-- dump and restore; a trigger naming a column that no longer exists refuses to write
-- rather than risk storing a renamed secret).
CREATE FUNCTION warden.audit_trigger() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_audit_trigger'
LANGUAGE C;

-- Refuses UPDATE, DELETE and TRUNCATE on the log unless the retention routine is running.
CREATE FUNCTION warden.audit_log_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_audit_log_guard'
LANGUAGE C;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON warden.audit_log
    FOR EACH ROW EXECUTE FUNCTION warden.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON warden.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON warden.audit_log_default
    FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_log_guard();

-- Lets this backend's retention routine past the guard until the transaction (or
-- subtransaction) ends. Not granted to anyone: only the SECURITY DEFINER routines below
-- (owned by the extension owner) call it.
CREATE FUNCTION warden._audit_retention_mode(on_off boolean) RETURNS void
AS 'MODULE_PATHNAME', 'warden_audit_retention_mode'
LANGUAGE C STRICT VOLATILE;

-- The partition the trigger would route a row logged at ts to (the code path the trigger
-- uses), for tests and for operators checking coverage.
CREATE FUNCTION warden.audit_partition_for(ts timestamptz) RETURNS regclass
AS 'MODULE_PATHNAME', 'warden_audit_partition_for'
LANGUAGE C STRICT STABLE;

-- Every partition with its bounds (the default partition has NULL bounds).
CREATE VIEW warden.audit_partitions AS
SELECT c.oid::regclass AS partition,
       b.m[1]::timestamptz AS range_start,
       b.m[2]::timestamptz AS range_end,
       c.reltuples::bigint AS estimated_rows
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
LEFT JOIN LATERAL pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                          $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) AS b(m) ON true
WHERE i.inhparent = 'warden.audit_log'::regclass;

-- Adds the partition [lo, hi), moving into it any rows the default partition caught for
-- that range; returns false if another run made an overlapping one first. Takes the
-- parent's lock first (callers set a short lock_timeout and catch lock_not_available).
-- Runs as the caller of the SECURITY DEFINER routines below; not granted to anyone.
CREATE FUNCTION warden._audit_add_partition(lo timestamptz, hi timestamptz) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    part_name text := 'audit_log_p' || pg_catalog.to_char(lo AT TIME ZONE 'UTC',
        CASE WHEN (lo AT TIME ZONE 'UTC')::time = '00:00' THEN 'YYYYMMDD' ELSE 'YYYYMMDD_HH24MISS' END);
BEGIN
    -- Parent first, like every DDL on the log, so that no two of them deadlock.
    LOCK TABLE warden.audit_log IN ACCESS EXCLUSIVE MODE;
    -- Another run may have created it while this one waited for the lock.
    IF EXISTS (SELECT FROM warden.audit_partitions p WHERE p.range_start < hi AND p.range_end > lo) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT FROM warden.audit_log_default WHERE logged_at >= lo AND logged_at < hi) THEN
        EXECUTE pg_catalog.format('CREATE TABLE warden.%I (LIKE warden.audit_log)', part_name);
        PERFORM warden._audit_retention_mode(true);
        EXECUTE pg_catalog.format(
            'WITH moved AS (DELETE FROM warden.audit_log_default WHERE logged_at >= $1 AND logged_at < $2 RETURNING *)
             INSERT INTO warden.%I SELECT * FROM moved', part_name) USING lo, hi;
        PERFORM warden._audit_retention_mode(false);
        EXECUTE pg_catalog.format('ALTER TABLE warden.audit_log ATTACH PARTITION warden.%I FOR VALUES FROM (%L) TO (%L)',
                                  part_name, lo, hi);
    ELSE
        EXECUTE pg_catalog.format('CREATE TABLE warden.%I PARTITION OF warden.audit_log FOR VALUES FROM (%L) TO (%L)',
                                  part_name, lo, hi);
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON warden.%I
         FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_log_guard()', part_name);
    RETURN true;
END
$fn$;

-- Creates the partitions covering now .. now + partitions_ahead intervals, and one for
-- each range for which the default partition caught rows (those rows move into it).
-- Returns the number of partitions created. A busy log (the parent's lock not granted
-- within lock_timeout_ms) is left for the next run.
CREATE FUNCTION warden.audit_create_partitions() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $fn$
DECLARE
    s          warden.audit_settings;
    origin     constant timestamptz := '2000-01-01 00:00:00+00';
    lo         timestamptz;
    hi         timestamptz;
    target     timestamptz;
    covered_hi timestamptz;
    created    integer := 0;
BEGIN
    SELECT * INTO STRICT s FROM warden.audit_settings;
    PERFORM pg_catalog.set_config('lock_timeout', s.lock_timeout_ms || 'ms', true);

    FOR lo IN SELECT DISTINCT pg_catalog.date_bin(s.partition_interval, d.logged_at, origin)
              FROM warden.audit_log_default d ORDER BY 1 LOOP
        CONTINUE WHEN EXISTS (SELECT FROM warden.audit_partitions p WHERE p.range_start <= lo AND lo < p.range_end);
        hi := coalesce((SELECT min(p.range_start) FROM warden.audit_partitions p
                        WHERE p.range_start > lo AND p.range_start < lo + s.partition_interval),
                       lo + s.partition_interval);
        BEGIN
            IF warden._audit_add_partition(lo, hi) THEN
                created := created + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; partitions left for the next run';
            RETURN created;
        END;
    END LOOP;

    lo := pg_catalog.date_bin(s.partition_interval, pg_catalog.now(), origin);
    target := pg_catalog.now() + s.partition_interval * s.partitions_ahead;
    WHILE lo < target LOOP
        SELECT p.range_end INTO covered_hi FROM warden.audit_partitions p
        WHERE p.range_start <= lo AND lo < p.range_end;
        IF FOUND THEN
            lo := covered_hi;
            CONTINUE;
        END IF;
        hi := coalesce((SELECT min(p.range_start) FROM warden.audit_partitions p
                        WHERE p.range_start > lo AND p.range_start < lo + s.partition_interval),
                       lo + s.partition_interval);
        BEGIN
            IF warden._audit_add_partition(lo, hi) THEN
                created := created + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; partitions left for the next run';
            RETURN created;
        END;
        lo := hi;
    END LOOP;
    RETURN created;
END
$fn$;

-- Removes audit rows older than their retention: the per-table override, else the
-- retention given here, else warden.audit_settings.retention. Partitions straddling a
-- cutoff (and the default partition) are trimmed first, by DELETE in bounded batches,
-- without any lock on the parent beyond an ordinary writer's. Then partitions whose every
-- row is expired are detached and dropped under locks taken parent first with a short
-- lock_timeout: a busy log is retried on the next run instead of waited for.
-- Returns the number of rows removed (for dropped partitions, as counted by their
-- statistics).
CREATE FUNCTION warden.cleanup_audit(retention interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $fn$
DECLARE
    s          warden.audit_settings;
    v_now      constant timestamptz := pg_catalog.now();
    v_default  interval;
    longest    interval;
    shortest   interval;
    p          record;
    r          interval;
    cutoff     timestamptz;
    doomed     regclass[] := '{}';
    n          bigint;
    removed    bigint := 0;
    batches    integer := 0;
BEGIN
    IF retention IS NOT NULL AND retention <= interval '0' THEN
        RAISE EXCEPTION 'retention must be a positive interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL to use warden.audit_settings.retention.';
    END IF;
    SELECT * INTO STRICT s FROM warden.audit_settings;
    PERFORM pg_catalog.set_config('lock_timeout', s.lock_timeout_ms || 'ms', true);
    v_default := coalesce(retention, s.retention);
    SELECT greatest(v_default, max(t.retention)), least(v_default, min(t.retention))
      INTO longest, shortest FROM warden.audit_tables t;

    -- Straddling partitions: some rows expired, not all. They are trimmed per retention
    -- class (the default and each override); a partition already trimmed up to a class's
    -- cutoff is not scanned again for it.
    DELETE FROM warden.audit_trim_progress g
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = g.partition_oid);
    PERFORM warden._audit_retention_mode(true);
    FOR p IN SELECT * FROM warden.audit_partitions
             WHERE range_start IS NULL
                OR (range_start < v_now - shortest AND range_end > v_now - longest)
             ORDER BY range_start NULLS FIRST LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_inherits WHERE inhrelid = p.partition);
        FOR r IN SELECT DISTINCT c.x FROM (SELECT v_default UNION ALL SELECT t.retention FROM warden.audit_tables t
                                           WHERE t.retention IS NOT NULL) AS c(x) LOOP
            cutoff := v_now - r;
            CONTINUE WHEN p.range_start >= cutoff;
            CONTINUE WHEN p.range_start IS NOT NULL AND EXISTS (
                SELECT FROM warden.audit_trim_progress g
                WHERE g.partition_oid = p.partition::oid AND g.retention = r
                  AND g.trimmed_before >= least(cutoff, p.range_end));
            LOOP
                EXIT WHEN batches >= s.trim_max_batches;
                EXECUTE pg_catalog.format(
                    'DELETE FROM %s WHERE ctid = ANY (ARRAY(
                         SELECT a.ctid FROM %s a LEFT JOIN warden.audit_tables t ON t.relid = a.relid
                         WHERE a.logged_at < $1 AND coalesce(t.retention, $2) = $3 LIMIT $4))',
                    p.partition, p.partition) USING cutoff, v_default, r, s.trim_batch_size;
                GET DIAGNOSTICS n = ROW_COUNT;
                removed := removed + n;
                IF n > 0 THEN
                    batches := batches + 1;
                END IF;
                IF n < s.trim_batch_size THEN
                    IF p.range_start IS NOT NULL THEN
                        INSERT INTO warden.audit_trim_progress AS g VALUES (p.partition, r, least(cutoff, p.range_end))
                        ON CONFLICT ON CONSTRAINT audit_trim_progress_pkey DO UPDATE SET trimmed_before = EXCLUDED.trimmed_before;
                    END IF;
                    EXIT;
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    PERFORM warden._audit_retention_mode(false);

    -- Whole partitions: every row in them is older than the longest retention. Their
    -- rows are counted from the statistics VACUUM keeps (exact when VACUUM last read the
    -- whole partition, as it does for a closed insert-only one; autovacuum does so by
    -- itself): counting by reading them all would cost what dropping partitions saves.
    -- A partition never vacuumed nor analyzed is counted by reading it (under the lock:
    -- nothing can drop it meanwhile).
    FOR p IN SELECT * FROM warden.audit_partitions
             WHERE range_end <= v_now - longest ORDER BY range_start LOOP
        doomed := doomed || p.partition;
    END LOOP;
    IF cardinality(doomed) > 0 THEN
        BEGIN
            LOCK TABLE warden.audit_log IN ACCESS EXCLUSIVE MODE;
            FOR i IN 1 .. cardinality(doomed) LOOP
                -- Another run may have dropped it while this one waited for the lock.
                CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_inherits
                                          WHERE inhrelid = doomed[i] AND inhparent = 'warden.audit_log'::regclass);
                EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', doomed[i]);
                SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END INTO n
                FROM pg_catalog.pg_class c WHERE c.oid = doomed[i];
                IF n IS NULL THEN
                    EXECUTE pg_catalog.format('SELECT count(*) FROM %s', doomed[i]) INTO n;
                END IF;
                EXECUTE pg_catalog.format('ALTER TABLE warden.audit_log DETACH PARTITION %s', doomed[i]);
                EXECUTE pg_catalog.format('DROP TABLE %s', doomed[i]);
                removed := removed + n;
            END LOOP;
            DELETE FROM warden.audit_trim_progress WHERE partition_oid = ANY (doomed::oid[]);
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; % expired partition(s) left for the next run',
                cardinality(doomed);
        END;
    END IF;
    RETURN removed;
END
$fn$;

-- The maintenance job: retention first (its trimming needs no lock on the parent), then
-- partitions ahead; both take the parent's lock last, only for DDL, and keep it to commit.
CREATE PROCEDURE warden.audit_maintenance()
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM warden.cleanup_audit();
    PERFORM warden.audit_create_partitions();
END
$fn$;

-- Sets the application actor (e.g. the user id of a web request) for the current
-- transaction; it is the warden.actor setting, which may also be SET directly.
CREATE FUNCTION warden.set_actor(actor text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT pg_catalog.set_config('warden.actor', coalesce(actor, ''), true) $fn$;

-- Starts (or reconfigures) auditing of a table. Run it as the table's owner. Idempotent:
-- returns 'enabled', 'updated' or 'unchanged'.
CREATE FUNCTION warden.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}',
                                    full_row boolean DEFAULT false,
                                    operations text[] DEFAULT '{INSERT,UPDATE,DELETE,TRUNCATE}')
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    c        pg_catalog.pg_class;
    nsp      text;
    pk       text[];
    col      text;
    excl     text[] := '{}';
    ops      text[];
    row_ops  text[];
    n        int2;
    old      warden.audit_tables;
    args     text;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO STRICT c FROM pg_catalog.pg_class WHERE oid = tbl;
    nsp := (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = c.relnamespace);
    IF c.relkind <> 'r' THEN
        RAISE EXCEPTION '% is not an ordinary table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary tables can be audited (a partitioned table: audit its partitions).';
    END IF;
    IF c.relpersistence = 't' THEN
        RAISE EXCEPTION '% is a temporary table', tbl
            USING ERRCODE = 'feature_not_supported', DETAIL = 'Temporary tables are not audited.';
    END IF;
    IF nsp IN ('warden', 'pg_catalog', 'information_schema') OR nsp LIKE 'pg\_toast%' THEN
        RAISE EXCEPTION 'tables in schema % cannot be audited', nsp
            USING ERRCODE = 'feature_not_supported';
    END IF;

    ops := ARRAY(SELECT DISTINCT upper(o) FROM unnest(operations) o ORDER BY 1);
    IF operations IS NULL OR cardinality(ops) = 0
       OR NOT ops <@ ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'] OR array_position(ops, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'operations must be a non-empty subset of INSERT, UPDATE, DELETE, TRUNCATE'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('Got %s.', operations);
    END IF;

    SELECT array_agg(a.attname::text) INTO pk
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = tbl AND i.indisprimary;

    IF exclude_columns IS NULL OR array_position(exclude_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'exclude_columns must not be or contain NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH col IN ARRAY ARRAY(SELECT DISTINCT x FROM unnest(exclude_columns) x ORDER BY 1) LOOP
        SELECT attnum INTO n FROM pg_catalog.pg_attribute
        WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of % does not exist', col, tbl
                USING ERRCODE = 'undefined_column',
                      HINT = 'exclude_columns takes column names as they are stored (case-sensitive).';
        END IF;
        IF col = ANY (pk) THEN
            RAISE EXCEPTION 'column "%" is part of the primary key of % and cannot be excluded', col, tbl
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'The primary key identifies the row in record_key.';
        END IF;
        excl := excl || col;
    END LOOP;

    row_ops := ARRAY(SELECT o FROM unnest(ops) o WHERE o <> 'TRUNCATE');
    SELECT * INTO old FROM warden.audit_tables WHERE relid = tbl FOR UPDATE;
    IF FOUND AND old.enabled AND old.exclude_columns = excl AND old.full_row = enable_audit.full_row
       AND old.operations = ops
       AND (SELECT count(*) FROM pg_catalog.pg_trigger
            WHERE tgrelid = tbl AND tgname IN ('warden_audit', 'warden_audit_truncate'))
           = (CASE WHEN cardinality(row_ops) > 0 THEN 1 ELSE 0 END)
             + (CASE WHEN 'TRUNCATE' = ANY (ops) THEN 1 ELSE 0 END) THEN
        RETURN 'unchanged';
    END IF;

    FOR col IN SELECT tgname FROM pg_catalog.pg_trigger
               WHERE tgrelid = tbl AND tgname IN ('warden_audit', 'warden_audit_truncate') LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', col, tbl);
    END LOOP;
    args := pg_catalog.array_to_string(
        ARRAY[pg_catalog.quote_literal(CASE WHEN enable_audit.full_row THEN 'full' ELSE 'diff' END)]
        || ARRAY(SELECT pg_catalog.quote_literal(x) FROM unnest(excl) x), ', ');
    IF cardinality(row_ops) > 0 THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER warden_audit AFTER %s ON %s FOR EACH ROW EXECUTE FUNCTION warden.audit_trigger(%s)',
            pg_catalog.array_to_string(row_ops, ' OR '), tbl, args);
    END IF;
    IF 'TRUNCATE' = ANY (ops) THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER warden_audit_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION warden.audit_trigger(%s)',
            tbl, args);
    END IF;

    INSERT INTO warden.audit_tables AS t (relid, schema_name, table_name, exclude_columns, full_row, operations)
    VALUES (tbl, nsp, c.relname, excl, enable_audit.full_row, ops)
    ON CONFLICT (relid) DO UPDATE
        SET schema_name = EXCLUDED.schema_name, table_name = EXCLUDED.table_name,
            exclude_columns = EXCLUDED.exclude_columns,
            full_row = EXCLUDED.full_row, operations = EXCLUDED.operations,
            enabled = true, enabled_at = CASE WHEN t.enabled THEN t.enabled_at ELSE pg_catalog.now() END,
            disabled_at = NULL;

    IF pk IS NULL THEN
        RAISE NOTICE '% has no primary key: its events have record_key NULL and UPDATE stores the whole old row', tbl;
    END IF;
    PERFORM warden.audit_create_partitions();
    RETURN CASE WHEN old.relid IS NULL OR NOT old.enabled THEN 'enabled' ELSE 'updated' END;
END
$fn$;

-- Stops auditing a table; its history stays in warden.audit_log.
CREATE FUNCTION warden.disable_audit(tbl regclass) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    had_triggers boolean;
    trigger_name name;
BEGIN
    had_triggers := false;
    FOR trigger_name IN SELECT tgname FROM pg_catalog.pg_trigger
                        WHERE tgrelid = tbl AND tgname IN ('warden_audit', 'warden_audit_truncate') LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', trigger_name, tbl);
        had_triggers := true;
    END LOOP;
    UPDATE warden.audit_tables SET enabled = false, disabled_at = pg_catalog.now()
    WHERE relid = tbl AND enabled;
    RETURN had_triggers;
END
$fn$;

-- A per-table retention override (NULL: back to the default).
CREATE FUNCTION warden.set_audit_retention(tbl regclass, retention interval) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    UPDATE warden.audit_tables t SET retention = set_audit_retention.retention WHERE t.relid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not audited', tbl
            USING ERRCODE = 'undefined_object', HINT = 'Call warden.enable_audit first.';
    END IF;
END
$fn$;

-- Reading the log.
CREATE VIEW warden.audit_recent AS
SELECT logged_at, op, schema_name, table_name, record_key, actor, current_user_name,
       application_name, client_addr, old_values, new_values, excluded_changed, txid
FROM warden.audit_log
WHERE logged_at >= pg_catalog.now() - interval '1 day'
ORDER BY logged_at DESC;

CREATE VIEW warden.audit_row_history AS
SELECT schema_name, table_name, record_key, logged_at, op, actor, current_user_name,
       old_values, new_values, excluded_changed, txid
FROM warden.audit_log
WHERE record_key IS NOT NULL;

CREATE FUNCTION warden.audit_history(tbl regclass, record_key jsonb)
RETURNS SETOF warden.audit_row_history
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT h.* FROM warden.audit_row_history h
    JOIN pg_catalog.pg_class c ON c.oid = tbl
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE h.schema_name = n.nspname::text
      AND h.table_name = c.relname::text AND h.record_key = audit_history.record_key
    ORDER BY h.logged_at, h.txid
$fn$;

CREATE VIEW warden.audit_daily_counts AS
SELECT (logged_at AT TIME ZONE 'UTC')::date AS day, schema_name, table_name,
       count(*) FILTER (WHERE op = 'INSERT') AS inserts,
       count(*) FILTER (WHERE op = 'UPDATE') AS updates,
       count(*) FILTER (WHERE op = 'DELETE') AS deletes,
       count(*) FILTER (WHERE op = 'TRUNCATE') AS truncates,
       count(*) AS total
FROM warden.audit_log
GROUP BY 1, 2, 3;

-- Privileges: the log is read by admins; monitors see counts only; nobody writes to it
-- but the trigger (which inserts below the privilege system) and the SECURITY DEFINER
-- routines above.
REVOKE ALL ON warden.audit_log, warden.audit_log_default, warden.audit_tables, warden.audit_settings,
    warden.audit_trim_progress FROM PUBLIC;
GRANT SELECT ON warden.audit_log, warden.audit_tables, warden.audit_settings, warden.audit_partitions,
                warden.audit_recent, warden.audit_row_history, warden.audit_daily_counts TO warden_admin;
GRANT INSERT, UPDATE ON warden.audit_tables TO warden_admin;
GRANT UPDATE ON warden.audit_settings TO warden_admin;
GRANT SELECT ON warden.audit_daily_counts, warden.audit_partitions TO warden_monitor;
GRANT EXECUTE ON FUNCTION warden.audit_trigger(), warden.enable_audit(regclass, text[], boolean, text[]),
    warden.disable_audit(regclass), warden.set_audit_retention(regclass, interval),
    warden.cleanup_audit(interval), warden.audit_create_partitions(),
    warden.audit_partition_for(timestamptz), warden.audit_history(regclass, jsonb) TO warden_admin;
GRANT EXECUTE ON PROCEDURE warden.audit_maintenance() TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.set_actor(text) TO warden_app, warden_admin;
