# warden backup create --incremental / --differential: a chain of three incremental
# backups taken under pgbench writes on a cluster with data checksums, with a table
# created, truncated and dropped and another shrunk by VACUUM between them, and an
# unlogged table; restored, started and checked (pg_amcheck --heapallindexed,
# pg_checksums --check, row counts, pgbench's balance invariant). Verify of the chain,
# damaged blocks, prune keeping parents, bad input.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1, extra => ['--data-checksums']);
$node->start;
my $connstr = $node->connstr('postgres');
my $dir = $node->basedir . '/backups';

$node->command_ok([ 'pgbench', '-i', '-s', '2', '-q', $connstr ], 'pgbench tables');
$node->safe_psql('postgres', q{
	CREATE TABLE settled AS SELECT g AS id, repeat('x', 100) AS filler FROM generate_series(1, 20000) g;
	CREATE TABLE shrinking AS SELECT g AS id, repeat('y', 200) AS filler FROM generate_series(1, 30000) g;
	CREATE UNLOGGED TABLE scratch AS SELECT g AS id FROM generate_series(1, 1000) g;
});

sub run_warden
{
	my (@args) = @_;
	my ($out, $err);
	my $ok = IPC::Run::run([ $warden, @args ], '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

sub create_backup
{
	my ($what, @extra) = @_;
	my ($ok, $out, $err) = run_warden('backup', 'create', '--dir', $dir, '-d', $connstr, '--json', @extra);
	ok($ok, "$what: backup create succeeds") or diag($err);
	return decode_json($out);
}

my $full = create_backup('full');
is($full->{type}, 'full', 'the first backup is full');

# pgbench writes (and checkpoints) until the chain is taken.
my $stop = $node->basedir . '/stop-writer';
my $writer = IPC::Run::start(
	[ 'bash', '-c',
	  qq{while [ ! -e '$stop' ]; do pgbench -n -c 2 -t 100 "$connstr" >/dev/null && psql -X -q -d "$connstr" -c CHECKPOINT || exit 1; done} ],
	'>', \my $wout, '2>', \my $werr);

# Link 1: a new table, more rows in the unlogged one.
$node->safe_psql('postgres', q{
	CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 5000) g;
	CREATE INDEX churn_h ON churn (h);
	INSERT INTO scratch SELECT g FROM generate_series(1001, 2000) g;
});
my $inc1 = create_backup('incremental 1', '--incremental');
is($inc1->{type}, 'incremental', 'incremental type recorded');
is($inc1->{parent}, $full->{id}, 'its parent is the full backup');
{
	# Blocks stored against blocks the patched files have (the WAL the backup carries
	# depends on the writer's pace, so sizes on disk are not compared).
	my $map1 = decode_json(slurp_file("$dir/$inc1->{id}/incremental.json"));
	my ($stored, $total) = (0, 0);
	for my $f (@{ $map1->{files} })
	{
		$stored += scalar @{ $f->{blocks} };
		$total += int(($f->{size} + 8191) / 8192);
	}
	ok($total > 0 && $stored < $total / 2, "the incremental stores few of the blocks ($stored of $total)");
}

# Link 2: the new table truncated and refilled (a new file), the other shrunk by VACUUM.
my $churn_node = $node->safe_psql('postgres', "SELECT pg_relation_filepath('churn')");
$node->safe_psql('postgres', q{
	TRUNCATE churn;
	INSERT INTO churn SELECT g, md5((g * 7)::text) FROM generate_series(1, 700) g;
	DELETE FROM shrinking WHERE id > 10000;
});
# VACUUM cuts the empty tail only when no snapshot (a background job's, on a loaded
# machine) still needs the deleted rows: vacuum until the file has shrunk.
my $shrunk_now = 0;
for my $try (1 .. 300)
{
	$node->safe_psql('postgres', 'VACUUM shrinking');
	$shrunk_now = $node->safe_psql('postgres',
		"SELECT pg_relation_size('shrinking') < 30000 * 200 / 2") eq 't';
	last if $shrunk_now;
	Time::HiRes::usleep(100_000);
}
ok($shrunk_now, 'VACUUM shrank the table before the second incremental');
my $inc2 = create_backup('incremental 2', '--incremental', '--compress', 'none');
is($inc2->{parent}, $inc1->{id}, 'the second incremental adds to the first');
my $map2 = decode_json(slurp_file("$dir/$inc2->{id}/incremental.json"));
my ($shrunk) = grep { $_->{path} eq $node->safe_psql('postgres', "SELECT pg_relation_filepath('shrinking')") }
	@{ $map2->{files} };
ok($shrunk && $shrunk->{size} < 30000 * 200 / 2, 'the shrunk table is patched block-wise with its new size');

# Link 3: the table dropped.
$node->safe_psql('postgres', 'DROP TABLE churn');
my $inc3 = create_backup('incremental 3', '--incremental');
is($inc3->{parent}, $inc2->{id}, 'the third incremental adds to the second');
open my $fh, '>', $stop; close $fh;
ok($writer->finish, 'pgbench ran throughout') or diag($werr);

my $map3 = decode_json(slurp_file("$dir/$inc3->{id}/incremental.json"));
is($map3->{parent}, $inc2->{id}, 'incremental.json names its parent');
my @stored = map { @{ $_->{blocks} } } @{ $map3->{files} };
ok(@stored > 0 && length($stored[0][1]) == 64, 'every stored block has a SHA-256');
like(slurp_file("$dir/$inc3->{id}/backup_manifest"), qr/pg_xact/, 'non-relation files are in the manifest');

$node->command_like([ $warden, 'backup', 'list', '--dir', $dir ], qr/incremental of $inc2->{id}/,
	'list shows the parent');
$node->command_like([ $warden, 'backup', 'verify', '--dir', $dir, $inc3->{id} ],
	qr/every block of its chain/, 'verify checks the whole chain');

# The restored chain: started, checked, counted.
my $restored = PostgreSQL::Test::Cluster->new('restored');
$node->command_ok([ $warden, 'restore', '--dir', $dir, $inc3->{id}, '--target', $restored->data_dir ],
	'restore of the chain succeeds');
ok(!-e $restored->data_dir . "/$churn_node", 'the file of the dropped table is not restored');
$restored->append_conf('postgresql.conf', 'port = ' . $restored->port);
$restored->start;
is($restored->safe_psql('postgres', 'SELECT count(*) FROM settled'), '20000', 'untouched table complete');
is($restored->safe_psql('postgres', 'SELECT count(*), max(id) FROM shrinking'), '10000|10000',
	'shrunk table as it was');
is($restored->safe_psql('postgres', "SELECT to_regclass('churn') IS NULL"), 't', 'dropped table is gone');
is($restored->safe_psql('postgres', 'SELECT count(*) FROM scratch'), '0',
	'unlogged table restored empty (its init fork)');
is($restored->safe_psql('postgres', 'SELECT count(*) FROM pgbench_accounts'), '200000', 'pgbench accounts complete');
is($restored->safe_psql('postgres', q{
	SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
	   AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)}),
	't', 'pgbench balances add up to its history');
$restored->command_ok([ 'pg_amcheck', '--all', '--heapallindexed', '--install-missing', '-p', $restored->port ],
	'restored chain passes pg_amcheck --heapallindexed');
$restored->stop;
$restored->command_ok([ 'pg_checksums', '--check', '-D', $restored->data_dir ], 'pg_checksums --check passes');

# A differential backup goes back to the full one.
my $diff = create_backup('differential', '--differential');
is($diff->{parent}, $full->{id}, 'a differential backup adds to the full backup');
is($diff->{type}, 'differential', 'differential type recorded');
my $restored2 = PostgreSQL::Test::Cluster->new('restored2');
$node->command_ok([ $warden, 'restore', '--dir', $dir, $diff->{id}, '--target', $restored2->data_dir ],
	'restore of full + differential');
$restored2->append_conf('postgresql.conf', 'port = ' . $restored2->port);
$restored2->start;
is($restored2->safe_psql('postgres', 'SELECT count(*) FROM shrinking'), '10000', 'differential restore complete');
$restored2->stop;

# Prune keeps the parents kept backups need, and its dry run says so.
$node->command_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '1', '--dry-run' ],
	qr/$full->{id}\s+keep\s+needed by kept backup $diff->{id}/, 'dry run: the full backup is kept for the differential');
$node->command_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '1', '--dry-run' ],
	qr/$inc1->{id}\s+keep\s+needed by kept backup $inc3->{id}/,
	'dry run: the newest verified backup keeps its whole chain');

# A flipped byte in a stored block (of the uncompressed link) is found by verify and
# stops a restore.
my $blocks = "$dir/$inc2->{id}/blocks.tar";
my $copy = $node->basedir . '/blocks.copy';
system('cp', $blocks, $copy) == 0 or die;
my $raw = slurp_file($blocks);
my $pos = 512 + 100;    # inside the first block's data, after its tar header
substr($raw, $pos, 1) = chr(ord(substr($raw, $pos, 1)) ^ 0xff);
open my $rf, '>', $blocks or die; binmode $rf; print $rf $raw; close $rf;
my ($ok, $out, $err) = run_warden('backup', 'verify', '--dir', $dir, $inc3->{id});
ok(!$ok, 'verify of a chain with a damaged link fails');
like($err, qr/backup $inc2->{id}: \S+ block \d+: checksum mismatch/, 'the message names the link and the block');
($ok, $out, $err) = run_warden('restore', '--dir', $dir, $inc3->{id}, '--target', $node->basedir . '/bad');
ok(!$ok && !-e $node->basedir . '/bad', 'restore of a damaged chain fails and leaves nothing behind') or diag($err);
system('cp', $copy, $blocks) == 0 or die;

# A missing parent: restore refuses with the reason.
rename("$dir/$inc1->{id}", $node->basedir . "/hidden") or die;
($ok, $out, $err) = run_warden('restore', '--dir', $dir, $inc3->{id}, '--target', $node->basedir . '/bad2');
ok(!$ok, 'restore without a parent fails');
like($err, qr/needs its parent $inc1->{id}, which is not in the catalog/, 'and says which parent is missing');
rename($node->basedir . "/hidden", "$dir/$inc1->{id}") or die;

# Bad input.
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--incremental', '--differential' ],
	qr/exclude each other/, '--incremental with --differential refused');
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--from', $full->{id} ],
	qr/--from needs --incremental/, '--from alone refused');
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--incremental', '--from', '20200101T000000Z' ],
	qr/no such backup/, '--from an unknown backup refused');
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $node->basedir . '/empty', '-d', $connstr, '--incremental' ],
	qr/no physical backup to take an incremental backup against|does not exist/, 'no parent: refused');
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--logical', '--database', 'postgres', '--incremental' ],
	qr/physical only/, 'logical incremental refused');

done_testing();
