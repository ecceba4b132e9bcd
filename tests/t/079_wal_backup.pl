# WAL archiving with `warden backup`: `warden restore --target-time` replays a catalog
# backup to a point in time, `wal verify` checks from each kept backup's start, and
# `warden backup prune` removes the WAL no kept backup needs (dry run first), never WAL
# a kept backup needs.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $dir = "$tmp/wal_bk_backups";
my $log = "$tmp/receiver_bk.log";

my $node = PostgreSQL::Test::Cluster->new('wal_bk');
$node->init(allows_streaming => 1);
$node->start;
my $connstr = $node->connstr('postgres');

my $pid = start_receiver($node, $dir, $log);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'warden_receiver' AND state = 'streaming'")
  or die 'receiver did not connect: ' . slurp($log);

sub backup_create
{
	my ($ok, $out, $err) = warden_run('backup', 'create', '--dir', $dir, '-d', $connstr, '--quiet');
	die "backup create failed: $err" unless $ok;
	chomp $out;
	return $out;
}

$node->safe_psql('postgres', 'CREATE TABLE b (id int)');
$node->safe_psql('postgres', 'INSERT INTO b VALUES (1)');
my $id1 = backup_create();
for (1 .. 3)
{
	$node->safe_psql('postgres', 'INSERT INTO b SELECT 2 FROM generate_series(1, 10000)');
	$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
}
my $id2 = backup_create();
my $start2 = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$node->safe_psql('postgres', 'INSERT INTO b VALUES (3)');
my $between = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
sleep 0.05;
$node->safe_psql('postgres', 'INSERT INTO b VALUES (4)');
wait_receiver_flushed($node);

my ($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $dir, '--json');
ok($ok, 'wal verify passes') or diag($out . $err);
like($out, qr/"backups_checked": 2/, 'verify checks from both catalog backups');

# Point-in-time restore of the newer backup through `warden restore`.
my $restored = PostgreSQL::Test::Cluster->new('wal_bk_restored');
($ok, $out, $err) = warden_run('restore', '--dir', $dir, $id2, '--target', $restored->data_dir,
	'--target-time', $between);
ok($ok, 'warden restore --target-time') or diag($err);
like(slurp($restored->data_dir . '/postgresql.auto.conf'),
	qr/restore_command = '.*wal fetch --dir .*%f %p'/, 'restore_command uses warden wal fetch');
ok(-f $restored->data_dir . '/recovery.signal', 'recovery.signal written');
$restored->append_conf('postgresql.conf', 'port = ' . $restored->port);
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery did not end';
is($restored->safe_psql('postgres', 'SELECT string_agg(DISTINCT id::text, \',\' ORDER BY id::text) FROM b'),
	'1,2,3', 'restored to the time between the commits of 3 and 4');
$restored->stop;

# Bad target combinations are refused before anything is restored.
my $nowhere = "$tmp/wal_bk_never";
my (undef, undef, $e1, $rc1) = warden_run('restore', '--dir', $dir, $id2, '--target', $nowhere,
	'--latest', '--target-xid', '7');
is($rc1, 1, 'two recovery targets are refused');
ok(!-e $nowhere, 'and nothing was restored');

# Prune: keep only the newer backup; WAL before its start goes, the rest stays.
my @before = sort map { m{/([0-9A-F]{24})\.zst$} ? $1 : () } glob("$dir/wal/*.zst");
($ok, $out, $err) = warden_run('backup', 'prune', '--dir', $dir, '--keep-last', '1', '--dry-run');
ok($ok, 'prune dry run') or diag($err);
like($out, qr/wal\s+would delete\s+\d+ files, \Q$before[0]\E \.\. [0-9A-F]{24}: older than .*\Q$id2\E/,
	'the dry run names the WAL range and why');
is(scalar(() = glob("$dir/wal/$before[0].zst")), 1, 'the dry run removed nothing');
($ok, $out, $err) = warden_run('backup', 'prune', '--dir', $dir, '--keep-last', '1');
ok($ok, 'prune') or diag($err);
ok(!-e "$dir/wal/$before[0].zst", 'WAL older than the kept backup is gone');
my @after = sort map { m{/([0-9A-F]{24})\.zst$} ? $1 : () } glob("$dir/wal/*.zst");
ok(@after && (substr($after[0], 8) le substr($start2, 8)), 'WAL from the kept backup on stays');
($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $dir);
ok($ok, 'the kept backup can still be rolled forward without a gap') or diag($out . $err);

# A backup folder whose path holds a quote and a backslash: the server reads back the
# restore_command that was written (shell quoting inside a configuration literal).
my $odd = $restored->basedir . "/it's a \\ dir";
mkdir $odd;
($ok, $out, $err) = warden_run('wal', 'recovery-settings', '--dir', $odd, '-D', $restored->data_dir, '--latest');
ok($ok, 'recovery settings for an odd folder name') or diag($err);
my ($read_back) = run_command([ 'postgres', '-D', $restored->data_dir, '-C', 'restore_command' ]);
my $shell_quoted = "'" . ($odd =~ s/'/'\\''/gr) . "'";
like($read_back, qr/--dir \Q$shell_quoted\E /, 'the server parses it back intact')
  or diag($read_back);

is(stop_receiver($pid), 0, 'receiver stopped');
$node->stop;
done_testing();
