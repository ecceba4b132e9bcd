# An encrypted WAL archive (`wal push --encrypt --key-file`): every stored file sealed,
# wal/encryption.json created by the first push; point-in-time recovery through a
# restore_command that names the key file (never the key); a missing or wrong key makes
# fetch exit 126 (recovery stops) while an absent file still exits 1; a plaintext push or
# another key is refused; a flipped byte is named by verify and by fetch; the receiver
# seals finished segments too.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(sha256_hex);
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $warden = $ENV{WARDEN_BIN};
my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $dir = "$tmp/wal_enc_backups";
my $wal = "$dir/wal";

sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die; binmode $fh; print $fh $s; close $fh; chmod 0600, $f }
my $key = "$tmp/wal.key";
my $secret = join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32);
spew($key, "$secret\n");
my $wrong = "$tmp/wrong.key";
spew($wrong, "not the key\n");

sub run_env
{
	my ($env, @args) = @_;
	local %ENV = (%ENV, %$env);
	return warden_run(@args);
}

my $node = PostgreSQL::Test::Cluster->new('wal_enc');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
archive_mode = on
archive_command = '"$warden" wal push --dir "$dir" --encrypt --key-file "$key" %p'
});
$node->start;

$node->backup('base', backup_options => ['-X', 'none']);
my ($bok, $bout, $berr) = warden_run('backup', 'create', '--dir', $dir, '-d', $node->connstr('postgres'), '--quiet');
ok($bok, 'a (plaintext) warden backup beside the encrypted WAL archive') or diag($berr);
chomp(my $backup_id = $bout);
$node->safe_psql('postgres',
	"CREATE TABLE pitr (id int, v text, at timestamptz DEFAULT clock_timestamp())");
$node->safe_psql('postgres', "INSERT INTO pitr (id, v) SELECT g, 'WAL-MARKER-' || g FROM generate_series(1, 1000) g");
my $between = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->poll_query_until('postgres', "SELECT clock_timestamp() > '$between'::timestamptz") or die;
$node->safe_psql('postgres', "INSERT INTO pitr (id, v) SELECT g, 'late' FROM generate_series(1001, 1500) g");
my $last = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->poll_query_until('postgres', "SELECT last_archived_wal >= '$last' FROM pg_stat_archiver")
  or die 'archiving did not catch up';
is($node->safe_psql('postgres', 'SELECT failed_count FROM pg_stat_archiver'), '0', 'no failed pushes');

ok(-f "$wal/encryption.json", 'the first push recorded the archive as encrypted');
my $marker = slurp("$wal/encryption.json");
like($marker, qr/"key_check"/, 'with a key check');
unlike($marker, qr/\Q$secret\E/, 'and not the key');
my $stored = slurp("$wal/$last.zst");
like($stored, qr/^WARDNC01/, 'a segment is stored sealed');
my @labels = glob("$wal/*.backup");
is(scalar @labels, 2, 'the backup history files of both base backups are archived');
is(scalar(grep { slurp($_) =~ /^WARDNC01/ } @labels), 2, 'sealed as well');
is(scalar(grep { slurp($_) =~ /START WAL LOCATION/ } @labels), 0, 'their text is not readable');

my ($ok, $out, $err, $rc) = warden_run('wal', 'verify', '--dir', $dir, '--key-file', $key);
ok($ok, 'wal verify with the key passes') or diag($out . $err);
($ok, $out, $err, $rc) = warden_run('wal', 'verify', '--dir', $dir);
is($rc, 1, 'wal verify without the key fails');
like($err, qr/^warden: the WAL archive .* is encrypted: give --key-file FILE/m, 'saying the archive is encrypted');
($ok, $out, $err, $rc) = warden_run('wal', 'verify', '--dir', $dir, '--key-file', $wrong);
like($err, qr/wrong key for the WAL archive/, 'a wrong key is named as such by verify');

# fetch: exit 1 only when the file is absent; a missing or wrong key stops recovery (126).
my $fetched = "$tmp/enc_fetched";
mkdir $fetched;
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, '--key-file', $key, $last, "$fetched/$last");
ok($ok, 'fetch with the key') or diag($err);
is(-s "$fetched/$last", 16 * 1024 * 1024, 'the fetched segment has the full size');
my ($recorded) = slurp("$wal/$last.zst.sha256") =~ /^([0-9a-f]{64})/;
isnt($recorded, sha256_hex(slurp("$fetched/$last")), 'its checksum is keyed, not the plain SHA-256 of the segment');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, $last, "$fetched/x");
is($rc, 126, 'fetch without the key exits 126');
like($err, qr/is encrypted: give --key-file/, 'with the reason');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, '--key-file', $wrong, $last, "$fetched/x");
is($rc, 126, 'fetch with a wrong key exits 126');
like($err, qr/wrong key for the WAL archive/, 'naming the wrong key');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, '--key-file', $wrong,
	'00000001000000FF000000FF', "$fetched/x");
is($rc, 126, 'a wrong key exits 126 also for a file that is not archived');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, '--key-file', $key,
	'00000001000000FF000000FF', "$fetched/x");
is($rc, 1, 'an absent file with the right key exits 1');
ok(!-e "$fetched/x", 'nothing written by the failed fetches');
($ok, $out, $err, $rc) = run_env({ WARDEN_BACKUP_PASSPHRASE => $secret }, 'wal', 'fetch', '--dir', $dir,
	$last, "$fetched/env");
ok($ok, 'the passphrase variable is a key too') or diag($err);

# Pushes without the key or with another key are refused; a plain archive refuses --encrypt.
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $dir, "$fetched/$last");
isnt($rc, 0, 'a push without a key into the encrypted archive is refused');
like($err, qr/is encrypted: give --key-file/, 'with the reason');
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $dir, '--encrypt', '--key-file', $wrong, "$fetched/$last");
like($err, qr/wrong key for the WAL archive/, 'a push with another key is refused');
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $dir, '--encrypt', '--key-file', $key, "$fetched/$last");
like($err, qr/already archived with the same content/, 'the same segment again with the key: already present');
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $dir, '--encrypt', "$fetched/$last");
like($err, qr/^warden: no key: give --key-file FILE or set WARDEN_BACKUP_PASSPHRASE$/m, '--encrypt without a key is refused');

my $plain = "$tmp/wal_plain_backups";
($ok, $out, $err) = warden_run('wal', 'push', '--dir', $plain, "$fetched/$last");
ok($ok, 'a plaintext archive elsewhere') or diag($err);
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $plain, '--encrypt', '--key-file', $key, "$fetched/$last");
isnt($rc, 0, '--encrypt into an archive that holds unencrypted files is refused');
like($err, qr/already holds unencrypted files/, 'with the reason');
ok(!-e "$plain/wal/encryption.json", 'and the archive stays unmarked');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $plain, '--key-file', $key, $last, "$fetched/y");
is($rc, 126, 'a key file given to fetch from a plain archive stops recovery (no silent downgrade)');
like($err, qr/is not encrypted \(no encryption.json\)/, 'with the reason');

# PITR from the encrypted archive. recovery-settings needs the key file (the server cannot
# see the passphrase of this shell) and checks it.
my $restored = PostgreSQL::Test::Cluster->new('wal_enc_restored');
$restored->init_from_backup($node, 'base');
$restored->append_conf('postgresql.conf', "archive_mode = off\n");
($ok, $out, $err, $rc) = run_env({ WARDEN_BACKUP_PASSPHRASE => $secret }, 'wal', 'recovery-settings',
	'--dir', $dir, '-D', $restored->data_dir, '--target-time', $between);
isnt($rc, 0, 'recovery-settings of an encrypted archive without --key-file is refused');
like($err, qr/is encrypted: give --key-file FILE for restore_command/, 'with the reason');
($ok, $out, $err, $rc) = warden_run('wal', 'recovery-settings', '--dir', $dir, '-D', $restored->data_dir,
	'--key-file', $wrong, '--target-time', $between);
like($err, qr/wrong key for the WAL archive/, 'recovery-settings checks the key');
($ok, $out, $err, $rc) = warden_run('wal', 'recovery-settings', '--dir', $plain, '-D', $restored->data_dir,
	'--key-file', $key, '--target-time', $between);
like($err, qr/is not encrypted: --key-file applies to encrypted archives/, 'a key for a plain archive is refused');
($ok, $out, $err) = warden_run('wal', 'recovery-settings', '--dir', $dir, '-D', $restored->data_dir,
	'--key-file', $key, '--target-time', $between);
ok($ok, 'recovery-settings with the key file') or diag($err);
my $auto = slurp($restored->data_dir . '/postgresql.auto.conf');
like($auto, qr/restore_command = .*wal fetch .*--key-file \Q$key\E %f %p/, 'restore_command names the key file');
unlike($auto, qr/\Q$secret\E/, 'and not the key');
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery to a time did not end';
is($restored->safe_psql('postgres', "SELECT count(*), max(id), count(*) FILTER (WHERE v LIKE 'WAL-MARKER-%') FROM pitr"),
	'1000|1000|1000', 'restore to a time from the encrypted archive has exactly the rows committed before it');
$restored->stop;

# warden restore --target-time: the backup is plaintext, its WAL archive is not.
my $by_restore = PostgreSQL::Test::Cluster->new('wal_enc_by_restore');
my $rtarget = $by_restore->data_dir;
($ok, $out, $err, $rc) = run_env({ WARDEN_BACKUP_PASSPHRASE => $secret }, 'restore', '--dir', $dir, $backup_id,
	'--target', $rtarget, '--target-time', $between);
isnt($rc, 0, 'warden restore with a target needs --key-file for the encrypted WAL archive');
like($err, qr/is encrypted: give --key-file FILE for restore_command/, 'with the reason');
ok(!-e "$rtarget/PG_VERSION", 'refused before anything was restored');
($ok, $out, $err) = warden_run('restore', '--dir', $dir, $backup_id, '--target', $rtarget, '--target-time', $between,
	'--key-file', $key);
ok($ok, 'warden restore --target-time --key-file') or diag($err);
like(slurp("$rtarget/postgresql.auto.conf"), qr/--key-file \Q$key\E %f %p/, 'its restore_command names the key file');
$by_restore->append_conf('postgresql.conf', 'port = ' . $by_restore->port . "\narchive_mode = off\n");
$by_restore->start;
$by_restore->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'recovery did not end';
is($by_restore->safe_psql('postgres', 'SELECT count(*) FROM pitr'), '1000', 'the rows committed before the target');
$by_restore->stop;

# backup prune reads no sealed file: backup history files name the start they record.
ok(scalar(grep { !/\.sha256$/ } glob("$wal/*.backup*")) > 0, 'the backup history file was archived, sealed');
($ok, $out, $err) = warden_run('backup', 'prune', '--dir', $dir, '--keep-last', '1', '--dry-run');
ok($ok, 'backup prune --dry-run needs no key for an encrypted WAL archive') or diag($err);
like($out, qr/\Q$backup_id\E\s+keep/, 'and keeps the backup');

# Bad input: a missing key file, a damaged encryption.json.
($ok, $out, $err, $rc) = warden_run('wal', 'push', '--dir', $dir, '--encrypt', '--key-file', "$tmp/nothing.key",
	"$fetched/$last");
like($err, qr/^warden: --key-file \S+nothing\.key: no such file$/m, 'a missing key file is refused');
my $damaged = "$tmp/wal_enc_damaged";
mkdir $damaged;
mkdir "$damaged/wal";
spew("$damaged/wal/encryption.json", '{"method": "rot13"}');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $damaged, '--key-file', $key, $last, "$fetched/d");
is($rc, 126, 'a damaged encryption.json stops recovery');
like($err, qr/invalid .*encryption\.json: method must be "aes-256-gcm"/, 'naming it');

# The receiver seals the segments it finishes.
my $rdir = "$tmp/wal_enc_received";
my $log = "$tmp/receiver_enc.log";
($ok, $out, $err, $rc) = warden_run('wal', 'receive', '--dir', $dir, '-d', $node->connstr('postgres'),
	'--no-loop', '--key-file', $wrong);
like($err, qr/wrong key for the WAL archive/, 'a receiver with a wrong key is refused at start');
my $pid = start_receiver($node, $rdir, $log, '--encrypt', '--key-file', $key, '--slot', 'enc_receiver');
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_replication WHERE application_name = 'enc_receiver'")
  or die 'receiver did not connect: ' . slurp($log);
$node->safe_psql('postgres', 'INSERT INTO pitr (id, v) VALUES (2000, \'received\'); SELECT pg_switch_wal()');
$node->safe_psql('postgres', 'INSERT INTO pitr (id, v) VALUES (2001, \'received\'); SELECT pg_switch_wal()');
$node->poll_query_until('postgres', "SELECT " . (
	"(SELECT count(*) FROM pg_ls_dir('$rdir/wal') f WHERE f LIKE '%.zst') > 0")) or die 'no finished segment: ' . slurp($log);
is(stop_receiver($pid), 0, 'receiver stopped');
my @received = glob("$rdir/wal/*.zst");
ok(@received > 0, 'the receiver stored finished segments');
like(slurp($received[0]), qr/^WARDNC01/, 'sealed');
ok(-f "$rdir/wal/encryption.json", 'the receiver marked its archive encrypted');

# A flipped byte in a stored segment: verify and fetch name it.
my $victim = "$wal/$last.zst";
open(my $fh, '+<', $victim) or die;
binmode $fh;
seek($fh, 200, 0);
read($fh, my $byte, 1);
seek($fh, 200, 0);
print $fh chr(ord($byte) ^ 1);
close $fh;
($ok, $out, $err, $rc) = warden_run('wal', 'verify', '--dir', $dir, '--key-file', $key);
is($rc, 1, 'verify fails on the flipped byte');
like($err, qr/WAL archive check failed at \Q$last\E\.zst: .*does not authenticate/, 'naming the damaged segment');
($ok, $out, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, '--key-file', $key, $last, "$fetched/z");
is($rc, 126, 'fetch of the damaged segment exits 126');
like($err, qr/^warden: refusing \Q$last\E: .*does not authenticate/, 'naming it');
ok(!-e "$fetched/z", 'and writes nothing');

done_testing();
