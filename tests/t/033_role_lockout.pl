# Role lockout with real scram-sha-256 password logins over loopback TCP: the lock at the
# threshold, the refusal of the right password with exactly the text a wrong password
# gets (the reason only in the server log), the lock kept across a restart and a kill -9
# of the postmaster, unlock_role, exempt roles and the bootstrap superuser, per-source
# throttling and its allow-list.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

# docs/login-hygiene.md: what the role lockout worker writes is on disk this long after
# the authentication that changed it.
my $bound_seconds = 1.0;

my $node = PostgreSQL::Test::Cluster->new('role_lockout');
$node->init;
$node->append_conf('postgresql.conf', q{
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
warden.role_lockout = on
});
# Passwords over TCP; the test's own administration over the Unix socket (trust, which
# role lockout does not count).
open(my $hba, '>', $node->data_dir . '/pg_hba.conf') or die $!;
print $hba "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
close($hba);
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $superuser = sql('SELECT current_user');
sql(qq{
	CREATE EXTENSION pg_warden;
	UPDATE warden.lockout_policy SET threshold = 3;
	CREATE ROLE bob LOGIN PASSWORD 'bob-right';
	CREATE ROLE carol LOGIN PASSWORD 'carol-right';
	CREATE ROLE dave LOGIN PASSWORD 'dave-right';
	ALTER ROLE "$superuser" PASSWORD 'super-right';
});
# The worker loads the policy when it starts (and reads it again every second).
$node->restart;

# A password login over TCP; returns psql's exit code and the error text.
sub login
{
	my ($role, $password) = @_;
	local $ENV{PGPASSWORD} = $password;
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT current_user',
		connstr => 'host=127.0.0.1 port=' . $node->port . " user=$role dbname=postgres",
		extra_params => ['-w']);
	$err =~ s/^\s+|\s+$//g;
	return ($ret, $err);
}

my ($ret, $wrong) = login('bob', 'guess-1');
like($wrong, qr/FATAL:  password authentication failed for user "bob"/, 'a wrong password is refused');
login('bob', 'guess-2');
my $log_offset = -s $node->logfile;
login('bob', 'guess-3');
is(sql("SELECT failures, lockouts, locked FROM warden.role_lockouts WHERE role_name = 'bob'"),
	'3|1|t', 'the third failure locks the role');
ok($node->log_contains('pg_warden role lockout: role "bob" locked until', $log_offset),
	'the server log says the role was locked');

$log_offset = -s $node->logfile;
my $refused;
($ret, $refused) = login('bob', 'bob-right');
isnt($ret, 0, 'the right password is refused while the role is locked');
is($refused, $wrong, 'with exactly the text a wrong password gets');
ok($node->log_contains('pg_warden role lockout: role "bob" is locked until .* the right password was refused',
		$log_offset),
	'the server log says why');

$node->poll_query_until('postgres',
	"SELECT count(*) = 5 FROM warden.security_events WHERE principal = 'bob'")
  or die 'the events of bob were not written';
is(sql("SELECT string_agg(event_type || ':' || coalesce(detail, '-') || ':' || host(source), ', ' ORDER BY id)
        FROM warden.security_events WHERE principal = 'bob'"),
	'role_login_failed:-:127.0.0.1, role_login_failed:-:127.0.0.1, role_login_failed:-:127.0.0.1, '
	  . 'role_locked:threshold reached:127.0.0.1, '
	  . 'role_login_failed:right password refused while locked:127.0.0.1',
	'every failure, the lock and the refusal are security events');

$node->restart;
($ret) = login('bob', 'bob-right');
isnt($ret, 0, 'the lock is kept across a restart');

is(sql("SELECT warden.unlock_role('bob')"), 't', 'unlock_role says the role was locked');
($ret) = login('bob', 'bob-right');
is($ret, 0, 'after unlock_role the right password logs in');
is(sql("SELECT failures, locked FROM warden.role_lockouts WHERE role_name = 'bob'"), '0|f',
	'and the counter is cleared');
is(sql("SELECT count(*) FROM warden.security_events WHERE principal = 'bob' AND event_type = 'role_unlocked'"),
	'1', 'the unlock is an event');

# The bootstrap superuser is exempt by default.
login($superuser, 'nope') for 1 .. 4;
($ret) = login($superuser, 'super-right');
is($ret, 0, 'the bootstrap superuser is never locked (the default exemption)');
is(sql("SELECT count(*) FROM warden.role_lockouts WHERE role_name = '$superuser'"), '0',
	'nor counted');

# An exempt role named in warden.role_lockout_exempt.
$node->append_conf('postgresql.conf', "warden.role_lockout_exempt = 'carol'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('warden.role_lockout_exempt') = 'carol'")
  or die 'the setting was not reloaded';
login('carol', 'nope') for 1 .. 4;
($ret) = login('carol', 'carol-right');
is($ret, 0, 'a role in warden.role_lockout_exempt is never locked');

# Per source address: more than source_threshold (20) failures from one address in its
# window, over any role names, and the address is refused for every role, the right
# password included, with the same text; the allow-list lifts it.
login("ghost$_", 'nope') for 1 .. 25;
$log_offset = -s $node->logfile;
($ret, $refused) = login('bob', 'bob-right');
isnt($ret, 0, 'a throttled source is refused even with the right password');
like($refused, qr/FATAL:  password authentication failed for user "bob"$/, 'with the wrong-password text');
ok($node->log_contains('pg_warden role lockout: source address 127.0.0.1 is throttled', $log_offset),
	'the server log says why');
is(sql("SELECT count(*) FROM warden.role_lockouts WHERE role_name LIKE 'ghost%' AND locked"), '0',
	'failures spread over many role names lock none of them');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM warden.security_events WHERE event_type = 'role_source_throttled'")
  or die 'no role_source_throttled event';
sql("UPDATE warden.lockout_policy SET allowed_sources = '{127.0.0.0/8}'");
my $allowed = 0;
for (1 .. 100)
{
	($ret) = login('bob', 'bob-right');
	last if ($allowed = $ret == 0);
	sleep(0.1);
}
ok($allowed, 'an allow-listed source is not throttled (the worker reads the policy again)');

# kill -9 of the postmaster once the bound has passed after the lock: it is kept.
login('dave', "guess-$_") for 1 .. 3;
my $locked_at = time;
is(sql("SELECT locked FROM warden.role_lockouts WHERE role_name = 'dave'"), 't', 'dave is locked');
# The bound itself is what is tested here: wait it out, then crash.
sleep($bound_seconds - (time - $locked_at)) if time - $locked_at < $bound_seconds;
my $pid = $node->{_pid};
$node->kill9;
my $started = 0;
for (1 .. 300)
{
	if (kill(0, $pid) == 0)
	{
		last if ($started = $node->start(fail_ok => 1));
		$node->{_pid} = undef;    # what start found was the old server's lock file
	}
	sleep(0.1);
}
ok($started, 'the server starts again after kill -9 of the postmaster');
($ret) = login('dave', 'dave-right');
isnt($ret, 0, "a lock ${bound_seconds}s old is kept across kill -9");
is(sql("SELECT count(*) FROM warden.security_events WHERE principal = 'dave' AND event_type = 'role_locked'"),
	'1', 'and so is its event');

$node->stop('fast');
done_testing();
