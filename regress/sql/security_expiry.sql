-- Expiry and least privilege (issue 13): the owner of a table registered for expiry puts
-- its own code on the table (a trigger, a rule, a domain whose CHECK calls a function),
-- code that tries ALTER ROLE ... SUPERUSER. pg_warden runs every statement on that table
-- as the table's owner: at registration (the status value's cast), in the batches, in the
-- backlog count and in the sessions_active health check. The attempt is refused each time
-- and the role stays what it was; the rows still expire, as the owner.
CREATE EXTENSION pg_warden;
CREATE ROLE regress_exp_owner LOGIN;
GRANT warden_admin TO regress_exp_owner;
CREATE ROLE regress_exp_monitor LOGIN;
GRANT warden_monitor TO regress_exp_monitor;
CREATE SCHEMA exp_app AUTHORIZATION regress_exp_owner;

SET ROLE regress_exp_owner;
-- Who ran the owner's code, and what its escalation attempt came to.
CREATE TABLE exp_app.witness (who name, what text, outcome text);
CREATE FUNCTION exp_app.try_escalate(what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE regress_exp_owner SUPERUSER';
        INSERT INTO exp_app.witness VALUES (current_user, what, 'escalated');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO exp_app.witness VALUES (current_user, what, 'refused: ' || SQLSTATE);
    END;
    RETURN true;
END $$;
CREATE FUNCTION exp_app.on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM exp_app.try_escalate('trigger');
    RETURN OLD;
END $$;
CREATE DOMAIN exp_app.state AS text CHECK (exp_app.try_escalate('domain check'));

-- A delete-mode table with a trigger, a mark-mode table with a rule and a domain column.
CREATE TABLE exp_app.sessions (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);
CREATE INDEX ON exp_app.sessions (expires_at);
CREATE TRIGGER sessions_delete BEFORE DELETE ON exp_app.sessions
    FOR EACH ROW EXECUTE FUNCTION exp_app.on_delete();
-- A deferred trigger would fire at COMMIT, as whoever commits: the batch makes it fire
-- within its statement, as the owner.
CREATE FUNCTION exp_app.on_delete_deferred() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM exp_app.try_escalate('deferred trigger');
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER sessions_deferred AFTER DELETE ON exp_app.sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION exp_app.on_delete_deferred();
CREATE TABLE exp_app.marked (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL,
                             status exp_app.state NOT NULL DEFAULT 'active');
CREATE INDEX ON exp_app.marked (expires_at);
CREATE RULE marked_update AS ON UPDATE TO exp_app.marked
    DO ALSO SELECT exp_app.try_escalate('rule');
-- A third table whose expiry column the owner later turns into a type of its own, with
-- an implicit cast to timestamptz: casts are found whatever the search_path, so every
-- comparison with the cutoff calls the owner's cast function.
CREATE TABLE exp_app.tokens (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);
CREATE TYPE exp_app.era AS ENUM ('past', 'future');
CREATE FUNCTION exp_app.era_time(e exp_app.era) RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM exp_app.try_escalate('cast');
    RETURN CASE WHEN e::text = 'past' THEN now() - interval '1 hour' ELSE now() + interval '1 hour' END;
END $$;
CREATE CAST (exp_app.era AS timestamptz) WITH FUNCTION exp_app.era_time(exp_app.era) AS IMPLICIT;
-- 10 expired sessions and 5 live ones; 6 expired marked rows and 4 live ones; 2 expired
-- tokens and 3 live ones.
INSERT INTO exp_app.tokens
SELECT g, now() + CASE WHEN g <= 2 THEN -1 ELSE 1 END * interval '1 hour' FROM generate_series(1, 5) g;
INSERT INTO exp_app.sessions
SELECT g, now() + CASE WHEN g <= 10 THEN -1 ELSE 1 END * interval '1 hour' FROM generate_series(1, 15) g;
INSERT INTO exp_app.marked (id, expires_at)
SELECT g, now() + CASE WHEN g <= 6 THEN -1 ELSE 1 END * interval '1 hour' FROM generate_series(1, 10) g;
TRUNCATE exp_app.witness;

-- Registration casts the status value to the column's type: the domain's CHECK runs, as
-- the owner (in 1.1 it ran as pg_warden's owner, a superuser, and the ALTER ROLE worked).
SELECT tbl FROM warden.register_expiry('exp_app.sessions', 'expires_at', batch_size => 4);
SELECT tbl, mode FROM warden.register_expiry('exp_app.marked', 'expires_at', 'mark', 'status', 'expired',
                                             batch_size => 4);
SELECT tbl FROM warden.register_expiry('exp_app.tokens', 'expires_at');
SELECT who, what, outcome FROM exp_app.witness;
ALTER TABLE exp_app.tokens ALTER COLUMN expires_at TYPE exp_app.era
    USING CASE WHEN expires_at < now() THEN 'past' ELSE 'future' END::exp_app.era;
TRUNCATE exp_app.witness;
RESET ROLE;

-- The expiry job, run by a superuser: every statement on the tables runs as their owner.
CALL warden.expire_rows();
SELECT who, what, outcome, count(*) FROM exp_app.witness GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_exp_owner';
-- The legitimate work is done: expired rows deleted or marked, live ones kept.
SELECT count(*) AS sessions_left, min(id) AS first_live FROM exp_app.sessions;
SELECT status, count(*) FROM exp_app.marked GROUP BY status ORDER BY status;
SELECT expires_at, count(*) FROM exp_app.tokens GROUP BY 1 ORDER BY 1;
SELECT table_name, status, rows_expired, backlog_rows, error
FROM warden.expiry_runs ORDER BY id;

-- Through the job runner too (as pg_warden's owner, which switches to each table's owner).
INSERT INTO exp_app.sessions VALUES (100, now() - interval '1 minute');
TRUNCATE exp_app.witness;
CALL warden.run_job('expire_rows');
SELECT status, error_message FROM warden.job_runs WHERE job = 'expire_rows';
SELECT who, what, outcome, count(*) FROM exp_app.witness GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_exp_owner';

-- The health check counts live rows (comparing the tokens' column with a timestamp calls
-- the owner's cast) as the owner too, called by a warden_monitor member.
TRUNCATE exp_app.witness;
SET ROLE regress_exp_monitor;
SELECT check_name, status, value, detail FROM warden.health_check() WHERE check_name = 'sessions_active';
RESET ROLE;
SELECT who, what, outcome, count(*) FROM exp_app.witness GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_exp_owner';

-- The helpers that switch to a table's owner are pg_warden's alone: warden_admin has no
-- EXECUTE on them, and a caller that is not a superuser is refused even with it.
SET ROLE regress_exp_owner;
SELECT warden._owner_execute('exp_app.sessions', 'DELETE FROM exp_app.sessions', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden._owner_count('exp_app.sessions', 'SELECT 1::bigint, NULL::timestamptz', NULL);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION warden._owner_execute(regclass, text, timestamptz) TO regress_exp_owner;
SET ROLE regress_exp_owner;
SELECT warden._owner_execute('exp_app.sessions', 'DELETE FROM exp_app.sessions', NULL);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE EXECUTE ON FUNCTION warden._owner_execute(regclass, text, timestamptz) FROM regress_exp_owner;
SELECT count(*) AS sessions_still_there FROM exp_app.sessions;
-- A table dropped under a policy: a clear error, no switch to a role that is gone.
SELECT warden._owner_execute(0, 'SELECT 1', NULL);
\echo :LAST_ERROR_SQLSTATE

DROP EXTENSION pg_warden;
SET client_min_messages = warning;
DROP SCHEMA exp_app CASCADE;
RESET client_min_messages;
DROP ROLE regress_exp_owner, regress_exp_monitor;
