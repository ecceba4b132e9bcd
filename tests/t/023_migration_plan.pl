# Migration safety end to end: `warden migrate plan` reports what pending migrations would
# lock, rewrite and scan; `up` refuses what the policy refuses unless the migration allows
# it; and with a real long transaction in the way, a migration's statements give up their
# place in the lock queue after warden.migration_statement_lock_timeout and retry, so the
# application's queries behind them keep running.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WardenMigrations;
use IPC::Run;
use JSON::PP;

my $warden = $ENV{WARDEN_BIN};

my $node = PostgreSQL::Test::Cluster->new('plan');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
my $db = $node->connstr('postgres');


sub sql { return $node->safe_psql('postgres', shift); }


my ($rc, $out, $err);

# ---- plan, the policy, and a directive ----
my %files = (
	'001_accounts.sql' => "CREATE TABLE accounts (id int PRIMARY KEY, owner int, note text);\n"
	  . "INSERT INTO accounts SELECT g, g % 50, 'x' FROM generate_series(1, 20000) g;\n",
	'002_owner_index.sql' => "CREATE INDEX accounts_owner ON accounts (owner);\n",
	'003_owner_bigint.sql' => "ALTER TABLE accounts ALTER COLUMN owner TYPE bigint;\n");
my $dir = folder(%files);
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $dir, '--target', '1');
is($rc, 0, 'the table with rows is applied first');
sql('ANALYZE accounts');

($rc, $out, $err) = warden('migrate', 'plan', '-d', $db, '--dir', $dir, '--json');
is($rc, 0, 'plan exits 0 when nothing is refused');
my $plan = decode_json($out);
is(scalar @{ $plan->{migrations} }, 2, 'two pending migrations planned');
my ($index, $retype) = @{ $plan->{migrations} };
is($index->{statements}[0]{findings}[0]{code}, 'PW101', 'the plain CREATE INDEX is flagged');
is($index->{statements}[0]{locks}[0]{mode}, 'ShareLock', 'with the lock it took');
is($index->{statements}[0]{tables}[0]{rows}, 20000, 'on a table of 20000 rows');
is($retype->{statements}[0]{rewrites}[0]{reason}, 'column type', 'the type change rewrites the table');
is(sql('SELECT count(*) FROM warden.migrations'), '1', 'planning applied nothing');
is(sql("SELECT to_regclass('accounts_owner') IS NULL"), 't', 'and built nothing');

($rc, $out, $err) = warden('migrate', 'status', '-d', $db, '--dir', $dir, '--json');
my $status = decode_json($out);
is($status->{plan}[1]{statements}[0]{findings}[0]{code}, 'PW106', 'status --json carries the plan');

sql("UPDATE warden.migration_policy SET threshold = 1000 WHERE rule = 'rewrite_bytes'");
($rc, $out, $err) = warden('migrate', 'plan', '-d', $db, '--dir', $dir);
is($rc, 1, 'plan exits 1 when the policy refuses');
like($out, qr/PW111 refuse: rewrite of public\.accounts \(\d+(\.\d)? [kM]B\) is above the policy limit/,
	'the refusal names the table and the limit');

($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $dir);
is($rc, 1, 'up refuses');
like($err, qr/migration 003 \(owner_bigint\), line 1, public\.accounts refused by the migration policy/,
	'naming the migration, line and table');
like($err, qr/warn PW101: migration 002 \(owner_index\)/, 'and warns about the index');
is(sql('SELECT count(*) FROM warden.migrations'), '1', 'nothing was applied');

$files{'003_owner_bigint.sql'} = "-- warden:allow rewrite\n" . $files{'003_owner_bigint.sql'};
my $allowed = folder(%files);
($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $allowed);
is($rc, 0, 'the directive lets it run');
is(sql("SELECT detail->>'allow' FROM warden.migration_events WHERE version = '003'"), '["rewrite"]',
	'and the ledger records it');

# ---- a real long transaction in the way ----
sql('CREATE TABLE busy (id int); INSERT INTO busy SELECT generate_series(1, 1000); ANALYZE busy');
my $long = IPC::Run::start([ 'psql', '-X', '-d', $db, '-c',
	"SET application_name = 'long_tx'; BEGIN; SELECT count(*) FROM busy; SELECT pg_sleep(300);" ],
	'>', \my $l_out, '2>', \my $l_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
	  . "WHERE a.application_name = 'long_tx' AND l.relation = 'busy'::regclass AND l.granted"),
	'a long transaction holds a lock on busy');
my $long_pid = sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'long_tx'");

my $alter = folder('010_busy_flag.sql' => "ALTER TABLE busy ADD COLUMN flag boolean;\n");
# The migrator, with a short statement lock timeout and many retries, named 'migrator'.
sub start_migrator
{
	my ($dir, $out, $err) = @_;
	local $ENV{PGAPPNAME} = 'migrator';
	local $ENV{PGOPTIONS} =
	  '-c warden.migration_statement_lock_timeout=200ms -c warden.migration_lock_retries=1000';
	return IPC::Run::start([ $warden, 'migrate', 'up', '-d', $db, '--dir', $dir, '--allow-out-of-order' ],
		'>', $out, '2>', $err);
}
my ($m_out, $m_err) = ('', '');
my $migrator = start_migrator($alter, \$m_out, \$m_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'migrator' "
	  . "AND wait_event_type = 'Extension'"),
	'the migration gave up a lock wait and backs off');

# The application's reads queue behind the migration's ACCESS EXCLUSIVE request for at
# most the statement lock timeout: each finishes well within a 1.5 s statement timeout,
# while the long transaction still blocks the migration.
my $reads_ok = 0;
for my $i (1 .. 10)
{
	my ($r, $o, $e) = $node->psql('postgres',
		"SET statement_timeout = '1500ms'; SELECT count(*) FROM busy");
	$reads_ok++ if $r == 0 && $o eq '1000';
}
is($reads_ok, 10, 'ten application reads ran while the migration waited');
is(sql("SELECT count(*) FROM warden.migrations WHERE version = '010'"), '0', 'the migration still waits');

sql("SELECT pg_terminate_backend($long_pid)");
$long->finish;
$migrator->finish;
is($? >> 8, 0, 'the migration ran once the long transaction was gone');
like($m_err, qr/line 1: no lock within 200 ms \(blocked by pid $long_pid \(application "long_tx", active, transaction open/,
	'each wait names the blocking session');
is(sql("SELECT state FROM warden.migrations WHERE version = '010'"), 'applied', 'applied');

# Retries recorded in the ledger (the table is empty: no plan first, the apply itself waits).
sql('CREATE TABLE quiet (id int)');
$long = IPC::Run::start([ 'psql', '-X', '-d', $db, '-c',
	"SET application_name = 'long_tx2'; BEGIN; SELECT count(*) FROM quiet; SELECT pg_sleep(300);" ],
	'>', \$l_out, '2>', \$l_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
	  . "WHERE a.application_name = 'long_tx2' AND l.relation = 'quiet'::regclass AND l.granted"),
	'another long transaction holds a lock on quiet');
$long_pid = sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'long_tx2'");
my $quiet = folder('020_quiet_flag.sql' => "ALTER TABLE quiet ADD COLUMN flag boolean;\n");
$migrator = start_migrator($quiet, \$m_out, \$m_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'migrator' "
	  . "AND wait_event_type = 'Extension'"),
	'the migration backs off');
sql("SELECT pg_terminate_backend($long_pid)");
$long->finish;
$migrator->finish;
is($? >> 8, 0, 'then applies');
is( sql("SELECT (detail->'lock_waits'->0->'blocked_by'->0->>'pid') = '$long_pid', "
		  . "detail->'lock_waits'->0->'blocked_by'->0->>'application_name', "
		  . "(detail->'lock_waits'->0->>'attempt')::int >= 1 "
		  . "FROM warden.migration_events WHERE version = '020' AND event = 'applied'"),
	't|long_tx2|t', 'the applied event records the wait and who blocked it');

# Retries that run out: exit 1 naming the blocker, nothing applied.
$long = IPC::Run::start([ 'psql', '-X', '-d', $db, '-c',
	"SET application_name = 'long_tx3'; BEGIN; SELECT count(*) FROM quiet; SELECT pg_sleep(300);" ],
	'>', \$l_out, '2>', \$l_err);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
	  . "WHERE a.application_name = 'long_tx3' AND l.relation = 'quiet'::regclass AND l.granted"),
	'a third long transaction');
$long_pid = sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'long_tx3'");
my $gives_up = folder('030_quiet_drop.sql' => "ALTER TABLE quiet DROP COLUMN flag;\n");
{
	local $ENV{PGOPTIONS} = '-c warden.migration_statement_lock_timeout=100ms -c warden.migration_lock_retries=2';
	($rc, $out, $err) = warden('migrate', 'up', '-d', $db, '--dir', $gives_up, '--allow-out-of-order');
}
is($rc, 1, 'retries run out: exit 1');
like($err, qr/migration 030 \(quiet_drop\) failed at line 1: could not get its locks within 100 ms, 3 times; blocked by pid $long_pid \(application "long_tx3"/,
	'the reason names the blocking session');
is(sql("SELECT count(*) FROM warden.migrations WHERE version = '030'"), '0', 'nothing applied');
like(sql("SELECT detail->>'error' FROM warden.migration_events WHERE version = '030' AND event = 'failed'"),
	qr/could not get its locks .* blocked by pid $long_pid/, 'the failure and its blocker are in the event log');
sql("SELECT pg_terminate_backend($long_pid)");
$long->finish;

$node->stop;
done_testing();
