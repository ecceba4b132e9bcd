# WAL archiving into an S3 bucket on a real Ceph RADOS Gateway: `warden wal push` as
# archive_command, `wal verify`, point-in-time recovery with restore_command reading the
# bucket, a missing segment (exit 1), a damaged one and wrong credentials (exit 126 from
# fetch, so recovery stops instead of ending early; exit 1 with a reason elsewhere).
use strict;
use warnings;
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
my $url = start_ceph('t110');
my $secret = $ENV{AWS_SECRET_ACCESS_KEY};

my $primary = PostgreSQL::Test::Cluster->new('s3_wal');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
archive_mode = on
archive_command = '"$warden" wal push --dir "$url" %p'
});
$primary->start;
$primary->backup('base', backup_options => ['-X', 'none']);

$primary->safe_psql('postgres', 'CREATE TABLE pitr (id int)');
$primary->safe_psql('postgres', 'INSERT INTO pitr VALUES (1)');
my $between = $primary->safe_psql('postgres', 'SELECT clock_timestamp()');
sleep 0.05;
$primary->safe_psql('postgres', 'INSERT INTO pitr VALUES (2)');
my $last = $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$last' FROM pg_stat_archiver")
  or die 'segments were not archived: ' . $primary->safe_psql('postgres', 'SELECT * FROM pg_stat_archiver');
pass("the server archived up to $last into $url");

my $listing = s3_get_raw("?list-type=2&prefix=t110%2Fwal%2F");
like($listing, qr{<Key>t110/wal/$last\.zst</Key>}, 'the segment is an object in the bucket');
like($listing, qr{<Key>t110/wal/$last\.zst\.sha256</Key>}, 'with its checksum beside it');

my ($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $url, '--json');
ok($ok, 'wal verify passes on the bucket') or diag($out . $err);
like($out, qr/"segments_checked": [1-9]/, 'and checked the segments');

# Pushing the same segment again (archive_command retried after a crash) succeeds.
my $seg_path = $primary->data_dir . "/pg_wal/$last";
($ok, $out, $err) = warden_run('wal', 'fetch', '--dir', $url, $last, "$tmp/$last");
ok($ok, 'wal fetch brings a segment back') or diag($err);
($ok, $out, $err) = warden_run('wal', 'push', '--dir', $url, '--json', "$tmp/$last");
ok($ok, 'a second push of the same content succeeds') or diag($err);
like($out, qr/already_present/, 'and says it was already there');

# Point-in-time recovery with restore_command = warden wal fetch --dir s3://...
my $restored = restore_node('s3_wal_pitr', $primary, 'base', $url,
	'--target-time', $between, '--target-action', 'promote');
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery from the bucket did not end';
is($restored->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM pitr'),
	'1', 'restore to a time from the bucket has exactly the rows committed before it');
my $auto = slurp($restored->data_dir . '/postgresql.auto.conf');
like($auto, qr{wal fetch --dir '?\Q$url\E'? %f %p}, 'restore_command names the bucket URL');
unlike($auto, qr/\Q$secret\E/, 'and no secret');
$restored->stop;

# A segment that is not there: exit 1 (the normal end of recovery).
my (undef, undef, $merr, $mrc) = warden_run('wal', 'fetch', '--dir', $url, '0000000100000000000000F0', "$tmp/none");
is($mrc, 1, 'a missing segment exits 1');
like($merr, qr/not in the archive s3:/, 'saying it is not in the bucket');

# Wrong credentials: a clear refusal, no secret in the message; fetch stops recovery.
{
	local $ENV{AWS_SECRET_ACCESS_KEY} = 'wrong-secret-0123456789';
	my (undef, undef, $e1, $rc1) = warden_run('wal', 'push', '--dir', $url, "$tmp/$last");
	is($rc1, 1, 'push with a wrong secret exits 1');
	like($e1, qr/refused .*SignatureDoesNotMatch.*check the credentials/, 'with the store\'s reason');
	unlike($e1, qr/wrong-secret/, 'and without the secret');
	my (undef, undef, $e2, $rc2) = warden_run('wal', 'fetch', '--dir', $url, $last, "$tmp/x");
	is($rc2, 126, 'fetch with a wrong secret exits 126 (recovery stops rather than ends)');
}
{
	local $ENV{AWS_ACCESS_KEY_ID} = 'NOSUCHKEY0000000000';
	my (undef, undef, $e, $rc) = warden_run('wal', 'verify', '--dir', $url);
	is($rc, 1, 'verify with an unknown access key exits 1');
	like($e, qr/InvalidAccessKeyId/, 'naming the store\'s error code');
}
{
	local $ENV{AWS_ACCESS_KEY_ID};
	local $ENV{AWS_SECRET_ACCESS_KEY};
	delete $ENV{AWS_ACCESS_KEY_ID};
	delete $ENV{AWS_SECRET_ACCESS_KEY};
	local $ENV{HOME} = $tmp;
	my (undef, undef, $e, $rc) = warden_run('wal', 'push', '--dir', $url, "$tmp/$last");
	is($rc, 1, 'no credentials at all exits 1');
	like($e, qr/no S3 credentials/, 'and says so');
}
my (undef, undef, $berr, $brc) = warden_run('wal', 'push', '--dir', 's3://Bad_Bucket/x', "$tmp/$last");
is($brc, 1, 'a malformed bucket name exits 1');
like($berr, qr/not a valid bucket name/, 'with the reason');

# A damaged segment in the bucket: verify names it, fetch refuses it with 126.
open(my $fh, '>', "$tmp/garbage") or die;
print $fh 'not a zstd frame' x 100;
close $fh;
ok(s3_put_raw("t110/wal/$last.zst", "$tmp/garbage"), 'a segment overwritten behind warden\'s back');
my (undef, $vout, $verr, $vrc) = warden_run('wal', 'verify', '--dir', $url);
is($vrc, 1, 'verify fails on the damaged segment');
like($verr, qr/\Q$last\E/, 'and names it');
my (undef, undef, $ferr, $frc) = warden_run('wal', 'fetch', '--dir', $url, $last, "$tmp/damaged");
is($frc, 126, 'fetch refuses it with 126');
ok(!-e "$tmp/damaged", 'and writes nothing');

done_testing();
