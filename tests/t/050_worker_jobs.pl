# The maintenance worker starts, runs the built-in jobs, retries a failing job with
# backoff while the others keep running, cancels a job over its time budget, notices
# CREATE/DROP EXTENSION in other databases, and gets out of the way of DROP DATABASE.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('worker_jobs');
$node->init;
$node->append_conf('postgresql.conf', "warden.maintenance_naptime = 1\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden; UPDATE warden.jobs SET next_run_at = now()');

# The worker connects and runs the built-in jobs; those whose procedure is not
# installed are skipped with a reason, prune_job_runs succeeds.
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'prune_job_runs' AND status = 'succeeded'"),
	'worker ran prune_job_runs');
is($node->safe_psql('postgres',
	"SELECT driver FROM warden.job_runs WHERE job = 'prune_job_runs' ORDER BY id LIMIT 1"),
	'worker', 'run recorded with driver worker');
$node->safe_psql('postgres',
	"INSERT INTO warden.jobs (name, procedure, schedule) VALUES ('ghost', 'public.not_there', '1 hour')");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM warden.job_runs WHERE job = 'ghost' AND status = 'skipped'
	    AND error_message LIKE 'procedure public.not_there() does not exist%'"),
	'a job whose procedure is missing is skipped with a reason');
is($node->safe_psql('postgres',
	"SELECT backend_type || '/' || application_name || '/' || datname FROM pg_stat_activity
	  WHERE backend_type = 'pg_warden maintenance'"),
	'pg_warden maintenance/pg_warden maintenance/postgres',
	'pg_stat_activity shows the worker');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_warden launcher' AND datname IS NULL"),
	'1', 'the launcher is connected to no database');
is($node->safe_psql('postgres',
	"SELECT worker_state IS NOT NULL AND worker_pid > 0 FROM warden.maintenance_status WHERE job = 'prune_job_runs'"),
	't', 'maintenance_status shows the worker');

# A failing job is retried with backoff and never stops the other jobs.
$node->safe_psql('postgres', q{
	CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp());
	CREATE PROCEDURE public.tick() LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO ticks DEFAULT VALUES; COMMIT; INSERT INTO ticks DEFAULT VALUES; END $$;
	CREATE PROCEDURE public.boom() LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'boom on purpose'; END $$;
	CREATE PROCEDURE public.dawdle() LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_sleep(30); END $$;
	SELECT warden.schedule_job('boom', 'public.boom', '1 hour', max_retries => 3,
	                           retry_backoff => '1 second');
	SELECT warden.schedule_job('tick', 'public.tick', '1 second');
	SELECT warden.schedule_job('dawdle', 'public.dawdle', '1 hour', time_budget => '1 second');
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 4 FROM warden.job_runs WHERE job = 'boom' AND status = 'failed'"),
	'failing job retried');
is($node->safe_psql('postgres',
	"SELECT error_message FROM warden.job_runs WHERE job = 'boom' ORDER BY id LIMIT 1"),
	'boom on purpose', 'the error message is recorded');
my @t = split /\n/, $node->safe_psql('postgres',
	"SELECT extract(epoch FROM started_at) FROM warden.job_runs WHERE job = 'boom' ORDER BY id LIMIT 4");
ok($t[1] - $t[0] >= 0.95 && $t[2] - $t[1] >= 1.95 && $t[3] - $t[2] >= 3.95,
	'retries back off 1 s, 2 s, 4 s') or diag("@t");
sleep 2;
is($node->safe_psql('postgres', "SELECT count(*) FROM warden.job_runs WHERE job = 'boom'"),
	'4', 'after max_retries the job waits for its next scheduled run');
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 3 FROM warden.job_runs WHERE job = 'tick' AND status = 'succeeded'
	    AND rows_affected IS NULL AND started_at > (SELECT min(started_at) FROM warden.job_runs WHERE job = 'boom')"),
	'other jobs keep running while one fails');
ok($node->poll_query_until('postgres',
	"SELECT consecutive_failures = 4 FROM warden.jobs WHERE name = 'boom'"),
	'consecutive failures counted');

# A job over its time budget is cancelled.
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'dawdle' AND status = 'cancelled'
	    AND error_message LIKE '%time budget%' AND finished_at - started_at < interval '10 seconds'"),
	'job over budget cancelled');
$node->safe_psql('postgres', "UPDATE warden.jobs SET enabled = false WHERE name IN ('boom', 'dawdle')");

# CREATE EXTENSION in another database gets a worker there; DROP EXTENSION ends it.
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'BEGIN; CREATE EXTENSION pg_warden; UPDATE warden.jobs SET next_run_at = now(); COMMIT');
ok($node->poll_query_until('app',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'prune_job_runs' AND driver = 'worker'"),
	'worker started after CREATE EXTENSION');
$node->safe_psql('app', 'DROP EXTENSION pg_warden');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'app'"),
	'worker left after DROP EXTENSION');
is($node->safe_psql('postgres',
	"SELECT state FROM warden.maintenance_workers WHERE database = 'app'"),
	'extension not installed', 'launcher knows the extension is gone');

# DROP DATABASE of a database with a worker in it neither hangs nor fails.
$node->safe_psql('app', 'CREATE EXTENSION pg_warden');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'app'"),
	'worker back in app');
# Someone who may not drop it doesn't get to bounce its worker either.
my $app_worker = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'app'");
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app', extra_params => ['-U', 'mallory']);
like($err, qr/must be owner of database app/, 'DROP DATABASE by a non-owner fails');
is($node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'app'"),
	$app_worker, 'and leaves the worker alone');

my $start = time();
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app', timeout => 30);
my $took = time() - $start;
is($rc, 0, 'DROP DATABASE succeeds with a worker connected') or diag($err);
ok($took < 5, "DROP DATABASE did not hang ($took s)");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM warden.maintenance_workers WHERE database = 'app'"),
	'launcher forgot the dropped database');

# Same with a job running in it, and WITH (FORCE).
$node->safe_psql('postgres', 'CREATE DATABASE app2');
$node->safe_psql('app2', q{
	CREATE EXTENSION pg_warden;
	CREATE PROCEDURE public.dawdle() LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); END $$;
	SELECT warden.schedule_job('dawdle', 'public.dawdle', '1 hour', time_budget => '5 minutes');
});
ok($node->poll_query_until('app2',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'dawdle' AND status = 'running'"),
	'long job running in app2');
$start = time();
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app2 WITH (FORCE)', timeout => 30);
$took = time() - $start;
is($rc, 0, 'DROP DATABASE WITH (FORCE) during a job succeeds') or diag($err);
ok($took < 5, "DROP DATABASE during a job did not hang ($took s)");

# PostgreSQL 15's DROP DATABASE waits until every backend has absorbed a
# ProcSignalBarrier; a worker busy in a job elsewhere must not hold it up.
$node->safe_psql('postgres', q{
	CREATE PROCEDURE public.long_job() LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); END $$;
	SELECT warden.schedule_job('long_job', 'public.long_job', '1 hour', time_budget => '5 minutes');
	CREATE DATABASE scratch;
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM warden.job_runs WHERE job = 'long_job' AND status = 'running'"),
	'a long job is running in postgres');
$start = time();
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE scratch', timeout => 30);
$took = time() - $start;
is($rc, 0, 'DROP DATABASE of another database during a job succeeds') or diag($err);
ok($took < 5, "the busy worker absorbed the barrier ($took s)");
$node->safe_psql('postgres', "UPDATE warden.jobs SET enabled = false WHERE name = 'long_job'");
$node->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'");
ok($node->poll_query_until('postgres',
	"SELECT status = 'cancelled' FROM warden.job_runs WHERE job = 'long_job' ORDER BY id DESC LIMIT 1"),
	'pg_cancel_backend cancels the running job and the worker records it');

# The worker in postgres kept working through all of it.
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM ticks');
ok($node->poll_query_until('postgres', "SELECT count(*) > $before FROM ticks"),
	'worker in postgres still runs jobs');

$node->stop('fast');
done_testing();
