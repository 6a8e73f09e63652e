# The rules hold whatever the library's load state: in a fresh backend that
# has never loaded privacy_guard, with the library preloaded, and after
# DROP EXTENSION ... CASCADE (the table fails closed, it does not open up).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

sub setup_db
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		CREATE EXTENSION privacy_guard;
		SELECT privacy_guard.define_purpose('billing', 'contract');
		SELECT privacy_guard.define_purpose('marketing', 'consent');
		CREATE ROLE app LOGIN;
		SELECT privacy_guard.allow_purpose('app', 'billing');
		SELECT privacy_guard.allow_purpose('app', 'marketing');
		CREATE TABLE customers (id bigint PRIMARY KEY, email text);
		INSERT INTO customers SELECT g, 'secret' || g FROM generate_series(1, 10) g;
		GRANT SELECT ON customers TO app;
		SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
		SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 3) g;
	});
}

# psql as role app in a brand-new backend, with the purpose set by
# connection option (before the library can have been loaded)
sub app_query
{
	my ($node, $purpose, $sql) = @_;
	my ($stdout, $stderr);
	local $ENV{PGOPTIONS} = defined $purpose ? "-c privacy_guard.purpose=$purpose" : '';
	$node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr,
		extra_params => [ '-U', 'app' ]);
	return ($stdout, $stderr);
}

for my $preload (0, 1)
{
	my $label = $preload ? 'preloaded' : 'loaded on first use';
	my $node = PostgreSQL::Test::Cluster->new($preload ? 'preload' : 'lazy');
	$node->init(extra => ['--no-locale']);
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'privacy_guard'") if $preload;
	$node->start;
	setup_db($node);

	my ($out, $err) = app_query($node, 'marketing',
		'SELECT string_agg(id::text, \',\' ORDER BY id) FROM customers');
	is($out, '1,2,3', "$label: fresh backend sees only consenting subjects");

	($out, $err) = app_query($node, 'billing', 'SELECT count(*) FROM customers');
	is($out, '10', "$label: contract purpose sees every row");

	($out, $err) = app_query($node, undef, 'SELECT count(*) FROM customers');
	like($err, qr/no purpose is declared/, "$label: no purpose is an error");

	($out, $err) = app_query($node, 'marketing',
		'SELECT count(*) FROM customers WHERE id = 7');
	is($out, '0', "$label: point lookup of a non-consenting subject finds nothing");

	# a consent recorded in another session shows in the next fresh backend
	$node->safe_psql('postgres', "SELECT privacy_guard.grant_consent('7', 'marketing')");
	($out, $err) = app_query($node, 'marketing',
		'SELECT count(*) FROM customers WHERE id = 7');
	is($out, '1', "$label: new consent visible to the next session");

	# the extension dropped with CASCADE: the table fails closed
	$node->safe_psql('postgres', 'DROP EXTENSION privacy_guard CASCADE');
	($out, $err) = app_query($node, 'marketing', 'SELECT count(*) FROM customers');
	is($out, '0', "$label: after DROP EXTENSION CASCADE the table shows nothing");
	is($node->safe_psql('postgres',
			"SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = 'customers'"),
		't', "$label: row-level security stays on after DROP EXTENSION CASCADE");

	$node->stop;
}

done_testing(14);
