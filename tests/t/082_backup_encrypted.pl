# warden backup create --encrypt (physical; logical ones in 084): archives sealed with AES-256-GCM (key file or
# passphrase from the environment); list and prune without the key; verify, restore and
# restore of an encrypted incremental chain with it; no key, a wrong key and a flipped
# byte each stop with a clear reason.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->start;
my $connstr = $node->connstr('postgres');
my $dir = $node->basedir . '/backups';
$node->safe_psql('postgres',
	"CREATE TABLE secrets AS SELECT g AS id, 'SECRET-MARKER-' || g AS v FROM generate_series(1, 20000) g");

sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die; binmode $fh; print $fh $s; close $fh; chmod 0600, $f }
my $key = $node->basedir . '/backup.key';
spew($key, join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32) . "\n");
my $wrong = $node->basedir . '/wrong.key';
spew($wrong, "not the key\n");

sub run_warden
{
	my ($env, @args) = @_;
	local %ENV = (%ENV, %$env);
	my ($out, $err);
	my $ok = IPC::Run::run([ $warden, @args ], '>', \$out, '2>', \$err);
	return ($ok, $out // '', $err // '');
}

my ($ok, $out, $err) = run_warden({}, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--encrypt',
	'--key-file', $key, '--compress', 'none', '--json');
ok($ok, 'encrypted backup created') or diag($err);
my $b = decode_json($out);
ok($b->{encrypted}, 'recorded as encrypted');
my $id = $b->{id};
my $raw = slurp_file("$dir/$id/base.tar");
like($raw, qr/^WARDNC01/, 'the archive starts with the sealed-file header');
unlike($raw, qr/SECRET-MARKER|backup_label|PG_VERSION/, 'no table data or file name readable in it');
my $desc = decode_json(slurp_file("$dir/$id/backup.json"));
ok($desc->{encryption}{key_check} && $desc->{encryption}{salt}, 'backup.json holds a key check, not the key');
my $key_text = slurp_file($key);
chomp $key_text;
unlike(slurp_file("$dir/$id/backup.json"), qr/\Q$key_text\E/, 'and not the key itself');

# Without the key: the catalog works, reading the data does not.
$node->command_like([ $warden, 'backup', 'list', '--dir', $dir ], qr/$id/, 'list works without the key');
$node->command_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '1', '--dry-run' ],
	qr/$id\s+keep/, 'prune works without the key');
($ok, $out, $err) = run_warden({}, 'backup', 'verify', '--dir', $dir, $id);
ok(!$ok, 'verify without the key fails');
like($err, qr/backup $id is encrypted: give --key-file FILE or set WARDEN_BACKUP_PASSPHRASE/, 'and says why');
is(decode_json(slurp_file("$dir/$id/backup.json"))->{verify_ok}, undef, 'a missing key marks nothing as failed');
($ok, $out, $err) = run_warden({}, 'backup', 'verify', '--dir', $dir, $id, '--key-file', $wrong);
ok(!$ok, 'verify with a wrong key fails');
like($err, qr/wrong key for backup $id/, 'and says the key is wrong');
($ok, $out, $err) = run_warden({}, 'backup', 'verify', '--dir', $dir, $id, '--key-file', $key);
ok($ok, 'verify with the key passes') or diag($err);

# An encrypted incremental on top, restored as a chain.
$node->safe_psql('postgres', "INSERT INTO secrets SELECT g, 'SECRET-MARKER-' || g FROM generate_series(20001, 25000) g");
($ok, $out, $err) = run_warden({}, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--incremental', '--encrypt',
	'--key-file', $key, '--quiet');
ok($ok, 'encrypted incremental backup') or diag($err);
chomp(my $inc = $out);
unlike(slurp_file("$dir/$inc/blocks.tar.gz"), qr/SECRET-MARKER/, 'its blocks are sealed too');
my $restored = PostgreSQL::Test::Cluster->new('restored');
($ok, $out, $err) = run_warden({}, 'restore', '--dir', $dir, $inc, '--target', $restored->data_dir, '--key-file', $key);
ok($ok, 'restore of the encrypted chain') or diag($err);
$restored->append_conf('postgresql.conf', 'port = ' . $restored->port);
$restored->start;
is($restored->safe_psql('postgres', "SELECT count(*) FROM secrets WHERE v LIKE 'SECRET-MARKER-%'"), '25000',
	'every row back');
$restored->stop;

# A passphrase from the environment.
($ok, $out, $err) = run_warden({ WARDEN_BACKUP_PASSPHRASE => 'correct horse battery staple' },
	'backup', 'create', '--dir', $dir, '-d', $connstr, '--encrypt', '--quiet');
ok($ok, 'encrypted with a passphrase from the environment') or diag($err);
chomp(my $pid = $out);
($ok, $out, $err) = run_warden({ WARDEN_BACKUP_PASSPHRASE => 'correct horse battery staple' },
	'backup', 'verify', '--dir', $dir, $pid);
ok($ok, 'verified with the same passphrase') or diag($err);
($ok, $out, $err) = run_warden({ WARDEN_BACKUP_PASSPHRASE => 'correct horse' }, 'backup', 'verify', '--dir', $dir, $pid);
like($err, qr/wrong key for backup $pid/, 'another passphrase is a wrong key');

# A flipped byte: found by the stored checksum; and when backup.json is changed to
# match, by the authentication tag itself.
my $file = "$dir/$id/base.tar";
my $copy = slurp_file($file);
my $flipped = $copy;
substr($flipped, 5000, 1) = chr(ord(substr($flipped, 5000, 1)) ^ 1);
spew($file, $flipped);
($ok, $out, $err) = run_warden({}, 'backup', 'verify', '--dir', $dir, $id, '--key-file', $key);
ok(!$ok, 'verify finds the flipped byte');
like($err, qr/base\.tar/, 'and names the file');
my $json = decode_json(slurp_file("$dir/$id/backup.json"));
require Digest::SHA;
$_->{sha256} = Digest::SHA::sha256_hex($flipped) for grep { $_->{name} eq 'base.tar' } @{ $json->{files} };
spew("$dir/$id/backup.json", JSON::PP->new->canonical->encode($json));
($ok, $out, $err) = run_warden({}, 'restore', '--dir', $dir, $id, '--target', $node->basedir . '/r2', '--key-file', $key);
ok(!$ok, 'restore of a tampered archive with a matching backup.json fails');
like($err, qr/does not authenticate/, 'the authentication tag catches it');
ok(!-e $node->basedir . '/r2/global/pg_control', 'no startable copy left behind');

# Bad input.
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--key-file', $key ],
	qr/--key-file applies to --encrypt/, '--key-file alone is refused');
{
	local $ENV{WARDEN_BACKUP_PASSPHRASE};
	delete $ENV{WARDEN_BACKUP_PASSPHRASE};
	$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--encrypt' ],
		qr/no key: give --key-file FILE or set WARDEN_BACKUP_PASSPHRASE/, '--encrypt without a key is refused');
}
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--encrypt',
		'--key-file', $node->basedir . '/nothing' ],
	qr/no such file/, 'a missing key file is refused');

done_testing();
