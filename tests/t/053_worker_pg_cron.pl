# pg_cron as the second driver of the same jobs: it runs CALL warden.run_maintenance()
# in one database while the worker serves another, and where both drive one job, the
# job never runs twice at once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker_cron');
$node->init;
# The worker serves only "app"; in "postgres" (pg_cron's database) only pg_cron runs jobs.
$node->append_conf('postgresql.conf', "warden.maintenance_naptime = 1\nwarden.databases = 'app'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden; UPDATE warden.jobs SET next_run_at = now()');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
	CREATE EXTENSION pg_warden;
	CREATE TABLE probe (active int NOT NULL, max_seen int NOT NULL);
	INSERT INTO probe VALUES (0, 0);
	-- Counts how many runs are inside it at once; commits so other sessions see it.
	CREATE PROCEDURE public.overlap() LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE probe SET active = active + 1;
		UPDATE probe SET max_seen = greatest(max_seen, active);
		COMMIT;
		PERFORM pg_sleep(2);
		UPDATE probe SET active = active - 1;
		COMMIT;
	END $$;
	SELECT warden.schedule_job('overlap', 'public.overlap', '1 second', time_budget => '1 minute');
});
ok($node->poll_query_until('app',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'overlap' AND driver = 'worker' AND status = 'succeeded'"),
	'worker runs the job in app');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'postgres'"),
	'0', 'no worker in postgres (warden.databases)');

# pg_cron schedules at minute granularity (1.4): everything below fires at the next minute.
$node->safe_psql('postgres', q{
	SELECT cron.schedule('warden-maintenance', '* * * * *', 'CALL warden.run_maintenance()');
	SELECT cron.schedule_in_database('warden-overlap-1', '* * * * *', $$CALL warden.run_job('overlap')$$, 'app');
	SELECT cron.schedule_in_database('warden-overlap-2', '* * * * *', $$CALL warden.run_job('overlap')$$, 'app');
});

ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'prune_job_runs' AND driver = 'pg_cron' AND status = 'succeeded'"),
	'pg_cron ran CALL warden.run_maintenance()');
ok($node->poll_query_until('postgres',
	"SELECT status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
	  WHERE j.jobname = 'warden-maintenance' ORDER BY runid LIMIT 1", 'succeeded'),
	'pg_cron reports the CALL as succeeded');

ok($node->poll_query_until('app',
	"SELECT count(*) >= 2 FROM warden.job_runs WHERE job = 'overlap' AND driver = 'pg_cron' AND status <> 'running'"),
	'both pg_cron runs of the job finished');
ok($node->poll_query_until('app',
	"SELECT count(*) = 0 FROM warden.job_runs WHERE job = 'overlap' AND status = 'running' AND driver = 'pg_cron'"),
	'no pg_cron run left running');
$node->safe_psql('app', "UPDATE warden.jobs SET enabled = false WHERE name = 'overlap'");
ok($node->poll_query_until('app', "SELECT active = 0 FROM probe"), 'all runs done');

is($node->safe_psql('app', 'SELECT max_seen FROM probe'), '1', 'the job never ran twice at once');
ok($node->safe_psql('app',
	"SELECT count(*) FROM warden.job_runs WHERE job = 'overlap' AND status = 'skipped'
	    AND error_message LIKE 'already running in another session%'") >= 1,
	'a driver that found the job running skipped it');
is($node->safe_psql('app',
	"SELECT count(*) FROM warden.job_runs a JOIN warden.job_runs b
	    ON a.job = 'overlap' AND b.job = 'overlap' AND a.id < b.id
	   AND a.status = 'succeeded' AND b.status = 'succeeded'
	 WHERE tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)"),
	'0', 'no two successful runs overlap in time');
is($node->safe_psql('app',
	"SELECT string_agg(DISTINCT driver, ',' ORDER BY driver) FROM warden.job_runs WHERE job = 'overlap'"),
	'pg_cron,worker', 'both drivers took part');

$node->stop('fast');
done_testing();
