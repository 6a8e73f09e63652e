# A reporting replica by logical replication (docs/replication.md).
#
# The publisher publishes the protected tables and privacy_guard's state:
# consent_state, consent_ledger and erasure_request.  The subscriber has the
# same roles, runs the same setup (purposes, who may use them, protect()) on
# its own, since policies are DDL and roles are per cluster, and runs no
# enforcement rounds (privacy_guard.enabled = off): the publisher's rounds
# decide, and their deletions and anonymizations arrive as ordinary row
# changes.  Reads on the subscriber obey the rules; a withdrawal and a forget
# request on the publisher take effect in an open subscriber session at its
# next statement; the erasure arrives; the round history and the digest key
# stay where they are.  The subscription's owner must bypass row-level
# security: a role without BYPASSRLS cannot apply rows to a protected table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $setup = q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	CREATE ROLE app LOGIN;
	CREATE ROLE mailer LOGIN;
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	SELECT privacy_guard.allow_purpose('mailer', 'marketing');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text,
							created_at timestamptz NOT NULL DEFAULT now());
	CREATE TABLE visits (id bigint PRIMARY KEY, customer_id bigint, page text);
	GRANT SELECT ON customers, visits TO app, mailer;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'],
								 retention => '30 days', retention_column => 'created_at');
	SELECT privacy_guard.protect('visits', 'customer_id', ARRAY['billing', 'marketing'],
								 on_forget => 'anonymize');
	SELECT privacy_guard.set_anonymizer('visits', 'page', 'redact');
};

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical', extra => ['--no-locale']);
$pub->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
});
$pub->start;

my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init(extra => ['--no-locale']);
$sub->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
wal_retrieve_retry_interval = 200ms
});
$sub->start;

$pub->safe_psql('postgres', $setup);
$sub->safe_psql('postgres', $setup);

$pub->safe_psql('postgres', q{
	INSERT INTO customers (id, email) SELECT g, 'c' || g FROM generate_series(1, 8) g;
	INSERT INTO customers VALUES (9, 'c9', now() - interval '40 days');
	INSERT INTO visits SELECT g, g, '/page/' || g FROM generate_series(1, 9) g;
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 4) g;
	CREATE PUBLICATION reporting FOR TABLE customers, visits,
		privacy_guard.consent_state, privacy_guard.consent_ledger, privacy_guard.erasure_request;
});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION reporting CONNECTION '$connstr' PUBLICATION reporting");
$sub->wait_for_subscription_sync($pub, 'reporting');

sub read_as
{
	my ($node, $role, $purpose, $table) = @_;
	$table //= 'customers';
	my $col = $table eq 'customers' ? 'id' : 'customer_id';
	return $node->safe_psql('postgres', qq{
		SET ROLE $role;
		SET privacy_guard.purpose = '$purpose';
		SELECT string_agg($col\::text, ',' ORDER BY $col) FROM $table;
	});
}

# ---- reads on the subscriber obey the rules, per purpose ----
is(read_as($sub, 'app', 'marketing'), '1,2,3,4',
	'subscriber: marketing shows the consenting subjects only');
is(read_as($sub, 'app', 'billing'), '1,2,3,4,5,6,7,8',
	'subscriber: billing (contract) shows every subject, not the one past retention');
is(read_as($sub, 'mailer', 'marketing', 'visits'), '1,2,3,4',
	'subscriber: a second table and a second role follow the same consents');
my ($rc, $out, $err) = $sub->psql('postgres', q{
	SET ROLE mailer; SET privacy_guard.purpose = 'billing'; SELECT count(*) FROM customers});
like($err, qr/role "mailer" is not authorised for purpose "billing"/,
	'subscriber: a role cannot use a purpose it was not allowed there');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM customers'), '9',
	'subscriber: all rows arrived (a superuser bypasses the rules)');

# ---- a withdrawal on the publisher, seen by an open subscriber session ----
my $session = $sub->background_psql('postgres');
$session->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'marketing'});
is($session->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}), '1,2,3,4',
	'subscriber session before the withdrawal');
$pub->safe_psql('postgres', q{SELECT privacy_guard.withdraw_consent('3', 'marketing')});
$pub->wait_for_catchup('reporting');
is($session->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}), '1,2,4',
	'subscriber session: a withdrawal on the publisher applies at its next statement');

# ---- a forget request on the publisher hides the subject before any round ----
$pub->safe_psql('postgres', q{SELECT privacy_guard.forget('2')});
$pub->wait_for_catchup('reporting');
is($session->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}), '1,4',
	'subscriber session: a forget request on the publisher hides the subject at once');
$session->query_safe(q{SET privacy_guard.purpose = 'billing'});
is($session->query_safe(q{SELECT string_agg(customer_id::text, ',' ORDER BY customer_id) FROM visits}),
	'1,3,4,5,6,7,8,9', 'subscriber session: under every purpose and in every table');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM customers WHERE id = 2'), '1',
	'subscriber: the rows are still there until the publisher\'s round erases them');

# ---- the publisher's round: the erasure and the retention purge arrive ----
$pub->safe_psql('postgres', q{SELECT privacy_guard.run_maintenance()});
is($pub->safe_psql('postgres', q{SELECT privacy_guard.erasure_status('2')}), 'done',
	'publisher: the round carried out the request');
$pub->wait_for_catchup('reporting');
is($sub->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM customers'),
	'1,3,4,5,6,7,8', 'subscriber: the forgotten subject\'s row and the expired row are deleted there');
is($sub->safe_psql('postgres',
		q{SELECT format('%s|%s', customer_id IS NULL, page) FROM visits WHERE id = 2}),
	't|[redacted]', 'subscriber: the anonymized row arrived anonymized');
is($sub->safe_psql('postgres',
		q{SELECT format('%s|%s', state, subject IS NULL) FROM privacy_guard.erasure_request}),
	'done|t', 'subscriber: the receipt arrived, without the subject key');
is($sub->safe_psql('postgres', q{
	SELECT format('%s|%s', (SELECT count(*) FROM privacy_guard.consent_state WHERE subject = '2'),
				  (SELECT count(*) FROM privacy_guard.consent_ledger WHERE subject = '2'))}),
	'0|0', 'subscriber: no consent row or history entry names the forgotten subject any more');
is($session->query_safe(q{SELECT string_agg(customer_id::text, ',' ORDER BY customer_id) FROM visits}),
	'1,3,4,5,6,7,8,9', 'subscriber session: the subject stays hidden after the request closed');
$session->quit;

# ---- what does not replicate ----
is($sub->safe_psql('postgres', q{
	SELECT format('%s|%s', (SELECT count(*) FROM privacy_guard.round_history),
				  coalesce((SELECT sum(rounds) FROM privacy_guard.worker_status), 0))}),
	'0|0', 'subscriber: no round history of the publisher\'s rounds');
is($sub->safe_psql('postgres', q{SELECT privacy_guard.erasure_status('2') IS NULL}), 't',
	'subscriber: the receipt cannot be looked up by key there (the digest key stays on the publisher)');
my $pub_key = $pub->safe_psql('postgres', q{SELECT encode(key, 'hex') FROM privacy_guard.secret});
isnt($sub->safe_psql('postgres', q{SELECT coalesce(encode(key, 'hex'), '') FROM privacy_guard.secret}),
	$pub_key, 'subscriber: its digest key is its own');

# ---- the subscription owner must bypass row-level security ----
$sub->safe_psql('postgres', q{
	CREATE ROLE repl_owner SUPERUSER LOGIN;
	ALTER SUBSCRIPTION reporting OWNER TO repl_owner;
	ALTER ROLE repl_owner NOSUPERUSER;
	GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON customers, visits,
		privacy_guard.consent_state, privacy_guard.consent_ledger, privacy_guard.erasure_request
		TO repl_owner;
});
my $offset = -s $sub->logfile;
$pub->safe_psql('postgres', q{INSERT INTO customers (id, email) VALUES (10, 'c10')});
ok($sub->wait_for_log(qr/cannot replicate into relation with row-level security enabled: "customers"/,
		$offset), 'a subscription owner without BYPASSRLS cannot apply rows to a protected table');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM customers WHERE id = 10'), '0',
	'the row did not arrive');
$sub->safe_psql('postgres', q{ALTER ROLE repl_owner BYPASSRLS});
ok($sub->poll_query_until('postgres', 'SELECT count(*) = 1 FROM customers WHERE id = 10'),
	'with BYPASSRLS the subscription applies it');
is(read_as($sub, 'app', 'billing'), '1,3,4,5,6,7,8,10',
	'subscriber: and the rules still hold for readers');

$sub->stop;
$pub->stop;
done_testing(23);
