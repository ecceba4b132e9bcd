# `warden wal push` as archive_command and `warden wal fetch` as restore_command: files
# are compressed with a checksum; the same segment twice succeeds, different content
# under the same name fails and keeps both; fetch refuses a corrupted segment and says
# "absent" with exit 1; `wal verify` names a deleted segment; recovery works from it.
use strict;
use warnings;
use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $warden = $ENV{WARDEN_BIN};
my $dir = "$PostgreSQL::Test::Utils::tmp_check/wal_push_backups";
my $wal = "$dir/wal";

my $node = PostgreSQL::Test::Cluster->new('wal_push');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
archive_mode = on
archive_command = '"$warden" wal push --dir "$dir" %p'
});
$node->start;

$node->backup('base', backup_options => ['-X', 'none']);
$node->safe_psql('postgres', 'CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)');
for (1 .. 3)
{
	$node->safe_psql('postgres', 'INSERT INTO t SELECT generate_series(1, 1000); SELECT pg_switch_wal()');
}
my $last = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->poll_query_until('postgres',
	"SELECT last_archived_wal >= '$last' FROM pg_stat_archiver")
  or die 'archiving did not catch up';
is($node->safe_psql('postgres', 'SELECT failed_count FROM pg_stat_archiver'), '0', 'no failed pushes');

ok(-f "$wal/$last.zst" && -f "$wal/$last.zst.sha256", 'segment stored compressed with its checksum');
ok((-s "$wal/$last.zst") < 16 * 1024 * 1024 / 2, 'segment is compressed');
my @backup_labels = glob("$wal/*.backup");
is(scalar @backup_labels, 1, 'backup history file archived as it is');
like(slurp("$wal/$last.zst.sha256"), qr/^[0-9a-f]{64}  $last\n$/, 'checksum file names the segment');

my ($ok, $out, $err) = warden_run('wal', 'verify', '--dir', $dir);
ok($ok, 'wal verify passes') or diag($err);
like($out, qr/timeline 1/, 'verify reports the timeline');

# The same segment again (archive_command retried after a crash): success.
my $tmp = "$PostgreSQL::Test::Utils::tmp_check/walfiles";
mkdir $tmp;
($ok, $out, $err) = warden_run('wal', 'fetch', '--dir', $dir, $last, "$tmp/$last");
ok($ok, 'fetch writes the segment') or diag($err);
is(-s "$tmp/$last", 16 * 1024 * 1024, 'fetched segment has the full size');
my $orig_sum = slurp("$wal/$last.zst.sha256");
($ok, $out, $err) = warden_run('wal', 'push', '--dir', $dir, "$tmp/$last");
ok($ok, 'pushing the same segment twice succeeds');
like($err, qr/already archived with the same content/, 'and says so');

# Different content under the same name: an error, and both copies are kept.
open(my $fh, '+<', "$tmp/$last") or die;
seek($fh, 100, 0);
print $fh 'garbage';
close $fh;
my ($ok2, $out2, $err2, $rc2) = warden_run('wal', 'push', '--dir', $dir, "$tmp/$last");
ok(!$ok2, 'pushing different content under an existing name fails');
is($rc2, 1, 'with exit code 1');
like($err2, qr/already archived with different content.*kept as \Q$last\E\.zst\.conflict-/,
	'the error names the copy set aside');
my @aside = glob("$wal/$last.zst.conflict-*");
ok(@aside >= 1, 'the new copy is kept aside');
is(slurp("$wal/$last.zst.sha256"), $orig_sum, 'the archived segment is untouched');

# An unexpected file name and a missing folder option.
($ok, $out, $err) = warden_run('wal', 'push', '--dir', $dir, "$tmp");
ok(!$ok, 'pushing something that is not a WAL file fails');
{
	local $ENV{WARDEN_BACKUP_DIR};
	delete $ENV{WARDEN_BACKUP_DIR};
	my (undef, undef, $e, $rc) = warden_run('wal', 'push', "$tmp/$last");
	is($rc, 2, 'no --dir and no WARDEN_BACKUP_DIR is a usage error');
}
{
	local $ENV{WARDEN_BACKUP_DIR} = $dir;
	($ok, $out, $err) = warden_run('wal', 'fetch', $last, "$tmp/env-copy");
	ok($ok, 'WARDEN_BACKUP_DIR stands in for --dir');
}

# A wrong folder must not look like the end of the archive.
my (undef, undef, $werr, $wrc) = warden_run('wal', 'fetch', '--dir', "$dir-typo", $last, "$tmp/typo");
is($wrc, 126, 'fetch from a folder without a WAL archive aborts recovery (exit 126)');
like($werr, qr/no WAL archive at/, 'and says so');
ok(!-e "$dir-typo", 'fetch creates no folder');

# Absent: exit 1, which recovery takes as the end of the archive.
my (undef, undef, $aerr, $arc) = warden_run('wal', 'fetch', '--dir', $dir,
	'0000000100000000000000FE', "$tmp/absent");
is($arc, 1, 'fetching an absent segment exits 1');
like($aerr, qr/not in the archive/, 'and says it is absent');
ok(!-e "$tmp/absent", 'nothing written for an absent segment');

# Restore a base backup through restore_command = warden wal fetch.
my $restored = restore_node('wal_push_restored', $node, 'base', $dir, '--latest');
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'recovery did not end';
is($restored->safe_psql('postgres', 'SELECT count(*) FROM t'), '4000',
	'a base backup plus pushed WAL recovers every row');
$restored->stop;

# A corrupted segment: valid zstd, wrong content. Fetch refuses it.
my @segs = sort grep { m{/[0-9A-F]{24}\.zst$} } glob("$wal/*.zst");
my $victim = $segs[1];
(my $victim_name = $victim) =~ s{.*/([0-9A-F]{24})\.zst$}{$1};
copy($aside[0], $victim) or die "copy: $!";
my (undef, undef, $cerr, $crc) = warden_run('wal', 'fetch', '--dir', $dir, $victim_name, "$tmp/corrupt");
is($crc, 126, 'fetch of a corrupted segment fails with 126, which aborts recovery');
like($cerr, qr/refusing \Q$victim_name\E: checksum mismatch/, 'and names the mismatch');
ok(!-e "$tmp/corrupt", 'no corrupted file handed to recovery');
my (undef, $vout, $verr) = warden_run('wal', 'verify', '--dir', $dir);
like($verr, qr/\Q$victim_name\E\.zst: checksum mismatch/, 'verify names the corrupted segment');

# A deleted segment: verify names it as missing.
unlink($victim, "$victim.sha256") or die;
my (undef, undef, $derr, $drc) = warden_run('wal', 'verify', '--dir', $dir);
is($drc, 1, 'verify fails with a segment missing');
like($derr, qr/failed at \Q$victim_name\E: missing/, 'verify names the missing segment');

$node->stop;
done_testing();
