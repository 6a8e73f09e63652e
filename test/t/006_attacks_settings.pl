# Attacks that need their own server or connections: purposes set through
# ALTER ROLE/DATABASE SET, connection options and placeholders set before the
# library loads; objects planted in pg_temp or through a hostile implicit
# cast before CREATE EXTENSION; CREATE EXTENSION by a database owner; and
# the server log, which must never show a subject key or a value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# ---- settings: the library is not preloaded ----------------------------------
my $node = PostgreSQL::Test::Cluster->new('settings');
$node->init(extra => ['--no-locale']);
$node->start;
$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE ROLE app LOGIN;
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.allow_purpose('app', 'billing');
	CREATE TABLE t (id bigint, v text);
	INSERT INTO t VALUES (1, 'one'), (2, 'two');
	GRANT SELECT ON t TO mallory, app;
	SELECT privacy_guard.protect('t', 'id', ARRAY['billing']);
});

sub read_as
{
	my ($role, %opts) = @_;
	local $ENV{PGOPTIONS} = $opts{options} if defined $opts{options};
	my ($rc, $out, $err) = $node->psql('postgres', $opts{sql} // 'SELECT count(*) FROM t',
		extra_params => [ '-U', $role ]);
	return $rc == 0 ? $out : $err;
}

# attack: ALTER ROLE ... SET privacy_guard.purpose for an unauthorised role
$node->safe_psql('postgres', q{ALTER ROLE mallory SET privacy_guard.purpose = 'billing'});
like(read_as('mallory'), qr/role "mallory" is not authorised for purpose "billing"/,
	'attack: ALTER ROLE SET purpose gives an unauthorised role nothing');
$node->safe_psql('postgres', 'ALTER ROLE mallory RESET privacy_guard.purpose');

# attack: ALTER DATABASE ... SET privacy_guard.purpose
$node->safe_psql('postgres', q{ALTER DATABASE postgres SET privacy_guard.purpose = 'billing'});
like(read_as('mallory'), qr/not authorised for purpose "billing"/,
	'attack: ALTER DATABASE SET purpose gives an unauthorised role nothing');
is(read_as('app'), '2', '... while an authorised role reads under it');
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET privacy_guard.purpose');

# attack: connection options (PGOPTIONS / startup packet)
like(read_as('mallory', options => '-c privacy_guard.purpose=billing'),
	qr/not authorised for purpose "billing"/,
	'attack: a purpose in the connection options gives an unauthorised role nothing');
like(read_as('app', options => '-c privacy_guard.purpose=billing -c row_security=off'),
	qr/row-level security/,
	'attack: row_security=off in the connection options fails instead of reading everything');

# attack: placeholders set before the library is loaded in this backend
is( read_as('mallory', sql => q{
		SELECT count(*) FROM pg_settings WHERE name = 'privacy_guard.naptime'}),
	'0', 'the library is not loaded in a fresh backend (so the next SETs are placeholders)');
like(read_as('mallory', sql => q{
		SET privacy_guard.purpose = 'billing';
		SELECT count(*) FROM t}),
	qr/not authorised for purpose "billing"/,
	'attack: a placeholder purpose set before the library loads gives nothing');
like(read_as('app', sql => q{
		SET privacy_guard.purpose = 'nonexistent';
		SELECT count(*) FROM t}),
	qr/unknown privacy_guard purpose "nonexistent"/,
	'attack: an unknown placeholder purpose set before the library loads is refused');

# attack: a database owner who is not a superuser creates the extension
$node->safe_psql('postgres', 'CREATE DATABASE mallorydb OWNER mallory');
my ($rc, $out, $err) = $node->psql('mallorydb', 'CREATE EXTENSION privacy_guard',
	extra_params => [ '-U', 'mallory' ]);
isnt($rc, 0, 'attack: a non-superuser database owner cannot CREATE EXTENSION privacy_guard');
like($err, qr/permission denied to create extension "privacy_guard"/, '... refused for want of privilege');

# attack: objects planted in pg_temp of the installing session (temporary
# views shadowing the catalogs, tables named like internal tables) and a
# type with hostile implicit casts
$node->safe_psql('postgres', 'CREATE DATABASE victim');
$node->safe_psql('victim', q{
	CREATE TABLE public.trap_log (who text, what text);
	GRANT INSERT ON public.trap_log TO PUBLIC;
	CREATE FUNCTION public.trap(what text) RETURNS boolean LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.trap_log VALUES (current_user, what); RETURN true; END$$;
	GRANT EXECUTE ON FUNCTION public.trap(text) TO PUBLIC;
	GRANT CREATE ON SCHEMA public TO mallory;
});
$node->safe_psql('victim', q{
	CREATE TYPE public.hostile AS (v text);
	CREATE FUNCTION public.to_hostile(text) RETURNS public.hostile LANGUAGE plpgsql AS
		$$BEGIN PERFORM public.trap('cast from text'); RETURN ROW($1)::public.hostile; END$$;
	CREATE FUNCTION public.hostile_to_text(public.hostile) RETURNS text LANGUAGE plpgsql AS
		$$BEGIN PERFORM public.trap('cast to text'); RETURN $1.v; END$$;
	CREATE CAST (text AS public.hostile) WITH FUNCTION public.to_hostile(text) AS IMPLICIT;
	CREATE CAST (public.hostile AS text) WITH FUNCTION public.hostile_to_text(public.hostile) AS IMPLICIT;
	CREATE FUNCTION public.hostile_eq(text, public.hostile) RETURNS boolean LANGUAGE plpgsql AS
		$$BEGIN PERFORM public.trap('operator'); RETURN true; END$$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = public.hostile, FUNCTION = public.hostile_eq);
	CREATE FUNCTION public.format(public.hostile) RETURNS text LANGUAGE plpgsql AS
		$$BEGIN PERFORM public.trap('format'); RETURN ''; END$$;
}, extra_params => [ '-U', 'mallory' ]);
$node->safe_psql('victim', q{
	CREATE TEMP VIEW pg_class AS SELECT * FROM pg_catalog.pg_class WHERE public.trap('pg_temp.pg_class');
	CREATE TEMP VIEW pg_namespace AS SELECT * FROM pg_catalog.pg_namespace WHERE public.trap('pg_temp.pg_namespace');
	CREATE TEMP VIEW pg_roles AS SELECT * FROM pg_catalog.pg_roles WHERE public.trap('pg_temp.pg_roles');
	CREATE TEMP VIEW pg_inherits AS SELECT * FROM pg_catalog.pg_inherits WHERE public.trap('pg_temp.pg_inherits');
	CREATE TEMP VIEW pg_policy AS SELECT * FROM pg_catalog.pg_policy WHERE public.trap('pg_temp.pg_policy');
	CREATE TEMP VIEW pg_proc AS SELECT * FROM pg_catalog.pg_proc WHERE public.trap('pg_temp.pg_proc');
	CREATE TEMP TABLE purpose (name text, parent text, legal_basis text, description text);
	CREATE TEMP TABLE protected_table (relid oid);
	SET search_path = public, pg_catalog;
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE ROLE victim_app;
	SELECT privacy_guard.allow_purpose('victim_app', 'billing');
	CREATE TABLE vt (id bigint, v text);
	CREATE TABLE vt_child () INHERITS (vt);
	INSERT INTO vt VALUES (1, 'a'), (2, 'b');
	SELECT privacy_guard.protect('vt', 'id', ARRAY['billing'], on_forget => 'anonymize');
	SELECT privacy_guard.set_anonymizer('vt', 'v', 'mask');
	SELECT privacy_guard.grant_consent('1', 'billing') WHERE false;
	SELECT privacy_guard.forget('2');
	SELECT privacy_guard.run_maintenance();
	SELECT privacy_guard.erasure_status('2');
	SELECT privacy_guard.unprotect('vt');
	CREATE TEMP TABLE api_done AS SELECT count(*) AS n FROM public.trap_log;
	-- positive control: the traps are live for unqualified references in this session
	SELECT count(*) > 0 FROM pg_class;
	SELECT 'a'::text = ROW('b')::public.hostile;
	SELECT format('%s', n) FROM api_done;
});
is($node->safe_psql('victim', q{SELECT coalesce(string_agg(DISTINCT what, ', ' ORDER BY what), 'none') FROM public.trap_log}),
	'operator, pg_temp.pg_class',
	'attack: nothing planted in pg_temp or through a hostile implicit cast ran during install or in the API; '
	  . 'control: the pg_temp view and the operator do run when named unqualified');
is($node->safe_psql('victim', q{SELECT count(*) FROM pg_extension WHERE extname = 'privacy_guard'}), '1',
	'... and the extension was installed regardless');
$node->stop;

# ---- the server log: a preloaded worker, failing calls, blocked erasures ----
my $log = PostgreSQL::Test::Cluster->new('serverlog');
$log->init(extra => ['--no-locale']);
$log->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
log_min_messages = info
log_error_verbosity = verbose
# the statement text itself would show literals: PostgreSQL's business, see README
log_min_error_statement = panic
log_statement = none
});
$log->start;
my $key = 'zq-logkey-4471';
my $value = 'zq-logvalue-8812';
$log->safe_psql('postgres', qq{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('news', 'consent');
	CREATE ROLE app;
	SELECT privacy_guard.allow_purpose('app', 'news');
	CREATE TABLE people (subject text, v text);
	INSERT INTO people VALUES ('$key', '$value');
	GRANT SELECT, UPDATE ON people TO app;
	SELECT privacy_guard.protect('people', 'subject', ARRAY['billing', 'news'], on_forget => 'anonymize');
	SELECT privacy_guard.set_anonymizer('people', 'v', 'hash');
	SELECT privacy_guard.grant_consent('$key', 'news');
	SELECT privacy_guard.withdraw_consent('$key', 'news');
	CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		\$\$BEGIN RAISE EXCEPTION 'no' USING ERRCODE = 'P0001'; END\$\$;
	CREATE TRIGGER refuse BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION refuse();
});
# calls that fail, each with the key or value as an argument, each for its own reason
for my $case (
	[ "SELECT privacy_guard.grant_consent('$key', 'billing')", qr/purpose "billing" rests on contract, not on consent/ ],
	[ "SELECT privacy_guard.grant_consent('$key', 'nonexistent')", qr/unknown privacy_guard purpose "nonexistent"/ ],
	[ "SELECT privacy_guard.object_to('$key', 'news')", qr/purpose "news" rests on consent; an objection applies only to/ ],
	[ "SELECT privacy_guard.has_consent('$key', 'nonexistent')", qr/unknown privacy_guard purpose "nonexistent"/ ],
	[ "SELECT privacy_guard.grant_consent('$key', 'news', now() - interval '1 day')", qr/valid_until must lie in the future/ ],
	[ "SELECT privacy_guard.forget('$key', due => NULL)", qr/due must not be null/ ],
	[ "SET ROLE app; SET privacy_guard.purpose = 'billing'; SELECT * FROM people WHERE v = '$value'", qr/role "app" is not authorised for purpose "billing"/ ],
	[ "SET ROLE app; UPDATE people SET v = '$value'", qr/no purpose is declared for table people/ ])
{
	my ($sql, $why) = @$case;
	my ($frc, $fout, $ferr) = $log->psql('postgres', $sql);
	isnt($frc, 0, "a failing call fails: " . substr($sql, 0, 60));
	like($ferr, $why, '... for its own reason');
}
# the worker meets a trigger that refuses the anonymisation, then finishes
$log->safe_psql('postgres', "SELECT privacy_guard.forget('$key')");
ok($log->poll_query_until('postgres', q{SELECT state = 'blocked' FROM privacy_guard.erasure_requests}),
	'the worker leaves the request blocked while the trigger refuses');
$log->safe_psql('postgres', 'DROP TRIGGER refuse ON people');
ok($log->poll_query_until('postgres', q{SELECT state = 'done' FROM privacy_guard.erasure_requests}),
	'the worker carries the request out once the trigger is gone');
$log->stop;
my $text = slurp_file($log->logfile);
like($text, qr/ERROR/, 'the server log holds the errors');
unlike($text, qr/\Q$key\E/, 'attack: no subject key in the server log');
unlike($text, qr/\Q$value\E/, 'attack: no personal value in the server log');

done_testing(33);
