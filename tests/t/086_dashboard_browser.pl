# `warden dashboard` and `warden health --html` in a real browser: headless Chromium loads
# every page after its charts are drawn; the DOM must show every check of health_check()
# (custom ones included) and data points in every chart. A screenshot of each page is kept
# under tmp_check/screenshots (and copied to $WARDEN_SCREENSHOT_DIR when set). Also: a
# non-loopback address without auth and TLS is refused, the auth file must be safe, basic
# auth guards every path, the server refuses anything but GET, and custom checks drive
# `warden health`'s Nagios exit code.
use strict;
use warnings;
use File::Copy;
use File::Path qw(make_path);
use HTTP::Tiny;
use IPC::Run;
use MIME::Base64;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $warden = $ENV{WARDEN_BIN};
my ($chromium) = grep { -x } map { "$_/chromium" } split /:/, $ENV{PATH};
ok($chromium, 'chromium is installed (apt-get install chromium)') or done_testing(), exit;

my $node = PostgreSQL::Test::Cluster->new('dashboard');
$node->init;
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_warden;
	CREATE ROLE regress_dash_watcher LOGIN IN ROLE warden_monitor;
	CREATE TABLE public.queue (id int PRIMARY KEY, state text NOT NULL);
	INSERT INTO public.queue SELECT g, CASE WHEN g <= 42 THEN 'waiting' ELSE 'done' END
	FROM generate_series(1, 100) g;
	GRANT SELECT ON public.queue TO warden_monitor;
	SELECT warden.add_check('queue_waiting',
		$$SELECT count(*), count(*) || ' jobs waiting' FROM public.queue WHERE state = 'waiting'$$,
		50, 100, unit => 'jobs');
	-- Something for the tables, backups and security pages to list.
	CREATE TABLE public.orders (id int PRIMARY KEY, customer int, note text);
	CREATE INDEX orders_customer ON public.orders (customer);
	CREATE INDEX orders_customer_again ON public.orders (customer);
	INSERT INTO public.orders SELECT g, g % 50, repeat('x', 40) FROM generate_series(1, 5000) g;
	DELETE FROM public.orders WHERE id % 3 = 0;
	ANALYZE public.orders;
	INSERT INTO warden.backups (id, kind, status, label, finished_at, verified_at, original_bytes, stored_bytes)
	VALUES ('20260101T000000Z', 'physical', 'verified', 'nightly', now() - interval '5 hours',
	        now() - interval '4 hours', 52428800, 10485760);
	INSERT INTO warden.security_events (event_type, principal, source, failures, detail)
	VALUES ('login_failed', 'mallory', '192.0.2.7', 3, 'password authentication failed');
});

# Six hours of snapshots, every five minutes, with every series the charts draw.
$node->safe_psql('postgres', q{
	INSERT INTO warden.health_snapshots
	    (taken_at, stats_reset, wal_lsn, connections, xact_commit, xact_rollback, deadlocks,
	     temp_files, temp_bytes, blks_hit, blks_read, database_size, xid_age, failed_logins,
	     lockouts, connections_active, connections_idle, connections_idle_in_transaction,
	     connections_waiting, dead_tuples, replication_lag_bytes, archive_lag_bytes,
	     job_failures, backup_age_hours)
	SELECT now() - g * interval '5 minutes' - interval '1 minute', '2026-01-01 00:00+00',
	       ('0/' || to_hex(200000000 - g * 300000 - (g % 5) * 20000))::pg_lsn,
	       12 + g % 5, 2000000 - g * (900 + (g % 7) * 50), 20000 - g * 10 - g % 3, 0, 0, 0,
	       9000000 - g * (9500 + (g % 4) * 300), 200000 - g * 150, 50000000, 1000,
	       g % 4, g % 2, 3 + g % 4, 6 + g % 3, g % 2, g % 2, 1000 + (g * 37) % 900,
	       1024 * (g % 10), 4096 * (g % 6), g % 3, 5 + g / 12.0
	FROM generate_series(1, 72) g;
});
# The snapshot procedure fills the new series itself.
$node->safe_psql('postgres', 'CALL warden.health_snapshot()');
is( $node->safe_psql('postgres', q{
		SELECT connections_active IS NOT NULL AND connections_idle IS NOT NULL
		       AND dead_tuples IS NOT NULL AND job_failures IS NOT NULL
		       AND backup_age_hours BETWEEN 4.9 AND 5.1
		FROM warden.health_snapshots ORDER BY taken_at DESC LIMIT 1}),
	't', 'health_snapshot() records connections by state, dead tuples, job failures and backup age');

my $conninfo = $node->connstr('postgres') . ' user=regress_dash_watcher';
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $shots = "$PostgreSQL::Test::Utils::tmp_check/screenshots";
make_path($shots);
$ENV{HOME} = $tmp;    # chromium writes under HOME; the server account's may be read-only

sub chromium
{
	my ($url, @mode) = @_;
	my @cmd = ($chromium, '--headless', '--disable-gpu', '--no-first-run',
		'--hide-scrollbars', "--user-data-dir=$tmp/chromium",
		'--virtual-time-budget=10000', '--window-size=1280,1900', @mode);
	push @cmd, '--no-sandbox' if $> == 0;    # Chromium's sandbox refuses to run as root
	my ($out, $err) = ('', '');
	IPC::Run::run([ @cmd, $url ], '>', \$out, '2>', \$err, IPC::Run::timeout(180));
	return $out;
}

sub screenshot
{
	my ($url, $name) = @_;
	chromium($url, "--screenshot=$shots/$name.png");
	ok(-s "$shots/$name.png", "screenshot of $name");
	copy("$shots/$name.png", "$ENV{WARDEN_SCREENSHOT_DIR}/$name.png")
	  if $ENV{WARDEN_SCREENSHOT_DIR} && -d $ENV{WARDEN_SCREENSHOT_DIR};
}

sub checks_in { my ($dom) = @_; return { $dom =~ /<tr data-check="([^"]+)" data-status="([^"]+)"/g }; }
sub charts_in { my ($dom) = @_; return { $dom =~ /data-chart="(\w+)" data-points="(\d+)"/g }; }

my %expected_checks = map { split /\|/ }
  split /\n/, $node->safe_psql('postgres', 'SELECT check_name, status FROM warden.health_check()');
my @chart_ids = qw(connections transactions cache dead_tuples wal lag security jobs backup);

# --- The refusals come first: they need no server.
sub warden_run
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $warden, @args ], '<', \'', '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($code, $out, $err) = warden_run('dashboard', '--listen', "0.0.0.0:$port", '-d', $conninfo);
is($code, 2, 'a non-loopback address without auth is refused with exit 2');
like($err, qr/^warden: dashboard: refusing to listen on 0\.0\.0\.0, which is not loopback, without --auth-file and --tls-cert\/--tls-key\n\z/,
	'... with a one-line reason');

my $auth_file = "$tmp/dashboard.auth";
($code, $out) = warden_run('dashboard', '--hash-password', 'ops');
is($code, 2, 'an empty password is refused');
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $warden, 'dashboard', '--hash-password', 'ops' ], '<', \"s3cret pass\n", '>', \$o, '2>', \$e);
	like($o, qr/^ops:pbkdf2-sha256:\d+:[0-9a-f]{32}:[0-9a-f]{64}\n\z/, '--hash-password prints a PBKDF2 line');
	unlike($o . $e, qr/s3cret/, 'the password is not echoed');
	$out = $o;
}
PostgreSQL::Test::Utils::append_to_file($auth_file, $out);
chmod 0644, $auth_file;
($code, $out, $err) = warden_run('dashboard', '--listen', "127.0.0.1:$port", '--auth-file', $auth_file, '-d', $conninfo);
is($code, 2, 'an auth file others can read is refused');
like($err, qr/is readable or writable by others; chmod 600 it/, '... saying why');
chmod 0600, $auth_file;
symlink($auth_file, "$tmp/link.auth") or die "symlink: $!";
($code, $out, $err) = warden_run('dashboard', '--listen', "127.0.0.1:$port", '--auth-file', "$tmp/link.auth", '-d', $conninfo);
is($code, 2, 'an auth file reached through a symlink is refused');
like($err, qr/is a symbolic link/, '... saying why');

# --- Custom checks drive the Nagios exit code of `warden health` (built-in checks off).
$node->safe_psql('postgres', 'UPDATE warden.health_thresholds SET enabled = false');
($code, $out) = warden_run('health', '-d', $conninfo);
is($code, 0, 'custom check ok: exit 0') or diag($out);
$node->safe_psql('postgres', q{UPDATE public.queue SET state = 'waiting' WHERE id <= 60});
($code, $out) = warden_run('health', '-d', $conninfo);
is($code, 1, 'custom check warning: exit 1');
like($out, qr/warning\s+queue_waiting\s+60 jobs\s+warn 50 \/ crit 100\s+60 jobs waiting/, '... shown in the text report');
$node->safe_psql('postgres', q{UPDATE public.queue SET state = 'waiting'});
($code, $out) = warden_run('health', '-d', $conninfo, '--prometheus');
is($code, 2, 'custom check critical: exit 2');
like($out, qr/^warden_health_status\{check="queue_waiting",category="custom"\} 2$/m, '... and in the metrics');
$node->safe_psql('postgres', q{UPDATE public.queue SET state = 'done' WHERE id > 42;
	UPDATE warden.health_thresholds SET enabled = true});

# --- The server, as a warden_monitor member, with basic auth on loopback.
my ($srv_out, $srv_err) = ('', '');
my $server = IPC::Run::start(
	[ $warden, 'dashboard', '--listen', "127.0.0.1:$port", '--auth-file', $auth_file, '-d', $conninfo ],
	'>', \$srv_out, '2>', \$srv_err);
my $deadline = time + 60;
$server->pump_nb while $srv_out !~ /serving/ && time < $deadline && $server->pumpable;
like($srv_out, qr/^warden dashboard: serving database postgres as regress_dash_watcher on http:\/\/127\.0\.0\.1:$port\/ \(basic auth\)/,
	'the dashboard starts and says where') or diag($srv_err);

my $http = HTTP::Tiny->new(timeout => 60);
my $base = "http://127.0.0.1:$port";
is($http->get("$base/")->{status}, 401, 'no credentials: 401');
is($http->get("$base/static/chart.min.js")->{status}, 401, 'static files need credentials too');
my $bad = 'Basic ' . encode_base64('ops:wrong', '');
is($http->get("$base/", { headers => { Authorization => $bad } })->{status}, 401, 'a wrong password: 401');
my $good = 'Basic ' . encode_base64('ops:s3cret pass', '');
my $res = $http->get("$base/", { headers => { Authorization => $good } });
is($res->{status}, 200, 'the right password: 200');
like($res->{headers}{'content-security-policy'}, qr/script-src 'self'/, 'pages carry a Content-Security-Policy');
is($http->request('POST', "$base/", { headers => { Authorization => $good }, content => 'x' })->{status},
	405, 'the dashboard is read-only: POST refused');
is($http->get("$base/charts?range=1y", { headers => { Authorization => $good } })->{status},
	400, 'an unknown chart range is refused');
unlike($srv_err, qr/s3cret|Authorization/i, 'the request log carries no credentials');
$server->signal('TERM');
ok($server->finish, 'SIGTERM stops the dashboard cleanly, exit 0') or diag($server->full_result(0));

# --- Any other address needs auth and TLS. Here 0.0.0.0 with both, reached over HTTPS.
my ($cert, $key) = ("$tmp/cert.pem", "$tmp/key.pem");
my ($ossl_out, $ossl_err) = ('', '');
IPC::Run::run([ 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', $key,
		'-out', $cert, '-days', '1', '-subj', '/CN=localhost' ], '>', \$ossl_out, '2>', \$ossl_err)
  or die "openssl: $ossl_err";
($code, $out, $err) = warden_run('dashboard', '--listen', "0.0.0.0:$port", '--auth-file', $auth_file, '-d', $conninfo);
is($code, 2, 'auth without TLS off loopback is refused');
($code, $out, $err) = warden_run('dashboard', '--listen', "127.0.0.1:$port", '--tls-cert', $cert,
	'--tls-key', "$tmp/missing.pem", '-d', $conninfo);
is($code, 1, 'a missing TLS key: exit 1');
like($err, qr/^warden: dashboard: cannot use --tls-cert .* with --tls-key .*missing\.pem/, '... saying why');
($srv_out, $srv_err) = ('', '');
$server = IPC::Run::start(
	[ $warden, 'dashboard', '--listen', "0.0.0.0:$port", '--auth-file', $auth_file,
	  '--tls-cert', $cert, '--tls-key', $key, '-d', $conninfo ],
	'>', \$srv_out, '2>', \$srv_err);
$deadline = time + 60;
$server->pump_nb while $srv_out !~ /serving/ && time < $deadline && $server->pumpable;
like($srv_out, qr/on https:\/\/0\.0\.0\.0:$port\/ \(basic auth\)/, 'off loopback with auth and TLS: serves HTTPS')
  or diag($srv_err);
my $https = HTTP::Tiny->new(timeout => 60, verify_SSL => 0);
is($https->get("https://127.0.0.1:$port/")->{status}, 401, 'HTTPS without credentials: 401');
is($https->get("https://127.0.0.1:$port/security", { headers => { Authorization => $good } })->{status},
	200, 'HTTPS with credentials: 200');
isnt($http->get("http://127.0.0.1:$port/", { headers => { Authorization => $good } })->{status},
	200, 'no plain HTTP on the TLS port');
$server->signal('TERM');
ok($server->finish, 'the TLS dashboard stops cleanly');

# --- Every page in Chromium (no auth: Chromium cannot be given basic credentials headless).
($srv_out, $srv_err) = ('', '');
$server = IPC::Run::start([ $warden, 'dashboard', '--listen', "127.0.0.1:$port", '-d', $conninfo ],
	'>', \$srv_out, '2>', \$srv_err);
$deadline = time + 60;
$server->pump_nb while $srv_out !~ /serving/ && time < $deadline && $server->pumpable;
like($srv_out, qr/serving/, 'the dashboard starts without auth on loopback') or diag($srv_err);

my %page_checks = (
	tables => [qw(dead_tuples autovacuum_due invalid_indexes duplicate_indexes unused_indexes)],
	migrations => [qw(migrations_running migrations_failed migration_drift)],
	backups => [qw(backup_age archive_failing archive_lag wal_receiver_down wal_receiver_lag)],
	jobs => [qw(job_failures jobs_last_run)],
	security => [qw(failed_logins lockouts)]);
for my $page (qw(overview charts tables migrations backups jobs security))
{
	my $url = $base . ($page eq 'overview' ? '/' : "/$page");
	my $dom = chromium($url, '--dump-dom');
	like($dom, qr/<body[^>]*data-rendered="true"/, "$page: rendered");
	unlike($dom, qr/<p class="error">/, "$page: no section failed");
	my $checks = checks_in($dom);
	if ($page eq 'overview')
	{
		is_deeply([ sort keys %$checks ], [ sort keys %expected_checks ],
			'overview: one row per check of health_check(), the custom one included');
		is($checks->{queue_waiting}, 'ok', 'overview: the custom check with its status');
		like($dom, qr/data-status="(ok|warning|critical|unknown)"[^>]*>/, 'overview: the overall status');
	}
	elsif ($page eq 'charts')
	{
		my $charts = charts_in($dom);
		is_deeply([ sort keys %$charts ], [ sort @chart_ids ], 'charts: every chart drawn');
		ok($charts->{$_} > 0, "charts: $_ has data points ($charts->{$_})") for @chart_ids;
	}
	else
	{
		is_deeply([ sort keys %$checks ], [ sort @{ $page_checks{$page} } ], "$page: its checks");
	}
	like($dom, qr/data-title="Estimated bloat" data-rows="[1-9]/, 'tables: a bloat estimate')
	  if $page eq 'tables';
	like($dom, qr/duplicate of public\.orders_customer</, 'tables: the duplicate index') if $page eq 'tables';
	like($dom, qr/mallory/, 'security: the failed login') if $page eq 'security';
	like($dom, qr/nightly/, 'backups: the backup') if $page eq 'backups';
	screenshot($url, "dashboard_$page");
}
my $week = charts_in(chromium("$base/charts?range=1h", '--dump-dom'));
ok($week->{connections} > 0 && $week->{connections} < 288 / 4, 'a shorter range draws fewer points');
$server->signal('TERM');
$server->finish;

# --- `warden health --html`: the same overview and charts in one file, opened as a file.
my $file = "$tmp/health report.html";
symlink("$tmp/victim", $file) or die "symlink: $!";    # a planted link is replaced, not followed
PostgreSQL::Test::Utils::append_to_file("$tmp/victim", 'keep me');
($code, $out, $err) = warden_run('health', '-d', $conninfo, '--html', $file);
ok($code >= 0 && $code <= 2, '--html keeps the Nagios exit code') or diag($err);
ok(!-l $file && -s $file, 'the report replaced the symlink with a file');
is(PostgreSQL::Test::Utils::slurp_file("$tmp/victim"), 'keep me', 'the link target is untouched');
is((stat $file)[2] & 07777, 0600, 'the report is mode 0600');
my $html = PostgreSQL::Test::Utils::slurp_file($file);
unlike($html, qr/<script src=|<link /, 'self-contained: no script or style fetched');
like($html, qr/Chart\.js v3/, 'Chart.js inlined');
(my $file_url = "file://$file") =~ s/ /%20/g;
my $dom = chromium($file_url, '--dump-dom');
like($dom, qr/<body[^>]*data-rendered="true"/, 'html report: rendered from a file');
is_deeply([ sort keys %{ checks_in($dom) } ], [ sort keys %expected_checks ], 'html report: every check');
my $charts = charts_in($dom);
ok((keys %$charts) == @chart_ids && !grep({ !$charts->{$_} } @chart_ids), 'html report: every chart has data points');
screenshot($file_url, 'health_html_report');

done_testing();
