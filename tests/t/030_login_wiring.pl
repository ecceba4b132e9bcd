# The auth-service wiring migration 010: applied to the sample's users and user_sessions
# tables (a copy of the columns that 001/002 create), its wrappers drive pg_warden's
# lockout and expiry and mirror the decision into users; the down migration removes it all.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = "$ENV{WARDEN_ROOT}/migrations/auth-service";
my $node = PostgreSQL::Test::Cluster->new('login_wiring');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_warden;
CREATE TABLE users (
    id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, password_hash text NOT NULL,
    failed_login_attempts int NOT NULL DEFAULT 0, account_locked_until timestamptz,
    is_active bool NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE user_sessions (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL, last_seen_at timestamptz,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired', 'revoked')),
    ip inet);
CREATE INDEX user_sessions_expires_at ON user_sessions (expires_at);
INSERT INTO users (email, password_hash) VALUES ('alice@example.com', 'x'), ('bob@example.com', 'x');
INSERT INTO user_sessions (user_id, token_hash, expires_at, status)
SELECT 1, 't' || g, now() + (g - 11) * interval '6 hours', CASE WHEN g = 20 THEN 'revoked' ELSE 'active' END
FROM generate_series(1, 20) g;
});

$node->safe_psql('postgres', slurp_file("$dir/010_warden_sessions_lockout.up.sql"));

my $last;
for my $i (1 .. 5) {
	$last = $node->safe_psql('postgres',
		"SELECT locked, failures FROM record_failed_login('alice\@example.com', '203.0.113.9')");
}
is($last, 't|5', 'the fifth failure locks the account');
is($node->safe_psql('postgres',
	"SELECT failed_login_attempts, account_locked_until > now() FROM users WHERE id = 1"),
	'5|t', 'users mirrors the counter and the lock');
is($node->safe_psql('postgres',
	"SELECT locked FROM record_successful_login('Alice\@example.com')"),
	't', 'the right password is refused while locked, whatever the case of the address');
is($node->safe_psql('postgres', "SELECT unlock_user_account('alice\@example.com')"),
	't', 'an administrator unlocks');
is($node->safe_psql('postgres',
	"SELECT locked FROM record_successful_login('alice\@example.com', '198.51.100.1');
	 SELECT failed_login_attempts, account_locked_until IS NULL FROM users WHERE id = 1"),
	"f\n0|t", 'a login after the unlock succeeds and clears the mirror');
is($node->safe_psql('postgres',
	"SELECT lock_user_account('bob\@example.com', 30) > now();
	 SELECT account_locked_until > now() + interval '29 minutes' FROM users WHERE id = 2"),
	"t\nt", 'lock_user_account(email, minutes)');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT lock_user_account('bob\@example.com', 0)");
like($err, qr/lock minutes must be positive/, 'zero minutes is refused');
is($node->safe_psql('postgres',
	"SELECT locked FROM record_failed_login('nobody\@example.com')"),
	'f', 'unknown addresses get the same answer');

is($node->safe_psql('postgres',
	"SELECT session_is_valid(1), session_is_valid(15), session_is_valid(20)"),
	'f|t|f', 'expired and revoked sessions are invalid, live ones valid');
$node->safe_psql('postgres', 'CALL expire_old_sessions()');
# Sessions 1..7 expired a day or more ago (the grace period); 8..10 expired within it.
is($node->safe_psql('postgres', 'SELECT min(id), count(*) FROM user_sessions'),
	'8|13', 'expire_old_sessions deletes sessions past expiry and grace');
is($node->safe_psql('postgres',
	"SELECT rows_expired, status FROM warden.expiry_runs ORDER BY id DESC LIMIT 1"),
	'7|succeeded', 'the run is recorded');

$node->safe_psql('postgres', slurp_file("$dir/010_warden_sessions_lockout.down.sql"));
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_proc WHERE proname IN ('record_failed_login', 'record_successful_login',
	   'lock_user_account', 'unlock_user_account', 'session_is_valid', 'expire_old_sessions')
	 UNION ALL SELECT count(*) FROM warden.expiry_policies"),
	"0\n0", 'the down migration removes the wrappers and the expiry policy');

$node->stop('fast');
done_testing();
