-- Installing, upgrading and privileges of the extension itself.

-- A fresh install is at the default version; the schema and roles exist.
CREATE EXTENSION pg_warden;
SELECT warden.version();
SELECT rolname FROM pg_roles WHERE rolname LIKE 'warden\_%' ORDER BY 1;
SELECT pg_has_role('warden_monitor', 'pg_monitor', 'member') AS monitor_is_pg_monitor;

-- Nothing in schema warden is executable by PUBLIC.
SELECT p.proname
FROM pg_proc p
WHERE p.pronamespace = 'warden'::regnamespace
  AND has_function_privilege('public', p.oid, 'EXECUTE')
  AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE');

-- The schema is not usable by PUBLIC.
SELECT has_schema_privilege('public', 'warden', 'USAGE') AS public_usage;

-- Every object of the extension with what matters about it: a function's body, settings,
-- security and ACL; a table's columns, constraints, indexes, triggers, policies and ACL.
CREATE FUNCTION pg_temp.warden_objects() RETURNS TABLE (obj text, detail text)
LANGUAGE sql AS $$
  SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
         md5(CASE d.classid
           WHEN 'pg_proc'::regclass THEN
             (SELECT concat_ws('|', p.prosecdef, p.proconfig, p.provolatile, p.prosrc, p.proacl,
                               pg_get_function_result(p.oid), pg_get_function_arguments(p.oid))
              FROM pg_proc p WHERE p.oid = d.objid)
           WHEN 'pg_class'::regclass THEN
             (SELECT concat_ws('|', c.relkind, c.relacl, c.relrowsecurity, c.reloptions,
                (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' ||
                                   a.attnotnull || ':' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
                                   ',' ORDER BY a.attname)
                 FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                (SELECT string_agg(pg_get_constraintdef(k.oid), ';' ORDER BY pg_get_constraintdef(k.oid))
                 FROM pg_constraint k WHERE k.conrelid = c.oid),
                (SELECT string_agg(pg_get_indexdef(i.indexrelid), ';' ORDER BY pg_get_indexdef(i.indexrelid))
                 FROM pg_index i WHERE i.indrelid = c.oid),
                (SELECT string_agg(pg_get_triggerdef(t.oid), ';' ORDER BY pg_get_triggerdef(t.oid))
                 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
                (SELECT string_agg(pol.polname || pg_get_expr(pol.polqual, pol.polrelid), ';' ORDER BY pol.polname)
                 FROM pg_policy pol WHERE pol.polrelid = c.oid))
              FROM pg_class c WHERE c.oid = d.objid)
           WHEN 'pg_event_trigger'::regclass THEN
             (SELECT concat_ws('|', e.evtevent, e.evtfoid::regprocedure, e.evtenabled, e.evttags)
              FROM pg_event_trigger e WHERE e.oid = d.objid)
           ELSE '' END)
  FROM pg_depend d
  WHERE d.refclassid = 'pg_extension'::regclass
    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_warden')
    AND d.deptype = 'e'
$$;

-- Remember every object of a fresh install, to compare with upgraded ones.
CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.warden_objects();
DROP EXTENSION pg_warden;

-- Install 1.0, then upgrade: every update script in the chain runs.
CREATE EXTENSION pg_warden VERSION '1.0';
SELECT warden.version();
ALTER EXTENSION pg_warden UPDATE;
SELECT warden.version();
CREATE TEMP TABLE from_1_0 AS SELECT * FROM pg_temp.warden_objects();
DROP EXTENSION pg_warden;

-- Install the released 1.1, then upgrade to the default version.
CREATE EXTENSION pg_warden VERSION '1.1';
SELECT warden.version();
ALTER EXTENSION pg_warden UPDATE;
SELECT warden.version();
CREATE TEMP TABLE from_1_1 AS SELECT * FROM pg_temp.warden_objects();

-- Each upgraded extension has exactly the objects, definitions and privileges of a fresh
-- install (tests/t/090_upgrade_data.pl does the same with data in every table).
SELECT 'only in fresh' AS side, 'from 1.0' AS path, obj FROM (SELECT * FROM fresh EXCEPT SELECT * FROM from_1_0) f
UNION ALL
SELECT 'only in upgraded', 'from 1.0', obj FROM (SELECT * FROM from_1_0 EXCEPT SELECT * FROM fresh) u
UNION ALL
SELECT 'only in fresh', 'from 1.1', obj FROM (SELECT * FROM fresh EXCEPT SELECT * FROM from_1_1) f
UNION ALL
SELECT 'only in upgraded', 'from 1.1', obj FROM (SELECT * FROM from_1_1 EXCEPT SELECT * FROM fresh) u
ORDER BY 1, 2, 3;
SELECT count(*) > 0 AS has_objects FROM from_1_1;

-- The checksum rule is the same as the utility's (see tests/unit/test_checksum.cpp).
SELECT warden.checksum('abc') AS abc,
       warden.checksum(E'SELECT 1;\r\n') = warden.checksum(E'SELECT 1;\n') AS crlf_equal,
       warden.checksum(E'\uFEFFSELECT 1;\n') = warden.checksum(E'SELECT 1;\n') AS bom_ignored;

-- Unknown warden.* settings are refused: the prefix is reserved.
SET warden.no_such_setting = 1;

DROP EXTENSION pg_warden;
