-- Custom health checks: only warden_admin adds and drops them; their queries run as
-- warden_monitor (never as the extension owner), read-only, with a pinned search_path and a
-- time limit; a failing query makes its check unknown; they show in health_check(), the
-- report, metrics() like the built-in checks.
CREATE EXTENSION pg_warden;
CREATE ROLE regress_cc_admin LOGIN;
GRANT warden_admin TO regress_cc_admin;
CREATE ROLE regress_cc_watcher LOGIN;
GRANT warden_monitor TO regress_cc_watcher;
CREATE ROLE regress_cc_attacker LOGIN;
CREATE TABLE public.cc_orders (id int PRIMARY KEY, waiting boolean NOT NULL);
INSERT INTO public.cc_orders SELECT g, g <= 7 FROM generate_series(1, 20) g;
GRANT SELECT ON public.cc_orders TO warden_monitor;
-- Built-in checks off, so that the overall status below is the custom checks' doing.
UPDATE warden.health_thresholds SET enabled = false;

-- Only warden_admin adds checks: a monitor and a plain role are refused.
SET ROLE regress_cc_watcher;
SELECT warden.add_check('sneaky', 'SELECT 1', 1, 2);
RESET ROLE;
SET ROLE regress_cc_attacker;
SELECT warden.add_check('sneaky', 'SELECT 1', 1, 2);
RESET ROLE;
-- warden_admin cannot write a query into the table past add_check, nor change one.
SET ROLE regress_cc_admin;
INSERT INTO warden.custom_checks (check_name, query) VALUES ('sneaky', 'SELECT 1');

-- Thresholds in both directions.
SELECT warden.add_check('orders_waiting',
    $q$SELECT count(*), format('%s orders waiting', count(*)) FROM public.cc_orders WHERE waiting$q$,
    5, 10, unit => 'orders', description => 'orders not yet shipped');
SELECT warden.add_check('free_workers', 'SELECT 3', 5, 2, 'below', 'queue', 'workers');
SELECT warden.add_check('spare_disk', 'SELECT 40', 20, 10, 'below', 'queue');
SELECT warden.add_check('queue_ok', 'SELECT 2', 5, 10);
UPDATE warden.custom_checks SET query = 'SELECT 0' WHERE check_name = 'queue_ok';
-- Levels may be tuned, in order only.
UPDATE warden.custom_checks SET warning = 3 WHERE check_name = 'queue_ok';
\set VERBOSITY terse
UPDATE warden.custom_checks SET warning = 30 WHERE check_name = 'queue_ok';
\set VERBOSITY default

-- Failures: each leaves its check unknown with the error as the detail.
SELECT warden.add_check('divides_by_zero', 'SELECT 1 / 0', 1, 2);
SELECT warden.add_check('not_a_number', $q$SELECT 'many'$q$, 1, 2);
SELECT warden.add_check('no_row', 'SELECT 1 WHERE false', 1, 2);
SELECT warden.add_check('two_rows', 'SELECT 1 FROM generate_series(1, 2)', 1, 2);
SELECT warden.add_check('two_statements', 'SELECT 1; SELECT 2', 1, 2);
SELECT warden.add_check('writes', 'WITH d AS (DELETE FROM public.cc_orders RETURNING 1) SELECT count(*) FROM d', 1, 2);
SELECT warden.add_check('sleeps', 'SELECT 1 FROM pg_sleep(30)', 1, 2);
-- Where and as whom the query runs.
SELECT warden.add_check('runs_as', $q$SELECT 0, format('%s | %s | %s', current_user,
    current_setting('search_path'), current_setting('transaction_read_only'))$q$, 1, 2);
SELECT warden.add_check('reads_server_file', $q$SELECT length(pg_read_file('postgresql.conf'))$q$, 1, 2);

-- Bad input: a clear error each.
SELECT warden.add_check('Bad Name', 'SELECT 1', 1, 2);
SELECT warden.add_check('connections', 'SELECT 1', 1, 2);
SELECT warden.add_check('orders_waiting', 'SELECT 1', 1, 2);
SELECT warden.add_check('sideways', 'SELECT 1', 1, 2, 'sideways');
SELECT warden.add_check('out_of_order', 'SELECT 1', 10, 5);
SELECT warden.add_check('empty', '  ', 1, 2);
RESET ROLE;

-- The time limit is a superuser setting; the sleeping query is cut at 300 ms and the other
-- checks of the same call still report.
SET warden.custom_check_timeout = 300;
SELECT check_name, category, status, value, warning, critical, unit, detail
FROM warden._custom_check_evaluate() ORDER BY category, check_name;

-- The query wrote nothing.
SELECT count(*) AS orders FROM public.cc_orders;

-- The attack: a role plants a function that makes it superuser and gets a check to call
-- it. The check runs it as warden_monitor, which cannot, so the role stays plain.
CREATE SCHEMA regress_cc_attack AUTHORIZATION regress_cc_attacker;
SET ROLE regress_cc_attacker;
GRANT USAGE ON SCHEMA regress_cc_attack TO PUBLIC;
CREATE FUNCTION regress_cc_attack.escalate() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE regress_cc_attacker SUPERUSER;
    RETURN 1;
END
$$;
RESET ROLE;
SET ROLE regress_cc_admin;
SELECT warden.add_check('escalates', 'SELECT regress_cc_attack.escalate()', 1, 2);
RESET ROLE;
SELECT status, detail FROM warden.health_check() WHERE check_name = 'escalates';
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_cc_attacker';
-- Nor can a check take on another role.
SET ROLE regress_cc_admin;
SELECT warden.add_check('sets_role', $q$SELECT length(set_config('role', 'regress_cc_admin', true))$q$, 1, 2);
RESET ROLE;
SELECT status, detail FROM warden.health_check() WHERE check_name = 'sets_role';

-- A monitor sees custom checks like built-in ones, in health_check(), the report (status,
-- summary) and the metrics.
SET ROLE regress_cc_watcher;
SELECT check_name, status, value, warning, critical
FROM warden.health_check()
WHERE check_name IN ('orders_waiting', 'free_workers', 'spare_disk', 'queue_ok')
ORDER BY check_name;
SELECT r->>'status' AS overall,
       (SELECT sum(v::int) FROM jsonb_each_text(r->'summary') x(k, v)) = jsonb_array_length(r->'checks') AS summary_counts_all,
       (SELECT jsonb_agg(c->>'status' ORDER BY c->>'check') FROM jsonb_array_elements(r->'checks') c
        WHERE c->>'check' IN ('orders_waiting', 'free_workers', 'queue_ok')) AS custom_statuses
FROM warden.report_with_custom_checks(warden.health_report()) r;
-- Applied twice, the checks are not doubled.
SELECT jsonb_array_length(warden.report_with_custom_checks(r)->'checks') = jsonb_array_length(r->'checks') AS not_doubled
FROM warden.report_with_custom_checks(warden.health_report()) r;
SELECT line FROM regexp_split_to_table(warden.metrics(), E'\n') line
WHERE line ~ 'check="(orders_waiting|free_workers|divides_by_zero)"' ORDER BY line;
-- ... but cannot drop them, nor run a query through the runner itself.
SELECT warden.drop_check('orders_waiting');
SELECT * FROM warden._custom_check_run('SELECT 1');
RESET ROLE;

-- A custom check turning critical makes the whole report critical.
UPDATE public.cc_orders SET waiting = true;
SELECT status, value, detail FROM warden.health_check() WHERE check_name = 'orders_waiting';
SELECT r->>'status' AS overall FROM warden.report_with_custom_checks(warden.health_report()) r;
SELECT line FROM regexp_split_to_table(warden.metrics(), E'\n') line
WHERE line ~ '^warden_health_overall_status';

-- Dropping.
SET ROLE regress_cc_admin;
SELECT warden.drop_check('orders_waiting');
SELECT warden.drop_check('orders_waiting');
SELECT warden.drop_check('connections');
SELECT count(*) FROM warden.health_check() WHERE check_name = 'orders_waiting';
RESET ROLE;

DROP EXTENSION pg_warden CASCADE;
DROP FUNCTION regress_cc_attack.escalate();
DROP SCHEMA regress_cc_attack;
DROP TABLE public.cc_orders;
DROP ROLE regress_cc_admin, regress_cc_watcher, regress_cc_attacker;
