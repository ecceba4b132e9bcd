# Failed logins survive the caller's rollback, a restart, a clean shutdown and (within
# the documented bound) a kill -9 of the postmaster: an application that records a
# failure inside its request transaction and rolls it back loses nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# docs/login-hygiene.md: a failure is on disk at most this long after login_failed returned.
my $bound_seconds = 1.0;

my $node = PostgreSQL::Test::Cluster->new('login_rollback');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Kills the postmaster with SIGKILL and starts the node again once the old server's
# processes have let go of its data directory and shared memory.
sub kill9_and_start
{
	my $pid = $node->{_pid};
	$node->kill9;
	for (1 .. 300)
	{
		if (kill(0, $pid) == 0)
		{
			return 1 if $node->start(fail_ok => 1);
			$node->{_pid} = undef;    # what start found was the old server's lock file
		}
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# The application's pattern: each failed login is recorded, then the request's
# transaction rolls back.
my $attempts = join("\n",
	map { "BEGIN; SELECT locked, failures FROM warden.login_failed('alice\@example.com', '203.0.113.5'); ROLLBACK;" }
	  1 .. 8);
is(sql($attempts), join("\n", 'f|1', 'f|2', 'f|3', 'f|4', 't|5', 't|5', 't|5', 't|5'),
	'eight failures in rolled-back transactions: the fifth locks, the others after it are refused');
sql('SELECT warden.lockout_flush()');
is(sql("SELECT count(*) FILTER (WHERE event_type = 'login_failed'), count(*) FILTER (WHERE event_type = 'locked')
      FROM warden.security_events WHERE principal = 'alice\@example.com'"),
	'8|1', 'every failure and the lock are security events');
is(sql("BEGIN; SELECT locked FROM warden.login_succeeded('alice\@example.com', '203.0.113.5'); ROLLBACK;"),
	't', 'the right password is refused while locked');

$node->restart;
is(sql("SELECT locked, failures FROM warden.login_succeeded('alice\@example.com', '203.0.113.5')"),
	't|5', 'the lock is kept across a restart');
is(sql("SELECT warden.is_locked('alice\@example.com')"), 't', 'is_locked agrees after the restart');

# A clean shutdown right after the failures: the writer writes what is pending first.
sql("SELECT warden.login_failed('s' || i) FROM generate_series(1, 300) i");
$node->stop('fast');
$node->start;
is(sql("SELECT count(*) FROM warden.login_attempts WHERE principal LIKE 's%'"), '300',
	'a fast shutdown right after 300 failures keeps every one');
is(sql("SELECT count(*) FROM warden.security_events WHERE principal LIKE 's%'"), '300',
	'... and their events');

# kill -9 of the postmaster while failures are being recorded (one a millisecond, each
# with the time it returned): every failure that returned more than the bound before the
# kill is on disk after crash recovery.
my $calls = sql(q{
	SELECT i, extract(epoch FROM clock_timestamp()), pg_sleep(0.001)
	FROM generate_series(1, 2500) i CROSS JOIN LATERAL warden.login_failed('k' || i) f
});
my $killed_at = sql('SELECT extract(epoch FROM clock_timestamp())');
ok(kill9_and_start(), 'the server starts again after kill -9 of the postmaster');

my %kept = map { $_ => 1 } split /\n/,
  sql("SELECT substr(principal, 2) FROM warden.login_attempts WHERE principal LIKE 'k%'");
my %evented = map { $_ => 1 } split /\n/,
  sql("SELECT substr(principal, 2) FROM warden.security_events WHERE principal LIKE 'k%'");
my ($old, $lost_old, $recent, $lost_recent) = (0, 0, 0, 0);
for my $line (split /\n/, $calls)
{
	my ($i, $at) = split /\|/, $line;
	my $missing = !$kept{$i} || !$evented{$i};
	if ($at < $killed_at - $bound_seconds)
	{
		$old++;
		$lost_old++ if $missing;
	}
	else
	{
		$recent++;
		$lost_recent++ if $missing;
	}
}
cmp_ok($old, '>', 1000, "most failures returned more than ${bound_seconds}s before the kill ($old)");
is($lost_old, 0, "none of those is lost: counter and event are on disk");
note("of the $recent failures of the last ${bound_seconds}s before the kill, $lost_recent were lost");

$node->stop('fast');
done_testing();
