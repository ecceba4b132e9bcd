# Helpers shared by the wal TAP tests: run `warden wal receive` in the background, wait
# for it to make WAL durable, restore a base backup with warden's recovery settings.
package WardenWal;

use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Exporter 'import';
use IPC::Run;

our @EXPORT = qw(start_receiver stop_receiver wait_receiver_flushed restore_node warden_run slurp);

my $warden = $ENV{WARDEN_BIN};
my %running;

# A test that dies must not leave a receiver retrying forever.
END
{
	kill('KILL', keys %running) if %running;
}

# Starts a receiver for $node into $dir; returns its pid. Its log goes to $log.
sub start_receiver
{
	my ($node, $dir, $log, @args) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>>', $log) or die "open $log: $!";
		open(STDERR, '>&', \*STDOUT) or die;
		exec($warden, 'wal', 'receive', '--dir', $dir, '-d',
			$node->connstr('postgres'), @args)
		  or die "exec: $!";
	}
	$running{$pid} = 1;
	return $pid;
}

# Sends $signal (TERM by default) and reaps; returns the exit status.
sub stop_receiver
{
	my ($pid, $signal) = @_;
	kill($signal // 'TERM', $pid);
	waitpid($pid, 0);
	my $status = $?;
	delete $running{$pid};
	return $status;
}

# Waits until the receiver connected to $node has flushed everything written so far.
sub wait_receiver_flushed
{
	my ($node, $app) = @_;
	$app //= 'warden_receiver';
	my $lsn = $node->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
	$node->poll_query_until('postgres',
		"SELECT flush_lsn >= '$lsn' FROM pg_stat_replication WHERE application_name = '$app'")
	  or die "receiver did not flush up to $lsn";
	return $lsn;
}

# A new node from $from's base backup $backup, recovering from the WAL archive in $dir
# with `warden wal recovery-settings` and the given target options; started and waited
# for until recovery ended (or paused).
sub restore_node
{
	my ($name, $from, $backup, $dir, @target) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init_from_backup($from, $backup);
	$node->append_conf('postgresql.conf',
		"synchronous_standby_names = ''\narchive_mode = off\n");
	my ($ok, $out, $err) = warden_run('wal', 'recovery-settings', '--dir', $dir, '-D',
		$node->data_dir, @target);
	die "recovery-settings failed: $err" unless $ok;
	$node->start;
	return $node;
}

# Runs the utility; returns (success, stdout, stderr).
sub warden_run
{
	my @cmd = ($warden, @_);
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	return ($ok, $stdout, $stderr, $? >> 8);
}

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<', $path) or return '';
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

1;
