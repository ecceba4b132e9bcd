# `warden wal recovery-settings` run as root (a runbook, a crontab) on a data directory that
# the server account owns: whoever owns that directory must not be able to make root read,
# truncate, overwrite or chown a file outside it. Runs only when the harness runs as root.
use strict;
use warnings;
use File::Path qw(make_path);
use Test::More;

plan skip_all => 'needs root' unless $> == 0;
my $warden = $ENV{WARDEN_BIN} or die 'WARDEN_BIN is not set';
my $base = "$ENV{ROOT_TESTDIR}/recovery_settings";
my (undef, undef, $pg_uid, $pg_gid) = getpwnam('postgres') or die 'no postgres account';

sub slurp { my ($f) = @_; open my $fh, '<', $f or return undef; local $/; my $s = <$fh>; return $s }
sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $s; close $fh }
sub owner_mode { my @st = lstat $_[0]; return @st ? sprintf('%d:%04o', $st[4], $st[2] & 07777) : 'missing' }

# A data directory as the server account leaves it, and a backup folder of root's.
sub fresh_datadir {
	my ($name) = @_;
	my $d = "$base/$name";
	make_path("$d/pgdata", "$d/backups/wal");
	spew("$d/pgdata/PG_VERSION", "15\n");
	spew("$d/pgdata/postgresql.auto.conf", "work_mem = '8MB'\n");
	chmod 0700, "$d/pgdata";
	chown $pg_uid, $pg_gid, "$d/pgdata", "$d/pgdata/PG_VERSION", "$d/pgdata/postgresql.auto.conf";
	chmod 0700, "$d/backups";
	return $d;
}

# Root-only files the attacker points its symlinks at.
sub root_file {
	my ($path, $content) = @_;
	spew($path, $content);
	chmod 0600, $path;
	chown 0, 0, $path;
	return $path;
}

sub run_warden {
	my ($d) = @_;
	my $out = `'$warden' wal recovery-settings --dir '$d/backups' -D '$d/pgdata' --latest 2>&1`;
	return ($? >> 8, $out);
}

make_path($base);
chmod 0755, $base;

# The legitimate use: root writes the settings, the server account owns the result.
{
	my $d = fresh_datadir('plain');
	my ($rc, $out) = run_warden($d);
	is($rc, 0, 'recovery-settings as root succeeds on a plain data directory') or diag $out;
	like(slurp("$d/pgdata/postgresql.auto.conf"), qr/restore_command = .*wal fetch/, 'restore_command written');
	like(slurp("$d/pgdata/postgresql.auto.conf"), qr/work_mem = '8MB'/, 'the other settings are kept');
	is(owner_mode("$d/pgdata/postgresql.auto.conf"), "$pg_uid:0600", 'postgresql.auto.conf belongs to the server account, 0600');
	is(owner_mode("$d/pgdata/recovery.signal"), "$pg_uid:0600", 'recovery.signal belongs to the server account, 0600');
}

# postgresql.auto.conf is a symlink to a root-only file: its content must not be read into
# the data directory, and the file must not change.
{
	my $d = fresh_datadir('read_through_link');
	my $secret = root_file("$d/root_secret", "ssl_passphrase = 'TOPSECRET'\n");
	unlink "$d/pgdata/postgresql.auto.conf";
	symlink $secret, "$d/pgdata/postgresql.auto.conf" or die $!;
	my ($rc, $out) = run_warden($d);
	isnt($rc, 0, 'a symlinked postgresql.auto.conf is refused');
	like($out, qr/postgresql\.auto\.conf/, 'the reason names the file');
	is(scalar(split /\n/, $out), 1, 'the reason is one line');
	is(slurp($secret), "ssl_passphrase = 'TOPSECRET'\n", "root's file is unchanged");
	is(owner_mode($secret), '0:0600', "root's file keeps its owner and mode");
	for my $f (glob("$d/pgdata/*")) {
		next if -l $f;
		unlike(slurp($f) // '', qr/TOPSECRET/, "no copy of root's secret in $f");
	}
}

# Symlinks at every temporary name the old code used (postgresql.auto.conf.tmp.<pid> for
# the next pids) and at recovery.signal, all pointing at root-only files.
{
	my $d = fresh_datadir('temp_names');
	my $target = root_file("$d/root_target", "ORIGINAL\n");
	my $signal_target = root_file("$d/root_signal_target", "KEEP\n");
	my $next = $$;
	for my $pid ($next .. $next + 3000) {
		symlink $target, "$d/pgdata/postgresql.auto.conf.tmp.$pid";
		symlink $target, "$d/pgdata/recovery.signal.tmp.$pid";
	}
	symlink $signal_target, "$d/pgdata/recovery.signal" or die $!;
	my ($rc, $out) = run_warden($d);
	is(slurp($target), "ORIGINAL\n", "a root file behind the temporary names is unchanged");
	is(owner_mode($target), '0:0600', 'and keeps its owner and mode');
	is(slurp($signal_target), "KEEP\n", "a root file behind recovery.signal is not truncated");
	is(owner_mode($signal_target), '0:0600', 'and is not given to the server account');
	if ($rc == 0) {
		ok(!-l "$d/pgdata/recovery.signal", 'recovery.signal was replaced by a real file');
		like(slurp("$d/pgdata/postgresql.auto.conf"), qr/restore_command/, 'the settings were written beside the planted names');
	}
	else {
		like($out, qr/recovery\.signal|symbolic link|symlink/, 'or the planted link is refused with its name: ' . $out);
	}
}

done_testing();
