# An encrypted WAL archive in an S3 bucket (Ceph RADOS Gateway): `wal push --encrypt`
# as archive_command puts wal/encryption.json and sealed segments in the bucket; verify
# and point-in-time recovery with the key file; fetch without the key exits 126; a push
# without the key, and --encrypt into a prefix that already holds plaintext WAL, refused.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;
use WardenCeph;

if (my $why = ceph_missing()) { plan skip_all => $why; }

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $warden = $ENV{WARDEN_BIN};
my $url = start_ceph('t112');
my $key = "$tmp/s3wal.key";
my $secret = join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32);
open(my $fh, '>', $key) or die;
print $fh "$secret\n";
close $fh;
chmod 0600, $key;

my $primary = PostgreSQL::Test::Cluster->new('s3_wal_enc');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
archive_mode = on
archive_command = '"$warden" wal push --dir "$url" --encrypt --key-file "$key" %p'
});
$primary->start;
$primary->backup('base', backup_options => ['-X', 'none']);
$primary->safe_psql('postgres', 'CREATE TABLE pitr (id int)');
$primary->safe_psql('postgres', 'INSERT INTO pitr VALUES (1)');
my $between = $primary->safe_psql('postgres', 'SELECT clock_timestamp()');
$primary->poll_query_until('postgres', "SELECT clock_timestamp() > '$between'::timestamptz") or die;
$primary->safe_psql('postgres', 'INSERT INTO pitr VALUES (2)');
my $last = $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$last' FROM pg_stat_archiver")
  or die 'segments were not archived: ' . $primary->safe_psql('postgres', 'SELECT * FROM pg_stat_archiver');
is($primary->safe_psql('postgres', 'SELECT failed_count FROM pg_stat_archiver'), '0', 'no failed pushes');

my $listing = s3_get_raw("?list-type=2&prefix=t112%2Fwal%2F");
like($listing, qr{<Key>t112/wal/encryption\.json</Key>}, 'the bucket holds the encryption marker');
like(s3_get_raw("/t112/wal/$last.zst"), qr/^WARDNC01/, 'and sealed segments');

my ($ok, $out, $err, $rc) = warden_run('wal', 'verify', '--dir', $url, '--key-file', $key);
ok($ok, 'wal verify with the key passes on the bucket') or diag($out . $err);
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $url, $last, "$tmp/x");
is($rc, 126, 'fetch from the bucket without the key exits 126');
like($err, qr/is encrypted: give --key-file/, 'with the reason');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $url, '--key-file', $key, $last, "$tmp/$last");
ok($ok, 'fetch with the key') or diag($err);
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $url, "$tmp/$last");
isnt($rc, 0, 'a push without the key is refused');
like($err, qr/is encrypted: give --key-file/, 'with the reason');

my $plain = $url =~ s/t112$/t112plain/r;
($ok, $out, $err) = warden_run('wal', 'push', '--dir', $plain, "$tmp/$last");
ok($ok, 'a plaintext archive under another prefix') or diag($err);
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $plain, '--encrypt', '--key-file', $key, "$tmp/$last");
isnt($rc, 0, '--encrypt into a prefix that holds plaintext WAL is refused');
like($err, qr/already holds unencrypted files/, 'with the reason');

my $restored = restore_node('s3_wal_enc_pitr', $primary, 'base', $url, '--key-file', $key,
	'--target-time', $between, '--target-action', 'promote');
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery from the encrypted bucket did not end';
is($restored->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM pitr'),
	'1', 'restore to a time from the encrypted bucket has exactly the rows committed before it');
unlike(slurp($restored->data_dir . '/postgresql.auto.conf'), qr/\Q$secret\E/, 'the key is not in the settings');
$restored->stop;

done_testing();
