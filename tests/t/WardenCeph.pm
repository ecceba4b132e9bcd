# A throwaway Ceph cluster with the RADOS Gateway for the S3 TAP tests (tests/harness/ceph.sh):
# start_ceph() starts it, exports its endpoint and an S3 user's keys in %ENV (AWS_*), and
# returns the URL of a fresh prefix in its bucket; it is stopped when the test ends.
# Tests skip (with the reason) only when the Ceph binaries are not installed.
package WardenCeph;

use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';
use IPC::Run;
use Time::HiRes qw(time);

our @EXPORT = qw(ceph_missing start_ceph kill_gateway start_gateway s3_put_raw s3_get_raw s3_delete_raw s3_start_upload_raw);

my $script = $ENV{WARDEN_ROOT} . '/tests/harness/ceph.sh';
my $dir;

END
{
	# Keep the test's exit status: run() sets $?.
	local $?;
	IPC::Run::run([ $script, 'stop', $dir ], '>', '/dev/null', '2>', '/dev/null') if $dir;
}

# The reason to skip, or undef when every binary the harness needs is installed.
sub ceph_missing
{
	for my $b (qw(ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool curl))
	{
		return "$b is not installed (scripts/install-deps.sh installs Ceph)"
		  unless grep { -x "$_/$b" } split /:/, $ENV{PATH};
	}
	return undef;
}

# Starts the cluster once per test file; returns s3://warden/$prefix.
sub start_ceph
{
	my ($prefix) = @_;
	$dir = $PostgreSQL::Test::Utils::tmp_check . '/ceph';
	my $t0 = time;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $script, 'start', $dir ], '>', \$out, '2>', \$err)
	  or die "ceph.sh start failed: $err";
	while ($out =~ /(\w+)='([^']*)'/g)
	{
		$ENV{$1} = $2;
	}
	note(sprintf('Ceph with the RADOS Gateway up in %.1f s at %s', time - $t0, $ENV{AWS_ENDPOINT_URL}));
	return "s3://$ENV{WARDEN_S3_BUCKET}/$prefix";
}

sub kill_gateway
{
	IPC::Run::run([ $script, 'kill-gateway', $dir ]) or die 'kill-gateway failed';
}

sub start_gateway
{
	IPC::Run::run([ $script, 'start-gateway', $dir ]) or die 'start-gateway failed';
}

# Writes raw bytes to KEY in the bucket behind the utility's back (to damage an object).
sub s3_put_raw
{
	my ($key, $file) = @_;
	return IPC::Run::run(
		[ 'curl', '-sf', '-X', 'PUT', '--aws-sigv4', "aws:amz:$ENV{AWS_REGION}:s3",
		  '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '-K', '-', '-T', $file,
		  "$ENV{AWS_ENDPOINT_URL}/$ENV{WARDEN_S3_BUCKET}/$key" ],
		'<', \"user = \"$ENV{AWS_ACCESS_KEY_ID}:$ENV{AWS_SECRET_ACCESS_KEY}\"\n",
		'>', '/dev/null');
}

# Starts a multipart upload of KEY and leaves it (what a pusher killed mid-upload
# leaves); returns its upload ID, or undef.
sub s3_start_upload_raw
{
	my ($key) = @_;
	my $out = '';
	IPC::Run::run(
		[ 'curl', '-sf', '-X', 'POST', '--aws-sigv4', "aws:amz:$ENV{AWS_REGION}:s3",
		  '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '-K', '-',
		  "$ENV{AWS_ENDPOINT_URL}/$ENV{WARDEN_S3_BUCKET}/$key?uploads=" ],
		'<', \"user = \"$ENV{AWS_ACCESS_KEY_ID}:$ENV{AWS_SECRET_ACCESS_KEY}\"\n",
		'>', \$out) or return undef;
	return $out =~ m{<UploadId>([^<]+)</UploadId>} ? $1 : undef;
}

# Deletes KEY in the bucket behind the utility's back (a lost object).
sub s3_delete_raw
{
	my ($key) = @_;
	return IPC::Run::run(
		[ 'curl', '-sf', '-X', 'DELETE', '--aws-sigv4', "aws:amz:$ENV{AWS_REGION}:s3",
		  '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '-K', '-',
		  "$ENV{AWS_ENDPOINT_URL}/$ENV{WARDEN_S3_BUCKET}/$key" ],
		'<', \"user = \"$ENV{AWS_ACCESS_KEY_ID}:$ENV{AWS_SECRET_ACCESS_KEY}\"\n",
		'>', '/dev/null');
}

# The body of GET on a bucket-relative path with a query (a listing); dies on failure.
# The query goes out as given and curl signs it so: parameters in SigV4 order (sorted by
# name), values percent-encoded.
sub s3_get_raw
{
	my ($path) = @_;
	my $out = '';
	IPC::Run::run(
		[ 'curl', '-sf', '--aws-sigv4', "aws:amz:$ENV{AWS_REGION}:s3",
		  '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '-K', '-',
		  "$ENV{AWS_ENDPOINT_URL}/$ENV{WARDEN_S3_BUCKET}$path" ],
		'<', \"user = \"$ENV{AWS_ACCESS_KEY_ID}:$ENV{AWS_SECRET_ACCESS_KEY}\"\n",
		'>', \$out) or die "GET $path failed";
	return $out;
}

1;
