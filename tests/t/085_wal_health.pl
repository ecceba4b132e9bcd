# The health checks of WAL archiving: the receiver's slot with and without its receiver,
# and a failing archive_command.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;

my $node = PostgreSQL::Test::Cluster->new('wal_health');
$node->init(allows_streaming => 1);
# archive_command fails on purpose: the archiver keeps retrying and reports failures.
$node->append_conf('postgresql.conf', "archive_mode = on\narchive_command = 'false'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');

sub check
{
	my $name = shift;
	return $node->safe_psql('postgres',
		"SELECT status FROM warden.health_check() WHERE check_name = '$name'");
}

is(check('wal_receiver_down'), 'ok', 'no receiver slot: nothing to watch');

my $dir = "$tmp/wal";
my $pid = start_receiver($node, $dir, "$tmp/receiver.log");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'warden_receiver'")
  or die 'receiver did not connect: ' . slurp("$tmp/receiver.log");
is(check('wal_receiver_down'), 'ok', 'receiver connected');
is(check('wal_receiver_lag'), 'ok', 'receiver keeps up');

stop_receiver($pid, 'KILL');
$node->poll_query_until('postgres',
	"SELECT NOT active FROM pg_replication_slots WHERE slot_name = 'warden_receiver'")
  or die 'slot still active';
is(check('wal_receiver_down'), 'critical', 'a forgotten receiver slot is critical');
like($node->safe_psql('postgres',
	"SELECT detail FROM warden.health_check() WHERE check_name = 'wal_receiver_down'"),
	qr/receiver not connected; its slot retains/, 'and says what the slot retains');

$node->safe_psql('postgres', 'SELECT pg_switch_wal(); CREATE TABLE t AS SELECT 1 AS a; SELECT pg_switch_wal()');
$node->poll_query_until('postgres', 'SELECT failed_count > 0 FROM pg_stat_archiver')
  or die 'archiver did not fail';
is(check('archive_failing'), 'warning', 'a failing archive_command is reported');
like($node->safe_psql('postgres', q{SELECT warden.metrics()}),
	qr/archive_failing/, 'and exported as a metric');

$node->safe_psql('postgres', 'SELECT pg_drop_replication_slot(\'warden_receiver\')');
$node->stop('immediate');
done_testing();
