# The security events' and the ledger's chains under their real writers: login failures
# queued in shared memory and copied by the lockout writer, role login failures counted by
# the authentication hook and written by the role lockout worker (both record when the
# event happened, before the row is written), and migrations. Everything the worker's job
# seals verifies (no event looks inserted into a slice sealed before its row was written),
# and a deleted security event or an edited migration event is found with its seal.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('seal_events');
$node->init;
$node->append_conf('postgresql.conf', q{
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
warden.role_lockout = on
warden.maintenance_naptime = 1
});
open(my $hba, '>', $node->data_dir . '/pg_hba.conf') or die $!;
print $hba "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
close($hba);
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_warden;
	UPDATE warden.lockout_policy SET threshold = 3;
	UPDATE warden.audit_settings SET seal_interval = '1 second';
	UPDATE warden.jobs SET schedule = '1 second', next_run_at = now() WHERE name = 'seal_audit';
	CREATE ROLE bob LOGIN PASSWORD 'bob-right';
});
$node->restart;
my $conninfo = $node->connstr('postgres');

sub audit_verify
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $warden, 'audit', 'verify', '-d', $conninfo, @_ ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# Role login failures over TCP, then application login failures through the lockout writer.
for my $guess (1 .. 4)
{
	local $ENV{PGPASSWORD} = "guess-$guess";
	$node->psql('postgres', 'SELECT 1',
		connstr => 'host=127.0.0.1 port=' . $node->port . ' user=bob dbname=postgres',
		extra_params => ['-w']);
}
$node->safe_psql('postgres', q{
	SELECT warden.login_failed('ann@example.com', '192.0.2.7') FROM generate_series(1, 4);
	SELECT warden.lockout_flush();
	SELECT warden.apply_migration('1', 'create_t', 'CREATE TABLE t (id int);', 'DROP TABLE t;');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) FILTER (WHERE event_type LIKE 'role_%') >= 3 AND count(*) FILTER (WHERE event_type = 'locked') >= 1
	FROM warden.security_events})
  or die 'the lockout events were not written';

# Every event under a seal, by the worker's job.
$node->poll_query_until('postgres', q{
	SELECT bool_and(coalesce((SELECT max(s.slice_end) FROM warden.audit_seals s WHERE s.chain = c.chain), '-infinity') > c.newest)
	FROM (SELECT 'security_events' AS chain, max(recorded_at) AS newest FROM warden.security_events
	      UNION ALL SELECT 'migration_events', max(occurred_at) FROM warden.migration_events) c})
  or die 'the events were not sealed';

my $late = $node->safe_psql('postgres',
	"SELECT count(*) FROM warden.security_events WHERE occurred_at < recorded_at - interval '1 millisecond'");
note("$late event(s) recorded after they happened (written by a lockout worker)");
cmp_ok($late, '>', 0, 'some events were written after the time they record');

my ($code, $out, $err) = audit_verify();
is($code, 0, 'the sealed events verify') or diag($out, $err);
like($out, qr/^security_events: ok, \d+ seal\(s\), [1-9]\d* row\(s\)/m, 'security events checked');
like($out, qr/^migration_events: ok, \d+ seal\(s\), [1-9]\d* row\(s\)/m, 'migration events checked');

# A superuser deletes the lockout of ann: the seal of its slice is named.
my $seq = $node->safe_psql('postgres', q{
	SELECT s.seq FROM warden.audit_seals s, warden.security_events e
	WHERE s.chain = 'security_events' AND e.event_type = 'locked'
	  AND e.recorded_at >= s.slice_start AND e.recorded_at < s.slice_end LIMIT 1});
$node->safe_psql('postgres', q{DELETE FROM warden.security_events WHERE event_type = 'locked'});
($code, $out, $err) = audit_verify();
is($code, 1, 'a deleted security event: exit 1');
like($out, qr/^security_events: FAILED at seal $seq .*: rows deleted: event locked: 1 row\(s\) sealed, 0 found/m,
	'a deleted security event: named with its seal') or diag($out);

# An edited migration event (the ledger's guard switched off by a superuser).
$seq = $node->safe_psql('postgres', q{
	SELECT s.seq FROM warden.audit_seals s, warden.migration_events e
	WHERE s.chain = 'migration_events' AND e.event = 'applied'
	  AND e.occurred_at >= s.slice_start AND e.occurred_at < s.slice_end LIMIT 1});
$node->safe_psql('postgres', q{
	BEGIN;
	ALTER TABLE warden.migration_events DISABLE TRIGGER migration_events_guard;
	UPDATE warden.migration_events SET checksum = 'forged' WHERE event = 'applied';
	ALTER TABLE warden.migration_events ENABLE TRIGGER migration_events_guard;
	COMMIT;
});
($code, $out, $err) = audit_verify();
like($out, qr/^migration_events: FAILED at seal $seq .*: rows changed: event applied/m,
	'an edited migration event: named with its seal') or diag($out);

done_testing();
