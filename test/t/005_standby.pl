# On a streaming standby no worker runs and reads obey the rules (a forget
# request filed on the primary hides the subject on the standby at once);
# after promotion the worker starts and carries the request out, and the
# reads made on the standby (kept over its clean restart) reach the access log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1, extra => ['--no-locale']);
$primary->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
privacy_guard.enabled = off
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	CREATE ROLE app LOGIN;
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
	GRANT SELECT ON customers TO app;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 4) g;
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', q{
privacy_guard.enabled = on
privacy_guard.audit = on
});
$standby->start;
$primary->wait_for_catchup($standby);

my $read = q{
	SET ROLE app;
	SET privacy_guard.purpose = 'marketing';
	SELECT string_agg(id::text, ',' ORDER BY id) FROM customers;
};
is($standby->safe_psql('postgres', $read), '1,2,3,4', 'standby: reads obey the rules');

# a session on the standby sees a forget request filed on the primary at its next statement
my $session = $standby->background_psql('postgres');
$session->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'marketing'});
is($session->query_safe('SELECT count(*) FROM customers'), '4', 'standby session before the request');
$primary->safe_psql('postgres', q{SELECT privacy_guard.forget('2')});
$primary->wait_for_catchup($standby);
is($session->query_safe('SELECT count(*) FROM customers'), '3',
	'standby session: the forgotten subject is hidden at its next statement');
# deleted consents (which no patch can follow) replayed on the standby: its
# shared consent store must not keep serving them
$primary->safe_psql('postgres', q{DELETE FROM privacy_guard.consent_state WHERE subject = '4'});
$primary->wait_for_catchup($standby);
is($session->query_safe('SELECT count(*) FROM customers'), '2',
	'standby session: a deleted consent is gone at its next statement');
$session->quit;

is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'privacy_guard%'"),
	'0', 'standby: no privacy_guard worker runs during recovery');
is($standby->safe_psql('postgres', "SELECT count(*) FROM customers WHERE id = 2"), '1',
	'standby: nothing was erased there');

# the standby's reads wait in its shared memory (it cannot write the log),
# kept over a clean restart
$standby->restart;
$primary->wait_for_catchup($standby);

# promotion: the worker starts and carries out the request
$standby->promote;
ok($standby->poll_query_until('postgres', "SELECT privacy_guard.erasure_status('2') = 'done'"),
	'after promotion the worker carries out the forget request');
is($standby->safe_psql('postgres', "SELECT count(*) FROM customers WHERE id = 2"), '0',
	'after promotion the subject\'s rows are gone');
ok($standby->poll_query_until('postgres', q{
	SELECT format('%s|%s', sum(statements), sum(rows)) = '4|13' FROM privacy_guard.access_log
	 WHERE role = 'app' AND purpose = 'marketing' AND table_name = 'public.customers'}),
	'the reads made on the standby, kept over its restart, are in the access log after promotion');

$standby->stop;
$primary->stop;
done_testing(9);
