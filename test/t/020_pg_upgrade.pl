# pg_upgrade of a cluster where privacy_guard keeps every kind of state
# (purposes, authorisations, consents with history, protected and
# partitioned tables, anonymizers with a custom function, a legal hold,
# forget requests in every state, receipts, tagged values, the access log):
# pg_upgrade --check finds nothing it refuses, the upgrade runs in copy mode
# and with --link (15 to 15: the only major installed), and in the new
# cluster the extension's objects, every table of the extension (the
# ledger, receipts, digest key), what an application sees under each
# purpose, the receipts found by their subjects and the tags are exactly as
# before; the background worker then runs its rounds there and carries out
# a pending request with the custom anonymizer (polled with a bound).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use File::Spec;
use Cwd qw(getcwd);
use FindBin;
use lib "$FindBin::Bin/../perl";
use PvgState;

# the directory of the PostgreSQL the tests run with (pg_upgrade is there)
my ($bindir) = grep { -x "$_/postgres" && -x "$_/pg_upgrade" } File::Spec->path;
plan skip_all => 'pg_upgrade not found beside postgres in PATH' unless $bindir;

# privacy_guard preloaded (the worker, the shared consent store, the access
# log), the worker off while states are compared
my $conf = q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.naptime = 1
};

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init(extra => ['--no-locale']);
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE ROLE auditor LOGIN;
	CREATE DATABASE shop;
});
$old->safe_psql('shop', 'CREATE EXTENSION privacy_guard');
make_state($old, 'shop');
is($old->safe_psql('shop', q{SELECT string_agg(state, ',' ORDER BY id) FROM privacy_guard.erasure_request}),
	'done,restricted,blocked,pending', 'old cluster: forget requests in every state');
is($old->safe_psql('shop', q{
	SELECT (SELECT count(*) FROM privacy_guard.access_log) > 0,
		   (SELECT count(*) FROM privacy_guard.consent_ledger),
		   (SELECT count(*) FROM privacy_guard.anonymizer WHERE method = 'function'),
		   (SELECT count(*) FROM privacy_guard.protected_part)}),
	't|11|2|7', 'old cluster: the access log, the ledger, custom anonymizers and partitions are there');

# a database still at 1.0: pg_upgrade --check refuses it (its anonymizer
# column is a regprocedure) until the extension is updated
$old->safe_psql('postgres', 'CREATE DATABASE legacy');
$old->safe_psql('legacy', q{
	CREATE EXTENSION privacy_guard VERSION '1.0';
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE FUNCTION public.initials(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT left($1, 1) $$;
	CREATE TABLE people (pk int PRIMARY KEY, subject text, nick text);
	SELECT privacy_guard.protect('people', 'subject', ARRAY['billing'], on_forget => 'anonymize');
	SELECT privacy_guard.set_anonymizer('people', 'nick', 'public.initials');
});
$old->stop;
my @check = ('pg_upgrade', '--check', '-d', $old->data_dir, '-b', $bindir, '-B', $bindir,
	'-s', $old->host, '-p', $old->port);
my $probe = PostgreSQL::Test::Cluster->new('probe');
$probe->init(extra => ['--no-locale']);
$probe->append_conf('postgresql.conf', $conf);
my ($stdout, $stderr);
my $cwd = getcwd();
chdir $old->basedir or die;
IPC::Run::run([ @check, '-D', $probe->data_dir, '-P', $probe->port ], '>', \$stdout, '2>', \$stderr);
like($stdout, qr/reg\* data types in user tables\s+fatal/,
	'pg_upgrade --check refuses a database where privacy_guard is still at 1.0');
like(slurp_file($probe->data_dir . '/pg_upgrade_output.d/' . (map { s{.*/}{}r } glob($probe->data_dir . '/pg_upgrade_output.d/*'))[0]
				. '/tables_using_reg.txt'),
	qr/privacy_guard\.anonymizer\.fn/, '... naming privacy_guard.anonymizer.fn');
$old->start;
$old->safe_psql('legacy', 'ALTER EXTENSION privacy_guard UPDATE');
is($old->safe_psql('legacy', 'SELECT fn FROM privacy_guard.anonymizer'), 'public.initials(text)',
	'... ALTER EXTENSION UPDATE keeps the anonymizer, by its signature');

my ($before, $tables) = state_of($old, 'shop');
my $objects = catalog_lines($old, 'shop');
note("before:\n$before");
ok($before =~ /^billing\|1,2,3,4,7\|refused 42501\|1\|3\|1:note one,2:-\n/m
	  && $before =~ /^tax\|refused 42501\|refused 42501\|refused 42501\|1,2,3\|1:-,2:-\n/m,
	'old cluster: app sees per purpose what the rules allow');
$old->stop;

my $n = 0;
for my $mode ('copy', 'link')
{
	$n++;
	my $new = PostgreSQL::Test::Cluster->new("new$n");
	$new->init(extra => ['--no-locale']);
	$new->append_conf('postgresql.conf', $conf);
	my @upgrade = ('pg_upgrade', '--no-sync', '-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir, '-s', $new->host, '-p', $old->port, '-P', $new->port);

	if ($n == 1)
	{
		my $ok = IPC::Run::run([ @upgrade, '--check' ], '>', \$stdout, '2>', \$stderr);
		ok($ok, 'pg_upgrade --check finds nothing it refuses')
		  or diag("$stdout\n$stderr");
		unlike($stdout, qr/reg\* data types in user tables\s+fatal/, '... no reg* column in particular');
	}
	command_ok([ @upgrade, $mode eq 'link' ? ('--link') : () ], "pg_upgrade in $mode mode");

	$new->start;
	my $after = state_of($new, 'shop', $tables);
	is($after, $before, "$mode: every table of the extension (ledger, receipts, digest key), "
		  . 'what app sees per purpose, the receipts found by their subjects and the tags are as before')
	  or diag(join("\n", differences([ split /\n|\| /, $before ], [ split /\n|\| /, $after ])));
	my @diff = differences($objects, catalog_lines($new, 'shop'));
	is(scalar(@diff), 0, "$mode: the extension's objects, definitions, privileges and comments are as before")
	  or diag(join("\n", @diff));
	is($new->safe_psql('shop', "SELECT privacy_guard.erasure_status('9')"), 'done',
		"$mode: an old receipt is found by its subject (the digest key carried)");
	is($new->safe_psql('shop', q{SELECT count(*) FROM pg_policy WHERE polname = 'privacy_guard_rules'}), '7',
		"$mode: the rules' policies on every protected table and partition");
	is($new->safe_psql('legacy', q{SELECT privacy_guard._anonymize_set('people')}),
		'nick = public.initials(nick), subject = NULL', "$mode: the updated database's anonymizer resolves");

	# the worker: its rounds run in the new cluster and carry out the pending
	# request (5) with the custom anonymizer; the request of 7 (whose
	# anonymizer function is gone) is blocked until set again
	$new->safe_psql('postgres', q{ALTER SYSTEM SET privacy_guard.enabled = on; SELECT pg_reload_conf();});
	ok($new->poll_query_until('shop', q{
		SELECT (SELECT rounds FROM privacy_guard.worker_round) > 0
		   AND privacy_guard.erasure_status('5') = 'done'}),
		"$mode: the worker runs rounds in the new cluster and carries out the pending request");
	is($new->safe_psql('shop', q{SELECT subject IS NULL, nick, phone FROM contacts WHERE pk = 2}),
		't|B.|0********1', "$mode: ... anonymising with the custom function and mask");
	$new->safe_psql('shop', "SELECT privacy_guard.forget('7')");
	ok($new->poll_query_until('shop', "SELECT privacy_guard.erasure_status('7') = 'blocked'"),
		"$mode: a request meeting the anonymizer whose function is gone is blocked");
	$new->safe_psql('shop', q{
		CREATE FUNCTION public.gone2(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'y' $$;
		SELECT privacy_guard.set_anonymizer('pets', 'name', 'public.gone2');
	});
	ok($new->poll_query_until('shop', "SELECT privacy_guard.erasure_status('7') = 'done'"),
		"$mode: ... and carried out once the owner sets it again");
	$new->stop;
}
chdir $cwd;

done_testing(28);
