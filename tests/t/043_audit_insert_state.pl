# The trigger's per-transaction insert state (audit_insert.cpp) across transaction
# boundaries: audited writes around savepoints and PL/pgSQL exception blocks rolled back
# or released (also one that fails inside a unique index of the partition), an index
# created on the current partition between two writes of one transaction (amcheck finds
# every row in it), the partition detached and another one with a different column layout
# attached between two writes, PREPARE TRANSACTION, and a COPY of 100,000 rows. No
# relcache or other leak warning reaches the server log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('insert_state');
$node->init;
$node->append_conf('postgresql.conf', "max_prepared_transactions = 2\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_warden;
	CREATE EXTENSION amcheck;
	CREATE TABLE t (id int PRIMARY KEY, v int);
	SELECT warden.enable_audit('t');
});

# The ids of the inserts logged with ids from $lo to $hi, in order of writing.
sub logged
{
	my ($lo, $hi) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(string_agg((new_values->>'id'), ',' ORDER BY logged_at), '')
		FROM warden.audit_log
		WHERE op = 'INSERT' AND (new_values->>'id')::int BETWEEN $lo AND $hi});
}

# Savepoints from the client: the rolled-back write leaves no row, the writes after it do.
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t VALUES (1, 0);
	SAVEPOINT a;
	INSERT INTO t VALUES (2, 0);
	ROLLBACK TO a;
	INSERT INTO t VALUES (3, 0);
	SAVEPOINT b;
	INSERT INTO t VALUES (4, 0);
	RELEASE b;
	INSERT INTO t VALUES (5, 0);
	COMMIT;
});
is(logged(1, 9), '1,3,4,5', 'a savepoint rolled back between audited writes drops only its row');

# Exception blocks start subtransactions without a utility statement. The state is built
# inside the first block (rolled back), inside the second (kept), and used across both.
$node->safe_psql('postgres', q{
	DO $$
	BEGIN
		BEGIN
			INSERT INTO t VALUES (10, 0);
			RAISE EXCEPTION 'undo 10';
		EXCEPTION WHEN raise_exception THEN NULL;
		END;
		INSERT INTO t VALUES (11, 0);
		FOR i IN 12..20 LOOP
			BEGIN
				INSERT INTO t VALUES (i, 0);
				IF i % 3 = 0 THEN RAISE EXCEPTION 'undo %', i; END IF;
			EXCEPTION WHEN raise_exception THEN NULL;
			END;
		END LOOP;
		INSERT INTO t VALUES (21, 0);
	END $$;
	BEGIN;
	DO $$
	BEGIN
		BEGIN
			INSERT INTO t VALUES (30, 0);
		EXCEPTION WHEN others THEN NULL;
		END;
		INSERT INTO t VALUES (31, 0);
	END $$;
	INSERT INTO t VALUES (32, 0);
	COMMIT;
});
is(logged(10, 39), '11,13,14,16,17,19,20,21,30,31,32',
	'exception blocks rolled back or kept between audited writes');

# An index created on the current partition between two writes of one transaction gets
# the second row; a unique one makes a write fail inside the partition's index, and the
# writes after it (in the same transaction) still go in.
my $part = $node->safe_psql('postgres', q{SELECT warden.audit_partition_for(now())::regclass});
$node->safe_psql('postgres', qq{
	BEGIN;
	INSERT INTO t VALUES (40, 0);
	CREATE INDEX audit_key_idx ON $part (record_key);
	INSERT INTO t VALUES (41, 0);
	INSERT INTO t VALUES (42, 0);
	COMMIT;
});
is($node->safe_psql('postgres', qq{
	SET enable_seqscan = off;
	SELECT count(*) FROM $part WHERE record_key IN ('{"id": 40}', '{"id": 41}', '{"id": 42}')}),
	'3', 'an index made between two writes of a transaction has every row');
$node->safe_psql('postgres', q{SELECT bt_index_check('warden.audit_key_idx', true)});
pass('amcheck finds every row of the partition in the new index');
$node->safe_psql('postgres', qq{
	BEGIN;
	INSERT INTO t VALUES (50, 0);
	CREATE UNIQUE INDEX audit_op_key_once ON $part (op, record_key);
	INSERT INTO t VALUES (51, 0);
	DO \$\$
	BEGIN
		BEGIN
			DELETE FROM t WHERE id = 51;
			INSERT INTO t VALUES (51, 1);
		EXCEPTION WHEN unique_violation THEN NULL;
		END;
		INSERT INTO t VALUES (52, 0);
	END \$\$;
	INSERT INTO t VALUES (53, 0);
	COMMIT;
	DROP INDEX warden.audit_op_key_once;
});
is(logged(50, 59), '50,51,52,53',
	'a write failing in the partition\'s unique index is undone alone');
$node->safe_psql('postgres', q{SELECT bt_index_check('warden.audit_key_idx', true)});
pass('the partition\'s index is still complete after the failed write');
$node->safe_psql('postgres', q{DROP INDEX warden.audit_key_idx});

# The current partition detached, then a partition with another column layout (a dropped
# column) attached in its place, between writes of one transaction: each row lands in
# the partition that covers it then, whole.
my ($lo, $hi) = split /\|/, $node->safe_psql('postgres', qq{
	SELECT range_start, range_end FROM warden.audit_partitions WHERE partition = '$part'::regclass});
my $out = $node->safe_psql('postgres', qq{
	BEGIN;
	INSERT INTO t VALUES (60, 0);
	ALTER TABLE warden.audit_log DETACH PARTITION $part;
	INSERT INTO t VALUES (61, 0);
	CREATE TABLE warden.audit_other (dummy int, LIKE warden.audit_log);
	ALTER TABLE warden.audit_other DROP COLUMN dummy;
	-- The default partition holds row 61: it moves to the new partition first.
	SELECT warden._audit_retention_mode(true);
	CREATE TEMP TABLE moved AS SELECT * FROM warden.audit_log_default;
	DELETE FROM warden.audit_log_default;
	ALTER TABLE warden.audit_log ATTACH PARTITION warden.audit_other FOR VALUES FROM ('$lo') TO ('$hi');
	INSERT INTO warden.audit_log SELECT * FROM moved;
	SELECT warden._audit_retention_mode(false);
	INSERT INTO t VALUES (62, 0);
	SELECT string_agg(tableoid::regclass || ':' || (new_values->>'id') || ':' || op || ':' || table_name,
	                  ',' ORDER BY logged_at)
	FROM (SELECT tableoid, * FROM $part UNION ALL SELECT tableoid, * FROM warden.audit_log) l
	WHERE new_values->>'id' IN ('60', '61', '62');
	ROLLBACK;
});
# The last line: the retention mode calls print empty ones before it.
is((split /\n/, $out)[-1], "$part:60:INSERT:t,warden.audit_other:61:INSERT:t,warden.audit_other:62:INSERT:t",
	'rows follow a detached partition and an attached one with another layout');

# PREPARE TRANSACTION releases the state before the transaction is prepared.
$node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO t VALUES (70, 0);
	UPDATE t SET v = 1 WHERE id = 70;
	PREPARE TRANSACTION 'audit_a';
	COMMIT PREPARED 'audit_a';
	BEGIN;
	INSERT INTO t VALUES (71, 0);
	PREPARE TRANSACTION 'audit_b';
	ROLLBACK PREPARED 'audit_b';
	INSERT INTO t VALUES (72, 0);
});
is(logged(70, 79), '70,72', 'prepared transactions: committed rows kept, rolled back ones gone');

# COPY: 100,000 rows in one statement, 100,000 audit rows.
$node->safe_psql('postgres', q{
	COPY t FROM PROGRAM 'seq 1000001 1100000 | sed "s/$/\t0/"';
});
is($node->safe_psql('postgres', q{
	SELECT count(*), count(DISTINCT new_values->>'id') FROM warden.audit_log
	WHERE op = 'INSERT' AND (new_values->>'id')::int > 1000000}),
	'100000|100000', 'a COPY of 100,000 rows logs 100,000 rows');

# The values the trigger converts itself (numeric, date, timestamp, timestamptz) come out
# as to_jsonb() makes them, special values included, in whatever time zone, with the
# keys of a wide row in any declaration order.
$node->safe_psql('postgres', q{
	CREATE TABLE typed (id int PRIMARY KEY, "a longer name" numeric, n numeric, d date,
	                    ts timestamp, tz timestamptz, zz int, b bool);
	SELECT warden.enable_audit('typed');
	SET TimeZone = 'America/St_Johns';
	INSERT INTO typed VALUES
		(1, 1.50, 'NaN', '2026-02-03', '2026-02-03 04:05:06.789', '2026-02-03 04:05:06.789+05:30', 1, true),
		(2, 'Infinity', '-Infinity', 'infinity', '-infinity', 'infinity', NULL, false),
		(3, -123456789012345678901234567890.000100, 0, '0044-03-15 BC', '1999-12-31 23:59:59', '2000-01-01 00:00:00+00', 3, NULL);
});
is($node->safe_psql('postgres', q{
	SET TimeZone = 'America/St_Johns';
	SELECT count(*) FILTER (WHERE l.new_values = to_jsonb(t)), count(*)
	FROM typed t JOIN warden.audit_log l ON l.relid = 'typed'::regclass AND l.record_key = jsonb_build_object('id', t.id)}),
	'3|3', 'numeric, dates and timestamps logged as to_jsonb() makes them');

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/leak/, 'no leak warning in the server log');

done_testing();
