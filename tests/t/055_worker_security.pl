# Issue 13 with the real background worker, which connects as the bootstrap superuser:
# a warden_admin member's job runs as that member; a database owner's aggregate and
# operator in public never run while the worker runs the built-in jobs; a table owner's
# trigger fires as the table owner when the worker expires its rows; a job whose
# procedure another role took over, or whose owner lost LOGIN, is skipped with the
# reason; and no planted role ever becomes a superuser.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker_security');
$node->init;
$node->append_conf('postgresql.conf', "warden.maintenance_naptime = 1\n");
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE dbo LOGIN;
	CREATE ROLE tab_owner LOGIN;
	CREATE EXTENSION pg_warden;
	GRANT warden_admin TO alice, mallory, tab_owner;
	CREATE SCHEMA alice_app AUTHORIZATION alice;
	CREATE SCHEMA mallory AUTHORIZATION mallory;
	CREATE SCHEMA tab_app AUTHORIZATION tab_owner;
	CREATE TABLE public.witness (job text, run_as name, super boolean);
	GRANT INSERT ON public.witness TO PUBLIC;
	ALTER DATABASE postgres OWNER TO dbo;
});

sub as_role
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => ['-U', $role]);
}

sub superusers
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles
		  WHERE rolsuper AND rolname IN ('alice', 'mallory', 'dbo', 'tab_owner')");
}

# A database owner's traps: an exact-type array_agg(regclass) and numeric * integer in
# public, which the built-in jobs used to reach with the worker's "$user", public.
as_role('dbo', q{
	CREATE TABLE public.dbo_witness (who name);
	GRANT INSERT ON public.dbo_witness TO PUBLIC;
	CREATE FUNCTION public.dbo_escalate() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.dbo_witness VALUES (current_user);
		BEGIN
			EXECUTE 'ALTER ROLE dbo SUPERUSER';
		EXCEPTION WHEN insufficient_privilege THEN NULL;
		END;
	END $$;
	CREATE FUNCTION public.dbo_agg(regclass[], regclass) RETURNS regclass[] LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.dbo_escalate(); RETURN $1 || $2; END $$;
	CREATE AGGREGATE public.array_agg(regclass) (SFUNC = public.dbo_agg, STYPE = regclass[]);
	CREATE FUNCTION public.dbo_mul(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS $$
	BEGIN PERFORM public.dbo_escalate(); RETURN $1 * $2::numeric; END $$;
	CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.dbo_mul);
});

# A table owner's trigger on a table registered for expiry.
as_role('tab_owner', q{
	CREATE TABLE tab_app.sessions (id int PRIMARY KEY, expires_at timestamptz NOT NULL);
	CREATE INDEX ON tab_app.sessions (expires_at);
	CREATE FUNCTION tab_app.on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.witness VALUES ('expiry trigger', current_user, false);
		BEGIN
			EXECUTE 'ALTER ROLE tab_owner SUPERUSER';
		EXCEPTION WHEN insufficient_privilege THEN NULL;
		END;
		RETURN OLD;
	END $$;
	CREATE TRIGGER on_delete BEFORE DELETE ON tab_app.sessions
		FOR EACH ROW EXECUTE FUNCTION tab_app.on_delete();
	INSERT INTO tab_app.sessions SELECT g, now() - interval '1 hour' FROM generate_series(1, 5) g;
	SELECT warden.register_expiry('tab_app.sessions', 'expires_at');
});

# A warden_admin member's job, added by her: the worker runs it as her.
as_role('alice', q{
	CREATE PROCEDURE alice_app.tick() LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.witness
		SELECT 'alice_tick', current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
		COMMIT;
	END $$;
	SELECT warden.schedule_job('alice_tick', 'alice_app.tick', '1 second');
});
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM public.witness WHERE job = 'alice_tick'"),
	'the worker ran the job of a warden_admin member');
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT run_as || '/' || super, ',') FROM public.witness WHERE job = 'alice_tick'"),
	'alice/false', 'as that member, without superuser rights');
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT driver || '/' || status, ',') FROM warden.job_runs WHERE job = 'alice_tick'"),
	'worker/succeeded', 'recorded as run by the worker');

# The built-in jobs (six with seal_audit), all due now, run by the worker past the database owner's traps.
$node->safe_psql('postgres', 'UPDATE warden.jobs SET next_run_at = now() WHERE builtin');
ok($node->poll_query_until('postgres',
	"SELECT count(DISTINCT job) = 6 FROM warden.job_runs r JOIN warden.jobs j ON j.id = r.job_id
	  WHERE j.builtin AND r.driver = 'worker' AND r.status <> 'running'"),
	'the worker ran every built-in job');
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT r.status, ',') FROM warden.job_runs r JOIN warden.jobs j ON j.id = r.job_id
	  WHERE j.builtin"),
	'succeeded', 'each of them succeeded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.dbo_witness'), '0',
	"the database owner's aggregate and operator never ran");
is($node->safe_psql('postgres', 'SELECT count(*) FROM tab_app.sessions'), '0',
	'expire_rows deleted the expired rows');
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT run_as, ',') FROM public.witness WHERE job = 'expiry trigger'"),
	'tab_owner', "the table owner's trigger fired as the table owner");

# A warden_admin member with a private "=" cannot retarget a superuser's job.
$node->safe_psql('postgres', q{
	CREATE PROCEDURE public.super_tick() LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO public.witness
		SELECT 'super_tick', current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
	END $$;
	SELECT warden.schedule_job('super_tick', 'public.super_tick', '1 second');
});
my ($rc, $out, $err) = $node->psql('postgres', q{
	CREATE PROCEDURE mallory.evil() LANGUAGE plpgsql AS $$
	BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; END $$;
	CREATE FUNCTION mallory.always(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
	CREATE OPERATOR mallory.= (LEFTARG = text, RIGHTARG = text, FUNCTION = mallory.always);
	SET search_path = mallory, pg_catalog;
	UPDATE warden.jobs SET procedure = 'mallory.evil' WHERE name = 'super_tick';
}, extra_params => ['-U', 'mallory']);
like($err, qr/or a superuser changes the procedure of maintenance job/,
	'her UPDATE of the procedure is refused');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM public.witness WHERE job = 'super_tick'"),
	"the superuser's job still runs");
is($node->safe_psql('postgres',
	"SELECT procedure FROM warden.jobs WHERE name = 'super_tick'"),
	'public.super_tick', 'and still calls its own procedure');
$node->safe_psql('postgres', "UPDATE warden.jobs SET enabled = false WHERE name = 'super_tick'");

# A superuser's job on a procedure in mallory's schema: she replaces the procedure, and
# the worker skips the job instead of running her code as a superuser.
$node->safe_psql('postgres', q{
	CREATE PROCEDURE mallory.cleanup() LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
	SELECT warden.schedule_job('mallory_cleanup', 'mallory.cleanup', '1 second');
});
as_role('mallory', q{
	DROP PROCEDURE mallory.cleanup();
	CREATE PROCEDURE mallory.cleanup() LANGUAGE plpgsql AS $$
	BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; END $$;
});
my $since = $node->safe_psql('postgres', 'SELECT now()');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'mallory_cleanup' AND status = 'skipped'
	    AND started_at > '$since'
	    AND error_message LIKE '%belongs to role mallory, which could change what runs as%'"),
	'a job whose procedure another role took over is skipped, with the reason');

# Drivers that are no superuser: a warden_admin member logged in as herself runs her own
# job (as her) and a built-in one (as pg_warden's owner), and may not run another's.
$node->safe_psql('postgres', "UPDATE warden.jobs SET enabled = false WHERE name = 'mallory_cleanup'");
my $alice_runs = $node->safe_psql('postgres', "SELECT count(*) FROM warden.job_runs WHERE job = 'alice_tick'");
($rc, $out, $err) = $node->psql('postgres', q{
	CALL warden.run_job('alice_tick');
	CALL warden.run_job('prune_job_runs');
	SELECT current_user, session_user;
}, extra_params => ['-U', 'alice']);
is($rc, 0, 'a member logged in as herself runs her job and a built-in one') or diag($err);
is($out, 'alice|alice', 'and is herself again afterwards');
is($node->safe_psql('postgres',
	"SELECT string_agg(status, ',' ORDER BY id) FROM warden.job_runs
	  WHERE (job = 'alice_tick' OR job = 'prune_job_runs') AND driver = 'psql'"),
	'succeeded,succeeded', 'both runs succeeded');
($rc, $out, $err) = $node->psql('postgres', "CALL warden.run_job('alice_tick')",
	extra_params => ['-U', 'mallory']);
like($err, qr/runs as role alice, which you may not act as/, "another member may not run her job");

# A job whose owner lost LOGIN is skipped too.
$node->safe_psql('postgres', 'ALTER ROLE alice NOLOGIN');
ok($node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM warden.job_runs WHERE job = 'alice_tick' AND status = 'skipped'
	    AND error_message = 'the job does not run: its owner alice cannot log in'"),
	'the job of a role that lost LOGIN is skipped');
my $ticks = $node->safe_psql('postgres', "SELECT count(*) FROM public.witness WHERE job = 'alice_tick'");
ok($node->poll_query_until('postgres',
	"SELECT count(*) >= 2 FROM warden.job_runs WHERE job = 'alice_tick' AND status = 'skipped'"),
	'and stays skipped');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.witness WHERE job = 'alice_tick'"),
	$ticks, 'without running');

is(superusers(), '', 'no planted role became a superuser');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_warden maintenance'"),
	'1', 'the worker is still there');

$node->stop('fast');
done_testing();
