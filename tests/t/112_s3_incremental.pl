# Incremental and differential backups in an S3 bucket on a real Ceph RADOS Gateway: a
# full backup and two incrementals taken under pgbench writes, the parent chosen from the
# bucket's catalog with only its backup_manifest downloaded; verify and restore of the
# chain (started, row counts and pgbench's balances checked), a differential, prune
# keeping every parent a kept backup needs, a missing parent object named, bad input.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;
use WardenCeph;

if (my $why = ceph_missing()) { plan skip_all => $why; }

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $warden = $ENV{WARDEN_BIN};
my $url = start_ceph('t112/cluster');

my $node = PostgreSQL::Test::Cluster->new('s3_incremental');
$node->init(allows_streaming => 1, extra => ['--data-checksums']);
$node->start;
my $connstr = $node->connstr('postgres');
$node->command_ok([ 'pgbench', '-i', '-s', '2', '-q', $connstr ], 'pgbench tables');
$node->safe_psql('postgres',
	'CREATE TABLE settled AS SELECT g AS id, repeat(\'x\', 100) AS filler FROM generate_series(1, 20000) g');

sub create_backup
{
	my ($what, @extra) = @_;
	my ($ok, $out, $err) = warden_run('backup', 'create', '--dir', $url, '-d', $connstr, '--json', @extra);
	ok($ok, "$what: backup create to the bucket succeeds") or diag($err);
	return $ok ? decode_json($out) : {};
}

sub keys_of
{
	my ($id) = @_;
	my $l = s3_get_raw("?list-type=2&prefix=t112%2Fcluster%2F$id%2F");
	return [ $l =~ m{<Key>t112/cluster/$id/([^<]+)</Key>}g ];
}

my $full = create_backup('full');
is($full->{type}, 'full', 'the first backup is full');

# pgbench writes (and checkpoints) until the chain is taken.
my $stop = "$tmp/stop-writer";
my $writer = IPC::Run::start(
	[ 'bash', '-c',
	  qq{while [ ! -e '$stop' ]; do pgbench -n -c 2 -t 100 "$connstr" >/dev/null && psql -X -q -d "$connstr" -c CHECKPOINT || exit 1; done} ],
	'>', \my $wout, '2>', \my $werr);

$node->safe_psql('postgres',
	'CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 5000) g');
my $inc1 = create_backup('incremental 1', '--incremental');
is($inc1->{type}, 'incremental', 'incremental type recorded');
is($inc1->{parent}, $full->{id}, 'its parent is the full backup, found in the bucket');
my @k1 = @{ keys_of($inc1->{id}) };
ok((grep { $_ eq 'incremental.json' } @k1) && (grep { /^blocks\.tar/ } @k1) && (grep { $_ eq 'backup.json' } @k1),
	'the incremental\'s block map, blocks and catalog entry are in the bucket') or diag(explain(\@k1));

$node->safe_psql('postgres', 'DELETE FROM churn WHERE id > 1000');
my $history_before = $node->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
my $inc2 = create_backup('incremental 2', '--incremental', '--from', $inc1->{id});
is($inc2->{parent}, $inc1->{id}, '--from names the parent in the bucket');
open my $fh, '>', $stop or die; close $fh;
ok($writer->finish, 'pgbench ran throughout') or diag($werr);
my $history_after = $node->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
ok($history_after > $history_before, "pgbench wrote during the second incremental ($history_before -> $history_after)");

my %expect = map { $_ => $node->safe_psql('postgres', "SELECT count(*) FROM $_") }
  qw(settled churn pgbench_accounts);

my ($ok, $out, $err) = warden_run('backup', 'list', '--dir', $url);
like($out, qr/incremental of $inc1->{id}/, 'list shows the parent');
($ok, $out, $err) = warden_run('backup', 'verify', '--dir', $url, $inc2->{id});
ok($ok, 'verify of the chain from the bucket') or diag($err);
like($out, qr/every block of its chain/, 'checks every link');

my $restored = PostgreSQL::Test::Cluster->new('s3_chain_restored');
($ok, $out, $err) = warden_run('restore', '--dir', $url, $inc2->{id}, '--target', $restored->data_dir);
ok($ok, 'restore of the chain from the bucket') or diag($err);
$restored->append_conf('postgresql.conf', 'port = ' . $restored->port);
$restored->start;
for my $t (sort keys %expect)
{
	is($restored->safe_psql('postgres', "SELECT count(*) FROM $t"), $expect{$t}, "$t: row count as on the primary");
}
my $history = $restored->safe_psql('postgres', 'SELECT count(*) FROM pgbench_history');
ok($history >= $history_before && $history <= $history_after,
	"pgbench_history as at the end of the backup ($history rows)");
is($restored->safe_psql('postgres', q{
	SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history)}),
	't', 'pgbench balances add up to its history');
$restored->stop;

my $diff = create_backup('differential', '--differential');
is($diff->{parent}, $full->{id}, 'a differential backup adds to the full backup in the bucket');

# Prune keeps every parent a kept backup needs.
($ok, $out, $err) = warden_run('backup', 'prune', '--dir', $url, '--keep-last', '1', '--dry-run');
ok($ok, 'prune --dry-run') or diag($err);
like($out, qr/$full->{id}\s+keep\s+needed by kept backup $diff->{id}/,
	'dry run: the full backup is kept for the differential');
like($out, qr/$inc1->{id}\s+keep\s+needed by kept backup $inc2->{id}/,
	'dry run: the kept incremental keeps its parent');
($ok, $out, $err) = warden_run('backup', 'verify', '--dir', $url, $diff->{id});
ok($ok, 'the differential verified (now the newest verified backup)') or diag($err);
($ok, $out, $err) = warden_run('backup', 'prune', '--dir', $url, '--keep-last', '1', '--json');
ok($ok, 'prune') or diag($err);
my %keep = map { ($_->{id} // '') => $_->{keep} } @{ decode_json($out)->{decisions} };
ok($keep{ $full->{id} } && $keep{ $diff->{id} }, 'the differential and its full backup stay');
ok(!$keep{ $inc1->{id} } && !$keep{ $inc2->{id} }, 'the incrementals nothing needs are deleted');
is(scalar @{ keys_of($inc1->{id}) }, 0, 'their objects are gone');
is(scalar @{ keys_of($full->{id}) } > 1, 1, 'the parent\'s objects are still there');

# A new incremental on the differential; then the parent's backup_manifest missing: an
# incremental against it is refused, naming the object.
my $inc3 = create_backup('incremental 3', '--incremental');
is($inc3->{parent}, $diff->{id}, 'the newest backup is the parent');
ok(s3_delete_raw("t112/cluster/$inc3->{id}/backup_manifest"), 'a backup_manifest deleted in the bucket');
(undef, undef, $err, my $rc) = warden_run('backup', 'create', '--dir', $url, '-d', $connstr, '--incremental');
is($rc, 1, 'an incremental against it exits 1');
like($err, qr/backup $inc3->{id} has no backup_manifest in \Q$url\E/, 'naming the missing object');
is(scalar @{ decode_json((warden_run('backup', 'list', '--dir', $url, '--json'))[1])->{backups} },
	3, 'nothing new is listed');

# A parent missing from the bucket: restore and a differential name it.
ok(s3_delete_raw("t112/cluster/$full->{id}/backup.json"), 'the full backup\'s catalog entry deleted in the bucket');
(undef, undef, $err, $rc) = warden_run('restore', '--dir', $url, $inc3->{id}, '--target', "$tmp/bad");
is($rc, 1, 'restore of a chain with a missing parent exits 1');
like($err, qr/needs its parent $full->{id}, which is not in the catalog/, 'naming the missing parent');
ok(!-e "$tmp/bad", 'and leaves nothing behind');
(undef, undef, $err, $rc) = warden_run('backup', 'create', '--dir', $url, '-d', $connstr, '--incremental',
	'--from', $diff->{id});
is($rc, 1, 'an incremental on a chain with a hole exits 1');
like($err, qr/needs its parent $full->{id}/, 'naming the missing parent') or diag($err);
(undef, undef, $err, $rc) = warden_run('backup', 'create', '--dir', $url, '-d', $connstr, '--differential');
is($rc, 1, 'a differential without a full backup in the bucket exits 1');
like($err, qr/no full physical backup to take a differential backup against/, 'with the reason');

# Bad input.
(undef, undef, $err, $rc) =
  warden_run('backup', 'create', '--dir', $url, '-d', $connstr, '--incremental', '--from', '20200101T000000Z');
is($rc, 1, '--from an unknown backup exits 1');
like($err, qr/--from 20200101T000000Z: no such backup in \Q$url\E$/m, 'naming the bucket, not a scratch folder');

done_testing();
