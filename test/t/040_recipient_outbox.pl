# Notices to recipients, delivered by an application: a subject's rows
# are disclosed to two recipients; the background worker carries out their
# forget request, which writes one notice per recipient into the outbox in
# the erasure's transaction; an application that LISTENs on
# privacy_guard_outbox is woken (polled with a bound), reads the pending
# notices as a delivering role, marks them sent, and the keys leave the
# outbox.  A withdrawal wakes it too.  Reads by roles the rules do not bind
# (superuser, BYPASSRLS) are in the access log at table level, once per
# table per transaction, and the worker's own erasures add none;
# investigate() shows them beside the disclosures and the erasure.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('outbox');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.naptime = 1
privacy_guard.audit = on
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	SELECT privacy_guard.define_purpose('fraud', 'legitimate_interests');
	CREATE ROLE app LOGIN;
	CREATE ROLE courier LOGIN;
	CREATE ROLE auditor LOGIN BYPASSRLS;
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	SELECT privacy_guard.allow_purpose('app', 'fraud');
	SELECT privacy_guard.define_recipient('mailco', 'processor', 'DE');
	SELECT privacy_guard.define_recipient('adnet', 'third_party', 'US', 'standard contractual clauses');
	SELECT privacy_guard.disclose_to('marketing', 'mailco');
	SELECT privacy_guard.disclose_to('marketing', 'adnet');
	SELECT privacy_guard.disclose_to('fraud', 'adnet');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g || '@example.org' FROM generate_series(1, 5) g;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['marketing', 'fraud']);
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 3) g;
	GRANT SELECT ON customers TO app, auditor;
	SELECT privacy_guard.grant_discloser('app');
	SELECT privacy_guard.grant_deliverer('courier');
});

# the application hands data to both recipients
my $sent = $node->safe_psql('postgres', q{
	SET ROLE app;
	SELECT count(*) FROM privacy_guard.disclose('mailco', 'marketing', 'customers', ARRAY['id', 'email']);
	SELECT count(*) FROM privacy_guard.disclose('adnet', 'marketing', 'customers', ARRAY['email'], ARRAY['2', '3', '4']);
});
is($sent, "3\n2", 'disclosed: the three consenting subjects to mailco, two of the three asked for to adnet');

# reads by unbound roles: once per table and transaction, with the role
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT count(*) FROM customers;
	SELECT count(*) FROM customers WHERE id = 2;
	SELECT * FROM customers;
	COMMIT;
});
$node->safe_psql('postgres', 'SELECT count(*) FROM customers', extra_params => [ '-U', 'auditor' ]);
my $unbound_q = q{
	SELECT privacy_guard.run_maintenance() IS NOT NULL;
	SELECT coalesce(string_agg(format('%s|%s|%s', role, table_name, statements), ',' ORDER BY role), '')
	  FROM (SELECT role, table_name, sum(statements) AS statements FROM privacy_guard.access_log
			 WHERE unbound GROUP BY 1, 2) x};
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
is($node->safe_psql('postgres', $unbound_q), "t\nauditor|public.customers|1,$superuser|public.customers|1",
	'unbound reads logged at table level: the BYPASSRLS role and the superuser, one per transaction');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM privacy_guard.access_log WHERE unbound AND rows <> 0}), '0',
	'unbound reads carry no row counts');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT role || '|' || purpose, ',') FROM privacy_guard.access_log WHERE NOT unbound}),
	'app|marketing', 'the disclosures were logged as bound reads under their purpose');

# the application: LISTEN on the outbox's channel, deliver what is pending
my $app = $node->background_psql('postgres', extra_params => [ '-U', 'courier' ]);
$app->query_safe('LISTEN privacy_guard_outbox');

# wait (polled, bounded) until a notification arrives; returns its payloads
sub wait_for_notification
{
	my $out = '';
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		# psql prints notifications that arrived with the result of any statement
		my $r = $app->query('SELECT 1');
		$out .= $r . ($app->{stderr} // '');
		last if $out =~ /Asynchronous notification "privacy_guard_outbox"/;
		usleep(100_000);
	}
	return [ $out =~ /Asynchronous notification "privacy_guard_outbox" with payload "(\d+)"/g ];
}

sub deliver
{
	return $app->query_safe(q{
		BEGIN;
		SELECT string_agg(format('%s|%s|%s|%s', recipient, kind, subject, privacy_guard.mark_notice_sent(id)), ','
						  ORDER BY recipient)
		  FROM privacy_guard.pending_notices();
		COMMIT;});
}

# the forget request, carried out by the background worker
$node->safe_psql('postgres', q{SELECT privacy_guard.forget('2', 'account closed')});
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET privacy_guard.enabled = on;
	SELECT pg_reload_conf();});
my $payloads = wait_for_notification();
is(scalar(@$payloads), 2, 'the application was notified of two notices (one per recipient) at the erasure\'s commit');
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET privacy_guard.enabled = off;
	SELECT pg_reload_conf();});
is(deliver(), 'adnet|erasure|2|t,mailco|erasure|2|t', 'it read both erasure notices with the key, and marked them sent');
is($node->safe_psql('postgres', q{
	SELECT state || '|' || recipients_notified FROM privacy_guard.erasure_requests}), 'done|2',
	'the receipt says how many recipients were notified');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE subject IS NOT NULL) || '|' || count(*) FILTER (WHERE sent_at IS NULL)
	  FROM privacy_guard.recipient_notice}), '0|0', 'no key and nothing pending left in the outbox');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM privacy_guard.access_log WHERE unbound AND table_name = 'public.customers'}), '2',
	'the worker\'s erasure as the table owner added no unbound read');

# a withdrawal from a disclosing purpose: only the recipients that got the data under it
$node->safe_psql('postgres', q{SELECT privacy_guard.withdraw_consent('3', 'marketing')});
$payloads = wait_for_notification();
is(scalar(@$payloads), 2, 'a withdrawal notifies as it commits');
is(deliver(), 'adnet|withdrawal|3|t,mailco|withdrawal|3|t', 'both recipients of subject 3 are told');
$node->safe_psql('postgres', q{SELECT privacy_guard.withdraw_consent('5', 'marketing')});
is(deliver(), '', 'a subject never disclosed: no notice');
$app->quit;

# the investigation: disclosures, erasure, the unbound reads (the subject asked to be forgotten)
is($node->safe_psql('postgres', q{
	SELECT string_agg(event || coalesce(':' || flag, ''), ',' ORDER BY at, event)
	  FROM privacy_guard.investigate('2')
	 WHERE event NOT IN ('read', 'unbound_read')}),
	'consent_grant,disclosure,disclosure,erasure_requested,recipient_notice,recipient_notice,erasure_done',
	'investigate(): the timeline of subject 2');
is($node->safe_psql('postgres', q{
	SELECT string_agg(format('%s|%s|%s', detail ->> 'role', detail ->> 'table', flag), ',' ORDER BY detail ->> 'role')
	  FROM privacy_guard.investigate('2') WHERE event = 'unbound_read'}),
	"auditor|public.customers|unbound_read,$superuser|public.customers|unbound_read",
	'investigate(): the unbound reads of the table that held their rows, flagged');

# a dump and restore keeps recipients, disclosures, the outbox and its numbering
my $counts_q = q{
	SELECT format('%s|%s|%s|%s|%s', (SELECT count(*) FROM privacy_guard.recipients),
				  (SELECT string_agg(purpose || '>' || recipient, ',' ORDER BY 1) FROM privacy_guard.purpose_recipient),
				  (SELECT count(*) FROM privacy_guard.disclosure_subject),
				  (SELECT count(*) FROM privacy_guard.recipient_notice),
				  (SELECT recipients_notified FROM privacy_guard.erasure_request))};
my $before = $node->safe_psql('postgres', $counts_q);
my $dump = $node->basedir . '/outbox.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE copy');
my ($stdout, $stderr);
my $rc = IPC::Run::run([ 'pg_restore', '-d', $node->connstr('copy'), $dump ], '>', \$stdout, '2>', \$stderr);
ok($rc, 'pg_restore reports no error') or diag($stderr);
is($node->safe_psql('copy', $counts_q), $before, 'the restored database has the same recipients, disclosures and notices');
is($node->safe_psql('copy', q{
	SELECT count(*) FROM privacy_guard.recipient_notice n
	 WHERE n.subject_digest = privacy_guard._subject_digest('3')}), '2',
	'and finds them by the same digests');

$node->stop;
done_testing(18);
