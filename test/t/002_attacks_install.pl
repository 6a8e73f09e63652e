# Objects planted before CREATE EXTENSION are never adopted or run, and only
# a superuser can create the extension.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('install');
$node->init(extra => ['--no-locale']);
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE DATABASE victim;
	GRANT CREATE ON DATABASE victim TO mallory;
});

# a non-superuser cannot create the extension
my ($rc, $out, $err) = $node->psql('victim', 'CREATE EXTENSION privacy_guard',
	extra_params => [ '-U', 'mallory' ]);
isnt($rc, 0, 'a non-superuser cannot CREATE EXTENSION privacy_guard');
like($err, qr/permission denied|must be superuser/, '... with a permission error');

# a schema named privacy_guard planted by another role is not adopted
$node->safe_psql('victim', 'CREATE SCHEMA privacy_guard', extra_params => [ '-U', 'mallory' ]);
($rc, $out, $err) = $node->psql('victim', 'CREATE EXTENSION privacy_guard');
isnt($rc, 0, 'CREATE EXTENSION refuses a schema privacy_guard owned by another role');
like($err, qr/schema privacy_guard exists and belongs to another role/, '... and says why');
is($node->safe_psql('victim', "SELECT count(*) FROM pg_extension WHERE extname = 'privacy_guard'"),
	'0', '... and nothing is installed');
$node->safe_psql('victim', 'DROP SCHEMA privacy_guard', extra_params => [ '-U', 'mallory' ]);

# functions and operators planted in public that shadow what the script
# calls never run during CREATE EXTENSION or in the functions it creates
$node->safe_psql('victim', q{
	CREATE TABLE public.trap_log (who text);
	GRANT INSERT ON public.trap_log TO PUBLIC;
	CREATE FUNCTION public.trap(text, text) RETURNS boolean LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.trap_log VALUES (current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap);
	CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap);
	CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.trap_log VALUES (current_user); RETURN pg_catalog.now(); END$$;
	CREATE FUNCTION public.regexp_replace(text, text, text) RETURNS text LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.trap_log VALUES (current_user); RETURN ''; END$$;
	CREATE FUNCTION public.left(text, integer) RETURNS text LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.trap_log VALUES (current_user); RETURN 'g'; END$$;
	ALTER FUNCTION public.trap(text, text) OWNER TO mallory;
	ALTER FUNCTION public.now() OWNER TO mallory;
	ALTER FUNCTION public.regexp_replace(text, text, text) OWNER TO mallory;
	ALTER FUNCTION public.left(text, integer) OWNER TO mallory;
}, extra_params => []);
$node->safe_psql('victim', q{
	SET search_path = public, pg_catalog;
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	SELECT privacy_guard.define_purpose('marketing.email', 'consent');
	CREATE ROLE app;
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	CREATE TABLE t (id bigint, v text);
	INSERT INTO t VALUES (1, 'a'), (2, 'b');
	SELECT privacy_guard.protect('t', 'id', ARRAY['billing', 'marketing']);
	SELECT privacy_guard.grant_consent('1', 'marketing');
	GRANT SELECT ON t TO app;
	SET ROLE app;
	SET privacy_guard.purpose = 'marketing';
	SELECT count(*) FROM t;
	RESET ROLE;
	SELECT privacy_guard.withdraw_consent('1', 'marketing');
	SELECT privacy_guard.forget('2');
	SELECT privacy_guard.has_consent('1', 'marketing');
	SELECT privacy_guard.erasure_status('2');
	SELECT privacy_guard.unprotect('t');
});
is($node->safe_psql('victim', 'SELECT count(*) FROM public.trap_log'), '0',
	'no planted function or operator ran during install or in the API');
# positive control: the traps are live, an unqualified call in that search_path hits them
is($node->safe_psql('victim', q{
	SET search_path = public, pg_catalog;
	SELECT 'x'::text = 'x'::text, left('ab', 1), now() IS NOT NULL;
	SELECT count(*) FROM public.trap_log;
}), "t|g|t\n3", 'control: the same calls unqualified run the planted function and operators');

$node->stop;
done_testing(7);
