# Backups in an S3 bucket on a real Ceph RADOS Gateway: physical backup create / list /
# verify / restore with point-in-time recovery from the bucket's WAL, a logical backup
# restored into a database, prune of backups and WAL, a damaged object found by verify,
# the gateway killed during an upload (nothing listed, no parts left, a retry succeeds)
# and wrong credentials (exit 1 with a clear reason before anything is uploaded).
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;
use WardenCeph;

if (my $why = ceph_missing()) { plan skip_all => $why; }

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $warden = $ENV{WARDEN_BIN};
my $url = start_ceph('t111/cluster-a');
# Small parts, so even this small cluster goes up as parallel multipart uploads.
$ENV{WARDEN_S3_PART_SIZE_MB} = 5;

my $node = PostgreSQL::Test::Cluster->new('s3_backup');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
archive_mode = on
archive_command = '"$warden" wal push --dir "$url" %p'
});
$node->start;
my $connstr = $node->connstr('postgres');
$node->safe_psql('postgres', q{
	CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 200000) g;
	CREATE TABLE pitr (id int);
});

sub run_json
{
	my ($ok, $out, $err, $rc) = warden_run(@_);
	return ($ok, ($ok && $out =~ /^\s*[\[{]/) ? decode_json($out) : undef, $err, $rc);
}

# --compress none: incompressible enough to exceed one part.
my ($ok, $b1, $err) = run_json('backup', 'create', '--dir', $url, '-d', $connstr, '--json',
	'--compress', 'none', '--label', 'first');
ok($ok, 'physical backup create to the bucket') or diag($err);
my $id1 = $b1->{id};
my $listing = s3_get_raw("?list-type=2&prefix=t111%2Fcluster-a%2F$id1%2F");
like($listing, qr{<Key>t111/cluster-a/$id1/backup.json</Key>}, 'the catalog entry is in the bucket');
like($listing, qr{<Key>t111/cluster-a/$id1/base.tar</Key><LastModified>[^<]*</LastModified><ETag>&quot;[0-9a-f]+-\d+&quot;},
	'the archive went up as a multipart upload');

$node->safe_psql('postgres', 'INSERT INTO pitr VALUES (1)');
my $between = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
sleep 0.05;
$node->safe_psql('postgres', 'INSERT INTO pitr VALUES (2)');
my $last = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->poll_query_until('postgres', "SELECT last_archived_wal >= '$last' FROM pg_stat_archiver")
  or die 'WAL was not archived';

my ($lok, $list) = run_json('backup', 'list', '--dir', $url, '--json');
ok($lok, 'backup list reads the bucket');
is(scalar @{ $list->{backups} }, 1, 'one backup listed');
is($list->{backups}[0]{label}, 'first', 'with its label');

($ok, my $v, $err) = run_json('backup', 'verify', '--dir', $url, $id1, '--json');
ok($ok && $v->{ok}, 'backup verify downloads and checks every file') or diag($err);
($lok, $list) = run_json('backup', 'list', '--dir', $url, '--json');
is($list->{backups}[0]{verify_ok}, JSON::PP::true, 'the verification is recorded in the bucket');

($ok, $v, $err) = run_json('wal', 'verify', '--dir', $url, '--json');
ok($ok, 'the WAL archive in the bucket serves the backup') or diag($err);
ok($v->{backups_checked} >= 1, 'checked from the backup\'s start');

# Physical restore with PITR from the bucket's WAL.
my $copy = PostgreSQL::Test::Cluster->new('s3_restored');
($ok, my $r, $err) = run_json('restore', '--dir', $url, $id1, '--target', $copy->data_dir,
	'--target-time', $between, '--json');
ok($ok, 'restore from the bucket with a recovery target') or diag($err);
$copy->append_conf('postgresql.conf', "port = " . $copy->port . "\narchive_mode = off\n");
$copy->start;
$copy->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'recovery did not end';
is($copy->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM pitr'), '1',
	'the restored cluster recovered to the target time from the bucket\'s WAL');
is($copy->safe_psql('postgres', 'SELECT count(*) FROM big'), '200000', 'with all the backed-up rows');
$copy->stop;

# Logical backup and restore into a database.
($ok, my $lb, $err) = run_json('backup', 'create', '--dir', $url, '-d', $connstr, '--logical',
	'--database', 'postgres', '--json');
ok($ok, 'logical backup create to the bucket') or diag($err);
$node->safe_psql('postgres', 'CREATE DATABASE copy');
($ok, $r, $err) = run_json('restore', '--dir', $url, $lb->{id}, '--database', 'copy', '-d', $connstr, '--json');
ok($ok, 'logical restore from the bucket') or diag($err);
is($node->safe_psql('copy', 'SELECT count(*) FROM big'), '200000', 'rows restored');

# The gateway killed in the middle of an upload: the command fails, nothing is listed.
{
	local $ENV{WARDEN_S3_RETRIES} = 1;
	local $ENV{WARDEN_S3_PART_SIZE_MB} = 5;
	local $ENV{WARDEN_S3_JOBS} = 1;
	local $ENV{WARDEN_S3_DEBUG} = 1;
	# 2 MB/s: the upload of the archive takes long enough to be killed in the middle.
	local $ENV{WARDEN_S3_MAX_RATE_KB} = 2048;
	my ($out, $e) = ('', '');
	my $h = IPC::Run::start([ $warden, 'backup', 'create', '--dir', $url, '-d', $connstr,
		'--compress', 'none' ], '>', \$out, '2>', \$e);
	# Wait until the upload is under way: a multipart upload exists in the bucket.
	my $seen = 0;
	my $deadline = time + 120;
	while (time < $deadline)
	{
		# The backup's, not a WAL push of the archiver's (wal/...).
		my $up = s3_get_raw('?prefix=t111%2Fcluster-a%2F&uploads=') // '';
		if ($up =~ m{<Key>t111/cluster-a/(?!wal/)}) { $seen = 1; last; }
		sleep 0.05;
	}
	ok($seen, 'a multipart upload is in progress');
	kill_gateway();
	$h->finish;
	isnt($? >> 8, 0, 'backup create fails when the gateway dies mid-upload');
	like($e, qr/failed after 2 attempts/, 'after retrying');
	start_gateway();
}
($lok, $list) = run_json('backup', 'list', '--dir', $url, '--json');
is(scalar @{ $list->{backups} }, 2, 'the interrupted backup is not listed');
is(scalar(grep { $_->{reason} =~ /incomplete upload/ } @{ $list->{unusable} }), 1,
	'its leftovers are shown as an incomplete upload');
# Every multipart upload the killed gateway left (the backup's, and a WAL push of the
# archiver's if one was cut off too) is aborted by prune; uploads started later are new.
my @stray_uploads = ((s3_get_raw('?prefix=t111%2Fcluster-a%2F&uploads=') // '') =~ m{<UploadId>([^<]+)</UploadId>}g);
ok(scalar @stray_uploads >= 1, 'the interrupted upload left a multipart upload');
# And one as a wal push killed in the middle leaves it.
my $wal_stray = s3_start_upload_raw('t111/cluster-a/wal/0000000100000000000000F0.zst');
ok(defined $wal_stray, 'a stray multipart upload of a WAL segment planted');
push @stray_uploads, $wal_stray if defined $wal_stray;
{
	local $ENV{WARDEN_S3_ABANDONED_AFTER} = 0;
	my ($pok, $p, $perr) = run_json('backup', 'prune', '--dir', $url, '--keep-last', '5', '--json');
	ok($pok, 'prune runs') or diag($perr);
	ok((grep { ($_->{reason} // '') =~ /^abandoned: incomplete upload/ } @{ $p->{decisions} }),
		'prune removes the abandoned upload');
	cmp_ok($p->{wal}{aborted_uploads} // 0, '>=', 1, 'and aborts the stray upload of WAL');
}
my $left = s3_get_raw('?prefix=t111%2Fcluster-a%2F&uploads=') // '';
is(scalar(grep { index($left, "<UploadId>$_</UploadId>") >= 0 } @stray_uploads), 0, 'no multipart upload is left');
($lok, $list) = run_json('backup', 'list', '--dir', $url, '--json');
is(scalar @{ $list->{unusable} }, 0, 'and no partial object');

($ok, my $b3, $err) = run_json('backup', 'create', '--dir', $url, '-d', $connstr, '--json');
ok($ok, 'the retry succeeds once the gateway is back') or diag($err);
($lok, $list) = run_json('backup', 'list', '--dir', $url, '--json');
is(scalar @{ $list->{backups} }, 3, 'and is listed');

# Wrong credentials: exit 1 with the reason, before the server is even asked for a backup.
{
	local $ENV{AWS_SECRET_ACCESS_KEY} = 'not-the-secret-at-all';
	my (undef, undef, $e, $rc) = warden_run('backup', 'create', '--dir', $url, '-d', $connstr);
	is($rc, 1, 'backup create with wrong credentials exits 1');
	like($e, qr/refused.*SignatureDoesNotMatch.*check the credentials/, 'with a clear reason');
	unlike($e, qr/not-the-secret/, 'that does not show the secret');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_stat_activity WHERE backend_type = \'walsender\''),
		'0', 'no backup was started on the server');
	(undef, undef, $e, $rc) = warden_run('backup', 'list', '--dir', $url);
	is($rc, 1, 'backup list with wrong credentials exits 1');
}

# A damaged object: verify finds it.
open(my $fh, '>', "$tmp/garbage") or die;
print $fh "garbage\n" x 100;
close $fh;
ok(s3_put_raw("t111/cluster-a/$b3->{id}/base.tar.gz", "$tmp/garbage"), 'an archive overwritten in the bucket');
my (undef, undef, $verr, $vrc) = warden_run('backup', 'verify', '--dir', $url, $b3->{id});
is($vrc, 1, 'verify fails');
like($verr, qr/damaged/, 'saying the backup is damaged');

# Prune: a newer verified backup; the first backup, the damaged one and the WAL only they
# needed go.
($ok, my $b4, $err) = run_json('backup', 'create', '--dir', $url, '-d', $connstr, '--json');
ok($ok, 'another backup') or diag($err);
($ok, undef, $err) = run_json('backup', 'verify', '--dir', $url, $b4->{id}, '--json');
ok($ok, 'verified') or diag($err);
my ($pok, $p, $perr) = run_json('backup', 'prune', '--dir', $url, '--keep-last', '1', '--json');
ok($pok, 'prune with --keep-last 1') or diag($perr);
my %keep = map { ($_->{id} // $_->{folder}) => $_->{keep} } @{ $p->{decisions} };
ok(!$keep{$id1}, 'the first backup is deleted');
ok(!$keep{ $b3->{id} }, 'the damaged one too');
ok($keep{ $b4->{id} } && $keep{ $lb->{id} }, 'the newest physical and the logical backup stay');
ok($p->{wal}{files} > 0, 'with the WAL only the deleted backups needed') or diag(explain($p->{wal}));
unlike(s3_get_raw("?list-type=2&prefix=t111%2Fcluster-a%2F$id1%2F") // 'x', qr/<Key>/, 'its objects are gone');
($ok, $v, $err) = run_json('wal', 'verify', '--dir', $url, '--json');
ok($ok, 'the WAL left still serves the kept backup') or diag($err);
my (undef, undef, $uerr, $urc) = warden_run('restore', '--dir', $url, $id1, '--target', "$tmp/none");
is($urc, 1, 'restoring a pruned backup exits 1');
like($uerr, qr/unknown backup ID/, 'as an unknown backup');

done_testing();
