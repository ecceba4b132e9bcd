# warden backup create --logical / verify / restore --database / drill: a round trip
# with row counts compared, a non-empty target refused, and a damaged dump caught by the
# full read that pg_restore --list would miss.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('logical');
$node->init;
$node->start;
my $dir = $node->basedir . '/backups';

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
	CREATE EXTENSION pg_warden;
	CREATE SCHEMA "Odd Schema";
	CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE, created_at timestamptz DEFAULT now());
	INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 30000) g;
	CREATE TABLE "Odd Schema"."Sessions" (id int PRIMARY KEY, user_id bigint REFERENCES users);
	INSERT INTO "Odd Schema"."Sessions" SELECT g, g FROM generate_series(1, 5000) g;
	CREATE TABLE empty_one (id int);
});

my ($ok, $out, $err);
$ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '-d', $node->connstr('postgres'),
		'--logical', '--database', 'app', '--json' ], '>', \$out, '2>', \$err);
ok($ok, 'logical backup succeeds') or diag($err);
my $id = decode_json($out)->{id};
my $desc = decode_json(slurp_file("$dir/$id/backup.json"));
is($desc->{kind}, 'logical', 'catalog: kind');
is($desc->{database}, 'app', 'catalog: database');
is_deeply($desc->{row_counts},
	{ 'public.users' => 30000, '"Odd Schema"."Sessions"' => 5000, 'public.empty_one' => 0 },
	'exact row counts recorded, extension tables left out');
ok(-f "$dir/$id/dump/toc.dat", 'pg_dump directory format');
ok(-f "$dir/$id/globals.sql", 'globals saved beside it');
ok((grep { $_->{name} eq 'dump/toc.dat' && length($_->{sha256}) == 64 } @{ $desc->{files} }),
	'every file checksummed');
is($node->safe_psql('app', "SELECT kind || ' ' || status FROM warden.backups WHERE id = '$id'"),
	'logical completed', 'recorded in warden.backups of the backed-up database');

$node->command_like([ $warden, 'backup', 'verify', '--dir', $dir, $id ], qr/verified/, 'verify passes');

# Round trip into a new database.
$node->safe_psql('postgres', 'CREATE DATABASE copy');
$node->command_like(
	[ $warden, 'restore', '--dir', $dir, $id, '--database', 'copy', '-d', $node->connstr('postgres') ],
	qr/row counts match for 3 tables/, 'restore compares row counts');
is($node->safe_psql('copy', 'SELECT count(*) FROM "Odd Schema"."Sessions"'), '5000', 'rows restored');

$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $id, '--database', 'copy', '-d', $node->connstr('postgres') ],
	qr/database copy is not empty/, 'a non-empty database is refused');
$node->safe_psql('copy', 'DELETE FROM "Odd Schema"."Sessions" WHERE id > 10');
$node->command_like(
	[ $warden, 'restore', '--dir', $dir, $id, '--database', 'copy', '--clean', '-d', $node->connstr('postgres') ],
	qr/row counts match/, '--clean replaces its contents');
is($node->safe_psql('copy', 'SELECT count(*) FROM "Odd Schema"."Sessions"'), '5000', 'rows back after --clean');

$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $id, '--database', 'nosuchdb', '-d', $node->connstr('postgres') ],
	qr/nosuchdb/, 'a missing database is an error');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $id, '--target', $node->basedir . '/x' ],
	qr/logical: restore it with --database/, 'a logical backup is not restored into a directory');

$node->command_like([ $warden, 'backup', 'drill', '--dir', $dir, $id, '-d', $node->connstr('postgres') ],
	qr/drill of $id: passed/, 'drill into a scratch database passes');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname LIKE 'warden_drill%'"), '0',
	'scratch database dropped');

# A truncated data file with its checksum "fixed": only the full read notices.
my ($big) = sort { -s $b <=> -s $a } glob("$dir/$id/dump/*.dat.gz");
truncate $big, int((-s $big) / 2) or die;
my ($sum) = split ' ', `sha256sum $big`;
my $name = 'dump/' . ($big =~ s{.*/}{}r);
for my $f (@{ $desc->{files} })
{
	next unless $f->{name} eq $name;
	$f->{size} = -s $big;
	$f->{sha256} = $sum;
}
$desc->{verify_ok} = undef;
open my $fh, '>', "$dir/$id/backup.json"; print $fh encode_json($desc); close $fh;
$node->command_ok([ 'pg_restore', '--list', "$dir/$id/dump" ], 'pg_restore --list does not notice');
$node->command_fails_like([ $warden, 'backup', 'verify', '--dir', $dir, $id ], qr/dump: pg_restore failed/,
	'verify catches the truncated dump');

# Without the checksum fixed, the stored checksum names the file first.
truncate $big, 10 or die;
$node->command_fails_like([ $warden, 'backup', 'verify', '--dir', $dir, $id ], qr/\Q$name\E: size/,
	'verify names the truncated file');

# A database without pg_warden: the rows are counted with count(*).
$node->safe_psql('postgres', 'CREATE DATABASE plain');
$node->safe_psql('plain', 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1234)');
$ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '-d', $node->connstr('postgres'),
		'--logical', '--database', 'plain', '--json' ], '>', \$out, '2>', \$err);
ok($ok, 'logical backup of a database without pg_warden') or diag($err);
is_deeply(decode_json(slurp_file("$dir/" . decode_json($out)->{id} . '/backup.json'))->{row_counts},
	{ 'public.t' => 1234 }, 'its row counts come from count(*)');

$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '--logical' ],
	qr/--logical needs --database/, '--logical without --database');
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '--logical', '--database', 'nosuchdb',
		'-d', $node->connstr('postgres') ], qr/nosuchdb/, 'unknown database');

$node->stop;
done_testing();
