# pg_dump by a superuser and pg_restore into a new database bring back the
# registries, the digest key and intact policies: the same rows are visible,
# the DDL guard still holds, and receipts still match their subjects.  A
# dump by a role the rules bind fails instead of writing hidden rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init(extra => ['--no-locale']);
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE DATABASE src;
	CREATE DATABASE dst;
});
$node->safe_psql('src', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	SELECT privacy_guard.define_purpose('marketing.email', 'consent');
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	CREATE TABLE customers (id bigint PRIMARY KEY, name text, created timestamptz DEFAULT now());
	CREATE TABLE orders (id bigint, customer_id bigint) PARTITION BY RANGE (id);
	CREATE TABLE orders_1 PARTITION OF orders FOR VALUES FROM (0) TO (100);
	INSERT INTO customers SELECT g, 'n' || g FROM generate_series(1, 8) g;
	INSERT INTO orders SELECT g, g FROM generate_series(1, 8) g;
	GRANT SELECT ON customers, orders, orders_1 TO app;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'], '1 year', 'created');
	SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['marketing']);
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 5) g;
	SELECT privacy_guard.withdraw_consent('2', 'marketing');
	SELECT privacy_guard.forget('4');
});

my $views = q{
	SET ROLE app;
	SET privacy_guard.purpose = 'marketing';
	SELECT (SELECT string_agg(id::text, ',' ORDER BY id) FROM customers) || ' / ' ||
		   (SELECT string_agg(id::text, ',' ORDER BY id) FROM orders_1);
};
my $before = $node->safe_psql('src', $views);
is($before, '1,3,5 / 1,3,5', 'source: only consenting, not forgotten subjects');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump by a superuser');
my ($stdout, $stderr);
my $rc = IPC::Run::run([ 'pg_restore', '-d', $node->connstr('dst'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($rc, 'pg_restore reports no error') or diag($stderr);

is($node->safe_psql('dst', $views), $before, 'restored: the same rows are visible');
is($node->safe_psql('dst', q{
	SELECT count(*) FROM pg_policy WHERE polname = 'privacy_guard_rules'}),
	'3', 'restored: the rules policy on both tables and the partition');
is($node->safe_psql('dst', "SELECT privacy_guard.erasure_status('4')"), 'pending',
	'restored: the receipt still matches its subject (digest key restored)');
is($node->safe_psql('dst', "SELECT privacy_guard.erasure_status('5') IS NULL"), 't',
	'restored: and no other subject');

my ($r, $o, $e) = $node->psql('dst', 'DROP POLICY privacy_guard_rules ON orders_1');
isnt($r, 0, 'restored: the DDL guard still refuses dropping the rules');
like($e, qr/table public\.orders_1 is protected by privacy_guard/, '... with the guard\'s own refusal');
is($node->safe_psql('dst', q{SELECT count(*) FROM pg_policy WHERE polname = 'privacy_guard_rules'
							  AND polrelid = 'orders_1'::regclass}), '1', '... and the policy is there');

# new writes after the restore do not collide with restored ids
$node->safe_psql('dst', q{
	SELECT privacy_guard.grant_consent('7', 'marketing');
	SELECT privacy_guard.forget('6');
	SELECT privacy_guard.define_purpose('support', 'contract');
});
is($node->safe_psql('dst', "SELECT count(*) FROM privacy_guard.consent_ledger"), '7',
	'restored: the ledger continues after its restored rows');

# a dump by a bound role fails loudly
$node->safe_psql('src', 'GRANT SELECT ON ALL TABLES IN SCHEMA privacy_guard TO app');
my $bad = $node->basedir . '/bad.dump';
$r = IPC::Run::run([ 'pg_dump', '-Fc', '-f', $bad, '-t', 'customers', '-d', $node->connstr('src'),
	'-U', 'app' ], '>', \$stdout, '2>', \$stderr);
ok(!$r, 'pg_dump by a role the rules bind fails');
like($stderr, qr/row-level security/, '... because of row-level security');

$node->stop;
done_testing(13);
