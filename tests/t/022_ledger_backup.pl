# warden migrate up --backup: a backup is taken and catalogued before anything is applied,
# and when the backup fails nothing is migrated.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use WardenMigrations;
use IPC::Run;
use JSON::PP;

my $samples = "$ENV{WARDEN_ROOT}/migrations/auth-service";

my $node = PostgreSQL::Test::Cluster->new('ledger_backup');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_warden');
my $db = $node->connstr('postgres');

sub sql { return $node->safe_psql('postgres', shift); }

# A backup folder that can't be created: the migration must not run.
my $blocker = PostgreSQL::Test::Utils::tempdir() . '/a-file';
open(my $fh, '>', $blocker) or die; close($fh);
my ($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db, '--target', '1',
	'--backup', '--backup-dir', "$blocker/backups");
is($rc, 1, 'a failed backup fails the command');
like($err, qr/^warden: backup failed, nothing migrated: /m, 'one-line reason names the backup');
is(sql('SELECT count(*) FROM warden.migrations'), '0', 'nothing was migrated');

($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db, '--backup');
is($rc, 2, '--backup without a folder is a usage error') or diag($err);

# A working backup folder: one logical backup, then the migrations.
my $backups = PostgreSQL::Test::Utils::tempdir();
($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db, '--target', '3',
	'--backup', '--backup-dir', $backups, '--quiet');
is($rc, 0, 'up --backup exits 0') or diag($err);
is(sql('SELECT warden.current_version()'), '003', 'migrations applied after the backup');

($rc, $out, $err) = warden('backup', 'list', '--dir', $backups, '--json');
my $list = eval { decode_json($out) } || [];
$list = $list->{backups} if ref($list) eq 'HASH';
is(scalar(@$list), 1, 'one backup in the catalog');
is($list->[0]{kind}, 'logical', 'a logical backup of the database');
is(sql("SELECT count(*) FROM warden.backups WHERE kind = 'logical'"), '1',
	'the backup is recorded in the database');

# Nothing pending: no backup is taken.
($rc, $out, $err) = warden('migrate', 'up', '--dir', $samples, '-d', $db, '--target', '3',
	'--backup', '--backup-dir', $backups, '--quiet');
is($rc, 0, 'up --backup with nothing pending exits 0');
($rc, $out, $err) = warden('backup', 'list', '--dir', $backups, '--json');
$list = eval { decode_json($out) } || [];
$list = $list->{backups} if ref($list) eq 'HASH';
is(scalar(@$list), 1, 'no backup when nothing is pending');

$node->stop('fast');
done_testing();
