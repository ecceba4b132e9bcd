# The root part of tests/t/095_utility_files.pl: run as root, that test checks what only root
# can (a hard link to a root-only file, symlinks at the old temporary names, chown to the
# data directory's owner) instead of starting a cluster.
use strict;
use warnings;
# Loaded at compile time so that their INIT blocks (log and scratch folders) run.
use PostgreSQL::Test::Cluster ();
use PostgreSQL::Test::Utils ();
my $test = "$ENV{WARDEN_ROOT}/tests/t/095_utility_files.pl";
do $test;
die "$test: $@" if $@;
