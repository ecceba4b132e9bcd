# A promotion creates a new timeline: the receiver, streaming from the standby that is
# promoted, follows the switch (history file included), and recovery from a base backup
# of the old primary replays across the switch to the newest timeline.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $dir = "$tmp/wal_tli_backups";
my $log = "$tmp/receiver_tli.log";

my $primary = PostgreSQL::Test::Cluster->new('wal_tli_primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->backup('for_standby');
my $standby = PostgreSQL::Test::Cluster->new('wal_tli_standby');
$standby->init_from_backup($primary, 'for_standby', has_streaming => 1);
$standby->start;

# The receiver streams from the standby (cascading), so it sees the standby's promotion.
my $pid = start_receiver($standby, $dir, $log);
$standby->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'warden_receiver' AND state = 'streaming'")
  or die 'receiver did not connect: ' . slurp($log);

$primary->backup('base', backup_options => ['-X', 'none']);
$primary->safe_psql('postgres',
	'CREATE TABLE tl (id int, tli text); INSERT INTO tl SELECT g, \'one\' FROM generate_series(1, 1000) g');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my $lsn = $standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()');
$standby->poll_query_until('postgres',
	"SELECT flush_lsn >= '$lsn' FROM pg_stat_replication WHERE application_name = 'warden_receiver'")
  or die 'receiver did not catch up on timeline 1';

$primary->stop;
$standby->promote;
$standby->safe_psql('postgres', 'INSERT INTO tl SELECT g, \'two\' FROM generate_series(1001, 1500) g');
is($standby->safe_psql('postgres', 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), '00000002',
	'promotion created timeline 2');
$standby->safe_psql('postgres', 'CHECKPOINT');

$standby->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'warden_receiver' AND state = 'streaming'")
  or die 'receiver did not follow: ' . slurp($log);
wait_receiver_flushed($standby);
like(slurp($log), qr/timeline 1 ended at .*; following timeline 2/, 'the receiver followed the switch');
ok(-f "$dir/wal/00000002.history" && -f "$dir/wal/00000002.history.sha256",
	'the new timeline\'s history file is archived with a checksum');
ok(glob("$dir/wal/00000001*.partial.zst"), 'the old timeline\'s last segment is kept as .partial');

is(stop_receiver($pid), 0, 'receiver stopped');
my ($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $dir);
ok($ok, 'verify follows the timeline history without a gap') or diag($out . $err);
like($out, qr/timeline 2/, 'verify reports the newest timeline');

my $restored = restore_node('wal_tli_restored', $primary, 'base', $dir, '--latest');
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery did not end';
is($restored->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE tli = 'one') || '/' || count(*) FILTER (WHERE tli = 'two') FROM tl}),
	'1000/500', 'recovery across the timeline switch has the rows of both timelines');
is($restored->safe_psql('postgres', 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), '00000003',
	'the restored cluster ended recovery on a timeline after 2');
$restored->stop;

$standby->stop;
done_testing();
