# Out of background worker slots: the launcher says so with a hint, keeps the workers it
# has, and starts the missing one when a slot frees up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker_slots');
$node->init;
# pg_cron's scheduler, the logical replication launcher, pg_warden's launcher, one worker.
$node->append_conf('postgresql.conf',
	"warden.maintenance_naptime = 1\nmax_worker_processes = 4\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'one worker');

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'CREATE EXTENSION pg_warden');
ok($node->wait_for_log(qr/pg_warden could not start a maintenance worker for database "app": out of background worker slots/),
	'out of slots: a warning');
like(slurp_file($node->logfile), qr/HINT:  Raise max_worker_processes/, 'with a hint');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'postgres'"),
	'1', 'the existing worker keeps running');

# Freeing a slot (the postgres database leaves warden.databases) lets app's worker start.
$node->safe_psql('postgres', "ALTER SYSTEM SET warden.databases = 'app'");
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance' AND datname = 'app'"),
	'the missing worker starts once a slot is free');

$node->stop('fast');
done_testing();
