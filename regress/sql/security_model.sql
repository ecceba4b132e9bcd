-- The security model's invariants over every object of the extension (docs/security.md).
CREATE EXTENSION pg_warden;

-- Every SECURITY DEFINER function and procedure pins search_path to pg_catalog, pg_temp:
-- nothing the owner runs resolves a name through the caller.
SELECT p.oid::regprocedure AS definer_without_pinned_path
FROM pg_proc p
WHERE p.pronamespace = 'warden'::regnamespace AND p.prosecdef
  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
ORDER BY 1::text;

-- SQL and PL/pgSQL routines without a pinned path: only the procedures that COMMIT (a SET
-- clause would forbid that), two inlinable helpers (a SET clause would stop inlining) and
-- plan_migration (runs the caller's script as the caller, on the caller's path, as `up`
-- does); their bodies qualify every function and operator instead.
SELECT p.oid::regprocedure AS unpinned_routine, p.prokind
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'warden'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
ORDER BY 1::text;

-- EXECUTE is granted only to the three warden roles (and kept by the owner), never PUBLIC.
SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee
FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE p.pronamespace = 'warden'::regnamespace AND a.grantee <> p.proowner
ORDER BY 1;

-- No privilege on any table or view for PUBLIC.
SELECT c.oid::regclass AS public_can_use
FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
WHERE c.relnamespace = 'warden'::regnamespace AND a.grantee = 0
ORDER BY 1::text;

-- The evidence: no warden role may change or remove rows of the audit log, the security
-- events, the ledger or its events, the audit seals or the record of what retention removed
-- (their guards refuse it even if granted by mistake).
SELECT c.oid::regclass AS evidence, r.rolname, p.privilege
FROM pg_class c
CROSS JOIN (VALUES ('warden_admin'), ('warden_app'), ('warden_monitor')) r(rolname)
CROSS JOIN (VALUES ('UPDATE'), ('DELETE'), ('TRUNCATE')) p(privilege)
WHERE c.oid IN ('warden.audit_log'::regclass, 'warden.security_events'::regclass,
                'warden.migrations'::regclass, 'warden.migration_events'::regclass,
                'warden.audit_seals'::regclass, 'warden.audit_seal_removals'::regclass)
  AND has_table_privilege(r.rolname, c.oid, p.privilege)
ORDER BY 1::text, 2, 3;

-- Settings that guard evidence can only be set by a superuser.
SELECT name, context FROM pg_settings
WHERE name IN ('warden.audit_min_retention', 'warden.record_drift', 'warden.custom_check_timeout')
ORDER BY 1;

DROP EXTENSION pg_warden;
