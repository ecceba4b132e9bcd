# Nothing runs on a standby: no launcher, no worker, and CALL warden.run_maintenance()
# only says so. After promotion the worker starts and runs the jobs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('worker_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "warden.maintenance_naptime = 1\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION pg_warden; UPDATE warden.jobs SET next_run_at = now()');
ok($primary->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'prune_job_runs' AND status = 'succeeded'"),
	'primary runs jobs');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('worker_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby in recovery');
sleep 3;
is($standby->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_warden%'"),
	'0', 'no launcher and no worker on the standby');
my ($rc, $out, $err) = $standby->psql('postgres', 'CALL warden.run_maintenance()');
is($rc, 0, 'run_maintenance on a standby is not an error');
like($err, qr/server is in recovery; maintenance jobs run only on a primary/, 'it says why nothing ran');
($rc, $out, $err) = $standby->psql('postgres', "CALL warden.run_job('prune_job_runs')");
like($err, qr/maintenance jobs do not run while the server is in recovery/, 'run_job refuses on a standby');

# Promotion: the launcher starts, the worker runs the jobs on the new primary.
$primary->stop('fast');
my $before = $standby->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM warden.job_runs');
$standby->promote;
ok($standby->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'worker started after promotion');
$standby->safe_psql('postgres', "UPDATE warden.jobs SET next_run_at = now() WHERE name = 'prune_job_runs'");
ok($standby->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE id > $before AND job = 'prune_job_runs'
	    AND status = 'succeeded' AND driver = 'worker'"),
	'jobs run after promotion');

$standby->stop('fast');
done_testing();
