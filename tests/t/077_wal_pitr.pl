# Point-in-time recovery from the receiver's archive: a restore to a time between two
# commits has exactly the rows committed before it; with a synchronous receiver, a
# restore with --latest after kill -9 of the primary has every acknowledged transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $dir = "$tmp/wal_pitr_backups";
my $log = "$tmp/receiver_pitr.log";

my $primary = PostgreSQL::Test::Cluster->new('wal_pitr');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'warden_receiver'\n");
$primary->start;

my $pid = start_receiver($primary, $dir, $log, '--synchronous');
$primary->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'warden_receiver' AND state = 'streaming'")
  or die 'receiver is not a synchronous standby: ' . slurp($log);
pass('the receiver is the synchronous standby');

$primary->backup('base', backup_options => ['-X', 'none']);

$primary->safe_psql('postgres', 'CREATE TABLE pitr (id int, at timestamptz DEFAULT clock_timestamp())');
$primary->safe_psql('postgres', 'INSERT INTO pitr (id) VALUES (1)');
my $between = $primary->safe_psql('postgres', 'SELECT clock_timestamp()');
sleep 0.05;
$primary->safe_psql('postgres', 'INSERT INTO pitr (id) VALUES (2)');
my $lsn_after_2 = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
$primary->safe_psql('postgres', 'INSERT INTO pitr (id) VALUES (3)');
my $xid_4 = $primary->safe_psql('postgres',
	'BEGIN; INSERT INTO pitr (id) VALUES (4); SELECT txid_current(); COMMIT;');
$primary->safe_psql('postgres', 'INSERT INTO pitr (id) VALUES (5)');

# Writers commit one row per transaction and log each acknowledged id; the primary is
# killed with SIGKILL in the middle.
$primary->safe_psql('postgres', 'CREATE TABLE acked (id int PRIMARY KEY)');
my $script = "$tmp/acked.sql";
open(my $fh, '>', $script) or die;
print $fh "INSERT INTO acked VALUES ($_);\n\\echo acked $_\n" for 1 .. 200000;
close $fh;
my ($wout, $werr) = ('', '');
my $writer = IPC::Run::start(
	['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $primary->host, '-p', $primary->port,
	 '-d', 'postgres', '-f', $script],
	'>', \$wout, '2>', \$werr);
$primary->poll_query_until('postgres', 'SELECT count(*) > 300 FROM acked')
  or die 'writer did not start';
$primary->kill9;
$writer->finish;
my @acked = $wout =~ /^acked (\d+)$/mg;
ok(@acked > 300, scalar(@acked) . ' transactions acknowledged before the kill');

# The receiver keeps retrying against the dead server; stop it.
sleep 0.5;
is(stop_receiver($pid), 0, 'receiver stopped');

my ($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $dir);
ok($ok, 'archive is complete') or diag($out . $err);

# --target-time between commits 1 and 2.
my $by_time = restore_node('wal_pitr_time', $primary, 'base', $dir,
	'--target-time', $between, '--target-action', 'promote');
$by_time->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery to a time did not end';
is($by_time->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM pitr'),
	'1', 'restore to a time has exactly the rows committed before it');
$by_time->stop;

# --target-lsn just after commit 2, ending paused.
my $by_lsn = restore_node('wal_pitr_lsn', $primary, 'base', $dir,
	'--target-lsn', $lsn_after_2, '--target-action', 'pause');
$by_lsn->poll_query_until('postgres', q{SELECT pg_get_wal_replay_pause_state() = 'paused'})
  or die 'recovery to an LSN did not pause';
is($by_lsn->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM pitr'),
	'1,2', 'restore to an LSN pauses with the rows committed up to it');
$by_lsn->stop;

# --target-xid: inclusive of that transaction.
my $by_xid = restore_node('wal_pitr_xid', $primary, 'base', $dir, '--target-xid', $xid_4);
$by_xid->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery to an xid did not end';
is($by_xid->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM pitr'),
	'1,2,3,4', 'restore to a transaction ID includes it and nothing after');
$by_xid->stop;

# --latest after kill -9: every acknowledged transaction is there.
my $latest = restore_node('wal_pitr_latest', $primary, 'base', $dir, '--latest');
$latest->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery with --latest did not end';
my $max_acked = $acked[-1];
my $missing = $latest->safe_psql('postgres',
	"SELECT count(*) FROM generate_series(1, $max_acked) g WHERE NOT EXISTS (SELECT FROM acked WHERE id = g)");
is($missing, '0', "restore --latest has all $max_acked acknowledged transactions (RPO zero)");
$latest->stop;

# Bad targets are refused before anything is written.
my (undef, undef, $e1, $rc1) = warden_run('wal', 'recovery-settings', '--dir', $dir, '-D',
	$latest->data_dir, '--latest', '--target-xid', '5');
is($rc1, 1, 'two targets are refused');
like($e1, qr/exactly one of/, 'with a reason');
my (undef, undef, $e2) = warden_run('wal', 'recovery-settings', '--dir', $dir, '-D',
	$latest->data_dir, '--target-lsn', 'nowhere');
like($e2, qr/invalid LSN "nowhere"/, 'a malformed LSN is refused');

done_testing();
