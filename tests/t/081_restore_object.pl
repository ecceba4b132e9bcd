# warden restore ID --table SCHEMA.NAME --into CONNINFO and --database NAME --into
# CONNINFO: one table or one database out of a physical backup chain (through a scratch
# server) and out of a logical backup, into another server, with row counts checked;
# refusals with their reasons.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->start;
my $dir = $node->basedir . '/backups';
my $connstr = $node->connstr('postgres');

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
	CREATE TABLE customers (id int PRIMARY KEY, name text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g;
	CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric);
	INSERT INTO orders SELECT g, 1 + g % 300, g * 1.5 FROM generate_series(1, 1000) g;
	CREATE SCHEMA "Mixed";
	CREATE TABLE "Mixed"."Case" AS SELECT g AS id FROM generate_series(1, 42) g;
});

my $full = `$warden backup create --dir $dir -d '$connstr' --quiet`;
chomp $full;
$node->safe_psql('shop', 'INSERT INTO orders SELECT g, 1, 0 FROM generate_series(1001, 1500) g');
my $inc = `$warden backup create --dir $dir -d '$connstr' --incremental --quiet`;
chomp $inc;
ok($inc ne '' && $inc ne $full, 'an incremental backup on top of a full one');
# Changes after the backup: the restores must not see them.
$node->safe_psql('shop', 'DELETE FROM orders WHERE id > 100');

my $other = PostgreSQL::Test::Cluster->new('other');
$other->init;
$other->start;
$other->safe_psql('postgres', $_) for map { "CREATE DATABASE $_" } qw(t1 t2 whole logical_t logical_db);

# One table out of the physical chain.
$node->command_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'public.orders', '--database', 'shop',
	  '--into', $other->connstr('t1') ],
	qr/restored table public\.orders of backup $inc \(database shop\): 1500 rows, as in the backup/,
	'one table from a physical chain');
is($other->safe_psql('t1', 'SELECT count(*), max(id) FROM orders'), '1500|1500', 'the table as backed up');
is($other->safe_psql('t1', "SELECT to_regclass('customers') IS NULL"), 't', 'and nothing else');

# Mixed case, with --database defaulting to --into's database name: refused there (no
# database "t2" in the backup), then taken from shop.
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'Mixed.Case', '--into', $other->connstr('t2') ],
	qr/database "t2" does not exist|has no table/, 'the source database defaults to the target\'s name');
$node->command_ok(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'Mixed.Case', '--database', 'shop',
	  '--into', $other->connstr('t2') ],
	'a table with a mixed-case schema and name');
is($other->safe_psql('t2', 'SELECT count(*) FROM "Mixed"."Case"'), '42', 'mixed-case table restored');

# A whole database out of the physical chain, as JSON.
my ($out, $err);
IPC::Run::run([ $warden, 'restore', '--dir', $dir, $inc, '--database', 'shop', '--into', $other->connstr('whole'),
		'--json' ], '>', \$out, '2>', \$err)
  or diag($err);
my $r = decode_json($out || '{}');
is_deeply($r->{rows}, { 'public.orders' => 1500, 'public.customers' => 300, '"Mixed"."Case"' => 42 },
	'a whole database, row counts as in the backup');
is($other->safe_psql('whole', 'SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer'), '1500',
	'with its foreign keys');

# Refusals.
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'public.orders', '--database', 'shop',
	  '--into', $other->connstr('t1') ],
	qr/table public\.orders already exists in the target database t1/, 'an existing table is not overwritten');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--database', 'shop', '--into', $other->connstr('whole') ],
	qr/the target database whole is not empty/, 'a database is restored only into an empty one');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'orders', '--into', $other->connstr('t2') ],
	qr/--table wants SCHEMA\.NAME/, 'a table name without its schema is refused');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'public.ord*', '--into', $other->connstr('t2') ],
	qr/--table wants SCHEMA\.NAME/, 'a pattern is refused');
$node->command_fails_like([ $warden, 'restore', '--dir', $dir, $inc, '--table', 'public.orders' ],
	qr/--table needs --into/, '--table without --into is refused');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--table', 'public.nothing', '--database', 'shop',
	  '--into', $other->connstr('t2') ],
	qr/has no table public\.nothing in database shop/, 'a table the backup does not have');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $inc, '--into', $other->connstr('t2'), '--target', '/tmp/x' ],
	qr/do not apply/, '--into with --target is refused');

# Logical backups: pg_restore of just the table, or all of it.
$node->safe_psql('shop', 'INSERT INTO orders SELECT g, 2, 0 FROM generate_series(101, 110) g');
my $logical = `$warden backup create --dir $dir -d '$connstr' --logical --database shop --quiet`;
chomp $logical;
$node->command_like(
	[ $warden, 'restore', '--dir', $dir, $logical, '--table', 'public.orders', '--into', $other->connstr('logical_t') ],
	qr/110 rows, as in the backup/, 'one table from a logical backup');
is($other->safe_psql('logical_t', "SELECT count(*), to_regclass('customers') IS NULL FROM orders"), '110|t',
	'only that table');
$node->command_like(
	[ $warden, 'restore', '--dir', $dir, $logical, '--database', 'shop', '--into', $other->connstr('logical_db') ],
	qr/row counts match for 3 tables/, 'a whole logical backup into another server');
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, $logical, '--database', 'other', '--into', $other->connstr('t2') ],
	qr/holds database shop, not other/, 'a logical backup holds one database');

done_testing();
