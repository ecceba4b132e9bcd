# pg_dump and pg_restore keep what login hygiene must not lose: the lockout policy, locks
# in force (a permanent lock stays), the security events and the expiry policies. Idle
# counters are transient and are not dumped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('login_dump');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_warden;
CREATE TABLE sessions (id int PRIMARY KEY, expires_at timestamptz);
CREATE INDEX ON sessions (expires_at);
SELECT warden.register_expiry('sessions', 'expires_at', batch_size => 500);
SELECT warden.lock('mallory@example.com');
SELECT * FROM warden.login_failed('alice@example.com');
UPDATE warden.lockout_policy SET threshold = 7, allowed_sources = '{10.0.0.0/8}';
-- The lockout writer puts the failure into the tables a moment later: the dump waits for it.
SELECT warden.lockout_flush();
});

my $dump = $node->basedir . '/warden.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

# The restore's own DDL is not drift: the restored database has the original's events only.
is($node->safe_psql('restored', "SELECT count(*) FROM warden.migration_events WHERE event = 'drift'"),
	$node->safe_psql('postgres', "SELECT count(*) FROM warden.migration_events WHERE event = 'drift'"),
	'restoring a dump records no drift');

is($node->safe_psql('restored', 'SELECT threshold, allowed_sources FROM warden.lockout_policy'),
	'7|{10.0.0.0/8}', 'the changed policy replaces the default one');
is($node->safe_psql('restored', "SELECT warden.is_locked('mallory\@example.com')"),
	't', 'a permanent lock survives');
is($node->safe_psql('restored', "SELECT count(*) FROM warden.login_attempts WHERE principal = 'alice\@example.com'"),
	'0', 'idle counters are not dumped');
is($node->safe_psql('restored', 'SELECT string_agg(event_type, \',\' ORDER BY id) FROM warden.security_events'),
	'locked,login_failed', 'events are kept');
is($node->safe_psql('restored',
	"SELECT failures FROM warden.login_failed('alice\@example.com'); SELECT warden.lockout_flush();
	  SELECT count(*) FROM warden.security_events"),
	"1\nt\n3", 'new events continue after the restored ones');
is($node->safe_psql('restored', 'SELECT tbl, batch_size FROM warden.expiry_policies'),
	'sessions|500', 'expiry policies are kept');

$node->stop('fast');
done_testing();
