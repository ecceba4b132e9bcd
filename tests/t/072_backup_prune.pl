# warden backup prune: dry run and real prune on a catalog whose IDs sort opposite to
# the backups' real order, with a verified old backup, a failed one and another system.
use strict;
use warnings;
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(strftime);
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my $dir = PostgreSQL::Test::Utils::tempdir . '/backups';
my $now = time;

sub backup
{
	my ($id, $lsn, $age_days, %extra) = @_;
	make_path("$dir/$id");
	my $d = {
		format => 1, id => $id, kind => 'physical', label => $id, status => 'complete',
		finished_at => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($now - $age_days * 86400)),
		stop_lsn => $lsn, timeline => 1, system_identifier => '7001',
		compression => { method => 'gzip', level => 6 }, sizes => {}, durations => {},
		files => [], %extra };
	open my $fh, '>', "$dir/$id/backup.json" or die;
	print $fh encode_json($d);
	close $fh;
}

# The clock was wrong for a while: IDs do not follow the WAL order.
backup('20300101T000000Z', '0/1000000', 40, verify_ok => JSON::PP::true);   # oldest, verified
backup('20290101T000000Z', '0/2000000', 30);
backup('20280101T000000Z', '0/3000000', 20, verify_ok => JSON::PP::false);  # failed verify
backup('20270101T000000Z', '0/4000000', 3);
backup('20260101T000000Z', '0/5000000', 1);                                 # newest
backup('20250101T000000Z', '9/0', 50, system_identifier => '6999');         # other system
make_path("$dir/.partial-20310101T000000Z");                                  # killed run, no pid

command_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '2', '--dry-run' ],
	qr/20300101T000000Z\s+keep\s+newest verified/, 'dry run: the newest verified backup is kept');
my ($out) = run_command([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '2', '--keep-days', '7', '--dry-run' ]);
like($out, qr/20260101T000000Z\s+keep\s+among the newest 2 physical backups \(number 1\)/, 'newest by LSN is number 1');
like($out, qr/20270101T000000Z\s+keep\s+among the newest 2/, 'second newest kept');
like($out, qr/20290101T000000Z\s+would delete\s+older than the newest 2 physical backups and older than 7 days/,
	'old unverified backup would go');
like($out, qr/20280101T000000Z\s+would delete\s+its last verification failed/, 'failed backup would go');
like($out, qr/20250101T000000Z\s+keep\s+system identifier 6999/, 'another system is kept');
like($out, qr/\.partial-20310101T000000Z\s+would delete\s+abandoned/, 'abandoned partial folder would go');
ok(-d "$dir/20290101T000000Z" && -d "$dir/20280101T000000Z" && -d "$dir/.partial-20310101T000000Z",
	'dry run deletes nothing');

command_ok([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '2', '--keep-days', '7' ], 'prune');
my @left = sort map { s{.*/}{}r } glob("$dir/*");
is_deeply(\@left, [ qw(20250101T000000Z 20260101T000000Z 20270101T000000Z 20300101T000000Z) ],
	'prune deleted exactly the backups it announced');
is(scalar(() = glob("$dir/.partial-*")), 0, 'and the abandoned folder');

($out) = run_command([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '1', '--json', '--dry-run' ]);
my $j = decode_json($out);
my %keep = map { $_->{id} => $_->{keep} } @{ $j->{decisions} };
ok($keep{'20260101T000000Z'} && $keep{'20300101T000000Z'} && !$keep{'20270101T000000Z'},
	'--json decisions with keep-last 1');

command_fails_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '0' ],
	qr/at least 1/, 'keep-last 0 refused');
command_fails_like([ $warden, 'backup', 'prune', '--dir', "$dir/missing", '--keep-last', '1' ],
	qr/does not exist/, 'missing backup folder');
open my $fh, '>', "$dir/20260101T000000Z/backup.json"; print $fh '{"format": 1, "id": "20260101T000000Z", "kind": "physical", "finished_at": "2026-01-01T00:00:00Z", "stop_lsn": "bogus", "system_identifier": "7001", "compression": {"method": "gzip"}, "sizes": {}, "durations": {}, "files": []}'; close $fh;
command_fails_like([ $warden, 'backup', 'prune', '--dir', $dir, '--keep-last', '1' ],
	qr/no readable stop LSN; nothing pruned/, 'an unreadable LSN prunes nothing');
is(scalar(() = glob("$dir/2*")), 4, 'nothing deleted');

done_testing();
