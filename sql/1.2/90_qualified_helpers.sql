-- Small invoker helpers that stay inlinable SQL (a SET clause would stop the planner from
-- inlining them into the health views): every operator is qualified instead, so that a
-- caller's search_path, whoever the caller is, cannot put its own operator in their place.
CREATE OR REPLACE FUNCTION warden._reloption(options text[], name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT pg_catalog.substr(o, pg_catalog.length(name) OPERATOR(pg_catalog.+) 2)
      FROM pg_catalog.unnest(options) o
      WHERE o OPERATOR(pg_catalog.~~) (name OPERATOR(pg_catalog.||) '=%') LIMIT 1 $$;

CREATE OR REPLACE FUNCTION warden._prom_labels(VARIADIC kv text[]) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
SELECT coalesce('{' OPERATOR(pg_catalog.||) pg_catalog.string_agg(
           kv[i] OPERATOR(pg_catalog.||) '="' OPERATOR(pg_catalog.||)
           pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
               kv[i OPERATOR(pg_catalog.+) 1], E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
           OPERATOR(pg_catalog.||) '"', ',' ORDER BY i)
           OPERATOR(pg_catalog.||) '}', '')
FROM pg_catalog.generate_series(1, pg_catalog.cardinality(kv) OPERATOR(pg_catalog.-) 1, 2) i
WHERE kv[i OPERATOR(pg_catalog.+) 1] IS NOT NULL
$$;

-- 1.0's version() pinned pg_catalog only; pg_temp is named last like everywhere else.
ALTER FUNCTION warden.version() SET search_path = pg_catalog, pg_temp;
