# ALTER EXTENSION privacy_guard UPDATE: a 1.0 install updated to the current
# version has the same objects as a fresh install of it, with the same
# definitions, privileges, comments and dump settings: every member object
# (pg_depend 'e') is described from the catalogs (function and view
# definitions, columns with types, defaults and privileges, constraints,
# indexes, triggers, policies, sequences, types, operators, casts, event
# triggers, the initial privileges pg_dump keeps, the configuration tables)
# and the two descriptions must be equal line for line; the lines that
# differ are printed.  Data made on 1.0 (every registry, consent history,
# protected and partitioned tables, anonymizers with a custom function,
# legal holds, forget requests in every state, tagged values, the access
# log) is kept across the update, reads the same per purpose, and works on:
# an old receipt is found, a new forget request is carried out with the
# custom anonymizer.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/../perl";
use PvgState;

my $node = PostgreSQL::Test::Cluster->new('update');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.audit = off
});
$node->start;

my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'privacy_guard'");
my @versions = split /\n/, $node->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = 'privacy_guard' ORDER BY version");
ok((grep { $_ eq '1.0' } @versions), "version 1.0 is installable (the current one is $default)");

$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE ROLE auditor LOGIN;
	CREATE DATABASE fresh;
	CREATE DATABASE updated;
});

# ---- state made on 1.0 --------------------------------------------------------------
$node->safe_psql('updated', "CREATE EXTENSION privacy_guard VERSION '1.0'");
make_state($node, 'updated');
is($node->safe_psql('updated', q{
	SELECT string_agg(state, ',' ORDER BY id) FROM privacy_guard.erasure_request}),
	'done,restricted,blocked,pending', 'on 1.0: forget requests in every state');

my ($before, $tables) = state_of($node, 'updated');
note("on 1.0:\n$before");
ok($before =~ /^billing\|1,2,3,4,7\|refused 42501\|1\|3\|1:note one,2:-\n/m
	  && $before =~ /^tax\|refused 42501\|refused 42501\|refused 42501\|1,2,3\|1:-,2:-\n/m,
	'on 1.0: app sees per purpose what the rules allow (the forgotten hidden, the hold for tax only)');
ok($before =~ /anonymizer: .*\(public\.contacts,nick,function,"public\.initials\(text\)"\)/,
	'on 1.0: the custom anonymizer is recorded');
# the anonymizer whose function is gone holds a bare OID on 1.0, NULL after
ok($before =~ s/\(public\.pets,name,function,\d+\)/(public.pets,name,function,)/,
	'on 1.0: the anonymizer whose function was dropped holds its OID');

# ---- the update ----------------------------------------------------------------------
$node->safe_psql('updated', 'ALTER EXTENSION privacy_guard UPDATE');
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'privacy_guard'"),
	$default, "ALTER EXTENSION UPDATE reaches $default");

# the objects: compared where no state of the user's changes privileges,
# from every earlier version installable (each updated along its path)
$node->safe_psql('fresh', 'CREATE EXTENSION privacy_guard');
my $fresh = catalog_lines($node, 'fresh');
cmp_ok(scalar(@$fresh), '>', 500, 'the description of a fresh install has ' . scalar(@$fresh) . ' lines');
my $upd;
for my $v (grep { $_ ne $default } @versions)
{
	(my $db = "from_$v") =~ s/\W/_/g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION privacy_guard VERSION '$v'; ALTER EXTENSION privacy_guard UPDATE");
	my $lines = catalog_lines($node, $db);
	$upd = $lines if $v eq '1.0';
	my @diff = differences($fresh, $lines);
	is(scalar(@diff), 0, "a fresh install and an updated $v have the same objects, definitions, privileges and comments")
	  or diag("- only in the fresh install, + only in the updated $v:\n" . join("\n", @diff));
}

# the description sees what it claims to: a change to a definition, a
# privilege or a comment shows
$node->safe_psql('fresh', q{
	COMMENT ON TABLE privacy_guard.anonymizer IS 'changed';
	GRANT SELECT ON privacy_guard.anonymizer TO app;
	CREATE OR REPLACE FUNCTION privacy_guard._function_signature(fn oid) RETURNS text
		LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$ SELECT NULL::text $$;
	ALTER TABLE privacy_guard.anonymizer ALTER COLUMN method SET DEFAULT 'null';
});
my @seen = differences(catalog_lines($node, 'fresh'), $upd);
is(scalar(grep { /comment on privacy_guard\.anonymizer: changed/ } @seen), 1, 'the comparison sees a comment');
is(scalar(grep { /^\+ relation privacy_guard\.anonymizer .*acl .*app=SELECT/ } @seen) +
   scalar(grep { /^- relation privacy_guard\.anonymizer .*acl .*app=SELECT/ } @seen), 1,
	'... a privilege');
is(scalar(grep { /^- function privacy_guard\._function_signature\(pg_catalog\.oid\)\\n.*SELECT NULL::text/ } @seen), 1,
	'... a function body');
is(scalar(grep { /^- column privacy_guard\.anonymizer #3 method .*default 'null'/ } @seen), 1,
	'... a column default');

# ---- data kept -----------------------------------------------------------------------
# the tables and columns there were on 1.0 (an update may add others)
my $after = state_of($node, 'updated', $tables);
is($after, $before, 'after the update: every table of the extension, what app sees per purpose, '
	  . 'the receipts and the tags are as before')
  or diag(join("\n", differences([ split /\n|\| /, $before ], [ split /\n|\| /, $after ])));
is($node->safe_psql('updated', "SELECT privacy_guard.erasure_status('9')"), 'done',
	'an old receipt is found by its subject (the digest key kept)');

# and it works on: the pending request is carried out with the custom
# anonymizer; the anonymizer whose function was dropped before the update
# blocks a request for a subject it has rows of, until the owner sets it again
$node->safe_psql('updated', 'SELECT privacy_guard.run_maintenance(); SELECT privacy_guard.run_maintenance();');
# the read app made on 1.0 is in the access log (flushed on 1.0, or kept in
# shared memory until the updated extension could take it)
is($node->safe_psql('updated', q{
	SELECT count(*) > 0 FROM privacy_guard.access_log
	 WHERE role::text = 'app' AND purpose = 'billing' AND table_name::text = 'public.customers'}),
	't', 'after the update: the access log has the read made on 1.0');
is($node->safe_psql('updated', "SELECT privacy_guard.erasure_status('5')"), 'done',
	'after the update: the pending request is carried out');
is($node->safe_psql('updated', q{SELECT subject IS NULL, nick, email <> 'bert@example.org', phone FROM contacts WHERE pk = 2}),
	't|B.|t|0********1', '... anonymising with the custom function, hash and mask');
$node->safe_psql('updated', "SELECT privacy_guard.forget('7'); SELECT privacy_guard.run_maintenance();");
is($node->safe_psql('updated', "SELECT state || ': ' || error FROM privacy_guard.erasure_request WHERE id = (SELECT max(id) FROM privacy_guard.erasure_request)"),
	'blocked: error 42883 while erasing from public.pets',
	'the anonymizer whose function was dropped blocks its request');
$node->safe_psql('updated', q{
	CREATE FUNCTION public.gone2(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'y' $$;
	SELECT privacy_guard.set_anonymizer('pets', 'name', 'public.gone2');
	SELECT privacy_guard.run_maintenance(); SELECT privacy_guard.run_maintenance();
});
is($node->safe_psql('updated', "SELECT privacy_guard.erasure_status('7') || ' ' || (SELECT name FROM pets)"),
	'done y', '... until the owner sets it again');

$node->stop;
done_testing(18 + scalar(grep { $_ ne $default } @versions));
