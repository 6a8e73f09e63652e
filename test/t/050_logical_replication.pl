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
# Two subscribers, with privacy_guard preloaded (the shared consent store)
# and loaded on first use (a private copy in each session).
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

# two subscribers: one preloads privacy_guard (the shared consent store), one
# loads it on first use (each session's private copy)
my @subs;
for my $preload (1, 0)
{
	my $node = PostgreSQL::Test::Cluster->new($preload ? 'subscriber' : 'subscriber_lazy');
	$node->init(extra => ['--no-locale']);
	$node->append_conf('postgresql.conf', "wal_retrieve_retry_interval = 200ms\n");
	$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
}) if $preload;
	$node->start;
	$node->safe_psql('postgres', $setup);
	push @subs, $node;
}
my $sub = $subs[0];

$pub->safe_psql('postgres', $setup);
$pub->safe_psql('postgres', q{
	INSERT INTO customers (id, email) SELECT g, 'c' || g FROM generate_series(1, 8) g;
	INSERT INTO customers VALUES (9, 'c9', now() - interval '40 days');
	INSERT INTO visits SELECT g, g, '/page/' || g FROM generate_series(1, 9) g;
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 4) g;
	CREATE PUBLICATION reporting FOR TABLE customers, visits,
		privacy_guard.consent_state, privacy_guard.consent_ledger, privacy_guard.erasure_request;
});
my $connstr = $pub->connstr . ' dbname=postgres';
for my $i (0, 1)
{
	$subs[$i]->safe_psql('postgres',
		"CREATE SUBSCRIPTION reporting$i CONNECTION '$connstr' PUBLICATION reporting");
	$subs[$i]->wait_for_subscription_sync($pub, "reporting$i");
}
sub catchup
{
	$pub->wait_for_catchup("reporting$_") for (0, 1);
}

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

# ---- reads on the subscribers obey the rules, per purpose ----
my @sessions;
for my $node (@subs)
{
	my $n = $node->name;
	is(read_as($node, 'app', 'marketing'), '1,2,3,4',
		"$n: marketing shows the consenting subjects only");
	is(read_as($node, 'app', 'billing'), '1,2,3,4,5,6,7,8',
		"$n: billing (contract) shows every subject, not the one past retention");
	is(read_as($node, 'mailer', 'marketing', 'visits'), '1,2,3,4',
		"$n: a second table and a second role follow the same consents");
	my ($rc, $out, $err) = $node->psql('postgres', q{
		SET ROLE mailer; SET privacy_guard.purpose = 'billing'; SELECT count(*) FROM customers});
	like($err, qr/role "mailer" is not authorised for purpose "billing"/,
		"$n: a role cannot use a purpose it was not allowed there");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM customers'), '9',
		"$n: all rows arrived (a superuser bypasses the rules)");

	my $session = $node->background_psql('postgres');
	$session->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'marketing'});
	is($session->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}), '1,2,3,4',
		"$n: session before the withdrawal");
	push @sessions, $session;
}

# ---- a withdrawal on the publisher, seen by open subscriber sessions ----
$pub->safe_psql('postgres', q{SELECT privacy_guard.withdraw_consent('3', 'marketing')});
catchup();
for my $i (0, 1)
{
	is($sessions[$i]->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}), '1,2,4',
		$subs[$i]->name . ' session: a withdrawal on the publisher applies at its next statement');
}

# ---- a forget request on the publisher hides the subject before any round ----
$pub->safe_psql('postgres', q{SELECT privacy_guard.forget('2')});
catchup();
for my $i (0, 1)
{
	my $n = $subs[$i]->name;
	is($sessions[$i]->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}), '1,4',
		"$n session: a forget request on the publisher hides the subject at once");
	$sessions[$i]->query_safe(q{SET privacy_guard.purpose = 'billing'});
	is($sessions[$i]->query_safe(q{SELECT string_agg(customer_id::text, ',' ORDER BY customer_id) FROM visits}),
		'1,3,4,5,6,7,8,9', "$n session: under every purpose and in every table");
	is($subs[$i]->safe_psql('postgres', 'SELECT count(*) FROM customers WHERE id = 2'), '1',
		"$n: the rows are still there until the publisher's round erases them");
}

# ---- the publisher's round: the erasure and the retention purge arrive ----
$pub->safe_psql('postgres', q{SELECT privacy_guard.run_maintenance()});
is($pub->safe_psql('postgres', q{SELECT privacy_guard.erasure_status('2')}), 'done',
	'publisher: the round carried out the request');
catchup();
for my $i (0, 1)
{
	my $node = $subs[$i];
	my $n = $node->name;
	is($node->safe_psql('postgres', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM customers'),
		'1,3,4,5,6,7,8', "$n: the forgotten subject's row and the expired row are deleted there");
	is($node->safe_psql('postgres',
			q{SELECT format('%s|%s', customer_id IS NULL, page) FROM visits WHERE id = 2}),
		't|[redacted]', "$n: the anonymized row arrived anonymized");
	is($node->safe_psql('postgres',
			q{SELECT format('%s|%s', state, subject IS NULL) FROM privacy_guard.erasure_request}),
		'done|t', "$n: the receipt arrived, without the subject key");
	is($node->safe_psql('postgres', q{
		SELECT format('%s|%s', (SELECT count(*) FROM privacy_guard.consent_state WHERE subject = '2'),
					  (SELECT count(*) FROM privacy_guard.consent_ledger WHERE subject = '2'))}),
		'0|0', "$n: no consent row or history entry names the forgotten subject any more");
	is($sessions[$i]->query_safe(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM customers}),
		'1,3,4,5,6,7,8', "$n session: the request closed, the rows are gone");
	$sessions[$i]->quit;
}

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
	ALTER SUBSCRIPTION reporting0 OWNER TO repl_owner;
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

$_->stop for @subs;
$pub->stop;
done_testing(38);
