# The worker as a process: SIGHUP changes the naptime, SIGTERM ends it promptly and the
# launcher restarts it, SIGKILL (a crash) brings it back after crash recovery with the
# interrupted run marked crashed, a fast shutdown is quick even during a job, and no
# worker runs at all when maintenance is disabled.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_signals');
$node->init;
$node->append_conf('postgresql.conf', "warden.maintenance_naptime = 1\nrestart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'");
}

sub last_wake
{
	return $node->safe_psql('postgres',
		"SELECT extract(epoch FROM last_wake) FROM warden.maintenance_workers WHERE role = 'worker'");
}

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'worker running');

# SIGHUP: a long naptime stops the wake-ups, a short one brings them back.
$node->safe_psql('postgres', 'ALTER SYSTEM SET warden.maintenance_naptime = 3600');
$node->reload;
sleep 2;
my $wake = last_wake();
sleep 3;
is(last_wake(), $wake, 'after reload with naptime 3600 the worker sleeps');
$node->safe_psql('postgres', 'ALTER SYSTEM SET warden.maintenance_naptime = 1');
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT extract(epoch FROM last_wake) > $wake FROM warden.maintenance_workers WHERE role = 'worker'"),
	'after reload with naptime 1 the worker wakes again');
my $w1 = last_wake();
sleep 3;
ok(last_wake() > $w1 + 1, 'and keeps waking every second');

# Turned off by reload the workers stop (the launcher stays); on again, they return.
$node->safe_psql('postgres', 'ALTER SYSTEM SET warden.maintenance_enabled = off');
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'maintenance_enabled = off by reload stops the worker');
is($node->safe_psql('postgres', "SELECT state FROM warden.maintenance_workers WHERE role = 'worker'"),
	'disabled', 'and shows it as disabled');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET warden.maintenance_enabled');
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'maintenance_enabled back on brings it back');

# warden.databases leaves out a database: its worker stops.
$node->safe_psql('postgres', "ALTER SYSTEM SET warden.databases = 'other'");
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'a database left out of warden.databases loses its worker');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET warden.databases');
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'and gets it back when listed again');

# SIGTERM: the worker exits within seconds, the launcher starts a new one.
my $pid = worker_pid();
my $start = time();
kill 'TERM', $pid;
usleep(100_000) while kill(0, $pid) && time() - $start < 10;
my $took = time() - $start;
ok(!kill(0, $pid), "worker exited on SIGTERM ($took s)");
ok($took < 3, 'promptly');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND pid <> $pid"),
	'launcher restarted the worker');
is($node->safe_psql('postgres', "SELECT restarts FROM warden.maintenance_workers WHERE role = 'worker'"),
	'1', 'restart counted');

# The launcher, terminated, is restarted by the postmaster (after 10 s) and replaces the
# worker its predecessor started rather than adding a second one.
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_warden launcher'");
$pid = worker_pid();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden launcher' AND pid <> $launcher"),
	'launcher restarted');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND pid <> $pid"),
	'a new worker replaced the old one');
sleep 2;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'1', 'one worker, not two');

# SIGKILL during a job: crash recovery, a new launcher and worker, and the run that was
# going on is marked crashed with a reason.
$node->safe_psql('postgres', q{
	CREATE PROCEDURE public.dawdle() LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(60); END $$;
	SELECT warden.schedule_job('dawdle', 'public.dawdle', '1 hour', time_budget => '5 minutes');
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM warden.job_runs WHERE job = 'dawdle' AND status = 'running'"),
	'long job running');
$pid = worker_pid();
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND pid <> $pid"),
	'worker back after a crash');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM warden.job_runs WHERE job = 'dawdle' AND status = 'crashed'
	    AND error_message LIKE 'the worker session (pid $pid) ended while the job was running'"),
	'interrupted run marked crashed');
is($node->safe_psql('postgres', "SELECT consecutive_failures FROM warden.jobs WHERE name = 'dawdle'"),
	'1', 'the crash counts as a failure');

# A fast shutdown during a job takes seconds, not the job's minute.
$node->safe_psql('postgres', "UPDATE warden.jobs SET next_run_at = now() WHERE name = 'dawdle'");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM warden.job_runs WHERE job = 'dawdle' AND status = 'running'"),
	'long job running again');
$start = time();
$node->stop('fast');
$took = time() - $start;
ok($took < 10, "fast shutdown during a job took $took s");

# Disabled: no launcher, no worker.
$node->append_conf('postgresql.conf', "warden.maintenance_enabled = off\n");
$node->start;
sleep 2;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_warden%'"),
	'0', 'no pg_warden process when maintenance is disabled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM warden.maintenance_workers'),
	'0', 'maintenance_workers is empty');
# psql still drives the same jobs.
$node->safe_psql('postgres', "UPDATE warden.jobs SET enabled = false WHERE name = 'dawdle'");
$node->safe_psql('postgres', "UPDATE warden.jobs SET next_run_at = now() WHERE name = 'prune_job_runs'");
$node->safe_psql('postgres', 'CALL warden.run_maintenance()');
is($node->safe_psql('postgres',
	"SELECT driver || ' ' || status FROM warden.job_runs WHERE job = 'prune_job_runs' ORDER BY id DESC LIMIT 1"),
	'psql succeeded', 'CALL warden.run_maintenance() from psql runs due jobs');

$node->stop('fast');
done_testing();
