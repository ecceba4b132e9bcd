# Helpers shared by the migration TAP tests (020, 022, 023, 024): run the utility and
# write a folder of migration files.
package WardenMigrations;

use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(warden folder);

my $warden = $ENV{WARDEN_BIN};
my $folders = 0;

# Runs the utility; returns (exit code, stdout, stderr).
sub warden
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $warden, @_ ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

# A fresh folder of migration files, written byte for byte: name => content.
sub folder
{
	my %files = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir("migrations" . $folders++);
	for my $name (keys %files)
	{
		open(my $fh, '>:raw', "$dir/$name") or die "$dir/$name: $!";
		print $fh $files{$name};
		close($fh);
	}
	return $dir;
}

1;
