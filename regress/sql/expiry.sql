-- Session expiry: registration, batches that delete or mark, the validity check,
-- partitioned tables and multi-column keys, run records, and every bad input.
CREATE EXTENSION pg_warden;

CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    user_id    int NOT NULL,
    expires_at timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'active'
);
CREATE INDEX ON sessions (expires_at);
-- 1000 sessions; 400 expired (ids 1..400), 600 live.
INSERT INTO sessions (user_id, expires_at)
SELECT g, now() + (g - 400.5) * interval '1 minute' FROM generate_series(1, 1000) g;

SELECT tbl, expires_column, expires_type, mode, batch_size, grace, key_columns
FROM warden.register_expiry('sessions', 'expires_at', batch_size => 150);

-- The application's check: expiry passed counts as invalid before any cleanup ran.
SELECT warden.session_valid('sessions', 1::bigint) AS expired_row,
       warden.session_valid('sessions', 999::bigint) AS live_row,
       warden.session_valid('sessions', 5000::bigint) AS missing_row;

-- 400 expired rows in batches of 150: three batches, the last one short.
CALL warden.expire_rows();
SELECT table_name, status, rows_expired, batches, backlog_rows, backlog_oldest,
       finished_at >= started_at AS finished, duration IS NOT NULL AS has_duration, error
FROM warden.expiry_runs ORDER BY id;
SELECT count(*) AS left_rows, min(id) AS first_id FROM sessions;

-- Nothing left: one empty batch.
CALL warden.expire_rows('sessions');
SELECT rows_expired, batches, backlog_rows FROM warden.expiry_runs ORDER BY id DESC LIMIT 1;

-- Mode mark with a grace period: rows expired more than 10 minutes ago are marked.
UPDATE sessions SET expires_at = now() - interval '1 hour' WHERE id <= 450;
UPDATE sessions SET expires_at = now() - interval '5 minutes' WHERE id BETWEEN 451 AND 460;
SELECT mode, status_column, status_value, grace
FROM warden.register_expiry('sessions', 'expires_at', 'mark', 'status', 'expired', 20,
                            grace => '10 minutes');
CALL warden.expire_rows('sessions');
SELECT status, count(*) FROM sessions GROUP BY status ORDER BY status;
SELECT rows_expired, batches, backlog_rows, status FROM warden.expiry_runs ORDER BY id DESC LIMIT 1;
-- Marked rows are invalid; rows inside the grace period are expired for the application.
SELECT warden.session_valid('sessions', 401::bigint) AS marked,
       warden.session_valid('sessions', 455::bigint) AS in_grace,
       warden.session_valid('sessions', 461::bigint) AS live;
-- A second run finds nothing more to mark; rows still inside the grace period are not
-- backlog yet.
CALL warden.expire_rows('sessions');
SELECT rows_expired, backlog_rows, backlog_oldest IS NOT NULL AS has_oldest
FROM warden.expiry_runs ORDER BY id DESC LIMIT 1;

SELECT tbl, mode, last_status, last_rows_expired, backlog_rows FROM warden.expiry_status;

-- A partitioned table keyed by (id, expires_at): no ctid, the key addresses rows.
CREATE TABLE part_sessions (
    id         bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (id, expires_at)
) PARTITION BY RANGE (expires_at);
CREATE TABLE part_sessions_old PARTITION OF part_sessions
    FOR VALUES FROM ('2000-01-01') TO ('2020-01-01');
CREATE TABLE part_sessions_new PARTITION OF part_sessions
    FOR VALUES FROM ('2020-01-01') TO ('2100-01-01');
CREATE INDEX ON part_sessions (expires_at);
INSERT INTO part_sessions
SELECT g, CASE WHEN g % 3 = 0 THEN timestamptz '2010-01-01' + g * interval '1 hour'
               WHEN g % 3 = 1 THEN now() - g * interval '1 minute'
               ELSE now() + interval '1 day' END
FROM generate_series(1, 300) g;
SELECT key_columns FROM warden.register_expiry('part_sessions', 'expires_at', batch_size => 64);
CALL warden.expire_rows('part_sessions');
SELECT rows_expired, batches, backlog_rows, status FROM warden.expiry_runs ORDER BY id DESC LIMIT 1;
SELECT tableoid::regclass AS partition, count(*) FROM part_sessions GROUP BY 1 ORDER BY 1;
-- session_valid needs a single-column key.
SELECT warden.session_valid('part_sessions', 1::bigint);
\echo :LAST_ERROR_SQLSTATE

-- A unique key on NOT NULL columns serves when there is no primary key; a timestamp
-- without time zone and a date column work too.
CREATE TABLE tokens (token text NOT NULL UNIQUE, valid_until timestamp, day date);
INSERT INTO tokens SELECT 't' || g, localtimestamp - (g - 5) * interval '1 hour',
                          current_date - (g - 5) FROM generate_series(1, 10) g;
SELECT key_columns, expires_type FROM warden.register_expiry('tokens', 'valid_until');
SELECT warden.session_valid('tokens', 't1'::text) AS t1, warden.session_valid('tokens', 't9'::text) AS t9;
CALL warden.expire_rows('tokens');
SELECT count(*) FROM tokens;
SELECT expires_type FROM warden.register_expiry('tokens', 'day');

-- Bad input: each is refused with its own SQLSTATE and nothing is registered.
CREATE VIEW sessions_view AS SELECT * FROM sessions;
SELECT warden.register_expiry('sessions_view', 'expires_at');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('no_such_table', 'expires_at');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'no_such_column');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'user_id');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', 'truncate');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', 'mark');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', 'mark', 'no_such_column', 'expired');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', 'delete', 'status', 'expired');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', batch_size => 2000000);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry('sessions', 'expires_at', grace => '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.register_expiry(NULL, 'expires_at');
\echo :LAST_ERROR_SQLSTATE
CREATE TYPE session_state AS ENUM ('active', 'expired');
CREATE TABLE typed_sessions (id int PRIMARY KEY, expires_at timestamptz, state session_state);
SELECT warden.register_expiry('typed_sessions', 'expires_at', 'mark', 'state', 'gone');
\echo :LAST_ERROR_SQLSTATE
SELECT mode FROM warden.register_expiry('typed_sessions', 'expires_at', 'mark', 'state', 'expired');
CREATE TABLE keyless (expires_at timestamptz, id int UNIQUE);
SELECT warden.register_expiry('keyless', 'expires_at');
\echo :LAST_ERROR_SQLSTATE
-- Identifiers are quoted, never pasted: a hostile-looking name is just a name.
CREATE TABLE "odd ""name""; DROP TABLE sessions; --" (id int PRIMARY KEY, "exp at" timestamptz);
CREATE INDEX ON "odd ""name""; DROP TABLE sessions; --" ("exp at");
INSERT INTO "odd ""name""; DROP TABLE sessions; --" VALUES (1, now() - interval '1 day'), (2, now() + interval '1 day');
SELECT tbl FROM warden.register_expiry('"odd ""name""; DROP TABLE sessions; --"', 'exp at');
CALL warden.expire_rows('"odd ""name""; DROP TABLE sessions; --"');
SELECT id FROM "odd ""name""; DROP TABLE sessions; --";
SELECT to_regclass('sessions') IS NOT NULL AS sessions_still_there;

SELECT warden.unregister_expiry('keyless');
\echo :LAST_ERROR_SQLSTATE
CALL warden.expire_rows('keyless');
\echo :LAST_ERROR_SQLSTATE
CALL warden.expire_rows(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.session_valid('keyless', 1);
\echo :LAST_ERROR_SQLSTATE
-- expire_rows commits per batch, so it refuses to run inside a transaction block.
\set VERBOSITY terse
BEGIN;
CALL warden.expire_rows();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\set VERBOSITY default
SET warden.expiry_time_budget = '0';
\echo :LAST_ERROR_SQLSTATE
RESET warden.expiry_time_budget;

-- A run left 'running' by a session that is gone is closed as failed by the next run.
INSERT INTO warden.expiry_runs (tbl, table_name, pid) VALUES ('sessions', 'sessions', 0);
CALL warden.expire_rows('sessions');
SELECT status, error FROM warden.expiry_runs WHERE pid = 0;
SELECT count(*) AS still_running FROM warden.expiry_runs WHERE status = 'running';

-- A table dropped after registration: the run records the failure, the next table goes on.
CREATE TABLE doomed (id int PRIMARY KEY, expires_at timestamptz);
SELECT mode FROM warden.register_expiry('doomed', 'expires_at');
DROP TABLE doomed;
TRUNCATE warden.expiry_runs;
CALL warden.expire_rows();
SELECT table_name ~ '^[0-9]+$' AS shown_by_oid, status, error ~ 'no longer exists' AS says_why
FROM warden.expiry_runs WHERE status = 'failed';
SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded FROM warden.expiry_runs;
SELECT count(*) AS removed FROM (SELECT warden.unregister_expiry(tbl) FROM warden.expiry_policies
                                 WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = tbl)) x;

-- Privileges: applications check sessions, only administrators register and run expiry.
CREATE ROLE regress_expiry_app IN ROLE warden_app;
CREATE ROLE regress_expiry_admin IN ROLE warden_admin;
GRANT SELECT ON sessions TO regress_expiry_app;
SET ROLE regress_expiry_app;
SELECT warden.session_valid('sessions', 999::bigint);
SELECT warden.register_expiry('sessions', 'expires_at');
\echo :LAST_ERROR_SQLSTATE
CALL warden.expire_rows();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT warden.unregister_expiry('sessions');
SET SESSION AUTHORIZATION regress_expiry_admin;
-- An administrator may only register tables whose rows they may delete.
SELECT warden.register_expiry('sessions', 'expires_at');
\echo :LAST_ERROR_SQLSTATE
RESET SESSION AUTHORIZATION;
GRANT DELETE ON sessions TO regress_expiry_admin;
INSERT INTO sessions (user_id, expires_at) VALUES (4242, now() + interval '1 day');
SET SESSION AUTHORIZATION regress_expiry_admin;
SELECT mode, registered_by FROM warden.register_expiry('sessions', 'expires_at');
CALL warden.expire_rows('sessions');
SELECT status, error FROM warden.expiry_runs ORDER BY id DESC LIMIT 1;
-- A batch asked for with a later cutoff than the policy's runs with the policy's: the
-- owner's rights never delete a live row.
SELECT warden._expire_batch(warden._expiry_run_start('sessions'), 'infinity') AS deleted;
SELECT unregister_expiry FROM warden.unregister_expiry('sessions');
RESET SESSION AUTHORIZATION;
SELECT count(*) AS live_row_kept FROM sessions WHERE user_id = 4242;
SELECT p.oid::regprocedure AS callable_by_public
FROM pg_proc p
WHERE p.pronamespace = 'warden'::regnamespace
  AND has_function_privilege('public', p.oid, 'EXECUTE')
  AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
              WHERE a.grantee = 0);
REVOKE ALL ON sessions FROM regress_expiry_app, regress_expiry_admin;
DROP ROLE regress_expiry_app, regress_expiry_admin;

DROP EXTENSION pg_warden CASCADE;
