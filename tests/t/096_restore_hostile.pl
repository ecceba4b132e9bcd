# warden restore / backup verify / backup drill against a hostile backup folder: every
# crafted input is refused with a one-line reason before it changes anything outside
# the target (and leaves no target behind), and a legitimate restore run from a working
# directory that holds global/ and base/ leaves that directory alone.
use strict;
use warnings;
use Digest::SHA;
use File::Find;
use File::Path qw(make_path remove_tree);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init(allows_streaming => 1);
$node->start;
my $connstr = $node->connstr('postgres');
my $base = $node->basedir;
my $dir = "$base/backups";
my $targets = "$base/targets";
# The caller's side: a working directory shaped like a data directory, and a victim
# directory a crafted archive names. Nothing under $play may change.
my $play = "$base/play";
my $cwd = "$play/cwd";
make_path("$cwd/global", "$cwd/base", "$cwd/victim");
chmod 0755, "$cwd/global", "$cwd/base", "$cwd/victim", $cwd;
utime 1_000_000_000, 1_000_000_000, "$cwd/global", "$cwd/base", "$cwd/victim";

# Uncompressed, so that tar can take it apart and put crafted versions together.
my ($id) = run_command([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr,
		'--compress', 'none', '--level', '0', '--quiet' ]);
chomp $id;
ok(-f "$dir/$id/base.tar", 'uncompressed backup taken');

# --- helpers ---------------------------------------------------------------------

# Paths, types, modes, times and link targets of everything under a directory.
sub snapshot
{
	my ($root) = @_;
	my %s;
	find({ no_chdir => 1, wanted => sub {
		my @st = lstat($_);
		$s{$_} = join ' ', $st[2], $st[9], (-l $_ ? readlink($_) : '');
	} }, $root);
	return \%s;
}

sub warden_run
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $h = IPC::Run::start([ $warden, @args ], '>', \$out, '2>', \$err,
		init => sub { chdir $cwd or die "chdir: $!" }, IPC::Run::timeout(120));
	my $finished = eval { $h->finish; 1 };
	if (!$finished)
	{
		$h->kill_kill;
		return (-1, $out, "timed out after 120 s", time - $t0);
	}
	return ($h->full_result(0) >> 8, $out, $err, time - $t0);
}

# Runs warden, expects exit 1 with one line on stderr matching $re, and nothing
# changed under $play. Returns the seconds it took.
sub refused
{
	my ($name, $re, @args) = @_;
	my $before = snapshot($play);
	my ($rc, $out, $err, $secs) = warden_run(@args);
	is($rc, 1, "$name: exit code 1");
	like($err, qr/\Awarden: [^\n]*$re[^\n]*\n\z/, "$name: one-line reason") or diag($err);
	is_deeply(snapshot($play), $before, "$name: nothing outside the target changed");
	return $secs;
}

my $clones = 1;
sub write_json
{
	my ($bid, $d) = @_;
	open my $fh, '>', "$dir/$bid/backup.json" or die;
	print $fh JSON::PP->new->canonical->encode($d);
	close $fh;
}

sub read_json { decode_json(slurp_file("$dir/$_[0]/backup.json")) }

sub clone
{
	my $bid = "$id-" . ++$clones;
	system('cp', '-a', "$dir/$id", "$dir/$bid") == 0 or die;
	my $d = read_json($bid);
	$d->{id} = $bid;
	write_json($bid, $d);
	return $bid;
}

# Records the stored files' real sizes and checksums, as an attacker would.
sub restamp
{
	my ($bid) = @_;
	my $d = read_json($bid);
	for my $f (@{ $d->{files} })
	{
		my $p = "$dir/$bid/$f->{name}";
		next unless -f $p;
		$f->{size} = -s $p;
		$f->{sha256} = Digest::SHA->new(256)->addfile($p)->hexdigest;
	}
	write_json($bid, $d);
}

sub unpack_base
{
	my ($bid) = @_;
	my $src = "$base/src-$bid";
	make_path($src);
	system('tar', '-C', $src, '-xf', "$dir/$bid/base.tar") == 0 or die;
	return $src;
}

sub repack
{
	my ($bid, $src, @opts) = @_;
	opendir(my $dh, $src) or die;
	my @top = sort grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	system('tar', '-C', $src, @opts, '-cf', "$dir/$bid/base.tar", @top) == 0 or die;
	remove_tree($src);
	restamp($bid);
}

# Edits the manifest's body and writes it back with a correct Manifest-Checksum.
sub edit_manifest
{
	my ($bid, $edit) = @_;
	my $text = slurp_file("$dir/$bid/backup_manifest");
	my $cut = rindex($text, "\n", length($text) - 2);
	my $body = $edit->(substr($text, 0, $cut + 1));
	open my $fh, '>', "$dir/$bid/backup_manifest" or die;
	print $fh $body, '"Manifest-Checksum": "', Digest::SHA::sha256_hex($body), "\"}\n";
	close $fh;
	restamp($bid);
}

sub mode_of { sprintf('%04o', (lstat($_[0]))[2] & 07777) }

# --- a legitimate restore, run from a directory that holds global/ and base/ -------

my $restored = PostgreSQL::Test::Cluster->new('restored');
my $before = snapshot($play);
my ($rc, $out, $err) = warden_run('restore', '--dir', $dir, $id, '--target', $restored->data_dir);
is($rc, 0, 'restore from a working directory holding global/ and base/ succeeds') or diag($err);
is_deeply(snapshot($play), $before, 'the working directory\'s global/ and base/ keep their modes and times');
is(mode_of($restored->data_dir), '0700', 'data directory 0700');
is(mode_of($restored->data_dir . '/global/pg_control'), '0600', 'pg_control 0600');
ok(!-e $restored->data_dir . '/global/pg_control.warden-restoring', 'pg_control renamed into place');
$restored->append_conf('postgresql.conf', 'port = ' . $restored->port);
$restored->start;
is($restored->safe_psql('postgres', 'SELECT 1'), '1', 'the restored copy starts and answers');
$restored->stop;

# The drill restores the same way (every warden run here starts in $cwd).
($rc, $out, $err) = warden_run('backup', 'drill', '--dir', $dir, $id, '-d', $connstr);
is($rc, 0, 'drill from the same working directory passes') or diag($err);
like($out, qr/drill of $id: passed/, 'drill reports success');
is_deeply(snapshot($play), $before, 'the drill left the working directory alone too');

# --- modes: setuid, setgid, sticky and world-writable members, and a directory named
# like one beside the caller ------------------------------------------------------

my $bid = clone();
my $src = unpack_base($bid);
mkdir "$src/victim";
chmod 0777, "$src/victim";
chmod 04777, "$src/PG_VERSION";
chmod 03777, "$src/base";
repack($bid, $src);
my $modes_target = "$targets/modes/data";
$before = snapshot($play);
($rc, $out, $err) = warden_run('restore', '--dir', $dir, $bid, '--target', $modes_target);
is($rc, 0, 'an archive with setuid and world-writable modes restores') or diag($err);
is_deeply(snapshot($play), $before, 'the caller\'s victim/ directory keeps mode 0755 and its time');
is(mode_of("$modes_target/PG_VERSION"), '0600', 'a setuid, world-writable file is restored 0600');
is(mode_of("$modes_target/base"), '0700', 'a setgid, sticky, world-writable directory is restored 0700');
is(mode_of("$modes_target/victim"), '0700', 'a 0777 directory is restored 0700');
my @odd;
find({ no_chdir => 1, wanted => sub {
	my $m = mode_of($_);
	push @odd, "$_ $m" unless (-l $_) || (-d _ ? $m eq '0700' : $m eq '0600');
} }, $modes_target);
is_deeply(\@odd, [], 'every directory 0700 and every file 0600');
remove_tree("$targets/modes");

# --- members that leave the target ------------------------------------------------

$bid = clone();
$src = unpack_base($bid);
repack($bid, $src, '--transform', 's,^PG_VERSION$,../escaped,');
refused('member ../escaped', qr/\.\.\/escaped: member name has a "\.\." component: it would be written outside the target directory; refusing/,
	'restore', '--dir', $dir, $bid, '--target', "$targets/dotdot/data");
ok(!-e "$targets/dotdot", 'nothing written beside the target, no target left behind');
refused('verify of member ../escaped', qr/escaped: member name has a "\.\." component/,
	'backup', 'verify', '--dir', $dir, $bid);

$bid = clone();
$src = unpack_base($bid);
repack($bid, $src, '-P', '--transform', "s,^PG_VERSION\$,$play/abs-planted,");
refused('absolute member', qr/abs-planted: member name is an absolute path/,
	'restore', '--dir', $dir, $bid, '--target', "$targets/absolute/data");
ok(!-e "$play/abs-planted" && !-e "$targets/absolute", 'the absolute path was not written, no target left');

$bid = clone();
$src = unpack_base($bid);
symlink($play, "$src/base/escape") or die;
repack($bid, $src);
refused('symbolic link outside pg_tblspc', qr{base/escape: a symbolic link outside pg_tblspc/OID},
	'restore', '--dir', $dir, $bid, '--target', "$targets/symlink/data");
ok(!-e "$targets/symlink", 'no target left behind');

$bid = clone();
$src = unpack_base($bid);
link("$src/PG_VERSION", "$src/base/PG_VERSION_LINK") or die;
repack($bid, $src);
refused('hard link', qr/a hard link/, 'restore', '--dir', $dir, $bid, '--target', "$targets/hardlink/data");
ok(!-e "$targets/hardlink", 'no target left behind');

# --- sizes before content ---------------------------------------------------------

# 1 TiB of holes in a few kilobytes of tar, announced at its full size in the manifest:
# hashing it would take minutes.
$bid = clone();
$src = unpack_base($bid);
# Data at both ends: the hole lies between blocks, where zeros used to be hashed.
open my $fh, '>', "$src/base/1/99999" or die;
print $fh 'x';
seek($fh, (1 << 40) - 1, 0) or die;
print $fh 'x';
close $fh;
repack($bid, $src, '--sparse');
ok(-s "$dir/$bid/base.tar" < (1 << 30), 'the 1 TiB member takes little room in the archive');
edit_manifest($bid, sub {
	my ($body) = @_;
	$body =~ s/("Files": \[\n)/$1\{ "Path": "base\/1\/99999", "Size": 1099511627776, "Last-Modified": "2026-01-01 00:00:00 GMT", "Checksum-Algorithm": "NONE" },\n/
	  or die 'no Files array';
	return $body;
});
my $secs = refused('verify of a 1 TiB sparse member', qr{base/1/99999: a sparse member \(1099511627776 bytes with holes\); refusing},
	'backup', 'verify', '--dir', $dir, $bid);
cmp_ok($secs, '<', 30, 'refused at once, not after hashing 1 TiB of zeros');
$secs = refused('restore of a 1 TiB sparse member', qr{base/1/99999: a sparse member},
	'restore', '--dir', $dir, $bid, '--target', "$targets/sparse/data");
cmp_ok($secs, '<', 30, 'restore refuses it at once too');
ok(!-e "$targets/sparse", 'no target left behind');

# A manifest that lies about a size (with its own checksum recomputed).
$bid = clone();
edit_manifest($bid, sub {
	my ($body) = @_;
	$body =~ s/("Path": "PG_VERSION", "Size": )(\d+)/$1 . ($2 + 1)/e or die 'no PG_VERSION';
	return $body;
});
refused('verify with a lying manifest size', qr/PG_VERSION: size 3 differs from backup_manifest's 4/,
	'backup', 'verify', '--dir', $dir, $bid);
refused('restore with a lying manifest size', qr/PG_VERSION: size 3 differs from backup_manifest's 4/,
	'restore', '--dir', $dir, $bid, '--target', "$targets/lying/data");
ok(!-e "$targets/lying", 'no target left behind');

# backup_manifest replaced by a link to a device that never ends.
$bid = clone();
unlink "$dir/$bid/backup_manifest";
symlink('/dev/zero', "$dir/$bid/backup_manifest") or die;
refused('backup_manifest linked to /dev/zero', qr/backup_manifest/,
	'restore', '--dir', $dir, $bid, '--target', "$targets/devzero/data");
ok(!-e "$targets/devzero", 'no target left behind');

# --- tablespaces named by backup.json ----------------------------------------------

# An empty tar as the tablespace's archive: the old code reached the link step.
sub with_tablespace
{
	my ($oid, $location) = @_;
	my $b = clone();
	system('tar', '-cf', "$dir/$b/16384.tar", '-T', '/dev/null') == 0 or die;
	my $d = read_json($b);
	push @{ $d->{tablespaces} }, { oid => $oid, location => $location, archive => '16384.tar' };
	push @{ $d->{files} }, { name => '16384.tar', size => 0, sha256 => '' };
	write_json($b, $d);
	restamp($b);
	return $b;
}

$bid = with_tablespace('../../outside/planted_link', "$base/ts-planted");
refused('tablespace OID ../../outside/planted_link',
	qr{backup.json: tablespace OID "\.\./\.\./outside/planted_link" is not an OID \(a number from 1 to 4294967295\); refusing},
	'restore', '--dir', $dir, $bid, '--target', "$targets/oid/data");
ok(!-e "$targets/oid" && !-e "$targets/outside" && !-e "$base/ts-planted", 'no link planted, nothing created');
refused('verify of tablespace OID ../../outside/planted_link', qr/is not an OID/, 'backup', 'verify', '--dir', $dir, $bid);
refused('drill of tablespace OID ../../outside/planted_link', qr/drill of backup $bid failed: .*is not an OID/,
	'backup', 'drill', '--dir', $dir, $bid, '--scratch', "$base/drill/scratch", '-d', $connstr);
ok(!-e "$base/drill/outside" && !-e "$base/drill/scratch", 'the drill planted nothing and left no scratch data');

$bid = with_tablespace('16384', 'relative/ts');
refused('relative tablespace location', qr{tablespace 16384: location "relative/ts" is not an absolute path},
	'restore', '--dir', $dir, $bid, '--target', "$targets/relative/data");
ok(!-e "$targets/relative" && !-e "$cwd/relative", 'nothing created');

$bid = with_tablespace('16384', "$base/a/../ts-dotdot");
refused('tablespace location with ..', qr{location "[^"]*/a/\.\./ts-dotdot" has a "\.\." component},
	'restore', '--dir', $dir, $bid, '--target', "$targets/tsdotdot/data");
ok(!-e "$targets/tsdotdot" && !-e "$base/ts-dotdot", 'nothing created');

$bid = with_tablespace('16384', "$base/ts-fine");
refused('tablespace mapped inside the target', qr{tablespace 16384: location "[^"]*/inside/data/ts" overlaps the target directory},
	'restore', '--dir', $dir, $bid, '--target', "$targets/inside/data",
	'--tablespace-mapping', "16384=$targets/inside/data/ts");
ok(!-e "$targets/inside" && !-e "$base/ts-fine", 'nothing created');

# The same backup with a sound location restores, and the link points where it should.
my $mapped = "$targets/tsok/ts";
($rc, $out, $err) = warden_run('restore', '--dir', $dir, $bid, '--target', "$targets/tsok/data",
	'--tablespace-mapping', "16384=$mapped");
is($rc, 0, 'a tablespace with a checked location restores') or diag($err);
is(readlink("$targets/tsok/data/pg_tblspc/16384"), $mapped, 'pg_tblspc/16384 points at the mapped location');
is(mode_of($mapped), '0700', 'tablespace directory 0700');

# A target that is a link planted by someone else is followed only because the operator
# named it; a tablespace location from backup.json that is a link is not.
$bid = with_tablespace('16384', "$base/ts-link");
make_path("$base/ts-elsewhere");
symlink("$base/ts-elsewhere", "$base/ts-link") or die;
refused('tablespace location that is a symbolic link', qr{tablespace directory "[^"]*/ts-link" is not a directory \(a symbolic link\)},
	'restore', '--dir', $dir, $bid, '--target', "$targets/tslink/data");
ok(!-e "$targets/tslink", 'no target left behind');

# Restoring over anything is still refused, and the directory is left as it was.
make_path("$targets/busy");
append_to_file("$targets/busy/keep-me", 'data');
refused('non-empty target', qr/is not empty/, 'restore', '--dir', $dir, $id, '--target', "$targets/busy");
is(slurp_file("$targets/busy/keep-me"), 'data', 'the non-empty directory is untouched');

$node->stop;
done_testing();
