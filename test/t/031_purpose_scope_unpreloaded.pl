# privacy_guard.purpose_scope = 'transaction' in a backend that has not
# loaded the library yet (no shared_preload_libraries): a purpose set for the
# session before the first load (SET, a connection option) is refused at
# use, and the roles the rules bind cannot turn the scope off through a
# placeholder set before the library defines the setting.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('scope_lazy');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', "privacy_guard.purpose_scope = 'transaction'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE ROLE app LOGIN;
	SELECT privacy_guard.allow_purpose('app', 'billing');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g || '@example.org' FROM generate_series(1, 5) g;
	GRANT SELECT ON customers TO app;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing']);
});

# each psql call is a brand-new backend, which has not loaded privacy_guard
sub app
{
	my ($sql, %opts) = @_;
	my ($out, $err);
	local $ENV{PGOPTIONS} = $opts{options} // '';
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ '-U', 'app' ]);
	return ($out, $err);
}

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '', 'the library is not preloaded');
my ($out, $err);

($out, $err) = app(q{SET privacy_guard.purpose = 'billing'; SELECT count(*) FROM customers;});
like($err, qr/no purpose is declared for this transaction/,
	'SET before the library is loaded: refused at use');

($out, $err) = app(q{SELECT count(*) FROM customers;}, options => '-c privacy_guard.purpose=billing');
like($err, qr/no purpose is declared for this transaction/,
	'a purpose from a connection option: refused at use');

($out, $err) = app(q{SET privacy_guard.purpose_scope = 'session'; SET privacy_guard.purpose = 'billing';
	SELECT count(*) FROM customers;});
like($err, qr/permission denied to set parameter "privacy_guard.purpose_scope"/,
	'a placeholder of the scope set by the application role is rejected when the library loads');
like($err, qr/no purpose is declared for this transaction/,
	'... and the scope stays transaction: the session purpose is refused');

($out, $err) = app(q{SHOW privacy_guard.purpose_scope; SELECT count(*) FROM customers;},
	options => '-c privacy_guard.purpose_scope=session');
like($err, qr/permission denied to set parameter "privacy_guard.purpose_scope"/,
	'the scope cannot be turned off by a connection option');

($out, $err) = app(q{BEGIN; SET LOCAL privacy_guard.purpose = 'billing'; SELECT count(*) FROM customers; COMMIT;});
is($out, '5', 'SET LOCAL before the library is loaded works');

# once loaded, the session form is refused when it is made
($out, $err) = app(q{BEGIN; SET LOCAL privacy_guard.purpose = 'billing'; SELECT count(*) FROM customers; COMMIT;
	SET privacy_guard.purpose = 'billing';});
like($err, qr/privacy_guard.purpose can only be set for the transaction/,
	'after the first load, SET is refused when it is made');

$node->stop;
done_testing();
