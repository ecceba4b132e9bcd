-- Custom health checks: a query of the DBA's own (orders waiting too long, a queue's
-- depth) judged against warning and critical levels like the built-in checks, and shown
-- by health_check(), the report, metrics(), `warden health` and the dashboard.
--
-- Security: warden_admin stores the query; it never runs with the extension owner's
-- rights. warden._custom_check_run (C, extension/custom_checks.cpp) runs it as
-- warden_monitor under SECURITY_RESTRICTED_OPERATION, read-only, with search_path pinned
-- to pg_catalog, pg_temp and a time limit (warden.custom_check_timeout). Queries name
-- their tables with the schema.

CREATE TABLE warden.custom_checks (
    check_name  text PRIMARY KEY CHECK (check_name ~ '^[a-z][a-z0-9_]{0,62}$'),
    category    text NOT NULL DEFAULT 'custom' CHECK (category ~ '^[a-z][a-z0-9_]{0,62}$'),
    query       text NOT NULL CHECK (btrim(query) <> ''),
    warning     numeric,
    critical    numeric,
    direction   text NOT NULL DEFAULT 'above' CHECK (direction IN ('above', 'below')),
    unit        text NOT NULL DEFAULT '',
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL DEFAULT '',
    added_by    text NOT NULL DEFAULT session_user,
    added_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT custom_checks_order CHECK (
        warning IS NULL OR critical IS NULL
        OR (direction = 'above' AND warning <= critical)
        OR (direction = 'below' AND warning >= critical))
);
SELECT pg_catalog.pg_extension_config_dump('warden.custom_checks', '');
GRANT SELECT ON warden.custom_checks TO warden_monitor, warden_admin;
-- Like health_thresholds: levels and enabled may be tuned; the query only through add_check.
GRANT UPDATE (warning, critical, enabled) ON warden.custom_checks TO warden_admin;

-- Runs one query as warden_monitor and returns its first column as text and its second
-- (if any) as the detail. Not granted to anyone: only the SECURITY DEFINER functions
-- below call it, with queries from warden.custom_checks.
CREATE FUNCTION warden._custom_check_run(query text, OUT value text, OUT detail text)
RETURNS record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'warden_custom_check_run';
REVOKE ALL ON FUNCTION warden._custom_check_run(text) FROM PUBLIC;

CREATE FUNCTION warden.add_check(name text, sql text, warning numeric, critical numeric,
                                 direction text DEFAULT 'above', category text DEFAULT 'custom',
                                 unit text DEFAULT '', description text DEFAULT '')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid check name %', coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A check name is lower case letters, digits and underscores, starting with a letter.';
    END IF;
    IF EXISTS (SELECT FROM warden.health_thresholds t WHERE t.check_name = name) THEN
        RAISE EXCEPTION 'check "%" is built in', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name; built-in checks are tuned in warden.health_thresholds.';
    END IF;
    IF EXISTS (SELECT FROM warden.custom_checks c WHERE c.check_name = name) THEN
        RAISE EXCEPTION 'check "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first with warden.drop_check(name), or change its levels in warden.custom_checks.';
    END IF;
    IF direction IS NULL OR direction NOT IN ('above', 'below') THEN
        RAISE EXCEPTION 'direction must be ''above'' or ''below'', not %', coalesce(quote_literal(direction), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'above: worse as the value grows; below: worse as it shrinks.';
    END IF;
    IF warning IS NOT NULL AND critical IS NOT NULL
       AND ((direction = 'above' AND warning > critical) OR (direction = 'below' AND warning < critical)) THEN
        RAISE EXCEPTION 'warning % and critical % are out of order for direction %', warning, critical, direction
            USING ERRCODE = 'check_violation',
                  HINT = 'above: warning <= critical; below: warning >= critical.';
    END IF;
    IF sql IS NULL OR btrim(sql) = '' THEN
        RAISE EXCEPTION 'a check needs a query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A query returning one row: a number, and optionally a detail text.';
    END IF;
    INSERT INTO warden.custom_checks (check_name, category, query, warning, critical, direction,
                                      unit, description)
    VALUES (name, coalesce(category, 'custom'), sql, warning, critical, direction,
            coalesce(unit, ''), coalesce(description, ''));
END
$$;

CREATE FUNCTION warden.drop_check(name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM warden.custom_checks c WHERE c.check_name = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'custom check "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = CASE WHEN EXISTS (SELECT FROM warden.health_thresholds t WHERE t.check_name = name)
                              THEN 'Built-in checks are disabled, not dropped: UPDATE warden.health_thresholds SET enabled = false.'
                              ELSE 'SELECT check_name FROM warden.custom_checks lists them.' END;
    END IF;
END
$$;

-- Every enabled custom check, measured and judged, in the shape of _health_evaluate().
-- A query that fails or times out leaves its check unknown with the error as detail.
-- SECURITY DEFINER only to call _custom_check_run, which drops to warden_monitor.
CREATE FUNCTION warden._custom_check_evaluate()
RETURNS TABLE(check_name text, category text, status text, value numeric, warning numeric,
              critical numeric, unit text, detail text, applicable boolean, facts jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c warden.custom_checks;
    raw text;
BEGIN
    FOR c IN SELECT * FROM warden.custom_checks k WHERE k.enabled
             ORDER BY k.category, k.check_name
    LOOP
        check_name := c.check_name;
        category := c.category;
        warning := c.warning;
        critical := c.critical;
        unit := c.unit;
        applicable := true;
        facts := NULL;
        BEGIN
            SELECT r.value, r.detail INTO raw, detail FROM warden._custom_check_run(c.query) r;
            value := raw::numeric;
            IF value IS NULL THEN
                detail := 'the query returned NULL' || coalesce(': ' || detail, '');
            END IF;
        EXCEPTION WHEN OTHERS THEN
            value := NULL;
            detail := 'check failed: ' || SQLERRM;
        END;
        status := CASE WHEN value IS NULL OR value = 'NaN' THEN 'unknown'
                       WHEN c.direction = 'above' AND value >= c.critical THEN 'critical'
                       WHEN c.direction = 'above' AND value >= c.warning THEN 'warning'
                       WHEN c.direction = 'below' AND value < c.critical THEN 'critical'
                       WHEN c.direction = 'below' AND value < c.warning THEN 'warning'
                       ELSE 'ok' END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Built-in and custom checks together: what health_check(), metrics() and the dashboard show.
CREATE FUNCTION warden._health_evaluate_all()
RETURNS TABLE(check_name text, category text, status text, value numeric, warning numeric,
              critical numeric, unit text, detail text, applicable boolean, facts jsonb)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT * FROM warden._health_evaluate()
UNION ALL
SELECT * FROM warden._migration_lock_check()
UNION ALL
SELECT * FROM warden._custom_check_evaluate()
$$;

CREATE OR REPLACE FUNCTION warden.health_check()
RETURNS TABLE(check_name text, status text, value text, warning text, critical text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT e.check_name, e.status, e.value::text, e.warning::text, e.critical::text, e.detail
FROM warden._health_evaluate_all() e
$$;

-- The custom checks added to a health_report() document: its checks, summary and overall
-- status. Checks the report already carries (by name) are left as they are, so this stays
-- right once health_report() includes custom checks itself.
CREATE FUNCTION warden.report_with_custom_checks(report jsonb) RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
WITH custom AS (
    SELECT jsonb_build_object(
               'check', e.check_name, 'category', e.category, 'status', e.status,
               'value', CASE WHEN e.value <> 'Infinity' THEN e.value END,
               'warning', e.warning, 'critical', e.critical, 'unit', e.unit,
               'detail', e.detail, 'applicable', e.applicable, 'custom', true) AS c
    FROM warden._custom_check_evaluate() e
    WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(report->'checks') r
                      WHERE r->>'check' = e.check_name)
), checks AS (
    SELECT coalesce(report->'checks', '[]') || coalesce((SELECT jsonb_agg(c) FROM custom), '[]') AS all_checks
), judged AS (
    SELECT array_agg(x->>'status') AS statuses,
           array_agg(coalesce((x->>'applicable')::boolean, true)) AS applicable
    FROM checks, jsonb_array_elements(checks.all_checks) x
)
SELECT report || jsonb_build_object(
           'checks', checks.all_checks,
           'status', warden._health_overall(judged.statuses, judged.applicable),
           'summary', jsonb_build_object(
               'ok', (SELECT count(*) FROM unnest(judged.statuses) s WHERE s = 'ok'),
               'warning', (SELECT count(*) FROM unnest(judged.statuses) s WHERE s = 'warning'),
               'critical', (SELECT count(*) FROM unnest(judged.statuses) s WHERE s = 'critical'),
               'unknown', (SELECT count(*) FROM unnest(judged.statuses) s WHERE s = 'unknown')))
FROM checks, judged
$$;

-- Prometheus metrics with the custom checks: the 1.1 body, reading _health_evaluate_all().
CREATE OR REPLACE FUNCTION warden.metrics() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH e AS MATERIALIZED (
    SELECT * FROM warden._health_evaluate_all()
), samples(ord, family, kind, help, labels, value) AS (
    SELECT 1, 'warden_health_status', 'gauge',
           'Status of each pg_warden health check: 0 ok, 1 warning, 2 critical, 3 unknown.',
           warden._prom_labels('check', e.check_name, 'category', e.category),
           array_position(ARRAY['ok', 'warning', 'critical', 'unknown'], e.status) - 1::numeric
    FROM e
    UNION ALL
    SELECT 2, 'warden_health_value', 'gauge', 'Measured value of each health check, in its unit.',
           warden._prom_labels('check', e.check_name, 'unit', e.unit), e.value
    FROM e WHERE e.value IS NOT NULL AND e.value <> 'Infinity'
    UNION ALL
    SELECT 3, 'warden_health_overall_status', 'gauge',
           'Overall pg_warden health status: 0 ok, 1 warning, 2 critical, 3 unknown.', '',
           array_position(ARRAY['ok', 'warning', 'critical', 'unknown'],
                          warden._health_overall(array_agg(e.status), array_agg(e.applicable))) - 1::numeric
    FROM e
    UNION ALL
    SELECT 4, 'warden_connections', 'gauge', 'Client connections by state.',
           warden._prom_labels('state', c.state), c.connections::numeric
    FROM warden.health_connections c
    UNION ALL
    SELECT 5, 'warden_max_connections', 'gauge', 'The max_connections setting.', '',
           current_setting('max_connections')::numeric
    UNION ALL
    SELECT 6, 'warden_database_size_bytes', 'gauge', 'Size of each database.',
           warden._prom_labels('datname', d.datname), d.size_bytes::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 7, 'warden_xact_commit_total', 'counter', 'Committed transactions.',
           warden._prom_labels('datname', d.datname), d.xact_commit::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 8, 'warden_xact_rollback_total', 'counter', 'Rolled back transactions.',
           warden._prom_labels('datname', d.datname), d.xact_rollback::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 9, 'warden_deadlocks_total', 'counter', 'Deadlocks detected.',
           warden._prom_labels('datname', d.datname), d.deadlocks::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 10, 'warden_temp_files_total', 'counter', 'Temporary files created by queries.',
           warden._prom_labels('datname', d.datname), d.temp_files::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 11, 'warden_temp_bytes_total', 'counter', 'Bytes written to temporary files.',
           warden._prom_labels('datname', d.datname), d.temp_bytes::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 12, 'warden_blocks_hit_total', 'counter', 'Block reads served by the buffer cache.',
           warden._prom_labels('datname', d.datname), d.blks_hit::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 13, 'warden_blocks_read_total', 'counter', 'Block reads that missed the buffer cache.',
           warden._prom_labels('datname', d.datname), d.blks_read::numeric
    FROM warden.health_databases d
    UNION ALL
    SELECT 14, 'warden_xid_age', 'gauge', 'Age of datfrozenxid (wraparound at 2^31).',
           warden._prom_labels('datname', w.datname), w.xid_age::numeric
    FROM warden.health_wraparound_databases w
    UNION ALL
    SELECT 15, 'warden_mxid_age', 'gauge', 'Age of datminmxid.',
           warden._prom_labels('datname', w.datname), w.mxid_age::numeric
    FROM warden.health_wraparound_databases w
    UNION ALL
    SELECT 16, 'warden_sequence_used_ratio', 'gauge', 'Share of its range a sequence has used (0 to 1).',
           warden._prom_labels('sequence', s.sequence::text), round(s.pct_used / 100, 4)
    FROM warden._health_sequences() s
    UNION ALL
    SELECT 17, 'warden_replication_lag_bytes', 'gauge', 'Replay lag of a connected standby.',
           warden._prom_labels('application_name', r.application_name, 'client_addr', host(r.client_addr)),
           r.replay_lag_bytes
    FROM warden.health_replication r
    UNION ALL
    SELECT 18, 'warden_replication_lag_seconds', 'gauge', 'Replay lag of a connected standby, in time.',
           warden._prom_labels('application_name', r.application_name, 'client_addr', host(r.client_addr)),
           round(extract(epoch FROM r.replay_lag), 3)
    FROM warden.health_replication r WHERE r.replay_lag IS NOT NULL
    UNION ALL
    SELECT 19, 'warden_replication_slot_retained_bytes', 'gauge', 'WAL kept by a replication slot.',
           warden._prom_labels('slot_name', s.slot_name::text, 'slot_type', s.slot_type,
                               'active', s.active::text), s.retained_bytes
    FROM warden.health_replication_slots s WHERE s.retained_bytes IS NOT NULL
    UNION ALL
    SELECT 20, 'warden_wal_position_bytes', 'counter', 'WAL position (written, or received on a standby).',
           '', pg_wal_lsn_diff(warden._current_lsn(), '0/0')
    WHERE warden._current_lsn() IS NOT NULL
)
SELECT string_agg(f.block, '' ORDER BY f.ord)
FROM (SELECT min(s.ord) AS ord,
             format(E'# HELP %s %s\n# TYPE %s %s\n', s.family, s.help, s.family, s.kind)
             || string_agg(s.family || s.labels || ' ' || trim_scale(s.value)::text || E'\n', '' ORDER BY s.labels) AS block
      FROM samples s
      WHERE s.value IS NOT NULL
      GROUP BY s.family, s.kind, s.help) f
$$;

GRANT EXECUTE ON FUNCTION warden.add_check(text, text, numeric, numeric, text, text, text, text),
                          warden.drop_check(text) TO warden_admin;
GRANT EXECUTE ON FUNCTION warden._custom_check_evaluate(), warden._health_evaluate_all(),
                          warden.report_with_custom_checks(jsonb) TO warden_monitor, warden_admin;
