-- Session expiry: any table with an expiry timestamp can be registered; expired rows are
-- deleted or marked in small batches that commit on their own (CALL warden.expire_rows()).
-- Batches address rows by a primary or unique key, never by ctid, so partitioned tables
-- work, and they take rows with FOR UPDATE SKIP LOCKED, so an application updating a
-- session is never waited for: its row is simply left for the next batch.

CREATE TABLE warden.expiry_policies (
    tbl            regclass PRIMARY KEY,
    expires_column name        NOT NULL,
    expires_type   regtype     NOT NULL,
    mode           text        NOT NULL CHECK (mode IN ('delete', 'mark')),
    status_column  name,
    status_value   text,
    batch_size     integer     NOT NULL CHECK (batch_size BETWEEN 1 AND 1000000),
    grace          interval    NOT NULL DEFAULT '0' CHECK (grace >= '0'),
    key_columns    name[]      NOT NULL CHECK (cardinality(key_columns) >= 1),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    registered_by  name        NOT NULL DEFAULT session_user,
    CHECK ((mode = 'mark') = (status_column IS NOT NULL AND status_value IS NOT NULL))
);
SELECT pg_catalog.pg_extension_config_dump('warden.expiry_policies', '');

-- Backends keep copies of some tables (the lockout policy; session_valid's plans made from
-- the expiry policies): this statement trigger tells them all to drop their copies.
CREATE FUNCTION warden._cached_table_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_cached_table_changed'
LANGUAGE C;
CREATE TRIGGER expiry_policies_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON warden.expiry_policies
    FOR EACH STATEMENT EXECUTE FUNCTION warden._cached_table_changed();

-- One row per table per run; counters are updated in the same transaction as each batch,
-- so after a crash they match exactly what was committed.
CREATE TABLE warden.expiry_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl            regclass    NOT NULL,
    table_name     text        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    status         text        NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'budget_exhausted', 'failed')),
    rows_expired   bigint      NOT NULL DEFAULT 0,
    batches        integer     NOT NULL DEFAULT 0,
    duration       interval    GENERATED ALWAYS AS (finished_at - started_at) STORED,
    backlog_rows   bigint,
    backlog_oldest timestamptz,
    error          text,
    pid            integer     NOT NULL DEFAULT pg_backend_pid()
);
CREATE INDEX expiry_runs_tbl_started ON warden.expiry_runs (tbl, started_at DESC);
CREATE INDEX expiry_runs_started ON warden.expiry_runs (started_at);

-- Resolves and validates a registration; raises a clear error for each kind of mistake.
-- Returns the key columns batches will use.
CREATE FUNCTION warden._expiry_validate(tbl regclass, expires_column name, mode text,
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
            -- The status value must be valid input for the column's type (text, enum, ...).
            EXECUTE format('SELECT %L::%s', status_value, format_type(col.atttypid, col.atttypmod));
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

CREATE FUNCTION warden.register_expiry(tbl regclass, expires_column name,
                                       mode text DEFAULT 'delete',
                                       status_column name DEFAULT NULL,
                                       status_value text DEFAULT NULL,
                                       batch_size integer DEFAULT 10000,
                                       grace interval DEFAULT '0')
RETURNS warden.expiry_policies
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v record;
    result warden.expiry_policies;
BEGIN
    SELECT * INTO v FROM warden._expiry_validate(tbl, expires_column, mode, status_column,
                                                 status_value, batch_size, grace);
    IF NOT EXISTS (SELECT 1 FROM pg_index i
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = tbl AND a.attname = expires_column) THEN
        RAISE WARNING 'no index on %(%) leads with the expiry column', tbl, expires_column
            USING HINT = 'Each batch then scans the table; create an index on the expiry column.';
    END IF;
    INSERT INTO warden.expiry_policies AS p
           (tbl, expires_column, expires_type, mode, status_column, status_value, batch_size,
            grace, key_columns)
    VALUES (tbl, expires_column, v.expires_type, mode, status_column, status_value, batch_size,
            grace, v.key_columns)
    ON CONFLICT ON CONSTRAINT expiry_policies_pkey DO UPDATE
       SET expires_column = EXCLUDED.expires_column, expires_type = EXCLUDED.expires_type,
           mode = EXCLUDED.mode, status_column = EXCLUDED.status_column,
           status_value = EXCLUDED.status_value, batch_size = EXCLUDED.batch_size,
           grace = EXCLUDED.grace, key_columns = EXCLUDED.key_columns,
           registered_at = now(), registered_by = session_user
    RETURNING p.* INTO result;
    RETURN result;
END
$fn$;

CREATE FUNCTION warden.unregister_expiry(tbl regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM warden.expiry_policies p WHERE p.tbl = unregister_expiry.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not registered for expiry', tbl
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN true;
END
$fn$;

-- The predicate "expired and not yet handled" of a policy, as SQL text built only from
-- identifiers (quoted with %I) and literals (%L). $1 is the cutoff.
CREATE FUNCTION warden._expiry_predicate(p warden.expiry_policies) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT format('%I < $1::%s', p.expires_column, p.expires_type)
        || CASE WHEN p.mode = 'mark'
                THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                ELSE '' END
$fn$;

-- One batch: locks at most batch_size expired rows that nobody else holds, deletes or
-- marks them, and adds the count to the run. The caller commits.
CREATE FUNCTION warden._expire_batch(run_id bigint, cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p warden.expiry_policies;
    keys text;
    pick text;
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
            EXECUTE format('DELETE FROM %s WHERE %s = ANY (ARRAY(%s))', p.tbl, keys, pick)
                USING cutoff;
        ELSE
            EXECUTE format('UPDATE %s SET %I = %L WHERE %s = ANY (ARRAY(%s))',
                           p.tbl, p.status_column, p.status_value, keys, pick)
                USING cutoff;
        END IF;
    ELSE
        IF p.mode = 'delete' THEN
            EXECUTE format('WITH b AS (%s) DELETE FROM %s t USING b WHERE (%s) = (%s)',
                           pick, p.tbl,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(p.key_columns) k),
                           (SELECT string_agg(format('b.%I', k), ', ') FROM unnest(p.key_columns) k))
                USING cutoff;
        ELSE
            EXECUTE format('WITH b AS (%s) UPDATE %s t SET %I = %L FROM b WHERE (%s) = (%s)',
                           pick, p.tbl, p.status_column, p.status_value,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(p.key_columns) k),
                           (SELECT string_agg(format('b.%I', k), ', ') FROM unnest(p.key_columns) k))
                USING cutoff;
        END IF;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE warden.expiry_runs
       SET rows_expired = rows_expired + n, batches = batches + 1
     WHERE id = run_id;
    RETURN n;
END
$fn$;

-- Opens a run. Runs left 'running' by a session that is gone (a crash, a disconnect) or
-- by this very session (a cancelled CALL) are closed as failed first: their counts are
-- exactly what they committed.
CREATE FUNCTION warden._expiry_run_start(tbl regclass) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    UPDATE warden.expiry_runs r
       SET status = 'failed', finished_at = clock_timestamp(),
           error = 'interrupted: the session running it ended or cancelled it'
     WHERE r.status = 'running'
       AND (r.pid = pg_backend_pid()
            OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                           WHERE a.pid = r.pid AND a.backend_start <= r.started_at));
    INSERT INTO warden.expiry_runs (tbl, table_name) VALUES (tbl, tbl::text) RETURNING id;
$fn$;

-- Closes a run and records the backlog: expired rows still present and the oldest one.
CREATE FUNCTION warden._expiry_run_finish(run_id bigint, status text, error text)
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
            EXECUTE format('SELECT count(*), min(%I)::timestamptz FROM %s WHERE %s',
                           p.expires_column, p.tbl, warden._expiry_predicate(p))
                INTO backlog, oldest
                USING now() - p.grace;
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

-- The worker of both expire_rows procedures. Commits after every batch, so locks are held
-- for one batch only and progress survives a crash, and rests warden.expiry_batch_pause
-- between batches. Stops when the time budget (warden.expiry_time_budget) is spent; the
-- rest is left for the next run. A failing
-- table (lock_timeout, a dropped column, ...) is recorded and the next table goes on.
CREATE PROCEDURE warden._expire_tables(tables regclass[])
LANGUAGE plpgsql
AS $fn$
DECLARE
    deadline timestamptz := clock_timestamp()
        + pg_catalog.current_setting('warden.expiry_time_budget')::interval;
    pause double precision := extract(epoch FROM
        pg_catalog.current_setting('warden.expiry_batch_pause')::interval);
    t regclass;
    run bigint;
    cutoff timestamptz;
    size integer;
    n integer;
    failure text;
    final text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        SELECT pg_catalog.now() - p.grace, p.batch_size INTO cutoff, size
        FROM warden.expiry_policies p WHERE p.tbl = t;
        CONTINUE WHEN NOT FOUND;
        run := warden._expiry_run_start(t);
        COMMIT;
        failure := NULL;
        final := 'succeeded';
        LOOP
            IF pg_catalog.clock_timestamp() >= deadline THEN
                final := 'budget_exhausted';
                EXIT;
            END IF;
            BEGIN
                n := warden._expire_batch(run, cutoff);
            EXCEPTION WHEN OTHERS THEN
                failure := SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')';
            END;
            IF failure IS NOT NULL THEN
                final := 'failed';
                EXIT;
            END IF;
            COMMIT;
            EXIT WHEN n < size;
            IF pause > 0 THEN
                PERFORM pg_catalog.pg_sleep(pause);
            END IF;
        END LOOP;
        PERFORM warden._expiry_run_finish(run, final, failure);
        COMMIT;
    END LOOP;
END
$fn$;

-- CALL warden.expire_rows(): every registered table, within one time budget; then run
-- rows older than 30 days are pruned.
CREATE PROCEDURE warden.expire_rows()
LANGUAGE plpgsql
AS $fn$
DECLARE
    tables regclass[];
BEGIN
    SELECT coalesce(array_agg(p.tbl ORDER BY p.tbl::oid), '{}') INTO tables
    FROM warden.expiry_policies p;
    CALL warden._expire_tables(tables);
    PERFORM warden.prune_expiry_runs();
END
$fn$;

-- CALL warden.expire_rows('user_sessions'): one registered table.
CREATE PROCEDURE warden.expire_rows(tbl regclass)
LANGUAGE plpgsql
AS $fn$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'CALL warden.expire_rows() runs every registered table.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM warden.expiry_policies p WHERE p.tbl = expire_rows.tbl) THEN
        RAISE EXCEPTION 'table % is not registered for expiry', tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it with warden.register_expiry().';
    END IF;
    CALL warden._expire_tables(ARRAY[tbl]);
END
$fn$;

-- For applications, one row at a time: is this row (session) still valid? Expired counts
-- as invalid as soon as the expiry time passes, before any cleanup ran; in mode 'mark' a
-- row carrying the status value is invalid; a missing row is invalid. Runs with the
-- caller's rights: the caller must be able to read the table. C++ (extension/expiry.cpp):
-- the query is prepared once per backend, table and key type.
CREATE FUNCTION warden.session_valid(tbl regclass, key_value anyelement) RETURNS boolean
AS 'MODULE_PATHNAME', 'warden_session_valid'
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp;

-- The validity query of a policy (identifiers quoted with %I, the status value with %L):
-- $1 the key value, $2 the current time. Used by session_valid.
CREATE FUNCTION warden._session_valid_query(tbl regclass, OUT key_columns integer, OUT query text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT cardinality(p.key_columns),
           format('SELECT coalesce(%I > $2::%s, true)', p.expires_column, p.expires_type)
           || CASE WHEN p.mode = 'mark'
                   THEN format(' AND %I IS DISTINCT FROM %L', p.status_column, p.status_value)
                   ELSE '' END
           || format(' FROM %s WHERE %I = $1', p.tbl, p.key_columns[1])
    FROM warden.expiry_policies p WHERE p.tbl = _session_valid_query.tbl
$fn$;

-- Policies with the outcome of their latest run, for psql and the health views.
CREATE VIEW warden.expiry_status AS
SELECT p.tbl, p.expires_column, p.mode, p.status_column, p.status_value, p.batch_size,
       p.grace, p.key_columns, r.started_at AS last_run_at, r.status AS last_status,
       r.rows_expired AS last_rows_expired, r.batches AS last_batches,
       r.duration AS last_duration, r.backlog_rows, r.backlog_oldest, r.error AS last_error
FROM warden.expiry_policies p
LEFT JOIN LATERAL (
    SELECT * FROM warden.expiry_runs x WHERE x.tbl = p.tbl ORDER BY x.started_at DESC LIMIT 1
) r ON true;

-- Keeps expiry_runs from growing without bound; CALL warden.expire_rows() calls it.
CREATE FUNCTION warden.prune_expiry_runs(keep interval DEFAULT '30 days') RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH gone AS (DELETE FROM warden.expiry_runs WHERE started_at < now() - keep RETURNING 1)
    SELECT count(*) FROM gone
$fn$;

GRANT SELECT ON warden.expiry_policies, warden.expiry_runs, warden.expiry_status
    TO warden_admin, warden_monitor;
GRANT SELECT ON warden.expiry_policies TO warden_app;
GRANT EXECUTE ON FUNCTION warden.register_expiry(regclass, name, text, name, text, integer, interval),
                          warden.unregister_expiry(regclass),
                          warden.prune_expiry_runs(interval),
                          warden._expiry_validate(regclass, name, text, name, text, integer, interval),
                          warden._expiry_predicate(warden.expiry_policies),
                          warden._expire_batch(bigint, timestamptz),
                          warden._expiry_run_start(regclass),
                          warden._expiry_run_finish(bigint, text, text)
    TO warden_admin;
GRANT EXECUTE ON PROCEDURE warden.expire_rows(), warden.expire_rows(regclass),
                           warden._expire_tables(regclass[])
    TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.session_valid(regclass, anyelement),
                          warden._session_valid_query(regclass)
    TO warden_app, warden_admin;
