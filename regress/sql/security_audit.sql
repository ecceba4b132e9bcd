-- Least privilege in the audit trail. Each attack is planted by a member of warden_admin
-- (or an application role) and must fail: the retention floor a superuser sets
-- (warden.audit_min_retention) holds against calls and settings, every retention change
-- and every removal is a security event no warden role can delete, an excluded column is
-- never stored even when it is (or becomes) part of the primary key, and code running
-- with the owner's rights resolves nothing through the caller's search_path.
CREATE EXTENSION pg_warden;
\set SHOW_CONTEXT never
SET client_min_messages = notice;

CREATE ROLE regress_sa_admin;
GRANT warden_admin TO regress_sa_admin;
GRANT CREATE ON SCHEMA public TO regress_sa_admin;
CREATE ROLE regress_sa_app;
GRANT warden_app TO regress_sa_app;

-- The floor: a week by default, and only a superuser may change it.
SHOW warden.audit_min_retention;
SELECT context FROM pg_settings WHERE name = 'warden.audit_min_retention';

-- An audited table with history: events 400, 30, 10 and 3 days old (written straight
-- into the log by the superuser, then moved into partitions of their own).
CREATE TABLE sa_ledger (id int PRIMARY KEY, v text);
SELECT warden.enable_audit('sa_ledger');
CREATE FUNCTION sa_old_event(days int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO warden.audit_log (logged_at, op, relid, schema_name, table_name, record_key,
                                  statement_at, transaction_at, txid, session_user_name, current_user_name)
    VALUES (now() - days * interval '1 day', 'INSERT', 'sa_ledger'::regclass, 'public', 'sa_ledger',
            jsonb_build_object('days', days), now(), now(), '1', 'postgres', 'postgres')
$$;
SELECT sa_old_event(d) FROM unnest(ARRAY[400, 30, 10, 3]) d;
SELECT warden.audit_create_partitions() >= 4 AS partitions_for_old_rows;
SELECT count(*) AS events_before FROM warden.audit_log;

-- Attack: erase the trail with a tiny retention, in a call or in the settings.
SET ROLE regress_sa_admin;
SELECT warden.cleanup_audit('1 microsecond');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.cleanup_audit('6 days 23 hours');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.audit_settings SET retention = '1 microsecond';
\echo :LAST_ERROR_SQLSTATE
SELECT warden.set_audit_retention('sa_ledger', '1 hour');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.audit_tables SET retention = '1 minute';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO warden.audit_tables (relid, schema_name, table_name, retention)
VALUES ('pg_class'::regclass, 'pg_catalog', 'pg_class', '1 second');
\echo :LAST_ERROR_SQLSTATE
-- ... or by lowering the floor, switching on retention mode, or writing the log.
SET warden.audit_min_retention = '1min';
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_sa_admin SET warden.audit_min_retention = 0;
\echo :LAST_ERROR_SQLSTATE
SELECT warden._audit_retention_mode(true);
\echo :LAST_ERROR_SQLSTATE
DELETE FROM warden.audit_log;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.audit_secret;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS events_after_attacks FROM warden.audit_log;
SELECT retention FROM warden.audit_settings;
SELECT count(*) AS overrides FROM warden.audit_tables WHERE retention IS NOT NULL;

-- Legitimate use: warden_admin shortens the retention above the floor and cleans up.
-- The change, the trimmed rows and each dropped partition are recorded, with the
-- administrator's login role as actor.
SET SESSION AUTHORIZATION regress_sa_admin;
UPDATE warden.audit_settings SET retention = '20 days';
SELECT warden.set_audit_retention('sa_ledger', '9 days');
SELECT warden.cleanup_audit() AS removed;
RESET SESSION AUTHORIZATION;
SELECT record_key->>'days' AS days_kept FROM warden.audit_log WHERE record_key ? 'days' ORDER BY 1;
SELECT event_type, actor,
       regexp_replace(regexp_replace(detail, 'audit_log_p[0-9_]+', 'audit_log_pX'), '\[[^)]*\)', '[start, end)')
           AS detail
FROM warden.security_events ORDER BY id;

-- Moving an override to another table changes that table's retention: recorded too.
CREATE TABLE sa_victim (id int PRIMARY KEY);
SET SESSION AUTHORIZATION regress_sa_admin;
UPDATE warden.audit_tables SET relid = 'sa_victim'::regclass WHERE relid = 'sa_ledger'::regclass;
UPDATE warden.audit_tables SET relid = 'sa_ledger'::regclass WHERE relid = 'sa_victim'::regclass;
RESET SESSION AUTHORIZATION;
SELECT actor, detail FROM warden.security_events WHERE detail LIKE '%moved%' ORDER BY id;
DROP TABLE sa_victim;

-- Nobody but a superuser deletes, updates or empties the events: not warden_admin (no
-- privilege), and not even a role that was granted them by mistake (the guard).
SET ROLE regress_sa_admin;
DELETE FROM warden.security_events;
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.security_events SET detail = 'nothing happened';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE warden.security_events;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT DELETE, UPDATE, TRUNCATE ON warden.security_events TO regress_sa_admin;
SET ROLE regress_sa_admin;
DELETE FROM warden.security_events;
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.security_events SET detail = 'nothing happened';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE warden.security_events;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE DELETE, UPDATE, TRUNCATE ON warden.security_events FROM regress_sa_admin;
SELECT count(*) AS events_kept FROM warden.security_events;
-- A superuser can.
BEGIN;
DELETE FROM warden.security_events WHERE event_type = 'audit_rows_trimmed';
ROLLBACK;

-- A superuser lowers the floor for its session and goes below the old one.
SET warden.audit_min_retention = '1d';
SELECT warden.set_audit_retention('sa_ledger', '2 days');
SELECT warden.cleanup_audit() AS removed_by_superuser;
RESET warden.audit_min_retention;
SELECT event_type, actor, detail FROM warden.security_events WHERE actor = 'postgres' ORDER BY id;
SELECT record_key->>'days' AS days_kept FROM warden.audit_log WHERE record_key ? 'days' ORDER BY 1;

-- An excluded column in the primary key is stored as a keyed hash, never as its value:
-- when enable_audit is given one...
CREATE TABLE sa_people (email text PRIMARY KEY, name text);
SELECT warden.enable_audit('sa_people', '{email}');
INSERT INTO sa_people VALUES ('ann@example.com', 'Ann'), ('bob@example.com', 'Bob');
UPDATE sa_people SET name = 'Ann B.' WHERE email = 'ann@example.com';
UPDATE sa_people SET email = 'ann@example.org' WHERE email = 'ann@example.com';
DELETE FROM sa_people WHERE email = 'bob@example.com';
SELECT op, record_key->>'email' ~ '^hmac-sha256:[0-9a-f]{64}$' AS hashed_key, old_values, new_values,
       excluded_changed
FROM warden.audit_log WHERE table_name = 'sa_people' ORDER BY logged_at;
SELECT count(*) AS stored_emails FROM warden.audit_log
WHERE table_name = 'sa_people' AND concat(record_key, old_values, new_values) LIKE '%@example.%';
-- ... the hash follows the row (same key, same hash) and tells rows apart, and it is not
-- the plain SHA-256 of the value that anyone could compute.
SELECT count(DISTINCT record_key) AS distinct_keys,
       count(*) FILTER (WHERE record_key->>'email' = 'hmac-sha256:' || encode(sha256('ann@example.com'), 'hex'))
           AS plain_sha256
FROM warden.audit_log WHERE table_name = 'sa_people';
SELECT count(*) AS events_of_ann FROM warden.audit_log
WHERE table_name = 'sa_people' AND record_key = (SELECT record_key FROM warden.audit_log
                                             WHERE table_name = 'sa_people' AND op = 'INSERT' ORDER BY logged_at LIMIT 1);

-- ... and when an ALTER TABLE later makes an excluded column part of the key, in the same
-- session (the trigger's cached knowledge of the key is rebuilt) and in a new one.
CREATE TABLE sa_tokens (id int NOT NULL, token text NOT NULL, note text);
SELECT warden.enable_audit('sa_tokens', '{token}');
INSERT INTO sa_tokens VALUES (1, 'tok-secret-1', 'before');
ALTER TABLE sa_tokens ADD PRIMARY KEY (id, token);
INSERT INTO sa_tokens VALUES (2, 'tok-secret-2', 'composite key');
ALTER TABLE sa_tokens DROP CONSTRAINT sa_tokens_pkey, ADD PRIMARY KEY (token);
UPDATE sa_tokens SET note = 'token alone' WHERE id = 2;
\c
SET client_min_messages = notice;
DELETE FROM sa_tokens WHERE id = 1;
SELECT op, jsonb_object_keys(record_key) AS key_column,
       record_key->>jsonb_object_keys(record_key) ~ '^hmac-sha256:' AS hashed
FROM warden.audit_log WHERE table_name = 'sa_tokens' AND record_key IS NOT NULL ORDER BY logged_at, 2;
SELECT count(*) AS stored_tokens FROM warden.audit_log
WHERE table_name = 'sa_tokens' AND concat(record_key, old_values, new_values) LIKE '%tok-secret%';

-- Shadowing: a warden_admin member puts its own operators and functions ahead of
-- pg_catalog, and domains in pg_temp, then calls everything of the audit trail it may
-- call. Were any of them resolved by code running as the (superuser) owner, the planted
-- function would make regress_sa_admin a superuser; it records every call in any case.
CREATE SCHEMA regress_sa_evil AUTHORIZATION regress_sa_admin;
GRANT ALL ON sa_people TO regress_sa_app;
-- The drift recorder (the ledger's event trigger) is left out: only the audit trail's
-- code is to meet the planted objects here.
SET warden.record_drift = off;
SET SESSION AUTHORIZATION regress_sa_admin;
CREATE TABLE sa_shadowed (id int PRIMARY KEY, secret text, v text);
CREATE TABLE regress_sa_evil.calls (who name, what text);
GRANT INSERT ON regress_sa_evil.calls TO PUBLIC;
GRANT USAGE ON SCHEMA regress_sa_evil TO PUBLIC;
CREATE FUNCTION regress_sa_evil.escalate(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO regress_sa_evil.calls VALUES (current_user, what);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER ROLE regress_sa_admin SUPERUSER;
    END IF;
END $$;
CREATE FUNCTION regress_sa_evil.text_eq(a text, b text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('text ='); RETURN a = b; END $$;
CREATE OPERATOR regress_sa_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_sa_evil.text_eq);
CREATE FUNCTION regress_sa_evil.oid_eq(a oid, b oid) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('oid ='); RETURN a = b; END $$;
CREATE OPERATOR regress_sa_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = regress_sa_evil.oid_eq);
CREATE FUNCTION regress_sa_evil.interval_lt(a interval, b interval) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('interval <'); RETURN a < b; END $$;
CREATE OPERATOR regress_sa_evil.< (LEFTARG = interval, RIGHTARG = interval, FUNCTION = regress_sa_evil.interval_lt);
CREATE FUNCTION regress_sa_evil.arrow(a jsonb, b text) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('->>'); RETURN a ->> b; END $$;
CREATE OPERATOR regress_sa_evil.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = regress_sa_evil.arrow);
CREATE FUNCTION regress_sa_evil.now() RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('now()'); RETURN now(); END $$;
CREATE FUNCTION regress_sa_evil.to_jsonb(anyelement) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('to_jsonb'); RETURN to_jsonb($1); END $$;
CREATE FUNCTION regress_sa_evil.set_config(text, text, boolean) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('set_config'); RETURN set_config($1, $2, $3); END $$;
CREATE FUNCTION regress_sa_evil.yes() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN PERFORM regress_sa_evil.escalate('domain check'); RETURN true; END $$;
SET search_path = regress_sa_evil, public, pg_catalog;
SELECT warden.enable_audit('sa_shadowed', '{secret}');
SELECT warden.set_audit_retention('sa_shadowed', '40 days');
SELECT warden.disable_audit('sa_shadowed');
SELECT warden.enable_audit('sa_shadowed', '{secret}');
-- The domains stand in for types that the owner's code casts to.
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (regress_sa_evil.yes());
CREATE DOMAIN pg_temp.regclass AS pg_catalog.oid CHECK (regress_sa_evil.yes());
CREATE DOMAIN pg_temp.bytea AS pg_catalog.bytea CHECK (regress_sa_evil.yes());
BEGIN;
SELECT warden.set_actor('attacker');
INSERT INTO sa_shadowed VALUES (1, 's3cret', 'a');
COMMIT;
UPDATE warden.audit_settings SET retention = '30 days';
SELECT warden.set_audit_retention('sa_shadowed', '50 days');
SELECT warden.cleanup_audit('25 days') >= 0 AS cleaned;
SELECT warden.cleanup_audit('1 microsecond');
SELECT op, record_key, new_values, actor FROM warden.audit_history('sa_shadowed', '{"id": 1}');
RESET search_path;
RESET SESSION AUTHORIZATION;
-- The application writes an audited table with the same path: the trigger runs as the
-- writer and calls nothing by name.
SET ROLE regress_sa_app;
SET search_path = regress_sa_evil, public, pg_catalog;
BEGIN;
SELECT warden.set_actor('app-request');
INSERT INTO sa_people VALUES ('carl@example.com', 'Carl');
COMMIT;
RESET search_path;
RESET ROLE;
SELECT who, what FROM regress_sa_evil.calls;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN ('regress_sa_admin', 'regress_sa_app') ORDER BY rolname;
SELECT op, new_values, actor FROM warden.audit_log WHERE table_name = 'sa_people' AND actor IS NOT NULL;
SELECT event_type, detail FROM warden.security_events WHERE actor = 'regress_sa_admin'
  AND event_type = 'retention_changed' ORDER BY id;
DROP DOMAIN pg_temp.text, pg_temp.regclass, pg_temp.bytea;
RESET warden.record_drift;
DROP SCHEMA regress_sa_evil CASCADE;
DROP TABLE sa_ledger, sa_people, sa_tokens, sa_shadowed;
DROP OWNED BY regress_sa_app;
DROP FUNCTION sa_old_event(int);
REVOKE CREATE ON SCHEMA public FROM regress_sa_admin;
DROP EXTENSION pg_warden CASCADE;
DROP ROLE regress_sa_admin, regress_sa_app;
