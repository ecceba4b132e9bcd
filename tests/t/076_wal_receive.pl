# `warden wal receive`: continuous writes with the receiver running, kill -9 and restart
# leave no gap, a second receiver on the same folder refuses, an unreachable server is
# retried with backoff, a write failure stops the receiver before it acknowledges more
# than it wrote, and a base backup plus the received WAL recovers every transaction.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $warden = $ENV{WARDEN_BIN};

# Unreachable server: the receiver says so and retries with a growing delay.
my $dead = PostgreSQL::Test::Cluster->new('wal_recv_dead');
my $dead_log = "$tmp/receiver_dead.log";
my $dead_pid = start_receiver($dead, "$tmp/wal_dead", $dead_log);
for (1 .. 100) { last if slurp($dead_log) =~ /retrying in 2 s/; sleep 0.1; }
like(slurp($dead_log), qr/could not connect.*retrying in 1 s.*retrying in 2 s/s,
	'an unreachable server is retried with backoff, and the log says so');
is(stop_receiver($dead_pid), 0, 'SIGTERM stops a retrying receiver cleanly');

my $node = PostgreSQL::Test::Cluster->new('wal_recv');
$node->init(allows_streaming => 1);
$node->start;
my $dir = "$tmp/wal_recv_backups";
my $log = "$tmp/receiver.log";

my $pid = start_receiver($node, $dir, $log);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'warden_receiver' AND state = 'streaming'")
  or die 'receiver did not connect: ' . slurp($log);
is($node->safe_psql('postgres',
	"SELECT slot_type || ' ' || active FROM pg_replication_slots WHERE slot_name = 'warden_receiver'"),
	'physical true', 'the receiver created its permanent physical slot');

$node->backup('base', backup_options => ['-X', 'none']);
$node->command_ok(['pgbench', '-i', '-s', '2', '-q', 'postgres'], 'pgbench initialised');

# Writes keep going while the receiver is killed and restarted.
my ($bout, $berr) = ('', '');
my $bench = IPC::Run::start(
	['pgbench', '-n', '-c', '2', '-T', '5', '-h', $node->host, '-p', $node->port, 'postgres'],
	'>', \$bout, '2>', \$berr);
sleep 1.5;
stop_receiver($pid, 'KILL');
# A second receiver must not share the folder while one runs.
$pid = start_receiver($node, $dir, $log);
sleep 0.5;
my ($ok, $out, $err) = warden_run('wal', 'receive', '--dir', $dir, '-d', $node->connstr('postgres'));
ok(!$ok, 'a second receiver on the same folder refuses');
like($err, qr/another receiver \(pid $pid\) is already writing/, 'and names the one running');
($ok, $out, $err) = warden_run('wal', 'status', '--dir', $dir, '--json');
like($out, qr/"receiver_running": true/, 'wal status sees the running receiver');
like($out, qr/"receiver_pid": "$pid"/, 'and its pid');
$bench->finish;
like($bout, qr/number of transactions actually processed: [1-9]/, 'pgbench ran during the restart');

my $lsn = wait_receiver_flushed($node);
is(stop_receiver($pid), 0, 'receiver stops on SIGTERM with exit 0');
like(slurp($log), qr/streaming from .*streaming from .*stopped/s, 'the restarted receiver resumed');

($ok, $out, $err) = warden_run('wal', 'status', '--dir', $dir);
like($out, qr/receiver: +not running/, 'wal status after the receiver stopped');
like($out, qr/newest segment: +[0-9A-F]{24} \(\d+ s ago\)/, 'wal status shows the newest segment and its age');

($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $dir);
ok($ok, 'no gap after kill -9 and restart') or diag($out . $err);

my $expected = $node->safe_psql('postgres',
	q{SELECT count(*) || '/' || sum(delta) FROM pgbench_history});
my $restored = restore_node('wal_recv_restored', $node, 'base', $dir, '--latest');
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery did not end';
is($restored->safe_psql('postgres', q{SELECT count(*) || '/' || sum(delta) FROM pgbench_history}),
	$expected, 'base backup + received WAL has every committed transaction');
$restored->stop;

# A write failure (a file size limit stands in for a full disk): the receiver stops and
# has acknowledged no more than it wrote.
my $small = "$tmp/wal_small";
my $small_log = "$tmp/receiver_small.log";
my $small_pid = fork();
if ($small_pid == 0)
{
	open(STDOUT, '>>', $small_log) or die;
	open(STDERR, '>&', \*STDOUT) or die;
	exec('bash', '-c', 'ulimit -f 2048; exec "$0" "$@"', $warden, 'wal', 'receive', '--dir',
		$small, '--slot', 'warden_small', '-d', $node->connstr('postgres'));
}
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->command_ok(['pgbench', '-n', '-t', '2000', 'postgres'], 'WAL beyond the limit');
my $exited = 0;
for (1 .. 600)
{
	if (waitpid($small_pid, POSIX::WNOHANG()) == $small_pid) { $exited = 1; last; }
	sleep 0.1;
}
if (!$exited) { kill('KILL', $small_pid); waitpid($small_pid, 0); }
ok($exited, 'the receiver stopped by itself') or diag(slurp($small_log));
is($? >> 8, 1, 'the receiver exits 1 when it cannot write');
like(slurp($small_log), qr/stopping: could not write .*nothing beyond what is on disk was acknowledged/,
	'and says why');
my ($start) = slurp($small_log) =~ /streaming from (\S+) on timeline/;
ok(defined $start, 'the receiver had started streaming');
is($node->safe_psql('postgres',
	"SELECT restart_lsn <= '$start'::pg_lsn + 2048 * 1024 FROM pg_replication_slots WHERE slot_name = 'warden_small'"),
	't', 'the slot never advanced beyond what fits under the limit');
$node->safe_psql('postgres', "SELECT pg_drop_replication_slot('warden_small')");

$node->stop;
done_testing();
