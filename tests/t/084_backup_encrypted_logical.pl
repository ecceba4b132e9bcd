# Encrypted logical backups (`backup create --logical --encrypt`): pg_dump's custom
# format sealed on its way into dump.enc, read back through a pipe by verify, restore,
# restore --table and drill; a wrong key and a flipped byte each stop with a reason.
# Also the drill of an encrypted physical backup and `restore --table` out of one.
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
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
	CREATE TABLE customers (id int PRIMARY KEY, name text);
	INSERT INTO customers SELECT g, 'SECRET-MARKER-' || g FROM generate_series(1, 3000) g;
	CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric);
	INSERT INTO orders SELECT g, 1 + g % 3000, g * 1.5 FROM generate_series(1, 20000) g;
});

sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die; binmode $fh; print $fh $s; close $fh; chmod 0600, $f }
my $key = $node->basedir . '/backup.key';
my $secret = join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32);
spew($key, "$secret\n");
my $wrong = $node->basedir . '/wrong.key';
spew($wrong, "not the key\n");

sub run_warden
{
	my (@args) = @_;
	my ($out, $err);
	my $ok = IPC::Run::run([ $warden, @args ], '>', \$out, '2>', \$err);
	return ($ok, $out // '', $err // '');
}

# Logical, encrypted.
my ($ok, $out, $err) = run_warden('backup', 'create', '--dir', $dir, '-d', $connstr, '--logical', '--database',
	'shop', '--encrypt', '--key-file', $key, '--json');
ok($ok, 'encrypted logical backup created') or diag($err);
my $b = decode_json($out);
ok($b->{encrypted}, 'recorded as encrypted');
my $id = $b->{id};
ok(-f "$dir/$id/dump.enc" && !-e "$dir/$id/dump", 'one sealed dump, no plaintext dump folder');
is((stat("$dir/$id/dump.enc"))[2] & 0777, 0600, 'the sealed dump is private');
my $raw = slurp_file("$dir/$id/dump.enc");
like($raw, qr/^WARDNC01/, 'the dump starts with the sealed-file header');
unlike($raw, qr/SECRET-MARKER|PGDMP|customers/, 'no table data, dump header or table name readable in it');
unlike(slurp_file("$dir/$id/backup.json"), qr/\Q$secret\E/, 'backup.json does not hold the key');

$node->command_like([ $warden, 'backup', 'list', '--dir', $dir ], qr/$id/, 'list works without the key');
($ok, $out, $err) = run_warden('backup', 'verify', '--dir', $dir, $id);
like($err, qr/backup $id is encrypted: give --key-file FILE/, 'verify without the key says why');
($ok, $out, $err) = run_warden('backup', 'verify', '--dir', $dir, $id, '--key-file', $wrong);
like($err, qr/wrong key for backup $id/, 'verify with a wrong key says so');
($ok, $out, $err) = run_warden('backup', 'verify', '--dir', $dir, $id, '--key-file', $key);
ok($ok, 'verify with the key reads the whole dump through pg_restore') or diag($err);

my $other = PostgreSQL::Test::Cluster->new('other');
$other->init;
$other->start;
$other->safe_psql('postgres', $_) for map { "CREATE DATABASE $_" } qw(whole t1 phys_t);

($ok, $out, $err) = run_warden('restore', '--dir', $dir, $id, '--database', 'whole', '-d', $other->connstr('postgres'),
	'--key-file', $key);
ok($ok, 'restore of the encrypted logical backup') or diag($err);
like($out, qr/row counts match/, 'with the row counts checked');
is($other->safe_psql('whole', "SELECT count(*) FROM customers WHERE name LIKE 'SECRET-MARKER-%'"), '3000',
	'every row back');
($ok, $out, $err) = run_warden('restore', '--dir', $dir, $id, '--table', 'public.orders', '--into',
	$other->connstr('t1'), '--key-file', $key);
ok($ok, 'restore --table out of the encrypted logical backup') or diag($err);
is($other->safe_psql('t1', 'SELECT count(*) FROM orders'), '20000', 'the table has its rows');
is($other->safe_psql('t1', "SELECT count(*) FROM pg_tables WHERE tablename = 'customers'"), '0',
	'and nothing else');
($ok, $out, $err) = run_warden('restore', '--dir', $dir, $id, '--table', 'public.orders', '--into',
	$other->connstr('t1'), '--key-file', $wrong);
like($err, qr/wrong key for backup $id/, 'restore --table with a wrong key is refused');

$node->command_like([ $warden, 'backup', 'drill', '--dir', $dir, $id, '-d', $connstr, '--key-file', $key ],
	qr/drill of $id: passed/, 'drill of the encrypted logical backup passes');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname LIKE 'warden_drill%'"), '0',
	'scratch database dropped');
my @leftovers = grep { !m{/(backup\.json|dump\.enc|globals\.sql)$} } glob("$dir/$id/*");
is(join(',', @leftovers), '', 'nothing decrypted was left in the backup folder');

# A flipped byte in the sealed dump, with backup.json changed to match: the
# authentication tag stops the restore, and the target gets no half-restored table.
my $file = "$dir/$id/dump.enc";
my $flipped = $raw;
substr($flipped, length($flipped) - 100, 1) = chr(ord(substr($flipped, length($flipped) - 100, 1)) ^ 1);
spew($file, $flipped);
($ok, $out, $err) = run_warden('backup', 'verify', '--dir', $dir, $id, '--key-file', $key);
ok(!$ok, 'verify finds the flipped byte');
like($err, qr/dump\.enc/, 'and names the file');
my $json = decode_json(slurp_file("$dir/$id/backup.json"));
require Digest::SHA;
$_->{sha256} = Digest::SHA::sha256_hex($flipped) for grep { $_->{name} eq 'dump.enc' } @{ $json->{files} };
delete $json->{verify_ok};
spew("$dir/$id/backup.json", JSON::PP->new->canonical->encode($json));
($ok, $out, $err) = run_warden('backup', 'verify', '--dir', $dir, $id, '--key-file', $key);
ok(!$ok, 'verify of a tampered dump with a matching backup.json fails');
like($err, qr/dump\.enc: encrypted segment \d+ does not authenticate/, 'the authentication tag catches it');
$other->safe_psql('postgres', 'CREATE DATABASE tampered');
($ok, $out, $err) = run_warden('restore', '--dir', $dir, $id, '--database', 'tampered', '-d',
	$other->connstr('postgres'), '--key-file', $key);
ok(!$ok, 'restore of the tampered dump fails');
like($err, qr/does not authenticate/, 'naming the authentication failure');
spew($file, $raw);

# An encrypted physical backup: drill, and one table out of it through a scratch server.
($ok, $out, $err) = run_warden('backup', 'create', '--dir', $dir, '-d', $connstr, '--encrypt', '--key-file', $key,
	'--quiet');
ok($ok, 'encrypted physical backup') or diag($err);
chomp(my $phys = $out);
($ok, $out, $err) = run_warden('backup', 'drill', '--dir', $dir, $phys, '-d', $connstr);
ok(!$ok, 'drill of an encrypted physical backup without the key fails');
like($err, qr/backup $phys is encrypted: give --key-file FILE/, 'and says why');
($ok, $out, $err) = run_warden('backup', 'drill', '--dir', $dir, $phys, '-d', $connstr, '--key-file', $key);
ok($ok, 'drill of the encrypted physical backup') or diag($out . $err);
like($out, qr/drill of $phys: passed/, 'passes');
$node->safe_psql('shop', 'DELETE FROM orders WHERE id > 100');
($ok, $out, $err) = run_warden('restore', '--dir', $dir, $phys, '--table', 'public.orders', '--database', 'shop',
	'--into', $other->connstr('phys_t'), '--key-file', $key);
ok($ok, 'restore --table out of the encrypted physical backup') or diag($err);
is($other->safe_psql('phys_t', 'SELECT count(*) FROM orders'), '20000', 'the table as it was backed up');

done_testing();
