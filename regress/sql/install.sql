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

-- Remember every object of a fresh install, to compare with an upgraded one.
CREATE TEMP TABLE fresh AS
SELECT pg_describe_object(classid, objid, objsubid) AS obj
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_warden')
  AND deptype = 'e';
DROP EXTENSION pg_warden;

-- Install 1.0, then upgrade: every update script in the chain runs.
CREATE EXTENSION pg_warden VERSION '1.0';
SELECT warden.version();
ALTER EXTENSION pg_warden UPDATE;
SELECT warden.version();

-- The upgraded extension has exactly the objects of a fresh install.
CREATE TEMP TABLE upgraded AS
SELECT pg_describe_object(classid, objid, objsubid) AS obj
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_warden')
  AND deptype = 'e';
SELECT 'only in fresh' AS side, obj FROM (SELECT obj FROM fresh EXCEPT SELECT obj FROM upgraded) f
UNION ALL
SELECT 'only in upgraded', obj FROM (SELECT obj FROM upgraded EXCEPT SELECT obj FROM fresh) u
ORDER BY 1, 2;
SELECT count(*) > 0 AS has_objects FROM upgraded;

-- The checksum rule is the same as the utility's (see tests/unit/test_checksum.cpp).
SELECT warden.checksum('abc') AS abc,
       warden.checksum(E'SELECT 1;\r\n') = warden.checksum(E'SELECT 1;\n') AS crlf_equal,
       warden.checksum(E'\uFEFFSELECT 1;\n') = warden.checksum(E'SELECT 1;\n') AS bom_ignored;

-- Unknown warden.* settings are refused: the prefix is reserved.
SET warden.no_such_setting = 1;

DROP EXTENSION pg_warden;
