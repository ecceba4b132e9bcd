# `warden health`: exit codes 0/1/2/3 as check_postgres, the readable report, --json and
# --prometheus output, and a one-line reason when the server cannot be reached.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('health');
$node->init(allows_streaming => 1);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
# pg_warden's own components (backups, jobs, ...) are judged in their own tests; here the
# database checks decide, and a fresh cluster has read too little for a cache hit ratio.
$node->safe_psql('postgres',
	"UPDATE warden.health_thresholds SET enabled = false
	 WHERE category = 'warden' OR check_name = 'cache_hit_ratio'");
my $conninfo = $node->connstr('postgres');

sub health
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $warden, 'health', @args ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

my ($code, $out, $err) = health('-d', $conninfo);
is($code, 0, 'a healthy database exits 0') or diag($out, $err);
like($out, qr/^pg_warden health: ok\s+database postgres/m, 'report header');
like($out, qr/^summary: \d+ ok, 0 warning, 0 critical/m, 'summary line');
unlike($out, qr/\e\[/, 'no colour codes in a pipe');

# A sequence at 90 % of its range: warning. At 97 %: critical.
$node->safe_psql('postgres',
	"CREATE SEQUENCE near_max MAXVALUE 100; SELECT setval('near_max', 90)");
($code, $out) = health('-d', $conninfo);
is($code, 1, 'a warning exits 1');
like($out, qr/warning\s+sequences\s+89\.9 %/, 'the sequence check is the warning');

$node->safe_psql('postgres', "SELECT setval('near_max', 97)");
($code, $out) = health('-d', $conninfo, '--json');
is($code, 2, 'a critical check exits 2');
my $report = decode_json($out);
is($report->{status}, 'critical', 'JSON report status');
my ($seq) = grep { $_->{check} eq 'sequences' } @{ $report->{checks} };
is($seq->{status}, 'critical', 'JSON check status');
is($seq->{value}, 96.97, 'JSON check value');
ok($report->{response_ms}{total} > 0, 'JSON carries the measured response time');
is($report->{slow_statements}{available}, JSON::PP::false,
	'slow statements: marked unavailable without pg_stat_statements');

# Prometheus text format: HELP and TYPE before each family's samples; valid sample lines.
($code, $out) = health('-d', $conninfo, '--prometheus');
is($code, 2, '--prometheus keeps the exit code');
my (%typed, $bad);
for my $line (split /\n/, $out)
{
	if ($line =~ /^# TYPE ([a-z_]+) (gauge|counter)$/) { $typed{$1} = 1; next; }
	next if $line =~ /^# HELP [a-z_]+ \S/;
	if ($line =~ /^([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? -?[0-9.]+(?:e[-+]?\d+)?$/)
	{
		$bad .= "untyped: $line\n" unless $typed{$1};
		next;
	}
	$bad .= "malformed: $line\n";
}
ok(!$bad, 'every exposition line is valid') or diag($bad);
like($out, qr/^warden_health_status\{check="sequences",category="storage"\} 2$/m,
	'check status as a metric');
like($out, qr/^warden_health_response_seconds\{phase="report"\} [0-9.]+$/m,
	'response time measured by the utility');

($code, undef, $err) = health('-d', $conninfo, '--json', '--prometheus');
is($code, 2, '--json and --prometheus together are a usage error');

# A streaming standby: the primary sees it with its lag; on the standby itself the report
# works read-only (in_recovery) and a snapshot is a no-op.
$node->backup('health_backup');
my $standby = PostgreSQL::Test::Cluster->new('health_standby');
$standby->init_from_backup($node, 'health_backup', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
is($node->safe_psql('postgres', 'SELECT count(*) FROM warden.health_replication'),
	'1', 'the primary lists its standby');
($code, $out) = health('-d', $conninfo, '--json');
$report = decode_json($out);
my ($lag) = grep { $_->{check} eq 'replication_lag_bytes' } @{ $report->{checks} };
is($lag->{detail}, '1 standbys', 'replication lag check sees the standby');
is(scalar @{ $report->{replication}{standbys} }, 1, 'report lists the standby');
($code, $out, $err) = health('-d', $standby->connstr('postgres'), '--json');
$report = decode_json($out);
is($report->{in_recovery}, JSON::PP::true, 'report on the standby says so');
is($code, 2, 'the standby reports the same critical sequence') or diag($err);
$standby->safe_psql('postgres', 'CALL warden.health_snapshot()');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM warden.health_snapshots'),
	'0', 'no snapshot is written on a standby');
$standby->stop('fast');

# pg_stat_statements, when loaded, feeds the slow statement check.
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pg_warden,pg_cron,pg_stat_statements'\n"
	  . "warden.health_snapshot_retention = '2h'");
$node->restart;
is($node->safe_psql('postgres', 'SHOW warden.health_snapshot_retention'),
	'2h', 'the snapshot retention set in postgresql.conf is in force');
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_stat_statements;
	SELECT pg_stat_statements_reset();
	UPDATE warden.health_thresholds SET warning = 5, critical = 100000
	WHERE check_name = 'slow_statements';
});
$node->safe_psql('postgres', 'SELECT pg_sleep(0.01)') for 1 .. 10;
is($node->safe_psql('postgres',
		"SELECT status FROM warden.health_check() WHERE check_name = 'slow_statements'"),
	'warning', 'a statement averaging over 5 ms trips the lowered threshold');
($code, $out) = health('-d', $conninfo, '--json');
$report = decode_json($out);
is($report->{slow_statements}{available}, JSON::PP::true, 'slow statements available');
ok((grep { $_->{query} =~ /pg_sleep/ } @{ $report->{slow_statements}{statements} }),
	'the slow statement is listed');

# Unknown: the database has no pg_warden, or the server is down. One line on stderr.
$node->safe_psql('postgres', 'CREATE DATABASE bare');
($code, $out, $err) = health('-d', $node->connstr('bare'));
is($code, 3, 'no pg_warden in the database exits 3');
like($err, qr/^warden: health unknown: pg_warden is not installed/, 'reason given');

$node->stop('fast');
($code, $out, $err) = health('-d', $conninfo, '--timeout', '2');
is($code, 3, 'an unreachable server exits 3');
like($err, qr/^warden: health unknown: could not connect: [^\n]*\n\z/, 'one-line reason');
is($out, '', 'nothing on stdout');

done_testing();
