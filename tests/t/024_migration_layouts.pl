# Real migration histories: the four folder layouts (migrations/layouts/*), each applied,
# rolled back to zero and applied again; empty and comment-only files as no-op
# migrations; a byte-order mark; the commented template of `create`; the common options
# on every subcommand; non-transactional down scripts; a folder that fits no layout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WardenMigrations;
use IPC::Run;
use JSON::PP;

my $layouts = "$ENV{WARDEN_ROOT}/migrations/layouts";

my $node = PostgreSQL::Test::Cluster->new('layouts');
$node->init;
$node->start;



my ($rc, $out, $err);

# ---- each layout: up, status, down to zero, up again ----
my %expect = (
	'golang-migrate' => {
		versions => '000001,000002,000003,000004,000005,000006',
		tables => 'identities,identity_credentials,sessions',
		index => 'identity_credentials_identity_id_idx' },
	'flyway' => {
		versions => '1,1.1,1.2,1.10,2',
		names => 'init,add_email,data_fix,index_email,Account_tokens',
		tables => 'account_tokens,accounts',
		index => 'accounts_email_idx' },
	'dbmate' => {
		versions => '20240101120000,20240102120000,20240103120000,20240104120000',
		tables => 'tokens,users',
		index => 'users_name_idx' },
	'suffixed' => {
		versions => '20200101000001000000,20200101000002000000,20200101000003000000,20200101000005000000,20200101000006000000',
		tables => 'identities,networks',
		index => 'identities_nid_idx' },
);
for my $layout (sort keys %expect)
{
	my $e = $expect{$layout};
	my $dbname = $layout =~ s/-/_/gr;
	$node->safe_psql('postgres', "CREATE DATABASE $dbname");
	$node->safe_psql($dbname, 'CREATE EXTENSION pg_warden');
	my $db = $node->connstr($dbname);
	my @args = ('-d', $db, '--dir', "$layouts/$layout");
	my $tables = sub {
		$node->safe_psql($dbname,
			q{SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables WHERE schemaname = 'public'});
	};

	($rc, $out, $err) = warden('migrate', 'status', @args, '--json');
	is($rc, 0, "$layout: status exits 0");
	my $status = decode_json($out);
	is($status->{format}, $layout, "$layout: detected");
	is(join(',', map { $_->{version} } @{ $status->{migrations} }), $e->{versions},
		"$layout: versions as the files write them, in order");
	is(join(',', map { $_->{name} } @{ $status->{migrations} }), $e->{names}, "$layout: names as the files give them")
	  if $e->{names};

	for my $round (1, 2)
	{
		($rc, $out, $err) = warden('migrate', 'up', @args);
		is($rc, 0, "$layout, round $round: up exits 0") or diag($err);
		my $n = scalar(split /,/, $e->{versions});
		like($out, qr/^$n applied, 0 skipped/, "$layout, round $round: every migration applied");
		is($tables->(), $e->{tables}, "$layout, round $round: the tables exist");
		is($node->safe_psql($dbname, "SELECT to_regclass('$e->{index}') IS NOT NULL"), 't',
			"$layout, round $round: the concurrent index exists");
		($rc, $out, $err) = warden('migrate', 'verify', @args);
		is($rc, 0, "$layout, round $round: verify ok (the ledger has the files' checksums)");

		($rc, $out, $err) = warden('migrate', 'down', @args, '--target', '0');
		is($rc, 0, "$layout, round $round: down to zero exits 0") or diag($err);
		is($tables->(), '', "$layout, round $round: nothing left");
		is($node->safe_psql($dbname, "SELECT count(*) FROM warden.migrations WHERE state <> 'rolled_back'"), '0',
			"$layout, round $round: every migration rolled back");
	}
	($rc, $out, $err) = warden('migrate', 'up', @args);
	is($rc, 0, "$layout: applied again for good");
}

# Flyway: the ledger keeps digits that order 1.10 after 1.2; --target takes the file's version.
is($node->safe_psql('flyway', q{SELECT string_agg(name, ',' ORDER BY version_number) FROM warden.migrations}),
	'init,add_email,data_fix,index_email,Account_tokens', 'flyway: ledger order is part by part');
($rc, $out, $err) = warden('migrate', 'down', '-d', $node->connstr('flyway'), '--dir', "$layouts/flyway",
	'--target', '1.2');
is($rc, 0, 'flyway: down --target 1.2');
like($out, qr/^rolled back 2\nrolled back 1.10\n2 rolled back; current version 1.2$/m, 'flyway: versions shown as the files write them');
is($node->safe_psql('flyway', q{SELECT string_agg(name, ',' ORDER BY version_number) FROM warden.migrations WHERE state = 'applied'}),
	'init,add_email,data_fix', 'flyway: 1.10 and 2 rolled back, 1.2 kept');

# suffixed: postgres files won, other dialects were never sent.
is($node->safe_psql('suffixed', q{SELECT count(*) FROM warden.migration_events WHERE event = 'applied' AND version = '20200101000004000000'}),
	'0', 'suffixed: a mysql-only version is ignored');
is($node->safe_psql('suffixed', q{SELECT transactional FROM warden.migrations WHERE version = '20200101000003000000'}),
	'f', 'suffixed: .autocommit. ran outside a transaction');
is($node->safe_psql('dbmate', q{SELECT transactional FROM warden.migrations WHERE version = '20240102120000'}),
	'f', 'dbmate: transaction:false ran outside a transaction');

# ---- no-op migrations, the byte-order mark ----
my $gm = $node->connstr('golang_migrate');
($rc, $out, $err) = warden('migrate', 'status', '-d', $gm, '--dir', "$layouts/golang-migrate");
like($out, qr/000004\s+backfill_schema_ids\s+ok/, 'status shows the comment-only migration applied');
like($out, qr/000006\s+identity_state\s+ok/, 'and the one with an empty down file');
isnt($node->safe_psql('golang_migrate', q{SELECT coalesce(checksum, '') FROM warden.migrations WHERE version = '000004'}),
	'', 'the no-op migration has a checksum');
is($node->safe_psql('golang_migrate', q{SELECT starts_with(down_sql, 'DROP') FROM warden.migrations WHERE version = '000005'}),
	't', 'the byte-order mark is not in the stored script');

my $empty = folder('001_empty.up.sql' => '', '001_empty.down.sql' => '', '002_blank.sql' => " \n\n",
	'003_bom.sql' => "\xef\xbb\xbfCREATE TABLE bom_first (a int);\n");
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
my $db = $node->connstr('postgres');
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $empty);
is($rc, 0, 'empty files and a BOM: up exits 0') or diag($err);
like($out, qr/3 applied/, 'all three applied');
is($node->safe_psql('postgres', q{SELECT count(*) FROM warden.migration_events WHERE event = 'applied'}), '3',
	'each recorded in the event log');

# ---- create writes a commented template, in the folder's layout ----
my $created = PostgreSQL::Test::Utils::tempdir('created');
($rc, $out, $err) = warden('migrate', 'create', 'first', '--dir', $created, '--sequential');
is($rc, 0, 'create exits 0');
my $body = slurp_file("$created/001_first.up.sql");
like($body, qr/^-- Migration 001 first: up\n--\n/, 'the up file is a commented template');
unlike($body, qr/^--\s*warden:/m, 'with no directive line');
ok(-s "$created/001_first.down.sql", 'the down file is not empty');
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl', 'CREATE EXTENSION pg_warden');
($rc, $out, $err) = warden('migrate', 'up', '-d', $node->connstr('tmpl'), '--dir', $created);
is($rc, 0, 'the template applies as a no-op') or diag($err);
my $fw = folder('V1__a.sql' => "SELECT 1;\n");
($rc, $out, $err) = warden('migrate', 'create', 'next', '--dir', $fw, '--sequential');
ok(-f "$fw/V2__next.sql" && -f "$fw/U2__next.sql", 'create follows a Flyway folder');
my $dm = folder('1_a.sql' => "-- migrate:up\nSELECT 1;\n");
($rc, $out, $err) = warden('migrate', 'create', 'next', '--dir', $dm, '--sequential');
like(slurp_file("$dm/002_next.sql"), qr/^-- migrate:up\n.*^-- migrate:down\n/ms, 'and a dbmate one');

# ---- the common options on every subcommand ----
my $plain = folder('001_a.up.sql' => "CREATE TABLE opt_a (a int);\n", '001_a.down.sql' => "DROP TABLE opt_a;\n");
$node->safe_psql('postgres', 'CREATE DATABASE opts');
$node->safe_psql('opts', 'CREATE EXTENSION pg_warden');
my @common = ('-d', $node->connstr('opts'), '--dir', $plain, '--format', 'auto', '--lock-timeout', '5s', '--quiet');
for my $cmd ([ 'status' ], [ 'plan' ], [ 'up' ], [ 'verify' ], [ 'history' ], [ 'down' ], [ 'baseline', '0' ])
{
	($rc, $out, $err) = warden('migrate', @$cmd, @common);
	is($rc, 0, "migrate $cmd->[0] accepts --dir, --format, --lock-timeout and --quiet") or diag($err);
}
($rc, $out, $err) = warden('migrate', 'status', @common[0 .. 3], '--format', 'liquibase');
is($rc, 2, 'an unknown --format is a usage error');
like($err, qr/^warden: --format is auto, golang-migrate, flyway, dbmate or suffixed$/, 'with its reason');
($rc, $out, $err) = warden('migrate', 'status', @common[0 .. 3], '--format', 'flyway');
is($rc, 1, 'a forced layout the files do not fit: exit 1');
like($err, qr/^warden: not flyway migration files: "001_a.down.sql", "001_a.up.sql"$/m, 'names the files');

# ---- down --dir warns when a down file differs from the stored one ----
$node->safe_psql('opts', 'SELECT 1');
warden('migrate', 'up', '-d', $node->connstr('opts'), '--dir', $plain);
my $edited = folder('001_a.up.sql' => "CREATE TABLE opt_a (a int);\n", '001_a.down.sql' => "DROP TABLE opt_a CASCADE;\n");
($rc, $out, $err) = warden('migrate', 'down', '-d', $node->connstr('opts'), '--dir', $edited);
is($rc, 0, 'down with an edited down file exits 0');
like($err, qr/warning: 001_a.down.sql differs from the down script stored when 001_a was applied; the stored one runs/,
	'and warns that the stored script runs');

# ---- a non-transactional down script: begin, statements, finish ----
my $nontx = folder(
	'001_t.up.sql' => "CREATE TABLE nt (a int);\nINSERT INTO nt SELECT generate_series(1, 1000);\n",
	'001_t.down.sql' => "DROP TABLE nt;\n",
	'002_i.up.sql' => "-- warden:no-transaction\nCREATE INDEX CONCURRENTLY nt_a ON nt (a);\n",
	'002_i.down.sql' => "-- warden:no-transaction\nDROP INDEX CONCURRENTLY nt_a;\nSELECT 1;\n");
$node->safe_psql('postgres', 'CREATE DATABASE nontx');
$node->safe_psql('nontx', 'CREATE EXTENSION pg_warden');
my $nt = $node->connstr('nontx');
($rc, $out, $err) = warden('migrate', 'up', '-d', $nt, '--dir', $nontx);
is($rc, 0, 'non-transactional up');
my $direct = $node->psql('nontx', 'SELECT warden.rollback_migration()', stderr => \$err);
like($err, qr/the down script of migration 002 is marked "-- warden:no-transaction"/,
	'rollback_migration refuses a non-transactional down script before running anything');
($rc, $out, $err) = warden('migrate', 'down', '-d', $nt, '--dir', $nontx, '--target', '0');
is($rc, 0, 'down runs DROP INDEX CONCURRENTLY outside a transaction') or diag($err);
is($node->safe_psql('nontx', "SELECT to_regclass('nt') IS NULL"), 't', 'both rolled back');
is($node->safe_psql('nontx', q{SELECT string_agg(event, ',' ORDER BY id) FROM warden.migration_events WHERE version = '002'}),
	'started,applied,started,rolled_back', 'the rollback went through begin and finish');
is($node->safe_psql('nontx', q{SELECT detail->>'rollback' FROM warden.migration_events WHERE version = '002' ORDER BY id DESC OFFSET 1 LIMIT 1}),
	'true', 'its start is marked as a rollback');

# A failing non-transactional down script: failed, repaired like a failed up.
($rc, $out, $err) = warden('migrate', 'up', '-d', $nt, '--dir', $nontx);
$node->safe_psql('nontx', 'DROP INDEX nt_a');
($rc, $out, $err) = warden('migrate', 'down', '-d', $nt, '--dir', $nontx);
is($rc, 1, 'a failing non-transactional down: exit 1');
like($err, qr/rollback of migration 002 \(i\) failed at line 2: index "nt_a" does not exist/, 'names the line');
is($node->safe_psql('nontx', q{SELECT state FROM warden.migrations WHERE version = '002'}), 'failed', 'recorded as failed');
($rc, $out, $err) = warden('migrate', 'repair', '002', '-d', $nt, '--resolution', 'retry');
is($rc, 0, 'repaired');
is($node->safe_psql('nontx', q{SELECT state FROM warden.migrations WHERE version = '002'}), 'rolled_back',
	'retry: the rollback counts as done');

# ---- Flyway repeatable migrations: re-applied after the versioned ones when changed ----
$node->safe_psql('postgres', 'CREATE DATABASE rep');
$node->safe_psql('rep', 'CREATE EXTENSION pg_warden');
my $rep_db = $node->connstr('rep');
my $rep = folder('V1__t.sql' => "CREATE TABLE t (a int);\n",
	'R__views.sql' => "CREATE OR REPLACE VIEW t_view AS SELECT a FROM t;\n",
	'R__functions.sql' => "CREATE OR REPLACE FUNCTION t_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM t';\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $rep_db, '--dir', $rep);
is($rc, 0, 'repeatables: up exits 0') or diag($err);
like($out, qr/^1 applied, 0 skipped; current version 1\n2 repeatable migrations re-applied, 0 unchanged$/m,
	'repeatables: both applied after the versioned one');
($rc, $out, $err) = warden('migrate', 'status', '-d', $rep_db, '--dir', $rep);
like($out, qr/^R\s+functions\s+ok\nR\s+views\s+ok$/m, 'repeatables: status shows them');
($rc, $out, $err) = warden('migrate', 'up', '-d', $rep_db, '--dir', $rep);
like($out, qr/^0 repeatable migrations re-applied, 2 unchanged$/m, 'repeatables: unchanged ones are not run again');
open(my $fh, '>', "$rep/R__views.sql") or die $!;
print $fh "CREATE OR REPLACE VIEW t_view AS SELECT a, a * 2 AS b FROM t;\n";
close($fh);
($rc, $out, $err) = warden('migrate', 'status', '-d', $rep_db, '--dir', $rep);
like($out, qr/^R\s+views\s+pending$/m, 'repeatables: a changed one is pending');
($rc, $out, $err) = warden('migrate', 'up', '-d', $rep_db, '--dir', $rep);
like($out, qr/^1 repeatable migration re-applied, 1 unchanged$/m, 'repeatables: the changed one re-applied');
is($node->safe_psql('rep', q{SELECT name || ':' || applications FROM warden.repeatable_migrations ORDER BY name}),
	"functions:1\nviews:2", 'repeatables: their rows count the applications');
is($node->safe_psql('rep', q{SELECT count(*) FROM t_view WHERE b IS NULL}), '0', 'repeatables: the new view is in place');
my $rep_guard = $node->psql('rep', 'DELETE FROM warden.repeatable_migrations', stderr => \$err);
like($err, qr/changed only by pg_warden/, 'repeatables: their table is guarded like the ledger');

# ---- a folder that fits no layout names the files that did not parse ----
my $mixed = folder('001_a.up.sql' => "SELECT 1;\n", '002_b.up.sql' => "SELECT 1;\n", 'V3__c.sql' => "SELECT 1;\n",
	'notes.sql' => "SELECT 1;\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $mixed);
is($rc, 1, 'no layout fits: exit 1');
like($err, qr/^warden: the files of the folder fit no migration layout; as golang-migrate these do not parse: "V3__c.sql", "notes.sql"$/m,
	'names the files that did not parse');

done_testing();
