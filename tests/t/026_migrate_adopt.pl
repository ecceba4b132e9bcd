# warden migrate adopt: another tool's history becomes the ledger's. Flyway's and
# golang-migrate's tables are created as their documentation defines them; dbmate's and
# node-pg-migrate's by the tools themselves (npm packages under build/bench-node, from
# scripts/install-deps.sh --bench; skipped when missing). Each: the applied versions are
# recorded with their files' checksums, the tool's table is left untouched, `up` applies
# only the rest; a dirty or failed state, or an applied version without a file, is refused.
use strict;
use warnings;
use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WardenMigrations;
use IPC::Run;

my $layouts = "$ENV{WARDEN_ROOT}/migrations/layouts";
my $node_bin = "$ENV{WARDEN_ROOT}/build/bench-node/node_modules/.bin";

my $node = PostgreSQL::Test::Cluster->new('adopt');
$node->init;
$node->start;


sub fresh
{
	my $db = shift;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION pg_warden');
	return $node->connstr($db);
}

my ($rc, $out, $err);

# ---- Flyway: flyway_schema_history as Flyway creates it on PostgreSQL ----
my $fly = fresh('fly');
$node->safe_psql('fly', q{
CREATE TABLE "flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success");
});
my $rank = 0;
for my $f ([ '1', 'init' ], [ '1.1', 'add email' ], [ '1.2', 'data fix' ])
{
	my ($v, $desc) = @$f;
	my $file = "V${v}__" . ($desc =~ s/ /_/gr) . '.sql';
	$node->safe_psql('fly', slurp_file("$layouts/flyway/$file"));
	$rank++;
	$node->safe_psql('fly', qq{INSERT INTO flyway_schema_history VALUES
		($rank, '$v', '$desc', 'SQL', '$file', 12345, 'flyway', now(), 5, true)});
}
my $history = $node->safe_psql('fly', 'SELECT md5(string_agg(t::text, \'|\' ORDER BY installed_rank)) FROM flyway_schema_history t');

($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'flyway', '-d', $fly, '--dir', "$layouts/flyway");
is($rc, 0, 'flyway: adopt exits 0') or diag($err);
like($out, qr/^3 adopted, 0 already in the ledger, from flyway/, 'flyway: three versions adopted');
is($node->safe_psql('fly', q{SELECT string_agg(name, ',' ORDER BY version_number) FROM warden.migrations WHERE state = 'applied'}),
	'init,add_email,data_fix', 'flyway: recorded under the files\' names');
is($node->safe_psql('fly', q{SELECT count(*) FROM warden.migration_events WHERE event = 'baseline' AND detail->>'adopted_from' = 'flyway'}),
	'3', 'flyway: each logged as adopted from flyway');
($rc, $out, $err) = warden('migrate', 'verify', '-d', $fly, '--dir', "$layouts/flyway");
like($out, qr/verify ok: 3 ok, 2 pending/, 'flyway: the checksums are the files\'');
($rc, $out, $err) = warden('migrate', 'up', '-d', $fly, '--dir', "$layouts/flyway");
like($out, qr/^2 applied, 0 skipped/, 'flyway: up applies only 1.10 and 2');
is($node->safe_psql('fly', 'SELECT md5(string_agg(t::text, \'|\' ORDER BY installed_rank)) FROM flyway_schema_history t'),
	$history, 'flyway: its table is untouched');
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'flyway', '-d', $fly, '--dir', "$layouts/flyway");
like($out, qr/^0 adopted, 3 already in the ledger/, 'flyway: adopting again changes nothing');

# Refusals: a failed row; an applied version without a file. Nothing adopted.
my $flybad = fresh('flybad');
$node->safe_psql('flybad', q{CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50),
	description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int,
	installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL,
	success boolean NOT NULL);
	INSERT INTO flyway_schema_history VALUES (1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'f', now(), 1, true),
	                                         (2, '1.1', 'add email', 'SQL', 'V1.1__add_email.sql', 1, 'f', now(), 1, false)});
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'flyway', '-d', $flybad, '--dir', "$layouts/flyway");
is($rc, 1, 'flyway: a failed migration is refused');
like($err, qr/^warden: flyway_schema_history records a failed migration, version 1.1: repair it with Flyway first; nothing adopted/,
	'flyway: with the reason');
$node->safe_psql('flybad', q{UPDATE flyway_schema_history SET success = true;
	INSERT INTO flyway_schema_history VALUES (3, '1.5', 'gone', 'SQL', 'V1.5__gone.sql', 1, 'f', now(), 1, true)});
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'flyway', '-d', $flybad, '--dir', "$layouts/flyway");
is($rc, 1, 'flyway: an applied version without a file is refused');
like($err, qr/records applied migrations with no file in \S+: 1.5; nothing adopted/, 'flyway: naming it');
is($node->safe_psql('flybad', 'SELECT count(*) FROM warden.migrations'), '0', 'flyway: nothing adopted');

# Bad input: an unknown tool is a usage error; a missing history table a one-line reason.
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'liquibase', '-d', $flybad, '--dir', "$layouts/flyway");
is($rc, 2, 'an unknown --from is a usage error');
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'dbmate', '-d', $flybad, '--dir', "$layouts/dbmate");
is($rc, 1, 'a missing history table: exit 1');
like($err, qr/^warden: dbmate's history table schema_migrations does not exist$/m, 'with its reason');
($rc, $out, $err) = warden('migrate', 'adopt', '--help');
like($out, qr/--from/, 'adopt --help');

# ---- golang-migrate: schema_migrations(version bigint, dirty boolean) ----
my $gm = fresh('gm');
my $gdir = "$layouts/golang-migrate";
$node->safe_psql('gm', 'CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)');
$node->safe_psql('gm', slurp_file($_)) for map { "$gdir/$_" }
  qw(000001_create_identities.up.sql 000002_create_identity_credentials.up.sql);
$node->safe_psql('gm', 'INSERT INTO schema_migrations VALUES (2, true)');
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'golang-migrate', '-d', $gm, '--dir', $gdir);
is($rc, 1, 'golang-migrate: a dirty state is refused');
like($err, qr/schema_migrations is dirty at version 2/, 'golang-migrate: with the reason');
$node->safe_psql('gm', 'UPDATE schema_migrations SET dirty = false');
($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'golang-migrate', '-d', $gm, '--dir', $gdir);
like($out, qr/^2 adopted/, 'golang-migrate: every version up to 2 adopted') or diag($err);
($rc, $out, $err) = warden('migrate', 'up', '-d', $gm, '--dir', $gdir);
like($out, qr/^4 applied, 0 skipped/, 'golang-migrate: up applies 3 to 6');
is($node->safe_psql('gm', 'SELECT version || \':\' || dirty FROM schema_migrations'), '2:false',
	'golang-migrate: its table is untouched');

# ---- dbmate and node-pg-migrate, run for real ----
SKIP:
{
	skip 'dbmate and node-pg-migrate are not installed (scripts/install-deps.sh --bench)', 8
	  unless -x "$node_bin/dbmate" && -x "$node_bin/node-pg-migrate";
	my $host = $node->host;
	my $port = $node->port;
	my $user = getpwuid($<);

	my $dm = fresh('dm');
	my $first = PostgreSQL::Test::Utils::tempdir('dbmate_first');
	copy("$layouts/dbmate/$_", $first) for qw(20240101120000_create_users.sql 20240102120000_index_users_name.sql);
	IPC::Run::run([ "$node_bin/dbmate", '--url', "postgres://$user\@/dm?socket=$host&port=$port&sslmode=disable",
			'--migrations-dir', $first, '--no-dump-schema', 'up' ], '>', \$out, '2>', \$err);
	is($? >> 8, 0, 'dbmate applied two migrations') or diag($err);
	($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'dbmate', '-d', $node->connstr('dm'), '--dir', "$layouts/dbmate");
	like($out, qr/^2 adopted/, 'dbmate: its two versions adopted') or diag($err);
	($rc, $out, $err) = warden('migrate', 'up', '-d', $node->connstr('dm'), '--dir', "$layouts/dbmate");
	like($out, qr/^2 applied, 0 skipped/, 'dbmate: up applies the other two');
	is($node->safe_psql('dm', 'SELECT count(*) FROM schema_migrations'), '2', 'dbmate: its table is untouched');

	my $npm = fresh('npm');
	my $ndir = PostgreSQL::Test::Utils::tempdir('npm');
	for my $i (1 .. 3)
	{
		open(my $fh, '>', "$ndir/170000000000${i}_create-w$i.sql") or die $!;
		print $fh "-- Up Migration\nCREATE TABLE w$i (id int);\n\n-- Down Migration\nDROP TABLE w$i;\n";
		close($fh);
	}
	IPC::Run::run([ "$node_bin/node-pg-migrate", 'up', '2', '-m', $ndir, '--no-verbose' ],
		'>', \$out, '2>', \$err,
		init => sub { $ENV{DATABASE_URL} = "postgres://$user\@localhost/npm?host=$host&port=$port"; });
	is($? >> 8, 0, 'node-pg-migrate applied two migrations') or diag($err);
	($rc, $out, $err) = warden('migrate', 'adopt', '--from', 'node-pg-migrate', '-d', $node->connstr('npm'), '--dir', $ndir);
	like($out, qr/^2 adopted/, 'node-pg-migrate: its two migrations adopted by file name') or diag($err);
	($rc, $out, $err) = warden('migrate', 'up', '-d', $node->connstr('npm'), '--dir', $ndir);
	like($out, qr/^1 applied, 0 skipped/, 'node-pg-migrate: up applies the third, its up section only');
	is($node->safe_psql('npm', q{SELECT count(*) FROM pg_tables WHERE tablename LIKE 'w_'}), '3', 'node-pg-migrate: three tables');
}

done_testing();
