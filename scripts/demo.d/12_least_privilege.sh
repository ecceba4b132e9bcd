# Step: least privilege (1.2). A login role plants a temporary domain named jsonb whose
# CHECK tries to make it superuser, then runs DDL, which the drift trigger records; under
# 1.1 the trigger's ledger write ran that CHECK as the extension owner.
bold "Least privilege: a login role's pg_temp.jsonb trap, then DDL recorded as drift"
PGOPTIONS="-c client_min_messages=warning" psql -X -q -c "DROP ROLE IF EXISTS demo_mallory" -c "CREATE ROLE demo_mallory LOGIN"
psql -X -q <<'SQL'
SET ROLE demo_mallory;
CREATE FUNCTION pg_temp.escalate(pg_catalog.jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE demo_mallory SUPERUSER;
    RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.escalate(VALUE));
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
RESET ROLE;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'demo_mallory';
SELECT detail ->> 'command' AS drift_recorded, current_user_name
FROM warden.migration_events WHERE event = 'drift' AND current_user_name = 'demo_mallory';
SQL

bold "The security model's invariants: SECURITY DEFINER routines without a pinned search_path"
psql -X -q -c "SELECT count(*) AS definer_routines,
                      count(*) FILTER (WHERE NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), false)) AS unpinned
               FROM pg_proc WHERE pronamespace = 'warden'::regnamespace AND prosecdef"

bold "Audit retention has a floor only a superuser sets (warden.audit_min_retention)"
psql -X -q -c "SHOW warden.audit_min_retention"
psql -X -q -c "SELECT warden.cleanup_audit('1 microsecond')" 2>&1 | head -2 || true
psql -X -q -c "DROP OWNED BY demo_mallory" -c "DROP ROLE demo_mallory"
