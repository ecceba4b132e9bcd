# Audit trail: the sample auth-service wiring (011_warden_audit) on the contract tables,
# secrets never stored, disabling keeps history; audit rows written straight into the
# partition by the C++ trigger are WAL-logged (they survive a crash) and the trigger's
# caches survive the extension being dropped and created again in one session; the
# retention floor from the server's configuration against a warden_admin login.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = $ENV{WARDEN_ROOT};
my $node = PostgreSQL::Test::Cluster->new('audit');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');

# The tables of the sample schema, as far as 011 relies on them (the migrations
# engineer's 001..009 create the full versions).
$node->safe_psql('postgres', q{
	CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE, password_hash text,
	                    failed_login_attempts int DEFAULT 0, account_locked_until timestamptz,
	                    is_active bool DEFAULT true, created_at timestamptz DEFAULT now(),
	                    updated_at timestamptz DEFAULT now());
	CREATE TABLE roles (id bigserial PRIMARY KEY, name text UNIQUE, level int);
	CREATE TABLE user_roles (user_id bigint REFERENCES users, role_id bigint REFERENCES roles,
	                         granted_at timestamptz DEFAULT now(), expires_at timestamptz,
	                         PRIMARY KEY (user_id, role_id));
	CREATE TABLE api_keys (id bigserial PRIMARY KEY, user_id bigint REFERENCES users, key_prefix text,
	                       key_hash text, created_at timestamptz DEFAULT now(), expires_at timestamptz,
	                       revoked_at timestamptz);
});

my $up = slurp_file("$root/migrations/auth-service/011_warden_audit.up.sql");
my $down = slurp_file("$root/migrations/auth-service/011_warden_audit.down.sql");
$node->safe_psql('postgres', $up);
is($node->safe_psql('postgres',
	"SELECT string_agg(tgrelid::regclass || ':' || tgname, ',' ORDER BY tgrelid::regclass::text, tgname)
	 FROM pg_trigger WHERE tgname LIKE 'warden_audit%'"),
	'api_keys:warden_audit,api_keys:warden_audit_truncate,roles:warden_audit,roles:warden_audit_truncate,'
	. 'user_roles:warden_audit,user_roles:warden_audit_truncate,users:warden_audit,users:warden_audit_truncate',
	'011 up audits users, roles, user_roles and api_keys');
$node->safe_psql('postgres', $up);
is($node->safe_psql('postgres', 'SELECT count(*) FROM warden.audit_tables WHERE enabled'), '4',
	'applying 011 twice changes nothing');

$node->safe_psql('postgres', q{
	BEGIN;
	SELECT warden.set_actor('signup-form');
	INSERT INTO users (email, password_hash) VALUES ('ann@example.com', 'argon2id$secret-one');
	INSERT INTO roles (name, level) VALUES ('admin', 10);
	INSERT INTO user_roles (user_id, role_id) VALUES (1, 1);
	INSERT INTO api_keys (user_id, key_prefix, key_hash) VALUES (1, 'ak_live', 'sha256$secret-two');
	COMMIT;
	UPDATE users SET password_hash = 'argon2id$secret-three', updated_at = now() WHERE id = 1;
	UPDATE api_keys SET revoked_at = now(), key_hash = 'sha256$secret-four' WHERE id = 1;
	DELETE FROM user_roles;
});
is($node->safe_psql('postgres',
	"SELECT count(*) FROM warden.audit_log WHERE coalesce(old_values::text, '') || coalesce(new_values::text, '') LIKE '%secret%'"),
	'0', 'no password or key hash is ever stored');
is($node->safe_psql('postgres',
	"SELECT string_agg(table_name || ':' || excluded_changed::text, ',' ORDER BY table_name)
	 FROM warden.audit_log WHERE excluded_changed IS NOT NULL"),
	'api_keys:{key_hash},users:{password_hash}', 'that a secret changed is recorded');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM warden.audit_log WHERE actor = 'signup-form'"), '4',
	'the actor covers the whole transaction');
is($node->safe_psql('postgres',
	"SELECT record_key FROM warden.audit_log WHERE table_name = 'user_roles' AND op = 'DELETE'"),
	'{"role_id": 1, "user_id": 1}', 'composite key of user_roles');

$node->safe_psql('postgres', $down);
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'warden_audit%'"),
	'0', '011 down removes the triggers');
is($node->safe_psql('postgres', 'SELECT count(*) FROM warden.audit_log'), '7', '011 down keeps the history');

# Audit rows are inserted below the executor; they must be WAL-logged like any insert.
$node->safe_psql('postgres', $up);
$node->safe_psql('postgres', q{
	INSERT INTO roles (name, level) SELECT 'role' || i, i FROM generate_series(1, 500) i;
});
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres',
	"SELECT count(*) FROM warden.audit_log WHERE table_name = 'roles' AND op = 'INSERT'"),
	'501', 'committed audit rows survive a crash');
$node->safe_psql('postgres', "UPDATE roles SET level = level + 1 WHERE name = 'role1'");
is($node->safe_psql('postgres', "SELECT count(*) FROM warden.audit_log WHERE op = 'UPDATE' AND table_name = 'roles'"),
	'1', 'auditing continues after recovery');

# Drop and recreate the extension in one session: the trigger's cached OIDs are forgotten.
my ($ret, $out, $err) = $node->psql('postgres', q{
	CREATE TABLE t (id int PRIMARY KEY);
	SELECT warden.enable_audit('t');
	INSERT INTO t VALUES (1);
	DROP EXTENSION pg_warden CASCADE;
	CREATE EXTENSION pg_warden;
	SELECT warden.enable_audit('t');
	INSERT INTO t VALUES (2);
	SELECT count(*) FROM warden.audit_log;
}, on_error_stop => 1);
is($ret, 0, 'drop and create in one session works') or diag($err);
like($out, qr/1$/, 'the new log has the new event');

# The retention floor, set in the server's configuration, holds against a warden_admin
# login; the refused attempt is in the server log with the role that made it.
$node->safe_psql('postgres', q{
	CREATE ROLE auditor LOGIN IN ROLE warden_admin;
	ALTER SYSTEM SET warden.audit_min_retention = '30d';
	SELECT pg_reload_conf();
});
$node->poll_query_until('postgres', 'SHOW warden.audit_min_retention', '30d')
	or die 'the floor from postgresql.auto.conf never took effect';
my $log_offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', "SELECT warden.cleanup_audit('1 microsecond')",
	extra_params => ['-U', 'auditor']);
like($err, qr/below the floor warden.audit_min_retention \(30 days\)/, 'a warden_admin login cannot clean up below the floor');
ok($node->wait_for_log(qr/role auditor was refused warden\.cleanup_audit/, $log_offset),
	'the refused cleanup is in the server log, with the role');
($ret, $out, $err) = $node->psql('postgres', "UPDATE warden.audit_settings SET retention = '20 days'",
	extra_params => ['-U', 'auditor']);
like($err, qr/cannot be 20 days: the floor warden.audit_min_retention is 30 days/,
	'nor lower the retention below it');
$node->psql('postgres', "UPDATE warden.audit_settings SET retention = '40 days'", extra_params => ['-U', 'auditor']);
is($node->safe_psql('postgres',
	"SELECT actor || ': ' || detail FROM warden.security_events WHERE event_type = 'retention_changed'"),
	'auditor: warden.audit_settings.retention: 365 days -> 40 days', 'a change above it is recorded with its login');

# An excluded key column's keyed hash is the same after a restart: the key is stored.
$node->safe_psql('postgres', q{
	CREATE TABLE invites (code text PRIMARY KEY, note text);
	SELECT warden.enable_audit('invites', '{code}');
	INSERT INTO invites VALUES ('invite-code-1', 'a');
});
$node->restart;
$node->safe_psql('postgres', "DELETE FROM invites");
is($node->safe_psql('postgres',
	"SELECT count(DISTINCT record_key) || ':' || count(*) FROM warden.audit_log WHERE table_name = 'invites'
	   AND record_key->>'code' LIKE 'hmac-sha256:%' AND record_key::text NOT LIKE '%invite-code%'"),
	'1:2', 'one keyed hash for the row across a restart, never the value');

$node->stop('fast');
done_testing();
