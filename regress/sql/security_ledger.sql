-- Least privilege in the ledger: no role below superuser makes pg_warden run code of its
-- choosing with the owner's rights. Each attack is planted for real; the attackers'
-- rolsuper must stay false, and the legitimate use must keep working.
CREATE EXTENSION pg_warden;
SELECT current_user AS superuser \gset
CREATE ROLE regress_ledger_intruder LOGIN;
CREATE ROLE regress_ledger_deployer LOGIN IN ROLE warden_admin;
GRANT CREATE ON SCHEMA public TO regress_ledger_deployer;
CREATE VIEW attackers AS
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'regress_ledger_%' ORDER BY 1;

-- 1. Any login role: a temporary domain named jsonb whose CHECK calls the role's own
-- function shadows pg_catalog.jsonb on the role's path (pg_temp is searched first when the
-- path does not list it). Any DDL then fires the drift trigger, which writes the ledger
-- as its owner: a "$6::jsonb" parsed on the caller's path would run the CHECK as the owner.
\c - regress_ledger_intruder
CREATE FUNCTION pg_temp.escalate(pg_catalog.jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE regress_ledger_intruder SUPERUSER;
    RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.escalate(VALUE));
SELECT t.typnamespace = pg_my_temp_schema() AS jsonb_is_shadowed
FROM pg_type t WHERE t.oid = pg_typeof('{}'::jsonb);
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
-- 7. Turning check_function_bodies off (as restores do) does not silence drift for it.
SET check_function_bodies = off;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
\c - :superuser
SELECT * FROM attackers;
-- Recorded: the REVOKE, then the GRANT (a command, and the default ACL it dropped).
SELECT command, objects FROM warden.schema_drift
WHERE session_user_name = 'regress_ledger_intruder';
-- A superuser's restore session (check_function_bodies off) is still not drift.
SELECT count(*) AS drift_before FROM warden.schema_drift \gset
SET check_function_bodies = off;
CREATE TABLE restored (a int);
RESET check_function_bodies;
SELECT count(*) - :drift_before AS new_drift FROM warden.schema_drift;

-- 1. A warden_admin member with a schema ahead of pg_catalog on its path: an operator
-- "=" for text there (the ledger's statements compare text), and a temporary domain
-- named timestamptz (the ledger casts a start time).
\c - regress_ledger_deployer
CREATE FUNCTION public.escalating_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE regress_ledger_deployer SUPERUSER;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.escalating_eq);
CREATE FUNCTION pg_temp.escalate(pg_catalog.timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE regress_ledger_deployer SUPERUSER;
    RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.escalate(VALUE));
SET search_path = public, pg_catalog;
SELECT oprnamespace::regnamespace AS text_eq_from FROM pg_operator
WHERE oid = '=(text,text)'::regoperator;
-- Every writer of the ledger: apply, the non-transactional protocol, rollback, repair.
SELECT warden.apply_migration('1', 'deployed', 'CREATE TABLE public.deployed (a int);', 'DROP TABLE public.deployed;');
SELECT warden.begin_migration('2', 'no_tx', E'-- warden:no-transaction\nSELECT 1;\n', 'SELECT 2');
SELECT warden.finish_migration('2');
SELECT * FROM warden.rollback_migration();
SELECT warden.begin_migration('2', 'no_tx', E'-- warden:no-transaction\nSELECT 1;\n', 'SELECT 2');
SELECT warden.fail_migration('2', 'planted');
SELECT warden.repair_migration('2', 'applied');
SELECT * FROM warden.verify_migrations('[]');
\c - :superuser
SELECT * FROM attackers;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.escalating_eq(text, text);
SELECT version, state, applied_by FROM warden.migration_status;

-- 5. A stored down script runs as the role that applied its migration. The legitimate
-- flow: a warden_admin member rolls back what it applied (above), and a superuser rolls
-- back a member's migration, whose down script runs as that member, in a restricted
-- operation whose settings end with it.
CREATE TABLE down_runs (who name, path text);
GRANT INSERT ON down_runs TO regress_ledger_deployer;
SET ROLE regress_ledger_deployer;
SELECT warden.apply_migration('3', 'traced', 'CREATE TABLE public.traced (a int);',
  $down$DROP TABLE public.traced;
SET search_path = nowhere, pg_catalog;
SET work_mem = '77kB';
INSERT INTO public.down_runs SELECT current_user, current_setting('search_path');$down$);
RESET ROLE;
SELECT * FROM warden.rollback_migration();
SELECT * FROM down_runs;
SHOW search_path;
SHOW work_mem;
-- A superuser's down script is not run by a role without its privileges (the script would
-- run in that role's session, with its path and its objects).
SELECT warden.apply_migration('4', 'by_superuser', 'CREATE TABLE by_superuser (a int);', 'DROP TABLE by_superuser;');
SET ROLE regress_ledger_deployer;
SELECT * FROM warden.rollback_migration();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM warden.rollback_migration();
-- The attack: a warden_admin member stores a down script that would make it a superuser,
-- and a superuser rolls it back. It runs as the member and fails; nothing is rolled back.
SET ROLE regress_ledger_deployer;
SELECT warden.apply_migration('5', 'harmless', 'SELECT 1', 'ALTER ROLE regress_ledger_deployer SUPERUSER;');
RESET ROLE;
SELECT * FROM warden.rollback_migration();
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM attackers;
SELECT version, state FROM warden.migration_status WHERE version = '5';
-- The role that applied a migration is gone: refused, with a hint.
DROP EXTENSION pg_warden CASCADE;
CREATE EXTENSION pg_warden;
CREATE ROLE regress_ledger_gone IN ROLE warden_admin;
SET ROLE regress_ledger_gone;
SELECT warden.apply_migration('1', 'orphan', 'SELECT 1', 'SELECT 1');
RESET ROLE;
DROP ROLE regress_ledger_gone;
SELECT * FROM warden.rollback_migration();
\echo :LAST_ERROR_SQLSTATE

-- 8. begin_migration's session lock and state follow its transaction. Aborted: no lock,
-- no state, no row, and other migrations run.
CREATE VIEW migration_locks AS  -- this session's; the migration lock's key is "wardenLG"
SELECT count(*) AS migration_locks FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid()
  AND (classid::bigint << 32 | objid::bigint) = x'77617264656e4c47'::bigint;
DO $$
BEGIN
    PERFORM warden.begin_migration('10', 'aborted', E'-- warden:no-transaction\nSELECT 1;\n');
    RAISE EXCEPTION 'the client gave up';
END $$;
SELECT * FROM migration_locks;
SELECT count(*) AS rows_of_10 FROM warden.migrations WHERE version = '10';
SELECT warden.apply_migration('11', 'after_abort', 'SELECT 11');
-- Committed: the session lock is held. A finish that rolls back, or whose subtransaction
-- does, keeps it, and the migration stays open; the committed finish releases it.
SELECT warden.begin_migration('14', 'open', E'-- warden:no-transaction\nSELECT 1;\n');
SELECT * FROM migration_locks;
BEGIN;
SELECT warden.finish_migration('14');
ROLLBACK;
SELECT * FROM migration_locks;
BEGIN;
SAVEPOINT before_finish;
SELECT warden.fail_migration('14', 'not really');
ROLLBACK TO SAVEPOINT before_finish;
COMMIT;
SELECT * FROM migration_locks;
-- Nor can a finish be prepared for a later COMMIT PREPARED, which the lock could not follow.
BEGIN;
SELECT warden.finish_migration('14');
PREPARE TRANSACTION 'finish_14';
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM migration_locks;
SELECT version, state FROM warden.migration_status WHERE version = '14';
SELECT warden.finish_migration('14');
SELECT * FROM migration_locks;
SELECT version, state FROM warden.migration_status WHERE version::numeric >= 10;

DROP EXTENSION pg_warden CASCADE;
DROP VIEW attackers, migration_locks;
DROP TABLE restored, down_runs;
DROP OWNED BY regress_ledger_intruder, regress_ledger_deployer;
DROP ROLE regress_ledger_intruder, regress_ledger_deployer;
