# A restore of a complete set-up runs without a single error (issue 12,
# item 7): pg_restore, with --exit-on-error and with --single-transaction,
# and a plain dump through psql with ON_ERROR_STOP in one transaction.
# The set-up has what made restores fail or could: a protected table with
# a primary key, a foreign key and a tagged column (its default-tag
# trigger was created by the event trigger while the dump created it too),
# a partitioned protected table, an owner's policy added after protect()
# (the base policy comes and goes with it), an unprotected tagged table, a
# legal hold, consents and forget requests.  After each restore the rules
# give the same answers as in the source.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('restore_clean');
$node->init(extra => ['--no-locale', '--encoding=UTF8']);
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE DATABASE src;
});
$node->safe_psql('src', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	SELECT privacy_guard.define_purpose('tax', 'legal_obligation');
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	CREATE TABLE customers (id bigint PRIMARY KEY, email privacy_guard.tagged_text,
							tenant text NOT NULL DEFAULT 'a', created timestamptz NOT NULL DEFAULT now());
	CREATE INDEX customers_created ON customers (created);
	CREATE TABLE orders (id int, customer_id bigint REFERENCES customers ON DELETE CASCADE,
						 total numeric, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
	CREATE TABLE orders_2030 PARTITION OF orders FOR VALUES FROM ('2030-01-01') TO ('2031-01-01');
	CREATE TABLE orders_2031 PARTITION OF orders FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'], '5 years', 'created');
	SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing', 'tax'], '10 years', 'at');
	SELECT privacy_guard.set_legal_hold('orders', '10 years', 'tax');
	CREATE POLICY tenant_a ON customers USING (tenant = 'a');
	CREATE TABLE notes (id int PRIMARY KEY, body privacy_guard.tagged_text);
	SET privacy_guard.purpose = 'billing';
	INSERT INTO customers (id, email, tenant, created)
		SELECT g, 'person-' || g || '@example.org', CASE WHEN g % 4 = 0 THEN 'b' ELSE 'a' END,
			   timestamptz '2030-06-01 00:00:00+00'
		  FROM generate_series(1, 12) g;
	INSERT INTO orders SELECT g, g, g * 10, date '2030-03-01' + g * 40 FROM generate_series(1, 12) g;
	INSERT INTO notes VALUES (1, privacy_guard.tag('note of 2'::text, ARRAY['billing'], '2')),
							 (2, privacy_guard.tag('note of 3'::text, ARRAY['marketing'], '3'));
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 6) g;
	SELECT privacy_guard.forget('5');
	SELECT privacy_guard.forget('11', due => now() + interval '30 days');
	GRANT SELECT, INSERT ON customers, orders, notes TO app;
});

my $seen = q{
	SET ROLE app;
	SET privacy_guard.purpose = 'billing';
	SELECT (SELECT string_agg(id || '=' || coalesce(privacy_guard.reveal(email), '-'), ',' ORDER BY id) FROM customers)
		   || ' / ' || (SELECT string_agg(id::text, ',' ORDER BY id) FROM orders)
		   || ' / ' || (SELECT string_agg(id || '=' || coalesce(privacy_guard.reveal(body), '-'), ',' ORDER BY id) FROM notes);
	SET privacy_guard.purpose = 'marketing';
	SELECT string_agg(id::text, ',' ORDER BY id) FROM customers;
};
my $shape = q{
	SELECT string_agg(format('%s %s %s', polrelid::regclass, polname, polpermissive), E'\n'
					  ORDER BY polrelid::regclass::text, polname)
	  FROM pg_policy
	UNION ALL
	SELECT string_agg(format('%s %s', tgrelid::regclass, tgname), E'\n' ORDER BY tgrelid::regclass::text, tgname)
	  FROM pg_trigger WHERE NOT tgisinternal
	UNION ALL
	SELECT string_agg(format('%s %s', relid, subject_column), E'\n' ORDER BY relid::text)
	  FROM privacy_guard.protected_table;
};
my $seen_before = $node->safe_psql('src', $seen);
my $shape_before = $node->safe_psql('src', $shape);
like($seen_before, qr/^1=person-1\@example\.org,2=person-2\@example\.org,3=person-3\@example\.org,6=/,
	'source: tenant a, forget request 5 hidden');
unlike($shape_before, qr/customers privacy_guard_base/, 'source: the owner\'s policy replaced the base policy');

my $dump = $node->basedir . '/src.dump';
my $plain = $node->basedir . '/src.sql';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump -Fc');
$node->command_ok([ 'pg_dump', '-f', $plain, '-d', $node->connstr('src') ], 'pg_dump plain');

my @ways = (
	[ 'plain pg_restore', [] ],
	[ 'pg_restore --exit-on-error', ['--exit-on-error'] ],
	[ 'pg_restore --single-transaction', ['--single-transaction', '--exit-on-error'] ],
);
my $n = 0;
foreach my $way (@ways)
{
	my ($name, $flags) = @$way;
	my $db = 'dst' . ++$n;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my ($stdout, $stderr);
	my $rc = IPC::Run::run([ 'pg_restore', @$flags, '-d', $node->connstr($db), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($rc, "$name succeeds") or diag($stderr);
	is($stderr, '', "$name reports no error or warning");
	is($node->safe_psql($db, $shape), $shape_before, "$name: the same policies, triggers and registrations");
	is($node->safe_psql($db, $seen), $seen_before, "$name: the rules give the same answers");
}

# the policies in the other order (privacy_guard_rules before
# privacy_guard_base, the owner's first): the event trigger must never
# create what the restore creates next
my $list = $node->basedir . '/list';
IPC::Run::run([ 'pg_restore', '-l', $dump ], '>', $list) or die 'pg_restore -l failed';
open(my $fh, '<', $list) or die;
my @lines = <$fh>;
close $fh;
my @policies = grep { / POLICY / } @lines;
my @rest = grep { !/ POLICY / } @lines;
ok(@policies >= 8, 'the dump has the policies');
open($fh, '>', "$list.reversed") or die;
print $fh @rest, reverse @policies;
close $fh;
$node->safe_psql('postgres', 'CREATE DATABASE dst_reversed');
my ($stdout, $stderr);
my $rc = IPC::Run::run([ 'pg_restore', '--exit-on-error', '--single-transaction', '-L', "$list.reversed",
	'-d', $node->connstr('dst_reversed'), $dump ], '>', \$stdout, '2>', \$stderr);
ok($rc, 'pg_restore with the policies reversed succeeds') or diag($stderr);
is($stderr, '', '... without an error');
is($node->safe_psql('dst_reversed', $shape), $shape_before, '... the same policies, triggers and registrations');
is($node->safe_psql('dst_reversed', $seen), $seen_before, '... the rules give the same answers');

$node->safe_psql('postgres', 'CREATE DATABASE dst_plain');
$rc = IPC::Run::run([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction',
	'-f', $plain, '-d', $node->connstr('dst_plain') ], '>', \$stdout, '2>', \$stderr);
ok($rc, 'a plain dump through psql with ON_ERROR_STOP in one transaction succeeds') or diag($stderr);
unlike($stderr, qr/ERROR/, '... without an error');
is($node->safe_psql('dst_plain', $shape), $shape_before, 'plain dump: the same policies, triggers and registrations');
is($node->safe_psql('dst_plain', $seen), $seen_before, 'plain dump: the rules give the same answers');

# after the restore, the owner's policy still comes and goes with the base
$node->safe_psql('dst1', 'DROP POLICY tenant_a ON customers');
like($node->safe_psql('dst1', $shape), qr/customers privacy_guard_base/,
	'restored: dropping the owner\'s policy brings the base back');

$node->stop;
done_testing(26);
