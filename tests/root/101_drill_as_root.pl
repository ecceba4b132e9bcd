# `warden backup drill` from root's crontab: the scratch server runs as the backup folder's
# owner (or --os-user), never as root, and no path reaches a shell. Runs only as root.
use strict;
use warnings;
use File::Path qw(make_path);
use IPC::Run qw(run);
use Test::More;

plan skip_all => 'needs root' unless $> == 0;
my $warden = $ENV{WARDEN_BIN} or die 'WARDEN_BIN is not set';
my $base = "$ENV{ROOT_TESTDIR}/drill";
my (undef, undef, $pg_uid, $pg_gid) = getpwnam('postgres') or die 'no postgres account';
my $bindir = `pg_config --bindir`;
chomp $bindir;

sub as_postgres { return system('runuser', '-u', 'postgres', '--', @_) }
sub spew { my ($f, $s) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $s; close $fh }

make_path("$base/sock", "$base/backups", "$base/wrap", "$base/marks", "$base/source");
chmod 0755, $base;
chown $pg_uid, $pg_gid, "$base/sock", "$base/backups", "$base/marks", "$base/source";
chmod 0700, "$base/source";
chmod 0700, "$base/backups";

# A source cluster as the server account, on a socket in the test's folder.
my $port = 20000 + $$ % 20000;
is(as_postgres("$bindir/initdb", '-D', "$base/source", '-A', 'trust', '--no-sync', '-U', 'postgres'),
	0, 'initdb as postgres');
is(as_postgres("$bindir/pg_ctl", '-D', "$base/source", '-l', "$base/marks/source.log", '-w', '-o',
		"-c port=$port -c listen_addresses= -c unix_socket_directories=$base/sock -c shared_preload_libraries=", 'start'),
	0, 'source server started');
my $conn = "host=$base/sock port=$port dbname=postgres user=postgres";
as_postgres("$bindir/psql", '-qX', '-d', $conn, '-c',
	'CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 1000) g');

# The backup, taken by the server account into its own folder.
my $id = `runuser -u postgres -- '$warden' backup create --dir '$base/backups' -d '$conn' --quiet 2>&1`;
is($? >> 8, 0, 'backup taken as postgres') or diag $id;
($id) = $id =~ /(\d{8}T\d{6}Z(?:-\d+)?)/;
ok($id, "backup ID $id");

# A postgres wrapper first in PATH records the account the scratch server starts as.
spew("$base/wrap/postgres", "#!/bin/sh\nid -un > '$base/marks/server_user'\nexec '$bindir/postgres' \"\$\@\"\n");
chmod 0755, "$base/wrap/postgres";
local $ENV{PATH} = "$base/wrap:$ENV{PATH}";

my $out = `'$warden' backup drill --dir '$base/backups' $id --json 2>&1`;
is($? >> 8, 0, 'drill as root passes') or diag $out;
like($out, qr/as postgres/, 'the drill says which account ran the scratch server');
open my $fh, '<', "$base/marks/server_user";
my $user = $fh ? <$fh> : '';
chomp $user;
is($user, 'postgres', 'the scratch server ran as the backup folder owner, not root');

# A scratch path with a quote and a command substitution: nothing runs, the drill works.
unlink "$base/marks/server_user";
# (short: the scratch folder holds the server's socket, whose path has a length limit)
my $scratch = "$base/q'\$(touch PW)";
# An argument vector here too: the test's own shell must not be the one that runs it.
run([ $warden, 'backup', 'drill', '--dir', "$base/backups", $id, '--scratch', $scratch ], '>&', \$out);
is($? >> 8, 0, 'drill with a quote in --scratch passes') or diag $out;
ok(!-e "PW" && !-e "$base/PW" && !-e "$base/marks/PW", 'no command ran from the scratch path');

# --os-user root is refused: the scratch server never runs as root.
$out = `'$warden' backup drill --dir '$base/backups' $id --os-user root 2>&1`;
isnt($? >> 8, 0, '--os-user root is refused');
is(scalar(split /\n/, $out), 1, 'with a one-line reason: ' . $out);

as_postgres("$bindir/pg_ctl", '-D', "$base/source", '-m', 'fast', '-w', 'stop');
done_testing();
