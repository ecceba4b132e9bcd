# Several application instances running `warden migrate up` at start: four at once over a
# set with CREATE INDEX CONCURRENTLY on a table of a million rows, a DROP INDEX
# CONCURRENTLY down script and ordinary migrations, five rounds, each followed by a full
# rollback. Every process exits 0, each version is applied once per round, no row is
# failed and nothing deadlocks: a waiter polls the migration lock in no transaction, so
# it holds no snapshot for CREATE INDEX CONCURRENTLY to wait for.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $warden = $ENV{WARDEN_BIN};
my $rows = $ENV{WARDEN_CONCURRENT_ROWS} // 1000000;
my $appliers = 4;
my $rounds = 5;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->append_conf('postgresql.conf', "deadlock_timeout = 100ms\nmax_connections = 40\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
$node->safe_psql('postgres',
	"CREATE TABLE big (id int, v int); INSERT INTO big SELECT g, g % 1000 FROM generate_series(1, $rows) g; ANALYZE big");
my $db = $node->connstr('postgres');

my $dir = PostgreSQL::Test::Utils::tempdir('concurrent');
my %files = (
	'001_a.up.sql' => "CREATE TABLE a (id int);\n",
	'001_a.down.sql' => "DROP TABLE a;\n",
	'002_big_v.up.sql' => "-- warden:no-transaction\nCREATE INDEX CONCURRENTLY big_v ON big (v);\n",
	'002_big_v.down.sql' => "-- warden:no-transaction\nDROP INDEX CONCURRENTLY big_v;\n",
	'003_b.up.sql' => "CREATE TABLE b (id int);\nINSERT INTO b SELECT id FROM big WHERE v = 7;\n",
	'003_b.down.sql' => "DROP TABLE b;\n",
	'004_big_id.up.sql' => "-- warden:no-transaction\nCREATE INDEX CONCURRENTLY big_id ON big (id);\n",
	'004_big_id.down.sql' => "-- warden:no-transaction\nDROP INDEX CONCURRENTLY big_id;\n",
	'005_c.up.sql' => "CREATE TABLE c (id int);\n",
	'005_c.down.sql' => "DROP TABLE c;\n");
for my $name (keys %files)
{
	open(my $fh, '>', "$dir/$name") or die $!;
	print $fh $files{$name};
	close($fh);
}

sub sql { return $node->safe_psql('postgres', shift); }

for my $round (1 .. $rounds)
{
	my @runs;
	for my $i (1 .. $appliers)
	{
		my %r = (out => '', err => '');
		$r{h} = IPC::Run::start([ $warden, 'migrate', 'up', '-d', $db, '--dir', $dir, '--lock-timeout', '0' ],
			'>', \$r{out}, '2>', \$r{err});
		push @runs, \%r;
	}
	my @codes;
	for my $r (@runs)
	{
		$r->{h}->finish;
		push @codes, $? >> 8;
	}
	is(join(',', @codes), join(',', (0) x $appliers), "round $round: every applier exits 0")
	  or diag(join("\n", map { $_->{err} } @runs));
	my $applied = 0;
	$applied += ($_->{out} =~ /^(\d+) applied/m ? $1 : 0) for @runs;
	is($applied, 5, "round $round: the five migrations were applied once in all");
	is(sql(q{SELECT string_agg(version || ':' || state, ',' ORDER BY version) FROM warden.migration_status}),
		'001:applied,002:applied,003:applied,004:applied,005:applied', "round $round: the ledger is right");
	is(sql(q{SELECT count(*) FROM warden.migration_events WHERE event = 'failed'}), '0', "round $round: nothing failed");
	is(sql(q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}), '0', "round $round: no invalid index");
	is(sql(q{SELECT count(*) FROM warden.migration_events WHERE event = 'applied'}), 5 * $round,
		"round $round: one applied event per version");

	my ($out, $err) = ('', '');
	IPC::Run::run([ $warden, 'migrate', 'down', '-d', $db, '--dir', $dir, '--target', '0' ], '>', \$out, '2>', \$err);
	is($? >> 8, 0, "round $round: full rollback") or diag($err);
	is(sql(q{SELECT count(*) FROM warden.migrations WHERE state <> 'rolled_back'}), '0',
		"round $round: everything rolled back");
	is(sql(q{SELECT count(*) FROM pg_indexes WHERE tablename = 'big'}), '0', "round $round: the indexes are gone");
}

done_testing();
