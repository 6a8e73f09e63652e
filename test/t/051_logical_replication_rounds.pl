# A logical subscriber that runs enforcement rounds of its own
# (privacy_guard.enabled = on there, for its access log; docs/replication.md).
# The consent ledger is not published: a round rewrites an erased subject's
# history under the digest, which the ledger accepts only under the digest
# key of its own database, and the subscriber's key is not the publisher's.
# The subscriber carries out a forget request replicated from the publisher
# on its own copies before the publisher's round, the publisher's erasure
# then arrives without stopping the subscription, both sides end with the
# same rows, and the subscriber's reads are written to its own access log.
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
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	CREATE TABLE visits (id bigint PRIMARY KEY, customer_id bigint, page text);
	GRANT SELECT ON customers, visits TO app;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
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
privacy_guard.enabled = on
privacy_guard.naptime = 1
privacy_guard.audit = on
});
$sub->start;

$pub->safe_psql('postgres', $setup);
$sub->safe_psql('postgres', $setup);
$pub->safe_psql('postgres', q{
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 6) g;
	INSERT INTO visits SELECT g, g, '/page/' || g FROM generate_series(1, 6) g;
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 6) g;
	CREATE PUBLICATION reporting FOR TABLE customers, visits,
		privacy_guard.consent_state, privacy_guard.erasure_request;
});
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION reporting CONNECTION '$connstr' PUBLICATION reporting");
$sub->wait_for_subscription_sync($pub, 'reporting');

is($sub->safe_psql('postgres', q{
	SET ROLE app; SET privacy_guard.purpose = 'marketing';
	SELECT count(*) FROM customers}), '6', 'subscriber: reads as on the publisher');

# the subscriber's own round carries out the replicated request first
$pub->safe_psql('postgres', q{SELECT privacy_guard.forget('2')});
ok($sub->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM customers WHERE id = 2}),
	'subscriber: its own round erased the subject\'s rows before the publisher\'s round');
is($pub->safe_psql('postgres', 'SELECT count(*) FROM customers WHERE id = 2'), '1',
	'publisher: not yet erased');

# then the publisher's round: its changes arrive over the subscriber's
$pub->safe_psql('postgres', q{SELECT privacy_guard.run_maintenance()});
$pub->wait_for_catchup('reporting');
my $state = q{
	SELECT format('%s / %s / %s / %s',
		(SELECT string_agg(id::text, ',' ORDER BY id) FROM customers),
		(SELECT string_agg(format('%s:%s:%s', id, coalesce(customer_id::text, '-'), page), ',' ORDER BY id) FROM visits),
		(SELECT string_agg(format('%s:%s', subject, status), ',' ORDER BY subject) FROM privacy_guard.consent_state),
		(SELECT string_agg(format('%s:%s:%s:%s', id, state, subject_digest, subject IS NULL), ',' ORDER BY id) FROM privacy_guard.erasure_request))
};
is($sub->safe_psql('postgres', $state), $pub->safe_psql('postgres', $state),
	'both sides end with the same rows, consents and receipt');
is($sub->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_subscription WHERE subname = 'reporting' AND pid IS NOT NULL}), '1',
	'the subscription still runs');
$pub->safe_psql('postgres', q{INSERT INTO customers VALUES (7, 'c7')});
$pub->wait_for_catchup('reporting');
is($sub->safe_psql('postgres', 'SELECT count(*) FROM customers WHERE id = 7'), '1',
	'and applies later changes');

# the subscriber's reads go to its own access log
ok($sub->poll_query_until('postgres', q{
	SELECT coalesce(sum(rows), 0) = 6 FROM privacy_guard.access_log
	 WHERE role = 'app' AND purpose = 'marketing' AND table_name = 'public.customers'}),
	'subscriber: its rounds write its reads to its access log');

$sub->stop;
$pub->stop;
done_testing(7);
