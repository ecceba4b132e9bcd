# `warden wal fetch` against a hostile or damaged archive: exit 1 ("not there", the end of
# recovery) only for a file that is truly absent; a segment that exists but cannot be
# served (unreadable, a symlink, a forged zstd header, too long or too short, a bad
# archive.json, a destination that cannot be written) exits 126, so recovery stops
# instead of promoting without the rest of the WAL. archive.json with an impossible
# segment size is a one-line error in verify and status, not a SIGFPE. A real recovery
# stops at an unreadable segment and completes once it is readable again.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use lib $ENV{WARDEN_ROOT} . '/tests/t';
use WardenWal;

my $warden = $ENV{WARDEN_BIN};
my $dir = "$PostgreSQL::Test::Utils::tmp_check/hostile_backups";
my $wal = "$dir/wal";
my $tmp = "$PostgreSQL::Test::Utils::tmp_check/hostile_out";
mkdir $tmp or die;

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
archive_mode = on
archive_command = '"$warden" wal push --dir "$dir" %p'
});
$node->start;
$node->backup('base', backup_options => [ '-X', 'none' ]);
$node->safe_psql('postgres', 'CREATE TABLE t (id int)');
for my $batch (1 .. 4)
{
	$node->safe_psql('postgres', "INSERT INTO t SELECT generate_series(1, 1000); SELECT pg_switch_wal()");
}
my $last = $node->safe_psql('postgres', 'SELECT pg_walfile_name(pg_current_wal_lsn())');
$node->safe_psql('postgres', 'SELECT pg_switch_wal()');
$node->poll_query_until('postgres', "SELECT last_archived_wal >= '$last' FROM pg_stat_archiver")
  or die 'archiving did not catch up';
my @segs = map { m{/([0-9A-F]{24})\.zst$} ? $1 : () } sort glob("$wal/*.zst");
ok(@segs >= 5, 'segments archived');

# Runs `warden wal fetch`; returns (exit code, stderr).
sub fetch
{
	my ($name, $dest) = @_;
	my (undef, undef, $err, $rc) = warden_run('wal', 'fetch', '--dir', $dir, $name, $dest);
	return ($rc, $err);
}

my ($rc, $err);

# Truly absent: exit 1, the end of the archive.
($rc, $err) = fetch('0000000100000000000000FE', "$tmp/absent");
is($rc, 1, 'an absent segment exits 1');
like($err, qr/not in the archive/, 'and says it is absent');

# A segment that exists but cannot be read.
my $victim = $segs[-2];
chmod 0000, "$wal/$victim.zst" or die;
($rc, $err) = fetch($victim, "$tmp/denied");
is($rc, 126, 'an unreadable segment exits 126, not 1');
like($err, qr/could not open .*\Q$victim\E\.zst.*Permission denied/, 'and names the reason');
ok(!-e "$tmp/denied", 'nothing written');
chmod 0640, "$wal/$victim.zst" or die;

# Its checksum unreadable: the same.
chmod 0000, "$wal/$victim.zst.sha256" or die;
($rc, $err) = fetch($victim, "$tmp/denied");
is($rc, 126, 'an unreadable checksum file exits 126');
chmod 0640, "$wal/$victim.zst.sha256" or die;

# The archive folder itself unreadable.
chmod 0000, $wal or die;
($rc, $err) = fetch($victim, "$tmp/denied");
is($rc, 126, 'an unreadable WAL folder exits 126');
chmod 0750, $wal or die;

# A destination that cannot be written.
my $ro = "$tmp/readonly";
mkdir $ro or die;
chmod 0555, $ro or die;
($rc, $err) = fetch($victim, "$ro/seg");
is($rc, 126, 'an unwritable destination exits 126');
like($err, qr/could not create .*Permission denied/, 'and says why');
chmod 0755, $ro or die;

# A symlink planted in the archive is not followed.
my $planted = $segs[-1];
my $planted_file = "$wal/$planted.zst";
rename($planted_file, "$planted_file.real") or die;
symlink("$planted_file.real", $planted_file) or die;
($rc, $err) = fetch($planted, "$tmp/link");
is($rc, 126, 'a symlinked segment exits 126');
like($err, qr/symbolic link/, 'and says so');
unlink $planted_file;
rename("$planted_file.real", $planted_file) or die;

($rc, $err) = fetch($victim, "$tmp/good");
is($rc, 0, 'the segment is served once readable');
is(-s "$tmp/good", 16 * 1024 * 1024, 'with its full size');

# A zstd frame whose header claims 4 GiB: refused at once, without allocating it.
my $forged = '0000000100000000000000F0';
{
	# Magic, a frame header with an 8-byte content size of 4 GiB, then one raw last block.
	my $frame = pack('V', 0xFD2FB528) . chr(0xE0) . pack('Q<', 4 * 1024**3)
	  . substr(pack('V', 1 | (10 << 3)), 0, 3) . ('A' x 10);
	open(my $fh, '>:raw', "$wal/$forged.zst") or die;
	print $fh $frame;
	close $fh;
	open($fh, '>', "$wal/$forged.zst.sha256") or die;
	print $fh ('0' x 64) . "  $forged\n";
	close $fh;
}
my $t0 = time;
my ($mem_ok, $mem_kb) = (1, 0);
if (-x '/usr/bin/time')
{
	my ($out, $e);
	IPC::Run::run([ '/usr/bin/time', '-f', 'maxrss=%M', $warden, 'wal', 'fetch', '--dir', $dir, $forged,
			"$tmp/forged" ], '>', \$out, '2>', \$e);
	$rc = $? >> 8;
	$err = $e;
	($mem_kb) = $e =~ /maxrss=(\d+)/;
	$mem_ok = defined $mem_kb && $mem_kb < 200 * 1024;
}
else
{
	($rc, $err) = fetch($forged, "$tmp/forged");
}
is($rc, 126, 'a frame claiming 4 GiB exits 126');
like($err, qr/claims 4294967296 bytes/, 'and names the claim');
ok(time - $t0 < 10, 'at once');
ok($mem_ok, 'in bounded memory') or diag("max RSS $mem_kb kB");

# More than a segment with no size in the header: stopped at the segment size.
system("head -c 20971520 /dev/zero | zstd -q --no-content-size -c > '$wal/$forged.zst'") == 0 or die;
($rc, $err) = fetch($forged, "$tmp/forged");
is($rc, 126, 'content longer than a segment exits 126');
like($err, qr/more than the 16777216 bytes/, 'and says so');

# Shorter than a segment, even with a matching checksum.
system("head -c 1048576 /dev/zero | zstd -q -c > '$wal/$forged.zst'") == 0 or die;
system("head -c 1048576 /dev/zero | sha256sum | sed 's/ .*/  $forged/' > '$wal/$forged.zst.sha256'") == 0 or die;
($rc, $err) = fetch($forged, "$tmp/forged");
is($rc, 126, 'a short segment exits 126');
like($err, qr/not the segment size/, 'and says so');
unlink("$wal/$forged.zst", "$wal/$forged.zst.sha256");

# archive.json with impossible segment sizes: one-line errors, never a crash.
my $identity = slurp("$wal/archive.json");
for my $size ('0', '3', 2**40)
{
	open(my $fh, '>', "$wal/archive.json") or die;
	print $fh qq({"system_identifier": "", "wal_segment_size": $size}\n);
	close $fh;
	for my $cmd ('verify', 'status')
	{
		my (undef, undef, $e, $code) = warden_run('wal', $cmd, '--dir', $dir);
		is($code, 1, "wal $cmd with wal_segment_size $size exits 1 (no SIGFPE)");
		like($e, qr/^warden: invalid .*archive\.json: wal_segment_size \Q$size\E is not a power of two from 1 MB to 1 GB\n$/,
			"wal $cmd says why in one line");
	}
	($rc, $err) = fetch($victim, "$tmp/badsize");
	is($rc, 126, "fetch with wal_segment_size $size exits 126");
}
open(my $aj, '>', "$wal/archive.json") or die;
print $aj "{not json\n";
close $aj;
(undef, undef, $err, $rc) = warden_run('wal', 'verify', '--dir', $dir);
is($rc, 1, 'a garbled archive.json fails verify');
like($err, qr/not a JSON object/, 'with the reason');
open($aj, '>', "$wal/archive.json") or die;
print $aj $identity;
close $aj;
my ($vok) = warden_run('wal', 'verify', '--dir', $dir);
ok($vok, 'verify passes again with the real archive.json');

# Recovery: an unreadable segment stops it; nothing is promoted; readable again, it ends
# with every row.
my $restored = PostgreSQL::Test::Cluster->new('hostile_restored');
$restored->init_from_backup($node, 'base');
$restored->append_conf('postgresql.conf', "archive_mode = off\n");
my ($rok, undef, $rerr) = warden_run('wal', 'recovery-settings', '--dir', $dir, '-D', $restored->data_dir,
	'--latest');
ok($rok, 'recovery settings written') or diag($rerr);
chmod 0000, "$wal/$victim.zst" or die;
# pg_ctl -w returns once the copy is consistent (hot standby) and replay goes on from
# there, unless replay reaches the unreadable segment first: either way is fine.
$restored->start(fail_ok => 1);
$restored->wait_for_log(qr/could not restore file "\Q$victim\E" from archive: (?:command not executable|.*exit code 126)/);
ok(1, 'the server says the fetch of the unreadable segment failed with 126');
my $pidfile = $restored->data_dir . '/postmaster.pid';
for (my $i = 0; -e $pidfile && $i < 600; $i++) { select(undef, undef, undef, 0.1); }
ok(!-e $pidfile, 'and recovery stopped: the server is down');
$restored->_update_pid(0);
unlike(slurp($restored->logfile), qr/selected new timeline|archive recovery complete/, 'nothing was promoted');
ok(-e $restored->data_dir . '/recovery.signal', 'the copy was not promoted');
ok(!-e $restored->data_dir . '/pg_wal/00000002.history', 'no new timeline');
chmod 0640, "$wal/$victim.zst" or die;
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'recovery did not end';
is($restored->safe_psql('postgres', 'SELECT count(*) FROM t'), '4000', 'every row once the segment is readable');
$restored->stop;

$node->stop;
done_testing();
