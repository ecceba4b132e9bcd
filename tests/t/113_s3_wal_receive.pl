# `warden wal receive --dir s3://...` on a real Ceph RADOS Gateway: the receiver streams
# into a local staging folder and pushes every finished segment into the bucket with
# `wal push`'s code (checksum object first), removing it locally; the live .partial stays
# local. Fetched back identical, `wal status` from the bucket listing, a restart resumes,
# the gateway down for a while (the receiver retries, nothing lost), bad input.
use strict;
use warnings;
use Digest::SHA;
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
my $url = start_ceph('t113');
my $staging = "$tmp/staging";
my $log = "$tmp/receiver.log";

my $node = PostgreSQL::Test::Cluster->new('s3_receive');
$node->init(allows_streaming => 1);
$node->start;

# Polls the bucket until KEY (under t113/wal/) is listed.
sub wait_for_object
{
	my ($name) = @_;
	for (1 .. 1800)
	{
		return 1 if s3_get_raw("?list-type=2&prefix=t113%2Fwal%2F$name") =~ m{<Key>t113/wal/$name</Key>};
		sleep 0.1;
	}
	return 0;
}

# Writes some WAL, switches, returns the name of the segment just finished.
sub finish_segment
{
	$node->safe_psql('postgres', 'CREATE TABLE IF NOT EXISTS t (id int); INSERT INTO t SELECT generate_series(1, 1000)');
	my $seg = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
	$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
	return $seg;
}

my $pid = start_receiver($node, $url, $log, '--staging', $staging, '-v');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'warden_receiver'")
  or die 'the receiver did not connect: ' . slurp($log);
my $seg = finish_segment();
ok(wait_for_object("$seg.zst"), "the finished segment $seg is pushed into the bucket") or diag(slurp($log));
my $listing = s3_get_raw("?list-type=2&prefix=t113%2Fwal%2F$seg");
like($listing, qr{<Key>t113/wal/$seg\.zst\.sha256</Key>}, 'with its checksum object');
ok(!-e "$staging/wal/$seg.zst" && !-e "$staging/wal/$seg.ready", 'and removed from the staging folder');
$node->safe_psql('postgres', 'INSERT INTO t VALUES (0)');
wait_receiver_flushed($node);
my @partial = glob("$staging/wal/*.partial");
is(scalar @partial, 1, 'the live segment stays local as .partial');
unlike(s3_get_raw('?list-type=2&prefix=t113%2Fwal%2F'), qr{\.partial}, 'and is not in the bucket');

my ($ok, $out, $err) = warden_run('wal', 'fetch', '--dir', $url, $seg, "$tmp/$seg");
ok($ok, 'wal fetch brings it back from the bucket') or diag($err);
my $orig = $node->data_dir . "/pg_wal/$seg";
is(Digest::SHA->new(256)->addfile("$tmp/$seg")->hexdigest, Digest::SHA->new(256)->addfile($orig)->hexdigest,
	'identical to the server\'s segment');

($ok, $out, $err) = warden_run('wal', 'status', '--dir', $url, '--staging', $staging, '--json');
ok($ok, 'wal status --dir s3://') or diag($err);
my $st = decode_json($out);
is($st->{newest_segment}, $seg, 'newest segment from the bucket listing');
ok($st->{segments} >= 1 && $st->{stored_bytes} > 0, 'segments and bytes counted');
ok($st->{receiver_running}, 'the receiver is running (its staging folder)');
ok($st->{newest_age_seconds} >= 0, 'with the segment\'s age');
($ok, $out, $err) = warden_run('wal', 'status', '--dir', $url, '--staging', $staging);
like($out, qr/newest segment:\s+$seg/, 'as text too');

is(stop_receiver($pid), 0, 'the receiver stops cleanly on SIGTERM');
($ok, $out, $err) = warden_run('wal', 'status', '--dir', $url, '--staging', $staging, '--json');
ok($ok && !decode_json($out)->{receiver_running}, 'status: not running');

# Written while it was down: the slot kept it, the restarted receiver pushes it.
my $seg2 = finish_segment();
{
	local $ENV{WARDEN_S3_RETRIES} = 0;
	$pid = start_receiver($node, $url, $log, '--staging', $staging, '-v');
}
ok(wait_for_object("$seg2.zst"), 'a segment written while the receiver was stopped is pushed after its restart')
  or diag(slurp($log));

# The gateway down: the receiver keeps streaming into the staging folder and retries.
kill_gateway();
my $seg3 = finish_segment();
my $retried = 0;
for (1 .. 1800)
{
	if (slurp($log) =~ /could not push $seg3 to s3:\S+: .*retrying in/) { $retried = 1; last; }
	sleep 0.1;
}
ok($retried, 'the push fails while the gateway is down, and the receiver says it retries') or diag(slurp($log));
ok(-e "$staging/wal/$seg3.ready", 'the segment waits durably in the staging folder');
wait_receiver_flushed($node);
pass('streaming went on meanwhile');
start_gateway();
ok(wait_for_object("$seg3.zst"), 'once the gateway is back the segment is pushed') or diag(slurp($log));
($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $url, '--json');
ok($ok, 'wal verify: no segment missing in the bucket') or diag($out . $err);
is(stop_receiver($pid), 0, 'stopped again');

# Bad input.
my (undef, undef, $e, $rc) = warden_run('wal', 'receive', '--dir', "$tmp/local", '--staging', $staging,
	'-d', $node->connstr('postgres'));
is($rc, 1, '--staging with a local --dir exits 1');
like($e, qr/--staging applies to --dir s3/, 'with the reason');
(undef, undef, $e, $rc) = warden_run('wal', 'receive', '--dir', $url, '--staging', 's3://x/y',
	'-d', $node->connstr('postgres'));
is($rc, 1, '--staging s3://... exits 1');
like($e, qr/--staging must be a local folder/, 'with the reason');
{
	local $ENV{AWS_SECRET_ACCESS_KEY} = 'not-the-secret-at-all';
	(undef, undef, $e, $rc) = warden_run('wal', 'receive', '--dir', $url, '--staging', $staging,
		'-d', $node->connstr('postgres'), '--no-loop');
	is($rc, 1, 'receive with wrong credentials exits 1 at once');
	like($e, qr/SignatureDoesNotMatch/, 'with the store\'s reason');
	unlike($e, qr/not-the-secret/, 'not showing the secret');
	(undef, undef, $e, $rc) = warden_run('wal', 'status', '--dir', $url);
	is($rc, 1, 'status with wrong credentials exits 1');
}
(undef, undef, $e, $rc) = warden_run('wal', 'status', '--dir', 's3://warden/t113-nothing-here');
is($rc, 1, 'status of an empty prefix exits 1');
like($e, qr/no WAL archive at s3:/, 'saying there is no archive');

done_testing();
