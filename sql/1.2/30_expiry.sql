-- Expiry and least privilege (issue 13). Work on a registered table runs as that table's
-- owner under SECURITY_RESTRICTED_OPERATION, never as pg_warden's owner: the batches'
-- DELETE/UPDATE (whose triggers and rules are the owner's code), the cast that validates
-- a status value at registration (a domain's CHECK), and the backlog count. The
-- procedures that COMMIT between batches cannot pin search_path with SET, so every type,
-- function and operator in them is schema-qualified.

-- One statement on a registered table as the table's owner (extension/table_owner_sql.cpp),
-- with $1 = arg: _owner_execute runs a batch's DELETE/UPDATE (constraints made immediate,
-- so that deferrable ones fire as the owner too), _owner_count a count. Granted to nobody
-- and refused to any caller but a superuser: only the SECURITY DEFINER functions of
-- pg_warden, which build the statement from the policy (identifiers quoted with %I,
-- literals with %L), call them.
CREATE FUNCTION warden._owner_execute(tbl regclass, query text, arg timestamptz) RETURNS bigint
AS 'MODULE_PATHNAME', 'warden_owner_execute'
LANGUAGE C VOLATILE;
CREATE FUNCTION warden._owner_count(tbl regclass, query text, arg timestamptz,
                                    OUT n bigint, OUT oldest timestamptz)
AS 'MODULE_PATHNAME', 'warden_owner_count'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION warden._owner_execute(regclass, text, timestamptz),
                       warden._owner_count(regclass, text, timestamptz) FROM PUBLIC;

-- Resolves and validates a registration; raises a clear error for each kind of mistake.
-- Returns the key columns batches will use. Called by register_expiry only (its status
-- value cast runs through _owner_count, which needs pg_warden's owner).
CREATE OR REPLACE FUNCTION warden._expiry_validate(tbl regclass, expires_column name, mode text,
                                        status_column name, status_value text,
                                        batch_size integer, grace interval,
                                        OUT key_columns name[], OUT expires_type regtype)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    kind "char";
    col record;
    needed text := CASE mode WHEN 'mark' THEN 'UPDATE' ELSE 'DELETE' END;
BEGIN
    IF tbl IS NULL OR expires_column IS NULL THEN
        RAISE EXCEPTION 'table and expiry column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF mode IS NULL OR mode NOT IN ('delete', 'mark') THEN
        RAISE EXCEPTION 'unknown expiry mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''delete'' to remove expired rows or ''mark'' to set a status column.';
    END IF;
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'batch size % is out of range', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a batch size between 1 and 1000000; small batches hold row locks briefly.';
    END IF;
    IF grace IS NULL OR grace < '0' THEN
        RAISE EXCEPTION 'grace period % is negative', coalesce(grace::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = tbl;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary and partitioned tables can be registered for expiry.';
    END IF;
    IF NOT pg_catalog.has_table_privilege(session_user, tbl, needed) THEN
        RAISE EXCEPTION 'role "%" may not % rows of table %', session_user, needed, tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Registration needs the privilege the expiry itself uses.';
    END IF;

    SELECT a.atttypid::regtype AS typ INTO col
    FROM pg_attribute a
    WHERE a.attrelid = tbl AND a.attname = expires_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', expires_column, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    IF col.typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'expiry column "%" has type %, not a timestamp', expires_column, col.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column.';
    END IF;
    expires_type := col.typ;

    IF mode = 'delete' THEN
        IF status_column IS NOT NULL OR status_value IS NOT NULL THEN
            RAISE EXCEPTION 'a status column and value are only used in mode ''mark'''
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        IF status_column IS NULL OR status_value IS NULL THEN
            RAISE EXCEPTION 'mode ''mark'' needs a status column and a status value'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example status_column => ''status'', status_value => ''expired''.';
        END IF;
        SELECT a.atttypid, a.atttypmod INTO col
        FROM pg_attribute a
        WHERE a.attrelid = tbl AND a.attname = status_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', status_column, tbl
                USING ERRCODE = 'undefined_column';
        END IF;
        BEGIN
            -- The status value must be valid input for the column's type (text, enum, a
            -- domain, ...). Cast as the table's owner: a domain's CHECK is the owner's code.
            PERFORM warden._owner_count(
                tbl, format('SELECT 1::pg_catalog.int8, NULL::pg_catalog.timestamptz WHERE %L::%s IS NOT NULL',
                            status_value, format_type(col.atttypid, col.atttypmod)),
                NULL);
        EXCEPTION WHEN data_exception OR invalid_text_representation THEN
            RAISE EXCEPTION 'status value "%" is not valid for column "%" of type %',
                    status_value, status_column, format_type(col.atttypid, col.atttypmod)
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;

    -- Batches address rows through a key: the primary key, else the narrowest unique,
    -- non-partial index on plain NOT NULL columns.
    SELECT array_agg(a.attname ORDER BY k.ord) INTO key_columns
    FROM (
        SELECT i.indkey, i.indexrelid
        FROM pg_index i
        WHERE i.indrelid = tbl AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
          AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) n(attnum)
                          JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = n.attnum
                          WHERE NOT a.attnotnull)
        ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid
        LIMIT 1
    ) best
    CROSS JOIN LATERAL unnest(best.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum
    WHERE k.ord <= (SELECT indnkeyatts FROM pg_index WHERE indexrelid = best.indexrelid);
    IF key_columns IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key or unique key on NOT NULL columns', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Expiry batches address rows by key, never by ctid.',
                  HINT = 'Add a primary key to the table.';
    END IF;
END
$fn$;

-- One batch: locks at most batch_size expired rows that nobody else holds, deletes or
-- marks them as the table's owner, and adds the count to the run. The caller commits.
CREATE OR REPLACE FUNCTION warden._expire_batch(run_id bigint, cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.expiry_policies;
    keys text;
    pick text;
    stmt text;
    n integer;
BEGIN
    SELECT pol.* INTO p
    FROM warden.expiry_runs r JOIN warden.expiry_policies pol ON pol.tbl = r.tbl
    WHERE r.id = run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'expiry run % has no policy', run_id USING ERRCODE = 'undefined_object';
    END IF;
    -- Never later than the policy allows, whatever the caller passes (this runs as owner).
    cutoff := least(cutoff, pg_catalog.now() - p.grace);
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.tbl) THEN
        RAISE EXCEPTION 'the table with OID % no longer exists', p.tbl::oid
            USING ERRCODE = 'undefined_table',
                  HINT = format('Remove its policy with SELECT warden.unregister_expiry(%s).', p.tbl::oid);
    END IF;
    SELECT string_agg(format('%I', k), ', ') INTO keys FROM unnest(p.key_columns) k;
    pick := format('SELECT %s FROM %s WHERE %s ORDER BY %I LIMIT %s FOR UPDATE SKIP LOCKED',
                   keys, p.tbl, warden._expiry_predicate(p), p.expires_column, p.batch_size);
    -- A single-column key becomes "= ANY(array)", which always runs as an index scan.
    IF cardinality(p.key_columns) = 1 THEN
        IF p.mode = 'delete' THEN
            stmt := format('DELETE FROM %s WHERE %s = ANY (ARRAY(%s))', p.tbl, keys, pick);
        ELSE
            stmt := format('UPDATE %s SET %I = %L WHERE %s = ANY (ARRAY(%s))',
                           p.tbl, p.status_column, p.status_value, keys, pick);
        END IF;
    ELSE
        IF p.mode = 'delete' THEN
            stmt := format('WITH b AS (%s) DELETE FROM %s t USING b WHERE (%s) = (%s)',
                           pick, p.tbl,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(p.key_columns) k),
                           (SELECT string_agg(format('b.%I', k), ', ') FROM unnest(p.key_columns) k));
        ELSE
            stmt := format('WITH b AS (%s) UPDATE %s t SET %I = %L FROM b WHERE (%s) = (%s)',
                           pick, p.tbl, p.status_column, p.status_value,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(p.key_columns) k),
                           (SELECT string_agg(format('b.%I', k), ', ') FROM unnest(p.key_columns) k));
        END IF;
    END IF;
    -- As the table's owner: its triggers, rules and column defaults are its owner's code.
    n := warden._owner_execute(p.tbl, stmt, cutoff);
    UPDATE warden.expiry_runs
       SET rows_expired = rows_expired + n, batches = batches + 1
     WHERE id = run_id;
    RETURN n;
END
$fn$;

-- Closes a run and records the backlog: expired rows still present and the oldest one.
CREATE OR REPLACE FUNCTION warden._expiry_run_finish(run_id bigint, status text, error text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.expiry_policies;
    backlog bigint;
    oldest timestamptz;
BEGIN
    SELECT pol.* INTO p
    FROM warden.expiry_runs r JOIN warden.expiry_policies pol ON pol.tbl = r.tbl
    WHERE r.id = run_id;
    IF FOUND THEN
        BEGIN
            -- Counted as the table's owner, as the batches run.
            SELECT c.n, c.oldest INTO backlog, oldest
            FROM warden._owner_count(
                     p.tbl,
                     format('SELECT count(*), min(%I)::pg_catalog.timestamptz FROM %s WHERE %s',
                            p.expires_column, p.tbl, warden._expiry_predicate(p)),
                     now() - p.grace) c;
        EXCEPTION WHEN OTHERS THEN
            error := coalesce(error || '; ', '') || 'backlog: ' || SQLERRM;
        END;
    END IF;
    UPDATE warden.expiry_runs r
       SET finished_at = clock_timestamp(), status = _expiry_run_finish.status,
           error = _expiry_run_finish.error, backlog_rows = backlog, backlog_oldest = oldest
     WHERE r.id = run_id;
END
$fn$;

REVOKE EXECUTE ON FUNCTION warden._expiry_validate(regclass, name, text, name, text, integer, interval)
    FROM warden_admin;

-- The worker of both expire_rows procedures. Commits after every batch, so locks are held
-- for one batch only and progress survives a crash, and rests warden.expiry_batch_pause
-- between batches. Stops when the time budget (warden.expiry_time_budget) is spent; the
-- rest is left for the next run. A failing table (lock_timeout, a dropped column, ...) is
-- recorded and the next table goes on. No SET clause is possible (it COMMITs): every
-- name is qualified, so the caller's search_path resolves nothing here.
CREATE OR REPLACE PROCEDURE warden._expire_tables(tables regclass[])
LANGUAGE plpgsql
AS $fn$
DECLARE
    deadline pg_catalog.timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+)
        pg_catalog.current_setting('warden.expiry_time_budget')::pg_catalog.interval;
    pause pg_catalog.float8 := pg_catalog.date_part('epoch',
        pg_catalog.current_setting('warden.expiry_batch_pause')::pg_catalog.interval);
    t pg_catalog.regclass;
    run pg_catalog.int8;
    cutoff pg_catalog.timestamptz;
    size pg_catalog.int4;
    n pg_catalog.int4;
    failure pg_catalog.text;
    final pg_catalog.text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        SELECT pg_catalog.now() OPERATOR(pg_catalog.-) p.grace, p.batch_size INTO cutoff, size
        FROM warden.expiry_policies p WHERE p.tbl OPERATOR(pg_catalog.=) t;
        CONTINUE WHEN NOT FOUND;
        run := warden._expiry_run_start(t);
        COMMIT;
        failure := NULL;
        final := 'succeeded';
        LOOP
            IF pg_catalog.clock_timestamp() OPERATOR(pg_catalog.>=) deadline THEN
                final := 'budget_exhausted';
                EXIT;
            END IF;
            BEGIN
                n := warden._expire_batch(run, cutoff);
            EXCEPTION WHEN OTHERS THEN
                failure := pg_catalog.format('%s (SQLSTATE %s)', SQLERRM, SQLSTATE);
            END;
            IF failure IS NOT NULL THEN
                final := 'failed';
                EXIT;
            END IF;
            COMMIT;
            EXIT WHEN n OPERATOR(pg_catalog.<) size;
            IF pause OPERATOR(pg_catalog.>) 0::pg_catalog.float8 THEN
                PERFORM pg_catalog.pg_sleep(pause);
            END IF;
        END LOOP;
        PERFORM warden._expiry_run_finish(run, final, failure);
        COMMIT;
    END LOOP;
END
$fn$;

-- CALL warden.expire_rows(): every registered table, within one time budget; then run
-- rows older than 30 days are pruned. Qualified throughout, as _expire_tables.
CREATE OR REPLACE PROCEDURE warden.expire_rows()
LANGUAGE plpgsql
AS $fn$
DECLARE
    tables pg_catalog.regclass[];
BEGIN
    SELECT pg_catalog.array_agg(p.tbl ORDER BY p.tbl::pg_catalog.oid) INTO tables
    FROM warden.expiry_policies p;
    CALL warden._expire_tables(coalesce(tables, '{}'));
    PERFORM warden.prune_expiry_runs();
END
$fn$;

-- CALL warden.expire_rows('user_sessions'): one registered table.
CREATE OR REPLACE PROCEDURE warden.expire_rows(tbl regclass)
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'CALL warden.expire_rows() runs every registered table.';
    END IF;
    IF NOT EXISTS (SELECT FROM warden.expiry_policies p
                   WHERE p.tbl OPERATOR(pg_catalog.=) expire_rows.tbl) THEN
        RAISE EXCEPTION 'table % is not registered for expiry', tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it with warden.register_expiry().';
    END IF;
    CALL warden._expire_tables(ARRAY[tbl]);
END
$fn$;
