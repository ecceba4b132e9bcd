# A backup folder on a disk that fills up half-way (a 24 MB tmpfs the harness mounts when
# it runs as root): physical and logical backups fail with the disk named in one line,
# leave no partial folder, no catalog entry and no replication slot, give the space
# back, and the backup already in the folder stays listed and verifiable.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $disk = $ENV{WARDEN_FULL_DISK};
plan skip_all => 'no small file system to fill (the harness mounts one when run as root)'
  unless $disk && -d $disk;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('full_disk');
$node->init(allows_streaming => 1);
$node->start;
my $connstr = $node->connstr('postgres');
my $dir = "$disk/backups";

sub used_kb
{
	my ($out) = run_command([ 'df', '-k', '--output=used', $disk ]);
	my @lines = split /\n/, $out;
	return $lines[-1] + 0;
}

# A small database backed up first: it must survive the failures below.
$node->safe_psql('postgres', 'CREATE DATABASE small');
$node->safe_psql('small', q{
	CREATE EXTENSION pg_warden;
	CREATE TABLE t (id int PRIMARY KEY);
	INSERT INTO t SELECT generate_series(1, 1000);
});
my ($ok, $out, $err);
$ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr,
		'--logical', '--database', 'small', '--json' ], '>', \$out, '2>', \$err);
ok($ok, 'a small logical backup fits') or diag($err);
my $kept = decode_json($out)->{id};
my $used_before = used_kb();

# 40 MB of data that does not compress: more than the disk holds.
$node->safe_psql('postgres', 'CREATE DATABASE big');
$node->safe_psql('big', q{
	CREATE EXTENSION pg_warden;
	CREATE TABLE blobs (id int PRIMARY KEY, payload text);
	INSERT INTO blobs SELECT g, string_agg(md5(random()::text), '') FROM generate_series(1, 10000) g,
	    generate_series(1, 130) GROUP BY g;
});

sub check_clean
{
	my ($what) = @_;
	is(scalar(() = glob("$dir/.partial-*")), 0, "$what: no partial folder left");
	my @entries = grep { !/^\./ } map { s{.*/}{}r } glob("$dir/*");
	is_deeply(\@entries, [$kept], "$what: the catalog holds only the earlier backup");
	cmp_ok(used_kb(), '<=', $used_before + 64, "$what: the space is given back");
	# The server drops a temporary slot once it sees the connection gone.
	ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_replication_slots'),
		"$what: no replication slot left");
}

$ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr,
		'--compress', 'none', '--quiet' ], '>', \$out, '2>', \$err);
ok(!$ok, 'physical backup onto a full disk fails');
like($err, qr/No space left on device/, 'physical: the reason is said');
is(scalar(split /\n/, $err), 1, 'physical: in one line');
check_clean('physical');

$ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr,
		'--logical', '--database', 'big', '--compress', 'none', '--quiet' ], '>', \$out, '2>', \$err);
ok(!$ok, 'logical backup onto a full disk fails');
like($err, qr/No space left on device/, 'logical: the reason is said') or diag($err);
is(scalar(split /\n/, $err), 1, 'logical: in one line');
check_clean('logical');
is($node->safe_psql('big', 'SELECT count(*) FROM warden.backups'), '0',
	'logical: nothing recorded in the database');

$node->command_like([ $warden, 'backup', 'list', '--dir', $dir ], qr/\Q$kept\E/,
	'the earlier backup is still listed');
$node->command_like([ $warden, 'backup', 'verify', '--dir', $dir, $kept ], qr/verified/,
	'and still verifies');

$node->stop;
done_testing();
