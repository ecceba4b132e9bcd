-- Migration safety: warden.plan_migration runs a migration as the caller in a rolled-back
-- subtransaction and classifies every statement; warden.migration_policy warns or refuses.
CREATE EXTENSION pg_warden;
\set VERBOSITY default

CREATE TABLE mp_orders (id int PRIMARY KEY, customer int, note text, amount int);
INSERT INTO mp_orders SELECT g, g % 100, 'n' || g, g FROM generate_series(1, 5000) g;
ANALYZE mp_orders;
CREATE TABLE mp_customers (id int PRIMARY KEY);
INSERT INTO mp_customers SELECT g FROM generate_series(0, 99) g;
ANALYZE mp_customers;
CREATE VIEW mp_big_orders AS SELECT id, amount FROM mp_orders WHERE amount > 100;
CREATE FUNCTION mp_order_note(i int) RETURNS text LANGUAGE plpgsql
AS $$ BEGIN RETURN (SELECT note FROM mp_orders WHERE id = i); END $$;

-- One line per statement: its verdict and finding codes.
CREATE FUNCTION mp_codes(script text)
RETURNS TABLE (line int, verdict text, codes text)
LANGUAGE sql AS $$
  SELECT p.line, p.verdict,
         coalesce((SELECT string_agg(f->>'code' || ' ' || (f->>'action'), ', ')
                   FROM jsonb_array_elements(p.findings) f), '')
  FROM warden.plan_migration('100', script) p
$$;

-- Each risky pattern, and its safe counterpart (the comment ends the line before it).
CREATE TABLE mp_empty (id int);
SELECT * FROM mp_codes($s$
CREATE INDEX mp_orders_customer ON mp_orders (customer); -- risky
CREATE INDEX mp_empty_id ON mp_empty (id); -- safe: no rows
ALTER TABLE mp_orders ADD CONSTRAINT mp_amount_pos CHECK (amount > 0); -- risky
ALTER TABLE mp_orders ADD CONSTRAINT mp_amount_pos2 CHECK (amount > 0) NOT VALID; -- safe
ALTER TABLE mp_orders VALIDATE CONSTRAINT mp_amount_pos2; -- risky: under this migration's ACCESS EXCLUSIVE
ALTER TABLE mp_orders ADD CONSTRAINT mp_customer_fk FOREIGN KEY (customer) REFERENCES mp_customers; -- risky
ALTER TABLE mp_orders ADD CONSTRAINT mp_customer_fk2 FOREIGN KEY (customer) REFERENCES mp_customers NOT VALID; -- safe
ALTER TABLE mp_orders ADD CONSTRAINT mp_note_unique UNIQUE (note); -- risky
ALTER TABLE mp_orders ALTER COLUMN note SET NOT NULL; -- risky
ALTER TABLE mp_orders ADD CONSTRAINT mp_amount_nn CHECK (amount IS NOT NULL) NOT VALID; -- safe
ALTER TABLE mp_orders VALIDATE CONSTRAINT mp_amount_nn; -- risky, as above
ALTER TABLE mp_orders ALTER COLUMN amount SET NOT NULL; -- safe: the check proves it
ALTER TABLE mp_orders ADD COLUMN token float8 DEFAULT random(); -- risky
ALTER TABLE mp_orders ADD COLUMN created timestamptz DEFAULT now(); -- safe: stable
ALTER TABLE mp_orders ALTER COLUMN customer TYPE bigint; -- risky
ALTER TABLE mp_orders ALTER COLUMN note TYPE varchar(100); -- risky: a length check rewrites
ALTER TABLE mp_orders ALTER COLUMN note TYPE text; -- safe: binary coercible
ALTER TABLE mp_orders DROP COLUMN note; -- risky: mp_order_note uses it
ALTER TABLE mp_orders DROP COLUMN created; -- safe: unused
ALTER TABLE mp_orders RENAME COLUMN amount TO total; -- risky: mp_big_orders uses it
ALTER TABLE mp_orders RENAME COLUMN token TO token2; -- safe: unused
ALTER TABLE mp_orders SET UNLOGGED; -- risky: rewrites
$s$);

-- What one statement reports: its locks and how long they were held, the table's size
-- and rows, the rewrite with its reason, the message and the safe alternative.
SELECT p.line, p.statement, p.ran, p.duration_ms >= 0 AS timed,
       jsonb_path_query_array(p.locks, '$[*].mode') AS modes,
       (p.locks->0->>'held_ms')::float8 >= p.duration_ms AS held_to_the_end,
       p.tables->0->>'relation' AS relation, p.tables->0->>'rows' AS est_rows,
       (p.tables->0->>'bytes')::bigint > 0 AS has_bytes,
       p.rewrites, p.findings->0->>'message' AS message,
       p.findings->0->>'alternative' AS alternative
FROM warden.plan_migration('100', E'SELECT 1;\nALTER TABLE mp_orders ALTER COLUMN customer TYPE bigint;') p;

-- The plan left nothing behind: the column type, no index, no ledger row, no drift event
-- (the 6 events are the DDL of this test's setup).
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'mp_orders'::regclass AND attname = 'customer';
SELECT to_regclass('mp_orders_customer') AS index_absent,
       (SELECT count(*) FROM warden.migrations) AS ledger_rows,
       (SELECT count(*) FROM warden.migration_events) AS events;

-- Tables created by the migration itself are safe to index, constrain and rewrite.
SELECT * FROM mp_codes($s$
CREATE TABLE mp_fresh (id int, v int);
INSERT INTO mp_fresh SELECT g, g FROM generate_series(1, 100) g;
CREATE INDEX ON mp_fresh (v);
ALTER TABLE mp_fresh ALTER COLUMN v TYPE bigint;
$s$);

-- A backfill under the ACCESS EXCLUSIVE the same migration took; alone, an UPDATE takes
-- ROW EXCLUSIVE and blocks only the rows it changes.
SELECT * FROM mp_codes(E'ALTER TABLE mp_orders ADD COLUMN score int;\nUPDATE mp_orders SET score = amount;');
SELECT * FROM mp_codes(E'UPDATE mp_orders SET amount = amount WHERE id < 10;');

-- DROP TABLE in use by a view; RENAME of a table a function names.
SELECT p.line, p.findings->0->>'code' AS code, p.findings->0->>'message' AS message
FROM warden.plan_migration('100', E'DROP TABLE mp_orders CASCADE;') p;
SELECT p.line, p.findings->0->>'code' AS code, p.findings->0->>'message' AS message
FROM warden.plan_migration('100', E'ALTER TABLE mp_orders RENAME TO mp_orders_old;') p;

-- The policy: limits are warn or refuse; a directive lifts a refusal for one migration.
SELECT rule, threshold, action, enabled FROM warden.migration_policy ORDER BY rule;
UPDATE warden.migration_policy SET threshold = 1000 WHERE rule = 'rewrite_bytes';
UPDATE warden.migration_policy SET threshold = 100, action = 'refuse' WHERE rule = 'access_exclusive_rows';
SELECT * FROM mp_codes(E'ALTER TABLE mp_orders ALTER COLUMN customer TYPE bigint;');
SELECT * FROM mp_codes(E'-- warden:allow rewrite\nALTER TABLE mp_orders ALTER COLUMN customer TYPE bigint;');
SELECT * FROM mp_codes(E'-- warden:allow rewrite\n-- warden:allow lock\nALTER TABLE mp_orders ALTER COLUMN customer TYPE bigint;');
SELECT * FROM mp_codes(E'-- warden:allow everything\nSELECT 1;');
\echo :LAST_ERROR_SQLSTATE
-- A scan above the limit; VALIDATE CONSTRAINT in a later migration (the safe step) is not
-- held against it.
UPDATE warden.migration_policy SET threshold = 10 WHERE rule = 'validation_rows';
UPDATE warden.migration_policy SET enabled = false WHERE rule = 'access_exclusive_rows';
SELECT * FROM mp_codes(E'ALTER TABLE mp_orders ADD CONSTRAINT c CHECK (amount > 0);');
SELECT * FROM mp_codes(E'ALTER TABLE mp_orders ADD CONSTRAINT c CHECK (amount > 0) NOT VALID;');
ALTER TABLE mp_orders ADD CONSTRAINT mp_later CHECK (amount > 0) NOT VALID;
SELECT * FROM mp_codes(E'ALTER TABLE mp_orders VALIDATE CONSTRAINT mp_later;');
ALTER TABLE mp_orders DROP CONSTRAINT mp_later;
-- Bad policy values are refused by the table.
UPDATE warden.migration_policy SET action = 'block' WHERE rule = 'validation_rows';
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.migration_policy SET threshold = -1 WHERE rule = 'validation_rows';
\echo :LAST_ERROR_SQLSTATE

-- A non-transactional migration is judged by its text, without running.
SELECT p.line, p.ran, p.verdict, p.findings->0->>'code' AS code
FROM warden.plan_migration('100', E'-- warden:no-transaction\nCREATE INDEX CONCURRENTLY mp_c1 ON mp_orders (customer);\nCREATE INDEX mp_c2 ON mp_orders (customer);') p;
SELECT to_regclass('mp_c1') AS not_built;

-- A migration that fails fails its plan, with the line; nothing of it stays.
SELECT * FROM mp_codes(E'CREATE TABLE mp_tmp (a int);\nALTER TABLE mp_nowhere ADD COLUMN b int;');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('mp_tmp') AS not_created;
-- Bad arguments.
SELECT * FROM warden.plan_migration('1x', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.plan_migration('1', NULL);
\echo :LAST_ERROR_SQLSTATE

-- The script runs on the caller's search_path, as `up` runs it.
CREATE SCHEMA mp_app;
CREATE TABLE mp_app.accounts (id int);
INSERT INTO mp_app.accounts SELECT generate_series(1, 10);
ANALYZE mp_app.accounts;
SET search_path = mp_app, public;
SELECT p.line, p.tables->0->>'relation' AS relation, p.findings->0->>'code' AS code
FROM warden.plan_migration('100', 'CREATE INDEX ON accounts (id)') p;
RESET search_path;

-- An applied migration's event records the ACCESS EXCLUSIVE hold and the directives;
-- the health check names the longest holds.
SELECT warden.apply_migration('1', 'retype', E'-- warden:allow rewrite\nALTER TABLE mp_orders ALTER COLUMN customer TYPE bigint;');
SELECT event, version, detail->'allow' AS allow, detail->'lock_waits' AS waits,
       (detail->>'access_exclusive_ms')::float8 > 0 AS held
FROM warden.migration_events;
SELECT check_name, category, status, unit, detail ~ '^longest ACCESS EXCLUSIVE holds: 1 \(retype\) \d+ ms$' AS named
FROM warden._migration_lock_check();

-- Security: the plan runs as the caller. A warden_admin role that is not a superuser
-- can't use a plan to do what it can't do itself; it can plan on its own tables.
CREATE ROLE regress_mp_admin LOGIN IN ROLE warden_admin;
CREATE TABLE mp_owned (id int);
ALTER TABLE mp_owned OWNER TO regress_mp_admin;
SET ROLE regress_mp_admin;
SELECT * FROM warden.plan_migration('100', 'ALTER ROLE regress_mp_admin SUPERUSER');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM mp_codes('ALTER TABLE mp_orders ADD COLUMN x int');
\echo :LAST_ERROR_SQLSTATE
SELECT line, verdict FROM warden.plan_migration('100', 'ALTER TABLE mp_owned ADD COLUMN x int');
UPDATE warden.migration_policy SET threshold = 5 WHERE rule = 'access_exclusive_ms';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_mp_admin';
-- Not granted to anyone else.
CREATE ROLE regress_mp_nobody LOGIN;
SET ROLE regress_mp_nobody;
SELECT * FROM warden.plan_migration('100', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM warden.migration_policy;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- The rewrite event trigger does nothing outside a plan, for any role.
SET ROLE regress_mp_admin;
ALTER TABLE mp_owned ALTER COLUMN id TYPE bigint;
RESET ROLE;

DROP TABLE mp_owned;
DROP ROLE regress_mp_admin, regress_mp_nobody;
DROP SCHEMA mp_app CASCADE;
DROP VIEW mp_big_orders;
DROP FUNCTION mp_order_note(int), mp_codes(text);
DROP TABLE mp_orders, mp_customers, mp_empty;
DROP EXTENSION pg_warden CASCADE;
