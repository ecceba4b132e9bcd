# warden backup create / verify / restore / drill, physical: a round trip with a user
# tablespace while writes and checkpoints run, a standby made from a backup, damaged and
# crafted backups, interrupted runs and bad input.
use strict;
use warnings;
use File::Path qw(make_path);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
# The standby made from the backup streams from where the backup ended; the writer's
# checkpoints would recycle that WAL otherwise.
$node->append_conf('postgresql.conf', 'wal_keep_size = 512MB');
$node->start;
my $connstr = $node->connstr('postgres');
my $dir = $node->basedir . '/backups';

my $tsdir = $node->basedir . '/ts';
make_path($tsdir);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_warden;
	CREATE TABLESPACE userts LOCATION '$tsdir';
	CREATE TABLE moving (id bigserial PRIMARY KEY, payload text) TABLESPACE userts;
	CREATE INDEX moving_payload ON moving (payload) TABLESPACE userts;
	INSERT INTO moving (payload) SELECT md5(g::text) FROM generate_series(1, 50000) g;
	CREATE TABLE settled AS SELECT g AS id, repeat('x', 100) AS filler FROM generate_series(1, 20000) g;
});

# Writes and checkpoints run until the backup is done.
my $stop = $node->basedir . '/stop-writer';
my $writer = IPC::Run::start(
	[ 'bash', '-c',
	  qq{while [ ! -e '$stop' ]; do psql -X -q -d "$connstr" -c "INSERT INTO moving (payload) SELECT md5(random()::text) FROM generate_series(1, 500)" -c "CHECKPOINT" || exit 1; done} ],
	'>', \my $wout, '2>', \my $werr);
sleep 1;

my ($out, $err);
my $ok = IPC::Run::run([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--json', '--label', 'round trip' ],
	'>', \$out, '2>', \$err);
ok($ok, 'backup create succeeds under load') or diag($err);
my $backup = decode_json($out);
my $id = $backup->{id};
like($id, qr/^\d{8}T\d{6}Z$/, 'backup ID printed as JSON');
my $committed_after = $node->safe_psql('postgres', 'SELECT count(*) FROM moving');
open my $fh, '>', $stop; close $fh;
ok($writer->finish, 'writer ran throughout') or diag($werr);

is($node->safe_psql('postgres', "SELECT count(*) FROM pg_replication_slots"), '0',
	'the temporary slot is gone after the backup');
ok(-f "$dir/$id/base.tar.gz" && -f "$dir/$id/backup_manifest" && -f "$dir/$id/backup.json",
	'archive, manifest and description stored');
is(system('gzip', '-t', "$dir/$id/base.tar.gz"), 0, 'blocks compressed in parallel still make one valid .gz');
like(`tar -tzf $dir/$id/base.tar.gz`, qr{^global/pg_control$}m, 'which tar reads');
my @ts_archives = glob("$dir/$id/[0-9]*.tar.gz");
is(scalar @ts_archives, 1, 'one archive for the user tablespace');

my $desc = decode_json(slurp_file("$dir/$id/backup.json"));
is($desc->{kind}, 'physical', 'catalog: kind');
is($desc->{label}, 'round trip', 'catalog: label');
is($desc->{system_identifier},
	$node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()'),
	'catalog: system identifier');
ok(scalar @{ $desc->{wal}{segments} } >= 1, 'catalog: WAL segments of the backup listed with checksums');
unlike(slurp_file("$dir/$id/backup.json"), qr/password/, 'catalog holds no password');

is($node->safe_psql('postgres', "SELECT kind || ' ' || status FROM warden.backups WHERE id = '$id'"),
	'physical completed', 'backup recorded in warden.backups');

$node->command_like([ $warden, 'backup', 'list', '--dir', $dir ], qr/$id\s+physical/, 'list shows it');
$node->command_like([ $warden, 'backup', 'verify', '--dir', $dir, $id, '-d', $connstr ],
	qr/verified/, 'verify passes');
is($node->safe_psql('postgres', "SELECT status FROM warden.backups WHERE id = '$id'"),
	'verified', 'verification recorded in warden.backups');

# zstd and uncompressed backups take the same checks.
for my $method ('zstd', 'none')
{
	my ($zid) = run_command([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr,
			'--compress', $method, '--level', ($method eq 'zstd' ? '1' : '0'), '--quiet' ]);
	chomp $zid;
	ok(-f "$dir/$zid/base.tar" . ($method eq 'zstd' ? '.zst' : ''), "$method backup stored");
	$node->command_ok([ $warden, 'backup', 'verify', '--dir', $dir, $zid ], "$method backup verifies");
	system('rm', '-rf', "$dir/$zid");
}

# Restore with the tablespace mapped elsewhere, start, check.
my $restored = PostgreSQL::Test::Cluster->new('restored');
my $newts = $restored->basedir . '/ts';
$node->command_ok(
	[ $warden, 'restore', '--dir', $dir, $id, '--target', $restored->data_dir,
	  '--tablespace-mapping', "$tsdir=$newts" ],
	'restore succeeds');
my $mode = (stat($restored->data_dir))[2] & 07777;
is(sprintf('%o', $mode), '700', 'data directory mode 0700');
like(slurp_file($restored->data_dir . '/postgresql.auto.conf'), qr/archive_mode = 'off'/,
	'restored copy does not archive');
is(readlink($restored->data_dir . '/pg_tblspc/' . (split m{/|\.}, $ts_archives[0])[-3]), $newts,
	'tablespace link points at the mapped location');
$restored->append_conf('postgresql.conf', 'port = ' . $restored->port);
$restored->start;
my $rows = $restored->safe_psql('postgres', 'SELECT count(*) FROM moving');
ok($rows >= 50000 && $rows <= $committed_after, "restored rows ($rows) between those committed before and after");
is($restored->safe_psql('postgres', 'SELECT count(*) = max(id) FROM moving'), 't',
	'restored table is consistent');
is($restored->safe_psql('postgres', 'SELECT count(*) FROM settled'), '20000', 'untouched table complete');
$restored->command_ok([ 'pg_amcheck', '--all', '--heapallindexed', '--install-missing' ],
	'restored cluster passes pg_amcheck --heapallindexed');
$restored->stop;

# A standby from the same backup follows the primary.
my $standby = PostgreSQL::Test::Cluster->new('standby');
$node->command_ok(
	[ $warden, 'restore', '--dir', $dir, $id, '--target', $standby->data_dir,
	  '--tablespace-mapping', "$tsdir=" . $standby->basedir . '/ts',
	  '--standby', '--primary-conninfo', $node->connstr . ' application_name=standby' ],
	'restore as a standby');
ok(-f $standby->data_dir . '/standby.signal', 'standby.signal written');
$standby->append_conf('postgresql.conf', 'port = ' . $standby->port);
$standby->start;
$node->safe_psql('postgres', 'INSERT INTO settled VALUES (20001)');
$node->wait_for_catchup('standby');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM settled'), '20001', 'standby streams from the primary');
$standby->stop;

# The drill: scratch cluster on a private socket, pg_amcheck, time to restore recorded.
$node->command_like([ $warden, 'backup', 'drill', '--dir', $dir, $id, '-d', $connstr ],
	qr/drill of $id: passed/, 'drill passes');
$desc = decode_json(slurp_file("$dir/$id/backup.json"));
ok(defined $desc->{durations}{restore_seconds}, 'drill recorded the time to restore');

# Restoring over anything is refused.
my $busy = $node->basedir . '/busy';
make_path($busy);
append_to_file("$busy/keep-me", 'data');
$node->command_fails_like([ $warden, 'restore', '--dir', $dir, $id, '--target', $busy ],
	qr/is not empty/, 'restore into a non-empty directory is refused');
ok(-f "$busy/keep-me", 'the non-empty directory is untouched');

# One flipped byte: verify names the file and the catalog says so.
my $copy = "$dir/${id}-2";
system('cp', '-a', "$dir/$id", $copy) == 0 or die;
my $json = slurp_file("$copy/backup.json");
$json =~ s/"id": "$id"/"id": "${id}-2"/;
open $fh, '>', "$copy/backup.json"; print $fh $json; close $fh;
open $fh, '+<', "$copy/base.tar.gz" or die;
binmode $fh;
seek $fh, 1000, 0; read $fh, my $byte, 1;
seek $fh, 1000, 0; print $fh chr(ord($byte) ^ 0xff);
close $fh;
$node->command_fails_like([ $warden, 'backup', 'verify', '--dir', $dir, "${id}-2" ],
	qr/base\.tar\.gz: checksum mismatch/, 'verify names the damaged file');
is(decode_json(slurp_file("$copy/backup.json"))->{verify_ok}, JSON::PP::false, 'failed verification recorded');

# A crafted archive whose member climbs out of the target is refused, even with
# checksums that match.
my $crafted = "$dir/${id}-3";
system('cp', '-a', "$dir/$id", $crafted) == 0 or die;
my $src = $node->basedir . '/craft';
make_path($src);
append_to_file("$src/x", 'owned');
system('tar', '-C', $src, '-czf', "$crafted/base.tar.gz", '--transform', 's,^x$,../escaped,', 'x') == 0 or die;
my $d = decode_json(slurp_file("$crafted/backup.json"));
$d->{id} = "${id}-3";
for my $f (@{ $d->{files} })
{
	next unless $f->{name} eq 'base.tar.gz';
	$f->{size} = -s "$crafted/base.tar.gz";
	my ($sum) = split ' ', `sha256sum $crafted/base.tar.gz`;
	$f->{sha256} = $sum;
}
open $fh, '>', "$crafted/backup.json"; print $fh encode_json($d); close $fh;
my $target = $node->basedir . '/crafted-target';
$node->command_fails_like(
	[ $warden, 'restore', '--dir', $dir, "${id}-3", '--target', "$target/data",
	  '--tablespace-mapping', "$tsdir=$target/ts" ],
	qr/outside the target directory/, 'archive member with ../ refused');
ok(!-e "$target/escaped" && !-e "$target/data", 'nothing written outside, nothing left behind');

# Interrupted runs: no catalog entry and no replication slot, whether stopped or killed.
my @before = grep { !/^\./ } map { s{.*/}{}r } glob("$dir/*");
for my $signal ('TERM', 'KILL')
{
	my ($sout, $serr) = ('', '');
	my $h = IPC::Run::start([ $warden, 'backup', 'create', '--dir', $dir, '-d', $connstr, '--max-rate', '32' ],
		'>', \$sout, '2>', \$serr);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_replication_slots WHERE slot_name LIKE 'warden_backup_%'")
	  or die 'backup did not start';
	sleep 1;
	$h->signal($signal);
	$h->finish;
	isnt($h->result, 0, "backup stopped by SIG$signal exits non-zero");
	like($serr, qr/interrupted/, 'and says it was interrupted') if $signal eq 'TERM';
	ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_replication_slots'),
		"no replication slot left after SIG$signal");
	my @after = grep { !/^\./ } map { s{.*/}{}r } glob("$dir/*");
	is_deeply(\@after, \@before, "no catalog entry after SIG$signal");
}
$node->command_like([ $warden, 'backup', 'list', '--dir', $dir ], qr/interrupted or running/,
	'list names the killed run\'s partial folder');
$node->command_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '10' ],
	qr/abandoned partial backup/, 'prune removes the abandoned partial folder');
is(scalar(() = glob("$dir/.partial-*")), 0, 'no partial folder left');

# Bad input.
@before = grep { !/^\./ } map { s{.*/}{}r } glob("$dir/*");
$node->command_fails_like([ $warden, 'backup', 'verify', '--dir', $dir, '20991231T000000Z' ],
	qr/unknown backup ID/, 'unknown backup ID');
$node->command_fails_like([ $warden, 'restore', '--dir', $dir, '../../etc', '--target', "$target/x" ],
	qr/unknown backup ID/, 'a path is not a backup ID');
$node->command_fails_like(
	[ $warden, 'backup', 'create', '--dir', $dir, '-d', 'host=' . $node->basedir . '/nowhere port=1' ],
	qr/could not connect/, 'unreachable server');
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN');
$node->command_fails_like(
	[ $warden, 'backup', 'create', '--dir', $dir, '-d', $node->connstr('postgres') . ' user=plain' ],
	qr/replication/, 'role without REPLICATION');
$node->command_fails_like([ $warden, 'backup', 'create', '--dir', $dir, '--compress', 'gzip', '--level', '12' ],
	qr/between 1 and 9/, 'bad compression level');
# A write failure half-way (a file size limit standing in for a full disk).
$node->command_fails_like(
	[ 'bash', '-c', "ulimit -f 512; exec '$warden' backup create --dir '$dir' -d '$connstr' --quiet" ],
	qr/could not write .*\.tar\.gz": File too large/, 'a failed write is reported with the file');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_replication_slots'), 'and leaves no slot');
is(scalar(() = glob("$dir/.partial-*")), 0, 'nor a partial folder');
my @final = grep { !/^\./ } map { s{.*/}{}r } glob("$dir/*");
is_deeply(\@final, \@before, 'failed runs left no catalog entry');

$node->stop;
done_testing();
