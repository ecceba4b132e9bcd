# Step: maintenance jobs, run by the background worker or by pg_cron through one procedure.
bold "Maintenance jobs (warden.jobs): the worker and pg_cron run the same ones"
psql -X -q -c "SELECT name, procedure, schedule, time_budget, max_retries FROM warden.jobs ORDER BY id"

bold "The launcher and the per-database maintenance workers"
psql -X -q -c "SELECT role, database, state FROM warden.maintenance_workers ORDER BY role, database"

bold "CALL warden.run_maintenance(): what the worker does each naptime, and what pg_cron schedules"
psql -X -q -c "UPDATE warden.jobs SET next_run_at = now() WHERE builtin" \
     -c "CALL warden.run_maintenance()" \
     -c "SELECT job, status, driver, coalesce(rows_affected::text, '') AS rows,
                coalesce(error_message, '') AS note
         FROM warden.job_runs ORDER BY id DESC LIMIT 5"

bold "A failing job is recorded, the next jobs still run, and it is retried with backoff"
psql -X -q -c "CREATE PROCEDURE public.demo_flaky() LANGUAGE plpgsql AS \$\$
               BEGIN RAISE EXCEPTION 'upstream service unavailable'; END \$\$" \
     -c "SELECT (warden.schedule_job('demo_flaky', 'public.demo_flaky', '1 hour',
                                     retry_backoff => '30 seconds')).name AS scheduled"
psql -X -q -c "CALL warden.run_job('demo_flaky')" 2>&1
psql -X -q -c "SELECT job, last_status, consecutive_failures, last_error,
                      date_trunc('second', next_run_at - now()) AS retry_in
               FROM warden.maintenance_status WHERE job = 'demo_flaky'"
psql -X -q -c "SELECT warden.unschedule_job('demo_flaky')" -c "DROP PROCEDURE public.demo_flaky()" >/dev/null

bold "With pg_cron instead of (or beside) the worker, in the database named by cron.database_name"
cat <<'SQL'
SELECT cron.schedule('warden-maintenance', '* * * * *', 'CALL warden.run_maintenance()');
-- another database: SELECT cron.schedule_in_database('warden-app', '* * * * *',
--                        'CALL warden.run_maintenance()', 'app');
SQL
