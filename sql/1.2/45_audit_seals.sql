-- Seals over the audit trail (docs/audit.md, "Seals"): the maintenance worker hashes each
-- closed time slice of warden.audit_log (default one minute) and chains the hash to the
-- previous seal, in warden.audit_seals, which no warden role can change. Writers never
-- touch the chain: a slice is sealed after the fact, once no transaction that could still
-- add rows to it is open. warden.verify_audit() recomputes the seals and names the first
-- slice where a row was deleted, inserted or changed, or whose partition was dropped by
-- hand; warden.audit_head() gives the newest seal to keep outside the database.

-- The width of a slice. Slices are aligned to multiples of it from 2000-01-01 00:00 UTC,
-- like the partitions, so that a partition boundary is always a slice boundary.
ALTER TABLE warden.audit_settings
    ADD COLUMN seal_interval interval NOT NULL DEFAULT '1 minute'
        CHECK (seal_interval >= interval '1 second' AND seal_interval <= interval '1 hour'
               AND date_part('epoch', interval '1 hour')::bigint % date_part('epoch', seal_interval)::bigint = 0
               AND date_part('epoch', seal_interval) = floor(date_part('epoch', seal_interval)));

-- One row per seal, per chain. A seal covers [slice_start, slice_end): one slice with
-- rows, or a run of empty slices. Its rows are counted and hashed per group (audit_log:
-- per audited table, by relid; the other chains: per event type) so that retention may
-- remove a whole group of a slice and say so. seal = sha256 over prev_seal and every
-- other column but partitions and sealed_at (warden._seal_link).
CREATE TABLE warden.audit_seals (
    chain       text NOT NULL CHECK (chain IN ('audit_log', 'security_events', 'migration_events')),
    seq         bigint NOT NULL CHECK (seq > 0),
    slice_start timestamptz NOT NULL,
    slice_end   timestamptz NOT NULL CHECK (slice_end > slice_start),
    row_count   bigint NOT NULL CHECK (row_count >= 0),
    groups      text[] NOT NULL,
    counts      bigint[] NOT NULL,
    hashes      bytea[] NOT NULL,
    -- The partitions of warden.audit_log that held the slice's rows when it was sealed.
    partitions  text[],
    prev_seal   bytea,
    seal        bytea NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (chain, seq),
    UNIQUE (chain, slice_start)
);

-- What retention removed, so that verify does not report it: rows of group grp (NULL:
-- every group) sealed in slices within [removed_from, removed_before).
CREATE TABLE warden.audit_seal_removals (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain          text NOT NULL CHECK (chain IN ('audit_log', 'security_events', 'migration_events')),
    grp            text,
    removed_from   timestamptz,
    removed_before timestamptz NOT NULL,
    removed_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    detail         text
);
CREATE INDEX audit_seal_removals_chain ON warden.audit_seal_removals (chain, removed_before);

-- The seals are evidence: dumped, appended to only by the sealing and retention routines
-- (seal mode) or a superuser restoring a dump, changed by no role but a superuser.
SELECT pg_catalog.pg_extension_config_dump('warden.audit_seals', '');
SELECT pg_catalog.pg_extension_config_dump('warden.audit_seal_removals', '');
SELECT pg_catalog.pg_extension_config_dump('warden.audit_seal_removals_id_seq', '');

CREATE FUNCTION warden._audit_seals_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'warden_audit_seals_guard'
LANGUAGE C;
CREATE TRIGGER audit_seals_append_only BEFORE INSERT OR UPDATE OR DELETE ON warden.audit_seals
    FOR EACH ROW EXECUTE FUNCTION warden._audit_seals_guard();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON warden.audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_seals_guard();
CREATE TRIGGER audit_seal_removals_append_only BEFORE INSERT OR UPDATE OR DELETE ON warden.audit_seal_removals
    FOR EACH ROW EXECUTE FUNCTION warden._audit_seals_guard();
CREATE TRIGGER audit_seal_removals_no_truncate BEFORE TRUNCATE ON warden.audit_seal_removals
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_seals_guard();

-- Lets this backend's sealing and retention routines append seals and removals until the
-- transaction (or subtransaction) ends. Granted to no one.
CREATE FUNCTION warden._audit_seal_mode(on_off boolean) RETURNS void
AS 'MODULE_PATHNAME', 'warden_audit_seal_mode'
LANGUAGE C STRICT VOLATILE;

-- The hash of a set of rows (extension/audit_seal.cpp): sha256 over the sorted sha256 of
-- each row's canonical bytes; NULL for no rows. The order rows are read in is irrelevant.
CREATE FUNCTION warden._seal_accum(internal, record) RETURNS internal
AS 'MODULE_PATHNAME', 'warden_seal_accum'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
CREATE FUNCTION warden._seal_final(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'warden_seal_final'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
CREATE AGGREGATE warden._seal_hash(record) (
    SFUNC = warden._seal_accum, STYPE = internal, FINALFUNC = warden._seal_final,
    FINALFUNC_MODIFY = READ_WRITE
);

-- The 1-based index of the seal (by ascending starts) whose slice holds ts; 0 before the
-- first.
CREATE FUNCTION warden._seal_bucket(ts timestamptz, starts timestamptz[]) RETURNS integer
AS 'MODULE_PATHNAME', 'warden_seal_bucket'
LANGUAGE C STRICT IMMUTABLE;

-- The security events' place in the chain: the clock when the row is written. occurred_at
-- is when the event happened, which the lockout writers (background workers copying
-- events queued in shared memory) record seconds after the fact: sealing by it would
-- make their rows look inserted into slices already sealed.
ALTER TABLE warden.security_events
    ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp();
CREATE INDEX security_events_recorded ON warden.security_events (recorded_at);

-- What each chain seals: its table, the column that places a row in a slice (set by the
-- clock when the row is written), the group a row belongs to, and the row as hashed
-- (its columns listed, so that a column added later does not change old hashes).
CREATE FUNCTION warden._seal_sources()
RETURNS TABLE (chain text, tbl text, ts text, grp text, row_expr text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
VALUES
    ('audit_log', 'warden.audit_log', 'logged_at', 'a.relid::text',
     'ROW(a.logged_at, a.op, a.relid, a.schema_name, a.table_name, a.record_key, a.old_values,
          a.new_values, a.excluded_changed, a.statement_at, a.transaction_at, a.txid,
          a.session_user_name, a.current_user_name, a.actor, a.application_name, a.client_addr)'),
    ('security_events', 'warden.security_events', 'recorded_at', 'a.event_type',
     'ROW(a.id, a.occurred_at, a.event_type, a.principal, a.source, a.failures, a.locked_until,
          a.actor, a.detail, a.recorded_at)'),
    -- The ledger's events get occurred_at from the clock when they are written.
    ('migration_events', 'warden.migration_events', 'occurred_at', 'a.event',
     'ROW(a.id, a.occurred_at, a.event, a.version, a.name, a.checksum, a.execution_ms, a.detail,
          a.session_user_name, a.current_user_name, a.application_name, a.client_addr,
          a.transaction_id, a.pid)')
$fn$;

CREATE FUNCTION warden._seal_source(chain text, OUT tbl text, OUT ts text, OUT grp text, OUT row_expr text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT s.tbl, s.ts, s.grp, s.row_expr FROM warden._seal_sources() s WHERE s.chain = _seal_source.chain
$fn$;

-- A seal's link: sha256 over the previous seal and the seal's own fields, groups in
-- byte order. Reads no setting: timestamps as their microseconds, text as UTF-8.
CREATE FUNCTION warden._seal_link(prev bytea, chain text, seq bigint, lo timestamptz, hi timestamptz,
                                  grps text[], counts bigint[], hashes bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT sha256(coalesce(prev, '\x'::bytea) || convert_to(chain, 'UTF8') || int8send(seq)
              || timestamptz_send(lo) || timestamptz_send(hi)
              || coalesce((SELECT string_agg(sha256(convert_to(u.g, 'UTF8')) || int8send(u.n) || u.h, '\x'::bytea
                                             ORDER BY u.g COLLATE "C")
                           FROM unnest(grps, counts, hashes) AS u(g, n, h)), '\x'::bytea))
$fn$;

-- Appends seal number seq to a chain (in seal mode), after the seal prev; returns its hash.
CREATE FUNCTION warden._seal_append(c text, seq bigint, prev bytea, lo timestamptz, hi timestamptz,
                                    grps text[], counts bigint[], hashes bytea[], parts text[]) RETURNS bytea
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    h constant bytea := warden._seal_link(prev, c, seq, lo, hi, grps, counts, hashes);
BEGIN
    INSERT INTO warden.audit_seals (chain, seq, slice_start, slice_end, row_count, groups, counts, hashes,
                                    partitions, prev_seal, seal)
    VALUES (c, seq, lo, hi, (SELECT coalesce(sum(x), 0) FROM unnest(counts) x), grps, counts, hashes, parts,
            prev, h);
    RETURN h;
END
$fn$;

-- Seals one chain's closed slices up to horizon; returns the number of seals written.
-- The first seal starts at the slice of the chain's oldest row.
CREATE FUNCTION warden._seal_chain(c text, horizon timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    origin  constant timestamptz := '2000-01-01 00:00:00+00';
    src     record;
    w       interval;
    last    warden.audit_seals;
    lo      timestamptz;
    hi      timestamptz;
    cur     timestamptz;
    r       record;
    s_start timestamptz;
    grps    text[];
    counts  bigint[];
    hashes  bytea[];
    parts   text[];
    n       bigint;
    prev    bytea;
    written integer := 0;
BEGIN
    SELECT * INTO STRICT src FROM warden._seal_source(c);
    SELECT seal_interval INTO STRICT w FROM warden.audit_settings;
    hi := pg_catalog.date_bin(w, horizon, origin);
    SELECT * INTO last FROM warden.audit_seals s WHERE s.chain = c ORDER BY s.seq DESC LIMIT 1;
    IF FOUND THEN
        lo := last.slice_end;
        n := last.seq;
        prev := last.seal;
    ELSE
        n := 0;
        EXECUTE pg_catalog.format('SELECT min(a.%I) FROM %s a', src.ts, src.tbl) INTO lo;
        IF lo IS NULL OR lo >= hi THEN
            RETURN 0;
        END IF;
        lo := pg_catalog.date_bin(w, lo, origin);
    END IF;
    IF lo >= hi THEN
        RETURN 0;
    END IF;
    cur := lo;
    FOR r IN EXECUTE pg_catalog.format(
        'SELECT greatest(pg_catalog.date_bin($1, a.%1$I, $2), $3) AS s, %2$s AS grp, count(*) AS n,
                warden._seal_hash(%3$s) AS h,
                -- (one partition per slice, or two while rows move out of the default one)
                array_remove(ARRAY[min(a.tableoid)::regclass::text,
                                   nullif(max(a.tableoid), min(a.tableoid))::regclass::text], NULL) AS parts
         FROM %4$s a WHERE a.%1$I >= $3 AND a.%1$I < $4
         GROUP BY 1, 2 ORDER BY 1', src.ts, src.grp, src.row_expr, src.tbl)
        USING w, origin, lo, hi LOOP
        IF s_start IS NOT NULL AND r.s <> s_start THEN
            n := n + 1;
            prev := warden._seal_append(c, n, prev, s_start, pg_catalog.date_bin(w, s_start, origin) + w,
                                        grps, counts, hashes, parts);
            written := written + 1;
            cur := pg_catalog.date_bin(w, s_start, origin) + w;
            s_start := NULL;
        END IF;
        IF s_start IS NULL THEN
            IF r.s > cur THEN
                n := n + 1;
                prev := warden._seal_append(c, n, prev, cur, r.s, '{}', '{}', '{}', NULL);
                written := written + 1;
            END IF;
            s_start := r.s;
            grps := '{}';
            counts := '{}';
            hashes := '{}';
            parts := '{}';
        END IF;
        grps := grps || r.grp;
        counts := counts || r.n;
        hashes := hashes || r.h;
        parts := ARRAY(SELECT DISTINCT x FROM unnest(parts || r.parts) x ORDER BY 1);
    END LOOP;
    IF s_start IS NOT NULL THEN
        n := n + 1;
        prev := warden._seal_append(c, n, prev, s_start, pg_catalog.date_bin(w, s_start, origin) + w,
                                    grps, counts, hashes, parts);
        written := written + 1;
        cur := pg_catalog.date_bin(w, s_start, origin) + w;
    END IF;
    IF cur < hi THEN
        n := n + 1;
        prev := warden._seal_append(c, n, prev, cur, hi, '{}', '{}', '{}', NULL);
        written := written + 1;
    END IF;
    RETURN written;
END
$fn$;

-- Seals every chain's closed slices; returns the number of seals written. A slice is
-- closed when it ended before up_to (default: now) and before the start of every
-- transaction still open in this database: a row's time is taken by the clock when it
-- is written, inside a transaction that began earlier, so no open transaction can still
-- add a row to it. While a prepared transaction of this database is pending nothing is
-- sealed (when it began is not known). Writers take no lock for any of this.
CREATE FUNCTION warden.seal_audit(up_to timestamptz DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    clock   timestamptz;
    horizon timestamptz;
    written integer := 0;
    c       text;
BEGIN
    -- A snapshot older than this statement could miss a row committed after it was taken.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'warden.seal_audit() runs at READ COMMITTED only'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    -- One sealer at a time (the worker, a manual call).
    PERFORM pg_catalog.pg_advisory_xact_lock(warden._job_lock_key(), -45);
    -- The clock first, then what is open: a transaction not yet seen open writes later.
    clock := pg_catalog.clock_timestamp();
    PERFORM pg_catalog.pg_stat_clear_snapshot();
    IF EXISTS (SELECT FROM pg_catalog.pg_prepared_xacts x WHERE x.database = pg_catalog.current_database()) THEN
        RAISE NOTICE 'pg_warden: a prepared transaction of this database is pending; nothing sealed';
        RETURN 0;
    END IF;
    SELECT least(clock, min(a.xact_start), up_to) INTO horizon
    FROM pg_catalog.pg_stat_activity a
    WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
      AND a.backend_type <> 'autovacuum worker';
    PERFORM warden._audit_seal_mode(true);
    FOR c IN SELECT s.chain FROM warden._seal_sources() s LOOP
        written := written + warden._seal_chain(c, horizon);
    END LOOP;
    PERFORM warden._audit_seal_mode(false);
    RETURN written;
END
$fn$;

-- The built-in job's procedure.
CREATE PROCEDURE warden.seal_audit_trail()
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM warden.seal_audit();
END
$fn$;

INSERT INTO warden.jobs (name, procedure, schedule, time_budget, builtin, description) VALUES
    ('seal_audit', 'warden.seal_audit_trail', interval '30 seconds', interval '5 minutes', true,
     'seal the closed slices of the audit trail (warden.audit_seals)');
UPDATE warden.jobs SET next_run_at = now() + schedule WHERE name = 'seal_audit';

-- Recomputes one chain's seals (those ending after since, all by default) and reports the
-- first problem: a seal altered or missing, rows deleted, inserted or changed in a slice,
-- a partition dropped outside retention, rows older than the first seal.
CREATE FUNCTION warden._verify_chain(c text, since timestamptz,
                                     OUT seals bigint, OUT rows_checked bigint, OUT sealed_through timestamptz,
                                     OUT first_bad_seq bigint, OUT bad_start timestamptz, OUT bad_end timestamptz,
                                     OUT problem text, OUT detail text, OUT problems bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    src     record;
    s       record;
    prev    warden.audit_seals;
    first   warden.audit_seals;
    starts  timestamptz[];
    seqs    bigint[];
    lo      timestamptz;
    hi      timestamptz;
    n       bigint;
    m       record;
    p       text;
    d       text;
BEGIN
    SELECT * INTO STRICT src FROM warden._seal_source(c);
    problems := 0;
    SELECT count(*), coalesce(sum(x.row_count), 0), min(x.slice_start), max(x.slice_end),
           array_agg(x.slice_start ORDER BY x.seq), array_agg(x.seq ORDER BY x.seq)
      INTO seals, rows_checked, lo, hi, starts, seqs
    FROM warden.audit_seals x WHERE x.chain = c AND x.slice_end > coalesce(since, '-infinity');
    sealed_through := hi;

    -- Rows older than the chain's first seal were never sealed: forged, or restored into
    -- a chain that started later.
    IF since IS NULL THEN
        SELECT * INTO first FROM warden.audit_seals x WHERE x.chain = c ORDER BY x.seq LIMIT 1;
        IF FOUND THEN
            EXECUTE pg_catalog.format('SELECT count(*) FROM %s a WHERE a.%I < $1', src.tbl, src.ts)
                INTO n USING first.slice_start;
            IF n > 0 THEN
                first_bad_seq := 0;
                bad_end := first.slice_start;
                problem := 'rows inserted';
                detail := pg_catalog.format('%s row(s) older than the first seal', n);
                problems := 1;
            END IF;
        END IF;
    END IF;
    IF seals = 0 THEN
        RETURN;
    END IF;

    -- The links: each seal starts where the previous one ended, names its hash, and
    -- hashes to what it says.
    SELECT * INTO prev FROM warden.audit_seals x WHERE x.chain = c AND x.seq = seqs[1] - 1;
    FOR s IN SELECT * FROM warden.audit_seals x WHERE x.chain = c AND x.seq >= seqs[1] ORDER BY x.seq LOOP
        p := NULL;
        IF (prev.seq IS NULL AND s.seq <> 1) OR (prev.seq IS NOT NULL AND s.seq <> prev.seq + 1) THEN
            p := 'seal missing';
            d := pg_catalog.format('seal %s follows seal %s', s.seq, coalesce(prev.seq, 0));
        ELSIF prev.seq IS NOT NULL AND s.slice_start <> prev.slice_end THEN
            p := 'seal missing';
            d := pg_catalog.format('seal %s starts at %s, the previous one ended at %s',
                                   s.seq, s.slice_start, prev.slice_end);
        ELSIF s.prev_seal IS DISTINCT FROM prev.seal THEN
            p := 'seal altered';
            d := pg_catalog.format('seal %s does not name the hash of seal %s', s.seq, prev.seq);
        ELSIF s.seal <> warden._seal_link(s.prev_seal, c, s.seq, s.slice_start, s.slice_end, s.groups, s.counts, s.hashes)
              OR s.row_count <> (SELECT coalesce(sum(x), 0) FROM unnest(s.counts) x) THEN
            p := 'seal altered';
            d := pg_catalog.format('seal %s does not hash to its stored value', s.seq);
        END IF;
        IF p IS NOT NULL THEN
            problems := problems + 1;
            IF first_bad_seq IS NULL THEN
                first_bad_seq := s.seq;
                bad_start := s.slice_start;
                bad_end := s.slice_end;
                problem := p;
                detail := d;
            END IF;
        END IF;
        prev := s;
    END LOOP;

    -- The rows: recomputed per seal and group in one pass, compared with what was sealed.
    FOR m IN EXECUTE pg_catalog.format(
        $q$WITH found AS (
               SELECT ($1::bigint[])[warden._seal_bucket(a.%2$I, $2)] AS seq, %3$s AS grp, count(*) AS n,
                      warden._seal_hash(%4$s) AS h
               FROM %1$s a WHERE a.%2$I >= $3 AND a.%2$I < $4 GROUP BY 1, 2),
           sealed AS (
               SELECT x.seq, u.grp, u.n, u.h
               FROM warden.audit_seals x, unnest(x.groups, x.counts, x.hashes) AS u(grp, n, h)
               WHERE x.chain = $5 AND x.seq >= ($1::bigint[])[1])
           SELECT x.seq, x.slice_start, x.slice_end, x.partitions, coalesce(d.grp, f.grp) AS grp,
                  d.n AS sealed_n, f.n AS found_n, d.h = f.h AS same
           FROM sealed d FULL JOIN found f ON f.seq = d.seq AND f.grp = d.grp
           JOIN warden.audit_seals x ON x.chain = $5 AND x.seq = coalesce(d.seq, f.seq)
           WHERE (d.n, d.h) IS DISTINCT FROM (f.n, f.h)
             AND NOT EXISTS (SELECT FROM warden.audit_seal_removals r
                             WHERE r.chain = $5 AND (r.grp IS NULL OR r.grp = coalesce(d.grp, f.grp))
                               AND x.slice_start >= coalesce(r.removed_from, '-infinity')
                               AND x.slice_end <= r.removed_before)
           ORDER BY x.seq, coalesce(d.grp, f.grp) COLLATE "C"$q$, src.tbl, src.ts, src.grp, src.row_expr)
        USING seqs, starts, lo, hi, c LOOP
        problems := problems + 1;
        IF first_bad_seq IS NULL OR m.seq < first_bad_seq THEN
            first_bad_seq := m.seq;
            bad_start := m.slice_start;
            bad_end := m.slice_end;
            problem := CASE WHEN m.sealed_n IS NULL OR m.found_n > m.sealed_n THEN 'rows inserted'
                            WHEN m.found_n IS NULL OR m.found_n < m.sealed_n THEN 'rows deleted'
                            ELSE 'rows changed' END;
            detail := pg_catalog.format('%s: %s row(s) sealed, %s found',
                                        CASE WHEN c = 'audit_log'
                                             THEN pg_catalog.format('relid %s (%s.%s)', m.grp,
                                                 (SELECT x.schema_name FROM warden.audit_tables x WHERE x.relid = m.grp::oid),
                                                 (SELECT x.table_name FROM warden.audit_tables x WHERE x.relid = m.grp::oid))
                                             ELSE pg_catalog.format('event %s', m.grp) END,
                                        coalesce(m.sealed_n, 0), coalesce(m.found_n, 0));
            IF problem = 'rows deleted' AND c = 'audit_log' THEN
                SELECT x INTO p FROM unnest(m.partitions) x WHERE NOT EXISTS (
                    SELECT FROM pg_catalog.pg_inherits i
                    WHERE i.inhparent = 'warden.audit_log'::regclass
                      AND i.inhrelid = pg_catalog.to_regclass(x)) LIMIT 1;
                IF FOUND THEN
                    problem := 'partition dropped';
                    detail := pg_catalog.format('partition %s, which held the slice''s rows, was dropped outside retention; %s',
                                                p, detail);
                END IF;
            END IF;
        END IF;
    END LOOP;
END
$fn$;

-- Verifies every chain: one row per chain; ok is false at the first problem, which is
-- named with the slice it is in. since: only seals ending after it (their links from
-- the seal before it on).
CREATE FUNCTION warden.verify_audit(since timestamptz DEFAULT NULL)
RETURNS TABLE (chain text, ok boolean, seals bigint, rows_checked bigint, sealed_through timestamptz,
               first_bad_seq bigint, slice_start timestamptz, slice_end timestamptz,
               problem text, detail text, problems bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    c text;
    v record;
BEGIN
    FOR c IN SELECT s.chain FROM warden._seal_sources() s LOOP
        SELECT * INTO v FROM warden._verify_chain(c, since);
        chain := c;
        ok := v.problem IS NULL;
        seals := v.seals;
        rows_checked := v.rows_checked;
        sealed_through := v.sealed_through;
        first_bad_seq := v.first_bad_seq;
        slice_start := v.bad_start;
        slice_end := v.bad_end;
        problem := v.problem;
        detail := v.detail;
        problems := v.problems;
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- The newest seal of each chain: what an auditor keeps outside the database to anchor it.
CREATE FUNCTION warden.audit_head()
RETURNS TABLE (chain text, seq bigint, slice_start timestamptz, slice_end timestamptz, row_count bigint,
               seal text, sealed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT DISTINCT ON (s.chain) s.chain, s.seq, s.slice_start, s.slice_end, s.row_count,
       pg_catalog.encode(s.seal, 'hex'), s.sealed_at
FROM warden.audit_seals s
ORDER BY s.chain, s.seq DESC
$fn$;

REVOKE ALL ON warden.audit_seals, warden.audit_seal_removals FROM PUBLIC;
GRANT SELECT ON warden.audit_seals, warden.audit_seal_removals TO warden_admin, warden_monitor;
GRANT EXECUTE ON FUNCTION warden.verify_audit(timestamptz), warden.seal_audit(timestamptz) TO warden_admin;
GRANT EXECUTE ON FUNCTION warden.audit_head() TO warden_admin, warden_monitor;

-- Where retention may cut the trail without splitting a seal: the start of the seal that
-- holds ts, or ts's slice when no seal holds it yet.
CREATE FUNCTION warden._seal_cutoff(c text, ts timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
SELECT coalesce((SELECT s.slice_start FROM warden.audit_seals s
                 WHERE s.chain = c AND s.slice_start <= ts AND s.slice_end > ts),
                pg_catalog.date_bin((SELECT a.seal_interval FROM warden.audit_settings a), ts,
                                    '2000-01-01 00:00:00+00'))
$fn$;

-- Replaces 40_audit.sql's body (same contract): the cutoffs of trimming fall on seal
-- boundaries, every removal is also recorded in warden.audit_seal_removals (so that verify
-- tells it from tampering; the seals are kept), and expired partitions are dropped the way
-- a DBA would: their bounds, row counts and events read once, then one DROP TABLE for all
-- of them under the parent's lock, instead of a detach, a drop and catalog reads per
-- partition.
CREATE OR REPLACE FUNCTION warden.cleanup_audit(retention interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $fn$
DECLARE
    s          warden.audit_settings;
    v_now      constant timestamptz := pg_catalog.now();
    v_floor    constant interval := warden._audit_min_retention();
    v_default  interval;
    longest    interval;
    shortest   interval;
    p          record;
    r          interval;
    cutoff     timestamptz;
    doomed     regclass[];
    starts     timestamptz[];
    ends       timestamptz[];
    counts     bigint[];
    relids     oid[];
    n          bigint;
    removed    bigint := 0;
    trimmed    bigint := 0;
    batches    integer := 0;
BEGIN
    IF retention IS NOT NULL AND retention <= interval '0' THEN
        RAISE EXCEPTION 'retention must be a positive interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL to use warden.audit_settings.retention.';
    END IF;
    IF retention < v_floor THEN
        RAISE LOG 'pg_warden: role % was refused warden.cleanup_audit(%) (below warden.audit_min_retention %)',
            session_user, retention, v_floor;
        RAISE EXCEPTION 'retention % is below the floor warden.audit_min_retention (%)', retention, v_floor
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only a superuser lowers the floor (ALTER SYSTEM SET warden.audit_min_retention).';
    END IF;
    SELECT * INTO STRICT s FROM warden.audit_settings;
    PERFORM pg_catalog.set_config('lock_timeout', s.lock_timeout_ms || 'ms', true);
    -- Settings stored before the floor was raised give way to it.
    v_default := greatest(coalesce(retention, s.retention), v_floor);
    SELECT greatest(v_default, max(greatest(t.retention, v_floor))),
           least(v_default, min(greatest(t.retention, v_floor)) FILTER (WHERE t.retention IS NOT NULL))
      INTO longest, shortest FROM warden.audit_tables t;
    PERFORM warden._audit_seal_mode(true);

    -- Straddling partitions: some rows expired, not all. They are trimmed per retention
    -- class (the default and each override), up to the seal boundary at or before the
    -- class's cutoff; a partition already trimmed up to it is not scanned again.
    DELETE FROM warden.audit_trim_progress g
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = g.partition_oid);
    PERFORM warden._audit_retention_mode(true);
    FOR p IN SELECT * FROM warden.audit_partitions
             WHERE range_start IS NULL
                OR (range_start < v_now - shortest AND range_end > v_now - longest)
             ORDER BY range_start NULLS FIRST LOOP
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_inherits WHERE inhrelid = p.partition);
        FOR r IN SELECT DISTINCT c.x FROM (SELECT v_default UNION ALL SELECT greatest(t.retention, v_floor)
                                           FROM warden.audit_tables t WHERE t.retention IS NOT NULL) AS c(x) LOOP
            cutoff := warden._seal_cutoff('audit_log', v_now - r);
            CONTINUE WHEN p.range_start >= cutoff;
            CONTINUE WHEN p.range_start IS NOT NULL AND EXISTS (
                SELECT FROM warden.audit_trim_progress g
                WHERE g.partition_oid = p.partition::oid AND g.retention = r
                  AND g.trimmed_before >= least(cutoff, p.range_end));
            LOOP
                EXIT WHEN batches >= s.trim_max_batches;
                EXECUTE pg_catalog.format(
                    'WITH d AS (
                         DELETE FROM %s WHERE ctid = ANY (ARRAY(
                             SELECT a.ctid FROM %s a LEFT JOIN warden.audit_tables t ON t.relid = a.relid
                             WHERE a.logged_at < $1
                               AND CASE WHEN t.retention IS NULL THEN $2 ELSE greatest(t.retention, $5) END = $3
                             LIMIT $4))
                         RETURNING relid)
                     SELECT count(*), array_agg(DISTINCT relid) FROM d',
                    p.partition, p.partition) INTO n, relids USING cutoff, v_default, r, s.trim_batch_size, v_floor;
                trimmed := trimmed + n;
                IF n > 0 THEN
                    batches := batches + 1;
                    INSERT INTO warden.audit_seal_removals (chain, grp, removed_before, detail)
                    SELECT 'audit_log', x::text, cutoff, pg_catalog.format('rows of relid %s older than %s trimmed (retention %s)', x, cutoff, r)
                    FROM unnest(relids) x
                    WHERE NOT EXISTS (SELECT FROM warden.audit_seal_removals m
                                      WHERE m.chain = 'audit_log' AND m.grp = x::text AND m.removed_from IS NULL
                                        AND m.removed_before >= cutoff);
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
    removed := trimmed;
    IF trimmed > 0 THEN
        INSERT INTO warden.security_events (event_type, detail)
        VALUES ('audit_rows_trimmed', pg_catalog.format('%s row(s) past their retention trimmed (default retention %s)',
                                                        trimmed, v_default));
    END IF;

    -- Whole partitions: every row in them is older than the longest retention. Their rows
    -- are counted from the statistics VACUUM keeps (exact when VACUUM last read the whole
    -- partition, as it does for a closed insert-only one); a partition never vacuumed nor
    -- analyzed is counted by reading it, under the lock.
    SELECT array_agg(x.partition ORDER BY x.range_start), array_agg(x.range_start ORDER BY x.range_start),
           array_agg(x.range_end ORDER BY x.range_start)
      INTO doomed, starts, ends
    FROM warden.audit_partitions x WHERE x.range_end <= v_now - longest;
    IF cardinality(doomed) > 0 THEN
        BEGIN
            LOCK TABLE warden.audit_log IN ACCESS EXCLUSIVE MODE;
            -- Another run may have dropped some while this one waited for the lock.
            SELECT array_agg(d.p ORDER BY d.i), array_agg(d.lo ORDER BY d.i), array_agg(d.hi ORDER BY d.i)
              INTO doomed, starts, ends
            FROM unnest(doomed, starts, ends) WITH ORDINALITY AS d(p, lo, hi, i)
            WHERE EXISTS (SELECT FROM pg_catalog.pg_inherits h
                          WHERE h.inhrelid = d.p AND h.inhparent = 'warden.audit_log'::regclass);
            IF cardinality(doomed) > 0 THEN
                EXECUTE 'LOCK TABLE ' || (SELECT string_agg(x::text, ', ') FROM unnest(doomed) x)
                        || ' IN ACCESS EXCLUSIVE MODE';
                SELECT array_agg(CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END ORDER BY d.i) INTO counts
                FROM unnest(doomed) WITH ORDINALITY AS d(p, i) JOIN pg_catalog.pg_class c ON c.oid = d.p;
                FOR i IN 1 .. cardinality(doomed) LOOP
                    IF counts[i] IS NULL THEN
                        EXECUTE pg_catalog.format('SELECT count(*) FROM %s', doomed[i]) INTO n;
                        counts[i] := n;
                    END IF;
                END LOOP;
                -- Rolled back with the drop if it fails.
                INSERT INTO warden.security_events (event_type, detail)
                SELECT 'audit_partition_dropped',
                       pg_catalog.format('%s [%s, %s): %s row(s), all past the longest retention %s', d.p, d.lo, d.hi, d.n, longest)
                FROM unnest(doomed, starts, ends, counts) WITH ORDINALITY AS d(p, lo, hi, n, i) ORDER BY d.i;
                INSERT INTO warden.audit_seal_removals (chain, removed_from, removed_before, detail)
                SELECT 'audit_log', d.lo, d.hi,
                       pg_catalog.format('partition %s dropped by retention: %s row(s)', d.p, d.n)
                FROM unnest(doomed, starts, ends, counts) WITH ORDINALITY AS d(p, lo, hi, n, i) ORDER BY d.i;
                EXECUTE 'DROP TABLE ' || (SELECT string_agg(x::text, ', ') FROM unnest(doomed) x);
                removed := removed + (SELECT sum(x) FROM unnest(counts) x);
                DELETE FROM warden.audit_trim_progress WHERE partition_oid = ANY (doomed::oid[]);
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pg_warden: warden.audit_log is busy; % expired partition(s) left for the next run',
                cardinality(doomed);
        END;
    END IF;
    PERFORM warden._audit_seal_mode(false);
    RETURN removed;
END
$fn$;

-- Replaces 35_lockout.sql's body (same contract), and records what it removes from
-- warden.security_events in warden.audit_seal_removals: per event type, the seals up to
-- the end of the one holding the newest row removed.
CREATE OR REPLACE FUNCTION warden._cleanup_login_attempts() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    p    warden.lockout_policy;
    keep interval;
    n    bigint;
BEGIN
    SELECT * INTO p FROM warden.lockout_policy;
    DELETE FROM warden.login_attempts a
     WHERE coalesce(a.last_failure_at, '-infinity') < now() - p.attempt_retention
       AND (a.locked_until IS NULL OR a.locked_until < now());
    DELETE FROM warden.login_source_failures s
     WHERE s.window_start < now() - p.source_window;
    DELETE FROM warden.login_known_sources k
     WHERE k.last_success_at < now() - p.known_source_retention;
    -- Role counters (sql/1.2/36_role_lockout.sql) as idle counters above.
    DELETE FROM warden.role_login_attempts r
     WHERE coalesce(r.last_failure_at, '-infinity') < now() - p.attempt_retention
       AND (r.locked_until IS NULL OR r.locked_until < now());
    keep := greatest(p.event_retention, warden._audit_min_retention());
    PERFORM warden._audit_retention_mode(true);
    PERFORM warden._audit_seal_mode(true);
    WITH d AS (
        DELETE FROM warden.security_events e
         WHERE e.occurred_at < now() - keep
           AND e.event_type IN ('login_failed', 'locked', 'unlocked', 'source_throttled',
                                'role_login_failed', 'role_locked', 'role_unlocked',
                                'role_source_throttled')
        RETURNING e.event_type, e.recorded_at),
    g AS (SELECT d.event_type, max(d.recorded_at) AS newest, count(*) AS n FROM d GROUP BY 1),
    r AS (
        INSERT INTO warden.audit_seal_removals (chain, grp, removed_before, detail)
        SELECT 'security_events', g.event_type,
               coalesce((SELECT x.slice_end FROM warden.audit_seals x
                         WHERE x.chain = 'security_events' AND x.slice_start <= g.newest AND x.slice_end > g.newest),
                        g.newest + interval '1 microsecond'),
               format('%s %s event(s) older than %s removed', g.n, g.event_type, keep)
        FROM g)
    SELECT coalesce(sum(g.n), 0) INTO n FROM g;
    PERFORM warden._audit_seal_mode(false);
    PERFORM warden._audit_retention_mode(false);
    IF n > 0 THEN
        INSERT INTO warden.security_events (event_type, detail)
        VALUES ('security_events_removed', format('%s login events older than %s', n, keep));
    END IF;
END
$fn$;
