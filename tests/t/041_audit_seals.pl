# Seals over the audit trail, end to end: rows written by the trigger are sealed by the
# worker's job within the window (waited for, not slept), `warden audit verify` finds a
# deleted, an edited and a forged row and a partition dropped by hand, each with the seal
# it is in (and passes again once the row is put back), a dump restored with pg_restore
# verifies, and `warden audit head`, --json, --help and bad input behave.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('seals');
$node->init;
$node->append_conf('postgresql.conf', "warden.maintenance_naptime = 1\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_warden;
	UPDATE warden.audit_settings SET seal_interval = '1 second';
	UPDATE warden.jobs SET schedule = '1 second', next_run_at = now() WHERE name = 'seal_audit';
	CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int);
	SELECT warden.enable_audit('accounts');
});
my $conninfo = $node->connstr('postgres');

sub audit
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $warden, 'audit', @args ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# Wait until every audit row is under a seal: the worker's job did it, nobody called it.
sub wait_sealed
{
	my ($db) = @_;
	$node->poll_query_until($db // 'postgres', q{
		SELECT coalesce(max(slice_end), '-infinity') > (SELECT max(logged_at) FROM warden.audit_log)
		FROM warden.audit_seals WHERE chain = 'audit_log'})
	  or die 'the audit rows were not sealed';
}

my $written = $node->safe_psql('postgres', q{
	INSERT INTO accounts SELECT g, 'owner ' || g, 100 FROM generate_series(1, 20) g;
	UPDATE accounts SET balance = balance + 1 WHERE id % 2 = 0;
	DELETE FROM accounts WHERE id = 20;
	SELECT clock_timestamp();
});
wait_sealed();
my $window = $node->safe_psql('postgres', qq{
	SELECT round(extract(epoch FROM min(sealed_at) - '$written'::timestamptz)::numeric, 1)
	FROM warden.audit_seals WHERE slice_end > '$written'});
note("the last row was under a seal $window s after it was written (1-second slices, 1-second naptime)");
cmp_ok($window, '<', 10, 'the worker sealed the rows within the window');

my ($code, $out, $err) = audit('verify', '-d', $conninfo);
is($code, 0, 'an untouched trail verifies') or diag($out, $err);
like($out, qr/^audit_log: ok, \d+ seal\(s\), 31 row\(s\), sealed through \d{4}-/m, 'verify says what it checked');

($code, $out, $err) = audit('verify', '-d', $conninfo, '--json');
is($code, 0, 'verify --json exits 0');
my $doc = decode_json($out);
ok($doc->{ok}, 'JSON: ok');
is($doc->{chains}[0]{rows_checked}, 31, 'JSON: rows checked');

($code, $out, $err) = audit('head', '-d', $conninfo);
is($code, 0, 'head exits 0');
like($out, qr/^audit_log seal \d+ through \S+ \S+ sha256:[0-9a-f]{64} \(sealed /m, 'head prints the newest seal');
($code, $out, $err) = audit('head', '-d', $conninfo, '--json');
my $head = decode_json($out);
is(length($head->[0]{seal}), 64, 'head --json: the seal in hex');

# A dump restored with pg_restore verifies (the seals and the removals are dumped).
my $dump = $node->basedir . '/seals.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $conninfo ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
($code, $out, $err) = audit('verify', '-d', $node->connstr('restored'));
is($code, 0, 'the restored dump verifies') or diag($out, $err);
like($out, qr/31 row\(s\)/, 'every row restored is checked');

# Each tampering is found with the seal it is in, and undone before the next one.
sub seal_of
{
	my ($where) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT s.seq FROM warden.audit_seals s, warden.audit_log a
		WHERE s.chain = 'audit_log' AND a.logged_at >= s.slice_start AND a.logged_at < s.slice_end
		  AND $where LIMIT 1});
}

my $seq = seal_of(q{a.op = 'UPDATE' AND a.record_key = '{"id": 4}'});
$node->safe_psql('postgres', q{
	CREATE TABLE saved AS SELECT * FROM warden.audit_log WHERE op = 'UPDATE' AND record_key = '{"id": 4}';
	BEGIN;
	SELECT warden._audit_retention_mode(true);
	DELETE FROM warden.audit_log WHERE op = 'UPDATE' AND record_key = '{"id": 4}';
	COMMIT;
});
($code, $out, $err) = audit('verify', '-d', $conninfo);
is($code, 1, 'a deleted row: exit 1');
like($out, qr/^audit_log: FAILED at seal $seq \[\S+ \S+, \S+ \S+\): rows deleted: relid \d+ \(public\.accounts\): \d+ row\(s\) sealed, \d+ found/m,
	'a deleted row: named with its seal') or diag($out);
my ($sealed, $found) = $out =~ /(\d+) row\(s\) sealed, (\d+) found/;
is($found, $sealed - 1, 'a deleted row: one row fewer than sealed');
$node->safe_psql('postgres', 'INSERT INTO warden.audit_log SELECT * FROM saved; DROP TABLE saved');
($code, $out, $err) = audit('verify', '-d', $conninfo);
is($code, 0, 'the row put back: verifies again') or diag($out);

$seq = seal_of(q{a.op = 'INSERT' AND a.record_key = '{"id": 7}'});
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT warden._audit_retention_mode(true);
	UPDATE warden.audit_log SET new_values = new_values || '{"balance": 1000000}'
	WHERE op = 'INSERT' AND record_key = '{"id": 7}';
	COMMIT;
});
($code, $out, $err) = audit('verify', '-d', $conninfo, '--json');
is($code, 1, 'an edited row: exit 1');
$doc = decode_json($out);
is_deeply([ $doc->{ok}, $doc->{chains}[0]{first_bad_seal}, $doc->{chains}[0]{problem} ],
	[ JSON::PP::false, $seq, 'rows changed' ], 'an edited row: named with its seal (JSON)');
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT warden._audit_retention_mode(true);
	UPDATE warden.audit_log SET new_values = new_values || '{"balance": 100}'
	WHERE op = 'INSERT' AND record_key = '{"id": 7}';
	COMMIT;
});
($code, $out, $err) = audit('verify', '-d', $conninfo);
is($code, 0, 'the row restored: verifies again') or diag($out);

# A forged row slipped in among sealed ones (its time copied from a real row).
$seq = seal_of(q{a.op = 'DELETE'});
$node->safe_psql('postgres', q{
	INSERT INTO warden.audit_log
	SELECT logged_at, 'DELETE', relid, schema_name, table_name, '{"id": 1}', old_values, NULL, NULL,
	       statement_at, transaction_at, txid, session_user_name, current_user_name, actor,
	       application_name, client_addr
	FROM warden.audit_log WHERE op = 'DELETE';
});
($code, $out, $err) = audit('verify', '-d', $conninfo);
is($code, 1, 'a forged row: exit 1');
like($out, qr/^audit_log: FAILED at seal $seq .*: rows inserted: relid \d+ \(public\.accounts\)/m,
	'a forged row: named with its seal') or diag($out);
($sealed, $found) = $out =~ /(\d+) row\(s\) sealed, (\d+) found/;
is($found, $sealed + 1, 'a forged row: one row more than sealed');
($code, $out, $err) = audit('verify', '-d', $conninfo, '--from', '2999-01-01');
is($code, 0, '--from after the forged row: not checked');
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT warden._audit_retention_mode(true);
	DELETE FROM warden.audit_log WHERE op = 'DELETE' AND record_key = '{"id": 1}';
	COMMIT;
});

# A partition dropped by hand: the first seal of its rows names it.
my $part = $node->safe_psql('postgres', q{SELECT warden.audit_partition_for(now())});
$seq = $node->safe_psql('postgres', q{SELECT min(seq) FROM warden.audit_seals WHERE row_count > 0});
$node->safe_psql('postgres', "DROP TABLE $part");
($code, $out, $err) = audit('verify', '-d', $conninfo);
is($code, 1, 'a dropped partition: exit 1');
like($out, qr/^audit_log: FAILED at seal $seq .*: partition dropped: partition \Q$part\E, which held the slice's rows, was dropped outside retention/m,
	'a dropped partition: named, with the first seal of its rows') or diag($out);

# Bad input: one line, exit 2; an unreachable server: exit 3.
($code, $out, $err) = audit('verify', '-d', $conninfo, '--from', 'yesterday');
is($code, 2, 'a bad --from exits 2');
like($err, qr/^warden: audit verify: --from takes a date \(YYYY-MM-DD\) or a timestamp .* not 'yesterday'\n\z/,
	'a bad --from: one line');
($code, $out, $err) = audit('verify', '-d', 'host=/nonexistent port=1');
is($code, 3, 'no server: exit 3');
like($err, qr/^warden: audit verify: [^\n]+\n\z/, 'no server: one line');
($code, $out, $err) = audit('verify', '--help');
is($code, 0, 'verify --help exits 0');
like($out, qr/--from.*--json/s, 'verify --help lists --from and --json');
($code, $out, $err) = audit('head', '--help');
like($out, qr/--json/, 'head --help lists --json');
($code, $out, $err) = audit();
is($code, 2, 'audit without a subcommand exits 2');

done_testing();
