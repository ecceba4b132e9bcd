-- Audit trail, 1.2 (see docs/audit.md): a retention floor set by a superuser
-- (warden.audit_min_retention) that no setting nor call goes below, every retention change
-- and every removal recorded in warden.security_events, and excluded columns that are part
-- of the primary key stored in record_key as a keyed hash, never as their value.

-- The key of that hash: random, read by the trigger below the privilege system, by no
-- role. Not dumped: a database restored from a logical dump gets a key of its own (its
-- later events hash excluded key values differently from the earlier ones).
CREATE TABLE warden.audit_secret (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret    bytea NOT NULL CHECK (octet_length(secret) BETWEEN 16 AND 64)
        -- 244 random bits from pg_strong_random(), through two version-4 UUIDs.
        DEFAULT pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text
                                                     || pg_catalog.gen_random_uuid()::text, '-', ''), 'hex')
);
INSERT INTO warden.audit_secret DEFAULT VALUES;
REVOKE ALL ON warden.audit_secret FROM PUBLIC;
-- The trigger keeps the key per backend; a change (by a superuser) reaches every backend.
CREATE TRIGGER audit_secret_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON warden.audit_secret
    FOR EACH STATEMENT EXECUTE FUNCTION warden._cached_table_changed();

-- Retention changes: refused below the floor, recorded otherwise (sql/1.2/35_lockout.sql).
-- warden_admin may UPDATE the settings row and INSERT or UPDATE audit_tables rows.
CREATE TRIGGER audit_settings_retention BEFORE UPDATE ON warden.audit_settings
    FOR EACH ROW EXECUTE FUNCTION warden._retention_changed('retention');
CREATE TRIGGER audit_tables_retention BEFORE INSERT OR UPDATE ON warden.audit_tables
    FOR EACH ROW EXECUTE FUNCTION warden._retention_changed('retention');

-- warden.cleanup_audit (1.1's with the floor, its removals recorded as security events and
-- for the seals' verify, expired partitions dropped in one DROP TABLE) is defined once, in
-- 45_audit_seals.sql.


-- As in 1.1, except that an excluded primary-key column is accepted: the trigger stores a
-- keyed hash of it in record_key (and never its value anywhere).
CREATE OR REPLACE FUNCTION warden.enable_audit(tbl regclass, exclude_columns text[] DEFAULT '{}',
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
            RAISE NOTICE 'column "%" is part of the primary key of %: record_key holds a keyed hash of it, never its value',
                col, tbl;
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

