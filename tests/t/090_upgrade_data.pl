# ALTER EXTENSION pg_warden UPDATE from the released 1.1 with data in every table: every
# row is kept (the 1.1 columns of each table hash the same before and after), the upgraded
# extension has exactly the objects, definitions and privileges of a fresh install of the
# default version, and the capabilities keep working on the upgraded data.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade_data');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_warden VERSION '1.1';
CREATE TABLE sessions (id bigint PRIMARY KEY, expires_at timestamptz NOT NULL);
INSERT INTO sessions SELECT g, now() + (g - 50) * interval '1 minute' FROM generate_series(1, 100) g;
SELECT warden.register_expiry('sessions', 'expires_at');
CALL warden.expire_rows();
CREATE TABLE accounts (id int PRIMARY KEY, email text, secret text);
SELECT warden.enable_audit('accounts', exclude_columns => '{secret}');
SELECT warden.set_audit_retention('accounts', '30 days');
INSERT INTO accounts VALUES (1, 'a@example.com', 's'), (2, 'b@example.com', 's');
UPDATE accounts SET email = 'c@example.com' WHERE id = 2;
SELECT warden.apply_migration('001', 'create_things', 'CREATE TABLE things (id int)', 'DROP TABLE things');
SELECT warden.apply_migration('002', 'more_things', 'ALTER TABLE things ADD COLUMN n int', 'ALTER TABLE things DROP COLUMN n');
CREATE TABLE drifted (id int);
SELECT warden.login_failed('alice', '192.0.2.1') FROM generate_series(1, 6);
SELECT warden.login_succeeded('bob', '192.0.2.2');
SELECT warden.record_backup('20261101T000000Z', 'physical', 'completed', now() - interval '1 hour', now(), 100, 10);
CALL warden.health_snapshot();
});

# This library runs no job on 1.1's SQL objects (they would run every job as the bootstrap
# superuser): it says so, with the way out.
my ($rc, $out, $err) = $node->psql('postgres', "CALL warden.run_job('prune_job_runs')");
like($err, qr/older than its library: no job runs.*\n.*HINT:  Run ALTER EXTENSION pg_warden UPDATE/s,
	'jobs refuse to run before the upgrade, with a hint');

# The few tables the public interface fills only over days (and job runs, which this
# library does not make on 1.1's objects) are filled by hand, as the superuser restoring a
# dump would (guards off for this session only).
$node->safe_psql('postgres', q{
SET session_replication_role = replica;
INSERT INTO warden.job_runs (job_id, job, started_at, finished_at, status, rows_affected, driver)
SELECT j.id, j.name, now() - interval '1 hour', now() - interval '59 minutes', 'succeeded', 0, 'psql'
FROM warden.jobs j;
INSERT INTO warden.audit_trim_progress
SELECT c.oid, '30 days', now() - interval '30 days'
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'warden.audit_log'::regclass LIMIT 1;
});

# Every table of the extension, with its 1.1 columns and a hash of its rows over them.
my $tables = $node->safe_psql('postgres', q{
SELECT string_agg(c.relname, ' ' ORDER BY c.relname)
FROM pg_class c
WHERE c.relnamespace = 'warden'::regnamespace AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition});
my @tables = split / /, $tables;
ok(@tables >= 15, 'the 1.1 extension has its tables: ' . scalar(@tables));

# A copy of each table's 1.1 columns, kept outside the extension across the upgrade.
my %columns;
for my $t (@tables) {
	$columns{$t} = $node->safe_psql('postgres', qq{
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
WHERE attrelid = 'warden.$t'::regclass AND attnum > 0 AND NOT attisdropped});
	$node->safe_psql('postgres', "CREATE TABLE before_$t AS SELECT $columns{$t} FROM warden.$t");
	ok($node->safe_psql('postgres', "SELECT count(*) FROM before_$t") > 0,
		"warden.$t holds data before the upgrade");
}

$node->safe_psql('postgres', 'ALTER EXTENSION pg_warden UPDATE');
is($node->safe_psql('postgres', 'SELECT warden.version()'),
	$node->safe_psql('postgres', "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_warden'"),
	'the upgrade reaches the default version');

# Every row is still there, unchanged in its 1.1 columns (the upgrade may add rows, such
# as the drift event of the ALTER EXTENSION command itself).
for my $t (@tables) {
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT * FROM before_$t EXCEPT ALL SELECT $columns{$t} FROM warden.$t) lost"),
		'0', "warden.$t keeps every row");
}

# The same description of every object as regress/sql/install.sql, in two databases.
my $describe = q{
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' ' ||
       md5(CASE d.classid
         WHEN 'pg_proc'::regclass THEN
           (SELECT concat_ws('|', p.prosecdef, p.proconfig, p.provolatile, p.prosrc, p.proacl,
                             pg_get_function_result(p.oid), pg_get_function_arguments(p.oid))
            FROM pg_proc p WHERE p.oid = d.objid)
         WHEN 'pg_class'::regclass THEN
           (SELECT concat_ws('|', c.relkind, c.relacl, c.relrowsecurity, c.reloptions,
              (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' ||
                                 a.attnotnull || ':' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''),
                                 ',' ORDER BY a.attname)
               FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
              (SELECT string_agg(pg_get_constraintdef(k.oid), ';' ORDER BY pg_get_constraintdef(k.oid))
               FROM pg_constraint k WHERE k.conrelid = c.oid),
              (SELECT string_agg(pg_get_indexdef(i.indexrelid), ';' ORDER BY pg_get_indexdef(i.indexrelid))
               FROM pg_index i WHERE i.indrelid = c.oid),
              (SELECT string_agg(pg_get_triggerdef(t.oid), ';' ORDER BY pg_get_triggerdef(t.oid))
               FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
              (SELECT string_agg(pol.polname || pg_get_expr(pol.polqual, pol.polrelid), ';' ORDER BY pol.polname)
               FROM pg_policy pol WHERE pol.polrelid = c.oid))
            FROM pg_class c WHERE c.oid = d.objid)
         WHEN 'pg_event_trigger'::regclass THEN
           (SELECT concat_ws('|', e.evtevent, e.evtfoid::regprocedure, e.evtenabled, e.evttags)
            FROM pg_event_trigger e WHERE e.oid = d.objid)
         ELSE '' END)
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_warden')
  AND d.deptype = 'e'
  AND NOT (d.classid = 'pg_class'::regclass AND EXISTS
           (SELECT 1 FROM pg_class p WHERE p.oid = d.objid AND p.relispartition))
ORDER BY 1};
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pg_warden');
my @upgraded = split /\n/, $node->safe_psql('postgres', $describe);
my @fresh = split /\n/, $node->safe_psql('fresh', $describe);
my %in_fresh = map { $_ => 1 } @fresh;
my %in_upgraded = map { $_ => 1 } @upgraded;
is_deeply([ grep { !$in_fresh{$_} } @upgraded ], [], 'nothing in the upgraded extension that a fresh install lacks');
is_deeply([ grep { !$in_upgraded{$_} } @fresh ], [], 'nothing in a fresh install that the upgrade lacks');
ok(@fresh > 100, 'the comparison covers the objects: ' . scalar(@fresh));

# The capabilities keep working on the upgraded data.
is($node->safe_psql('postgres',
	q{SELECT warden.apply_migration('003', 'even_more', 'ALTER TABLE things ADD COLUMN m int')}),
	'applied', 'a migration applies after the upgrade');
is($node->safe_psql('postgres', 'SELECT warden.current_version()'), '003', 'the ledger continues');
is($node->safe_psql('postgres', q{SELECT locked FROM warden.login_failed('alice', '192.0.2.1')}),
	't', 'the lock taken under 1.1 holds');
$node->safe_psql('postgres', q{INSERT INTO accounts VALUES (3, 'd@example.com', 's')});
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM warden.audit_log WHERE table_name = 'accounts'}),
	'4', 'the audit trigger keeps recording');
$node->safe_psql('postgres', 'CALL warden.run_maintenance()');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM warden.job_runs WHERE status NOT IN ('succeeded', 'skipped')}),
	'0', 'the maintenance jobs run on the upgraded extension');

$node->stop;
done_testing();
