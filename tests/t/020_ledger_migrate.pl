# warden migrate end to end: the auth-service sample applies and rolls back cleanly, bad
# input is refused with nothing applied, a killed non-transactional migration is
# repaired, a held migration lock times out naming its holder, and a down script runs as
# the role that applied its migration.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WardenMigrations;
use IPC::Run;

my $warden = $ENV{WARDEN_BIN};
my $samples = "$ENV{WARDEN_ROOT}/migrations/auth-service";

my $node = PostgreSQL::Test::Cluster->new('ledger');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
my $db = $node->connstr('postgres');


sub sql { return $node->safe_psql('postgres', shift); }


my ($rc, $out, $err);

# ---- the auth-service sample set ----
($rc, $out, $err) = warden('migrate', 'status', '--dir', $samples, '-d', $db);
is($rc, 0, 'status exits 0');
like($out, qr/0 applied, 11 pending/, 'status: eleven pending migrations');

($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db, '--dry-run');
is($rc, 0, 'dry run exits 0');
like($out, qr/dry run: 11 would apply/, 'dry run reports what would happen');
is(sql('SELECT count(*) FROM warden.migrations'), '0', 'dry run left the ledger empty');
is(sql("SELECT to_regclass('users') IS NULL"), 't', 'dry run left no table behind');

($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db, '--target', '4');
is($rc, 0, 'up --target 4');
is(sql('SELECT warden.current_version()'), '004', 'up to the target only');

($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db);
is($rc, 0, 'up exits 0');
like($out, qr/7 applied, 0 skipped; current version 011/, 'the rest applied');
is( sql(q{SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'}),
	'api_keys,audit_logs,password_history,permissions,role_permissions,roles,security_events,user_roles,user_sessions,users',
	'every sample table exists');

($rc, $out, $err) = warden('migrate', 'verify', '--dir', $samples, '-d', $db);
is($rc, 0, 'verify exits 0 on a clean ledger');
like($out, qr/verify ok: 11 ok, 0 pending/, 'verify reports eleven ok');

($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db);
like($out, qr/0 applied, 0 skipped/, 'up again does nothing');

($rc, $out, $err) = warden('migrate', 'status', '--dir', $samples, '-d', $db, '--json');
my $status = eval { require JSON::PP; JSON::PP::decode_json($out) };
is($status->{current_version}, '011', 'status --json is JSON with the current version');
is(scalar @{ $status->{migrations} }, 11, 'status --json lists eleven migrations');

($rc, $out, $err) = warden('migrate', 'down', '-d', $db);
is($rc, 0, 'down exits 0');
like($out, qr/rolled back 011/, 'down rolls back the latest');
($rc, $out, $err) = warden('migrate', 'down', '-d', $db, '--target', '0', '--dry-run');
like($out, qr/10 would be rolled back/, 'down --dry-run reports');
is(sql('SELECT warden.current_version()'), '010', 'down --dry-run changed nothing');
($rc, $out, $err) = warden('migrate', 'down', '-d', $db, '--target', '0');
is($rc, 0, 'down --target 0 exits 0');
is(sql(q{SELECT count(*) FROM pg_tables WHERE schemaname = 'public'}), '0',
	'every sample migration rolled back cleanly');
($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db);
like($out, qr/11 applied/, 'the sample set applies again after a full rollback');

($rc, $out, $err) = warden('migrate', 'history', '-d', $db, '--limit', '3');
is(scalar(split /\n/, $out), 3, 'history --limit 3 prints three events');
like($out, qr/applied\s+011\s+warden_audit/, 'history shows the latest apply');

# ---- bad input: a clear one-line reason, exit 1 (2 for usage), nothing applied ----
sql('DROP EXTENSION pg_warden CASCADE');
sql('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
sql('CREATE EXTENSION pg_warden');

my %bad = (
	'missing folder' => [ [ '--dir', '/nonexistent/migrations' ], qr/cannot read migration folder/ ],
	'duplicate versions' => [ [ '--dir', folder('001_a.sql' => "CREATE TABLE a ();\n", '1_b.sql' => "CREATE TABLE b ();\n") ],
		qr/duplicate version/ ],
	'down without up' => [ [ '--dir', folder('001_a.sql' => "CREATE TABLE a ();\n", '002_b.down.sql' => "DROP TABLE b;\n") ],
		qr/down file "002_b.down.sql" has no up file/ ],
	'non-UTF-8 file' => [ [ '--dir', folder('001_a.sql' => "CREATE TABLE a ();\n", '002_b.sql' => "SELECT '\xe9';\n") ],
		qr/"002_b.sql" is not valid UTF-8/ ],
	'unknown directive' => [ [ '--dir', folder('001_a.sql' => "CREATE TABLE a ();\n", '002_b.sql' => "-- warden:no-transactions\nSELECT 1;\n") ],
		qr/002_b.sql, line 1: unknown directive/ ],
	'bad file name' => [ [ '--dir', folder('001_a.sql' => "CREATE TABLE a ();\n", 'b.sql' => "SELECT 1;\n") ],
		qr/"b.sql" is not a migration file name/ ],
);
for my $case (sort keys %bad)
{
	my ($args, $pattern) = @{ $bad{$case} };
	($rc, $out, $err) = warden('migrate', 'up', '-d', $db, @$args);
	is($rc, 1, "$case: exit 1");
	like($err, qr/^warden: .*$pattern/, "$case: one-line reason");
	is(scalar(split /\n/, $err), 1, "$case: exactly one line");
}
is(sql('SELECT count(*) FROM warden.migrations'), '0', 'bad input applied nothing');
is(sql("SELECT to_regclass('a') IS NULL"), 't', 'not even the valid first file');

($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $samples, '--target', 'x9');
is($rc, 2, 'a non-numeric --target is a usage error');
($rc, $out, $err) = warden('migrate', 'frobnicate');
is($rc, 2, 'an unknown subcommand is a usage error');
($rc, $out, $err) = warden('migrate', 'repair', '1', '-d', $db, '--resolution', 'maybe');
is($rc, 2, 'an unknown repair resolution is a usage error');

$node->safe_psql('postgres', 'CREATE DATABASE plain');
($rc, $out, $err) = warden('migrate', 'status', '--dir', $samples, '-d', $node->connstr('plain'));
is($rc, 1, 'a database without the extension: exit 1');
like($err, qr/pg_warden is not installed in database "plain"/, 'and says so');

($rc, $out, $err) = warden('migrate', 'status', '--dir', $samples, '-d', 'host=/nonexistent dbname=x');
is($rc, 1, 'connection failure: exit 1');
like($err, qr/^warden: could not connect/, 'connection failure reason');

# A failing migration: the ones before it are committed, it and the later ones are not.
my $failing = folder(
	'001_ok.sql' => "CREATE TABLE ok1 (a int);\n",
	'002_bad.sql' => "CREATE TABLE bad (a int);\n\nINSERT INTO bad\n  VALUES (1 / 0);\n",
	'003_after.sql' => "CREATE TABLE after3 (a int);\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $failing);
is($rc, 1, 'a failing migration: exit 1');
like($err, qr/^warden: migration 002 \(bad\) failed at line 3: division by zero$/m, 'names migration, line and error');
is(sql('SELECT string_agg(version, \',\' ORDER BY version) FROM warden.migrations'), '001', 'only the earlier one is applied');
is(sql("SELECT to_regclass('bad') IS NULL AND to_regclass('after3') IS NULL"), 't', 'nothing of the failed or later ones');
is(sql("SELECT count(*) FROM warden.migration_events WHERE event = 'failed' AND version = '002'"), '1',
	'the failure is in the event log');

# A modified applied migration is refused before anything runs.
my $modified = folder('001_ok.sql' => "CREATE TABLE ok1 (a bigint);\n", '003_after.sql' => "CREATE TABLE after3 (a int);\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $modified);
is($rc, 1, 'modified applied migration: exit 1');
like($err, qr/migration 001_ok was modified after it was applied \(applied checksum [0-9a-f]{64}, file checksum [0-9a-f]{64}\)/,
	'names both checksums');
($rc, $out, $err) = warden('migrate', 'verify', '-d', $db, '--dir', $modified);
is($rc, 1, 'verify exits 1 on a modified migration');
like($out, qr/modified 001_ok/, 'verify names it');
is(sql("SELECT to_regclass('after3') IS NULL"), 't', 'nothing applied after the refusal');

# Out of order: refused unless allowed.
my $ordered = folder('001_ok.sql' => "CREATE TABLE ok1 (a int);\n", '005_five.sql' => "CREATE TABLE five (a int);\n");
warden('migrate', 'up', '-d', $db, '--dir', $ordered);
my $late = folder('001_ok.sql' => "CREATE TABLE ok1 (a int);\n", '003_three.sql' => "CREATE TABLE three (a int);\n",
	'005_five.sql' => "CREATE TABLE five (a int);\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $late);
is($rc, 1, 'out of order: exit 1');
like($err, qr/migration 003_three is older than the latest applied migration 005/, 'out of order reason');
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $late, '--allow-out-of-order');
is($rc, 0, '--allow-out-of-order applies it');
is(sql("SELECT state FROM warden.migrations WHERE version = '003'"), 'applied', 'version 003 applied');

# ---- create ----
my $created = PostgreSQL::Test::Utils::tempdir('created');
($rc, $out, $err) = warden('migrate', 'create', 'add_widgets', '--dir', $created);
is($rc, 0, 'create exits 0');
like($out, qr{created \Q$created\E/\d{14}_add_widgets\.up\.sql}, 'create names a timestamped up file');
($rc, $out, $err) = warden('migrate', 'create', 'next_one', '--dir', $created, '--sequential');
like($out, qr{/\d{14}_next_one\.up\.sql|/20\d+_next_one}, 'sequential continues after a timestamp');
my $seq = PostgreSQL::Test::Utils::tempdir('sequential');
warden('migrate', 'create', 'first', '--dir', $seq, '--sequential');
($rc, $out, $err) = warden('migrate', 'create', 'second', '--dir', $seq, '--sequential');
like($out, qr{/002_second\.up\.sql}, 'sequential numbering: 002 after 001');
($rc, $out, $err) = warden('migrate', 'create', 'bad name', '--dir', $seq);
is($rc, 2, 'create refuses a bad name');

# ---- baseline ----
sql('CREATE DATABASE adopted');
$node->safe_psql('adopted', 'CREATE EXTENSION pg_warden');
# An existing database whose schema already matches versions 001..005, built by hand.
for my $file (sort glob("$samples/00[1-5]_*.up.sql"))
{
	$node->safe_psql('adopted', slurp_file($file));
}
($rc, $out, $err) = warden('migrate', 'baseline', '005', '-d', $node->connstr('adopted'));
is($rc, 0, 'baseline exits 0');
($rc, $out, $err) = warden('migrate', 'up', '-d', $node->connstr('adopted'), '--dir', $samples);
like($out, qr/6 applied, 0 skipped; current version 011/, 'after a baseline at 005 only 006..011 run');
($rc, $out, $err) = warden('migrate', 'baseline', '7', '-d', $node->connstr('adopted'));
is($rc, 1, 'a second baseline is refused');

# ---- a killed non-transactional migration, then repair ----
my $nontx = folder(
	'001_ok.sql' => "CREATE TABLE ok1 (a int);\n",
	'010_slow_index.sql' => "-- warden:no-transaction\nCREATE INDEX CONCURRENTLY ok1_a ON ok1 (a);\nSELECT pg_sleep(60);\n",
	'011_after.sql' => "CREATE TABLE after11 (a int);\n");
my ($bg_out, $bg_err) = ('', '');
my $bg = IPC::Run::start([ $warden, 'migrate', 'up', '-d', $db, '--dir', $nontx, '--allow-out-of-order' ],
	'>', \$bg_out, '2>', \$bg_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'"),
	'the non-transactional migration is running');
is(sql("SELECT state FROM warden.migration_status WHERE version = '010'"), 'running', 'recorded as running');
$bg->signal('KILL');
$bg->finish;
# The server notices the lost client only after the sleep; end that backend now.
sql("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'");
ok($node->poll_query_until('postgres',
	"SELECT state = 'interrupted' FROM warden.migration_status WHERE version = '010'"),
	'after the kill it shows as interrupted');

($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $nontx, '--allow-out-of-order');
is($rc, 1, 'up refuses while a migration is interrupted');
like($err, qr/migration 010_slow_index is interrupted; repair it first \(warden migrate repair 010\)/,
	'and says how to repair');
($rc, $out, $err) = warden('migrate', 'status', '-d', $db, '--dir', $nontx);
like($out, qr/010\s+slow_index\s+interrupted/, 'status shows the interrupted migration');
is(sql("SELECT to_regclass('after11') IS NULL"), 't', 'nothing after it ran');

# The index was built before the sleep: accept what it did.
($rc, $out, $err) = warden('migrate', 'repair', '010', '-d', $db, '--resolution', 'applied');
is($rc, 0, 'repair exits 0');
like($out, qr/migration 010 is now applied/, 'repair reports the new state');
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $nontx, '--allow-out-of-order');
is($rc, 0, 'up works again after the repair');
is(sql("SELECT state FROM warden.migrations WHERE version = '011'"), 'applied', 'the later migration ran');
is(sql(q{SELECT string_agg(event, ',' ORDER BY id) FROM warden.migration_events WHERE version = '010'}),
	'started,repaired', 'the event log has the start and the repair');

# A failing CREATE INDEX CONCURRENTLY: failed, reported with its invalid index.
sql('INSERT INTO ok1 VALUES (1), (1)');
my $unique = folder(
	'001_ok.sql' => "CREATE TABLE ok1 (a int);\n",
	'020_unique.sql' => "-- warden:no-transaction\nSELECT 1;\n\nCREATE UNIQUE INDEX CONCURRENTLY ok1_unique\n  ON ok1 (a);\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $unique, '--allow-out-of-order');
is($rc, 1, 'a failed non-transactional migration: exit 1');
like($err, qr/migration 020 \(unique\) failed at line 4: could not create unique index "ok1_unique"/, 'names the line');
is(sql("SELECT state FROM warden.migrations WHERE version = '020'"), 'failed', 'recorded as failed');
($rc, $out, $err) = warden('migrate', 'repair', '020', '-d', $db);
like($out, qr/now pending\ninvalid indexes remain: public.ok1_unique/, 'repair reports the invalid index');

# ---- a held migration lock: the utility gives up naming the holder ----
my $holder = IPC::Run::start([ 'psql', '-X', '-d', $db, '-c',
	"SET application_name = 'lock_holder'; BEGIN; SELECT pg_advisory_xact_lock(8602282538778381383); SELECT pg_sleep(30);" ],
	'>', \my $h_out, '2>', \my $h_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 1701727303 AND granted"),
	'another session holds the migration lock');
my $next = folder('001_ok.sql' => "CREATE TABLE ok1 (a int);\n", '030_next.sql' => "SELECT 1;\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $next, '--allow-out-of-order', '--lock-timeout', '300ms');
is($rc, 1, 'lock timeout: exit 1');
like($err, qr/another migration holds the migration lock; gave up after 300 ms/, 'lock timeout reason');
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock_holder'");
$holder->finish;

# ---- a down script runs as the role that applied its migration ----
sql(q{CREATE ROLE deployer LOGIN IN ROLE warden_admin;
       GRANT USAGE, CREATE ON SCHEMA public TO deployer;
       CREATE TABLE down_ran_as (who name);
       GRANT INSERT ON down_ran_as TO deployer});
my $as_deployer = "$db user=deployer";
my $owned = folder(
	'001_ok.sql' => "CREATE TABLE ok1 (a int);\n",
	'040_owned.up.sql' => "CREATE TABLE owned (a int);\n",
	'040_owned.down.sql' => "INSERT INTO down_ran_as SELECT current_user;\nDROP TABLE owned;\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $as_deployer, '--dir', $owned);
is($rc, 0, 'a warden_admin member applies a migration with a down script');
($rc, $out, $err) = warden('migrate', 'down', '-d', $db);
is($rc, 0, 'a superuser rolls it back');
is(sql('SELECT string_agg(who::text, \',\') FROM down_ran_as'), 'deployer',
	'its down script ran as the member that applied it');
is(sql("SELECT to_regclass('owned') IS NULL"), 't', 'and undid the migration');
warden('migrate', 'up', '-d', $as_deployer, '--dir', $owned);
($rc, $out, $err) = warden('migrate', 'down', '-d', $as_deployer);
is($rc, 0, 'the member rolls back its own migration');
my $by_superuser = folder(
	'001_ok.sql' => "CREATE TABLE ok1 (a int);\n",
	'041_super.up.sql' => "CREATE TABLE super_owned (a int);\n",
	'041_super.down.sql' => "DROP TABLE super_owned;\n");
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $by_superuser);
is($rc, 0, 'a superuser applies a migration with a down script');
($rc, $out, $err) = warden('migrate', 'down', '-d', $as_deployer);
is($rc, 1, 'the member may not run the superuser\'s down script: exit 1');
like($err, qr/^warden: cannot roll back migration 041: it was applied by role "\w+"/,
	'the reason names the role that applied it');
is(sql("SELECT state FROM warden.migrations WHERE version = '041'"), 'applied', 'nothing was rolled back');

$node->stop('fast');
done_testing();
