# Secrets and the shell: no password or sslpassword in the argv of pg_dump, pg_dumpall or
# pg_restore (wrappers record the argv they were started with, which is their
# /proc/PID/cmdline, then run the real program); the password of an invalid URI masked in
# every message; a quote or $(...) in --scratch or TMPDIR runs nothing in a drill, and the
# drill still passes.
use strict;
use warnings;
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('secrets');
$node->init(allows_streaming => 1);
$node->start;
my $dir = $node->basedir . '/backups';

# A role that can only log in with its password: scram before the harness's trust lines.
my $password = 'pw-Zq81-secret';
my $sslpassword = 'sslpw-Kx47-secret';
$node->safe_psql('postgres', "CREATE ROLE dumper SUPERUSER LOGIN PASSWORD '$password'");
my $hba = $node->data_dir . '/pg_hba.conf';
my $rules = slurp_file($hba);
open(my $fh, '>', $hba) or die "open $hba: $!";
print $fh "local all dumper scram-sha-256\n$rules";
close $fh;
$node->reload;
my $host = $node->host;
my $port = $node->port;
my $bare = "host=$host port=$port user=dumper dbname=postgres";
$node->command_fails([ 'psql', '-X', '-d', $bare, '-c', 'SELECT 1' ], 'dumper needs its password');

# Wrappers for the client programs: record argv and what reached the environment.
my $bin = $node->basedir . '/wrapped_bin';
my $log = $node->basedir . '/argv.log';
mkdir $bin or die;
for my $prog (qw(pg_dump pg_dumpall pg_restore))
{
	my ($real) = grep { -x $_ } map { "$_/$prog" } split(/:/, $ENV{PATH});
	die "no $prog on PATH" unless $real;
	open(my $w, '>', "$bin/$prog") or die;
	print $w <<"EOS";
#!/bin/sh
{
  printf 'ARGV'; for a in "\$0" "\$@"; do printf ' [%s]' "\$a"; done; printf '\\n'
  [ -n "\$PGPASSWORD" ] && echo "ENV PGPASSWORD set"
  [ -n "\$PGSERVICEFILE" ] && grep -q '^sslpassword=' "\$PGSERVICEFILE" && echo "SERVICEFILE readable with sslpassword"
  [ -n "\$PGSERVICEFILE" ] && ls -l "\$PGSERVICEFILE" | grep -q memfd && echo "SERVICEFILE in memory"
} >> '$log'
exec '$real' "\$@"
EOS
	close $w;
	chmod 0755, "$bin/$prog";
}

my $conninfo = "$bare password=$password sslpassword=$sslpassword";
my ($ok, $out, $err);
{
	local $ENV{WARDEN_PG_BINDIR} = $bin;
	$ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '--logical', '--database', 'postgres',
			'-d', $conninfo, '--json' ], '>', \$out, '2>', \$err);
	ok($ok, 'logical backup with a password and an sslpassword succeeds') or diag($err);
}
my $id = $ok ? decode_json($out)->{id} : '';
my $argv = slurp_file($log);
like($argv, qr/ARGV \S*pg_dump\] /, 'pg_dump ran through the wrapper');
like($argv, qr/ARGV \S*pg_dumpall\] /, 'pg_dumpall ran through the wrapper');
unlike($argv, qr/\Q$password\E/, 'the password is in no argv');
unlike($argv, qr/\Q$sslpassword\E/, 'the sslpassword is in no argv');
unlike($argv, qr/password=/, 'no password keyword at all in any argv');
like($argv, qr/service=\S*warden_client/, 'the programs select the in-memory service');
like($argv, qr/ENV PGPASSWORD set/, 'the password reached the programs through the environment');
like($argv, qr/SERVICEFILE readable with sslpassword/, 'the sslpassword reached them through the service file');
like($argv, qr/SERVICEFILE in memory/, 'a memfd, never a file on disk');
unlike(slurp_file("$dir/$id/backup.json"), qr/\Q$password\E|\Q$sslpassword\E/, 'no secret in the catalog');

# pg_restore likewise.
$node->safe_psql('postgres', 'CREATE DATABASE copy');
unlink $log;
{
	local $ENV{WARDEN_PG_BINDIR} = $bin;
	$ok = IPC::Run::run([ $warden, 'restore', '--dir', $dir, $id, '--database', 'copy', '-d', $conninfo ],
		'>', \$out, '2>', \$err);
	ok($ok, 'logical restore with the same secrets succeeds') or diag($err);
}
$argv = slurp_file($log);
like($argv, qr/ARGV \S*pg_restore\] /, 'pg_restore ran through the wrapper');
unlike($argv, qr/\Q$password\E|\Q$sslpassword\E/, 'no secret in the argv of pg_restore');

# An invalid URI: libpq quotes it whole in its message; the password must not reach stderr.
my $uri_secret = 'Hunter2-uri-secret';
my $bad_uri = "postgresql://dumper:$uri_secret\@[::1/postgres";
for my $cmd ([ 'health', '-d', $bad_uri ],
	[ 'backup', 'create', '--dir', $dir, '--logical', '--database', 'postgres', '-d', $bad_uri ],
	[ 'wal', 'receive', '--dir', $dir, '--no-loop', '-d', $bad_uri ],
	[ 'health', '-d', "postgresql://dumper\@[::1/db?sslpassword=$uri_secret" ])
{
	IPC::Run::run([ $warden, @$cmd ], '>', \$out, '2>', \$err);
	unlike($err . $out, qr/\Q$uri_secret\E/, "no password in the message of @$cmd[0..1]");
	like($err, qr/\*{8}/, "it is masked in @$cmd[0..1]");
}

# Drills: a quote and $(...) in the scratch path and in TMPDIR run nothing.
my ($backups_out) = run_command([ $warden, 'backup', 'create', '--dir', "$dir-phys", '-d',
		$node->connstr('postgres'), '--json' ]);
my $pid_phys = decode_json($backups_out)->{id};
my $short = PostgreSQL::Test::Utils::tempdir_short();
my $marker = "$short/marker";
my $scratch = "$short/s'\$(touch $marker)\"`touch $marker`";
$node->command_like([ $warden, 'backup', 'drill', '--dir', "$dir-phys", $pid_phys, '--scratch', $scratch ],
	qr/drill of $pid_phys: passed/, 'a drill with a quote and $(...) in --scratch passes');
ok(!-e $marker, 'and ran no command from the path');
ok(!-e $scratch, 'the scratch folder is removed');

my $tmpdir = "$short/t'\$(touch $marker)";
make_path($tmpdir);
{
	local $ENV{TMPDIR} = $tmpdir;
	$node->command_like([ $warden, 'backup', 'drill', '--dir', "$dir-phys", $pid_phys ],
		qr/drill of $pid_phys: passed/, 'a drill with a quote and $(...) in TMPDIR passes');
}
ok(!-e $marker, 'and ran no command from TMPDIR');

# A comma cannot be a libpq host: refused before anything is restored, with the reason.
$node->command_fails_like([ $warden, 'backup', 'drill', '--dir', "$dir-phys", $pid_phys, '--scratch', "$short/a,b" ],
	qr/cannot hold the server's socket/, 'a scratch path with a comma is refused plainly');

# Not root: --os-user may only name ourselves.
$node->command_fails_like([ $warden, 'backup', 'drill', '--dir', "$dir-phys", $pid_phys, '--os-user', 'root' ],
	qr/--os-user root needs root/, '--os-user of another account needs root');

$node->stop;
done_testing();
