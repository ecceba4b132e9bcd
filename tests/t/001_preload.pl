# The extension loads through shared_preload_libraries next to pg_cron, survives a
# restart and a crash of a backend that used it, and pg_cron works beside it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'pg_warden,pg_cron', 'pg_warden and pg_cron are preloaded');

$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
is($node->safe_psql('postgres', 'SELECT warden.version()'), '1.2', 'extension installed at the default version');

# An error crossing the bridge leaves the backend usable in the same session.
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT warden._bridge_selftest('cxx'); SELECT 'alive'",
	on_error_stop => 0);
like($err, qr/thrown at depth 10/, 'C++ error reported');
like($out, qr/alive/, 'session continues after the C++ error');

# pg_cron lives in the postgres database and can schedule a job.
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my $jobid = $node->safe_psql('postgres',
	"SELECT cron.schedule('warden-noop', '* * * * *', 'SELECT 1')");
ok($jobid > 0, 'pg_cron schedules a job beside pg_warden');

$node->restart;
is($node->safe_psql('postgres', "SELECT warden.checksum('abc')"),
	'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
	'extension works after restart');

$node->stop('fast');
done_testing();
