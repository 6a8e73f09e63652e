# The background worker (shared_preload_libraries): the launcher runs rounds
# in every database with the extension and only there, picks up a newly
# created extension within a naptime, comes back after SIGTERM and a crash,
# and keeps carrying out forget requests; check() warns when it is switched
# off.  Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
restart_after_crash = on
});
$node->start;

sub setup_db
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		CREATE EXTENSION privacy_guard;
		SELECT privacy_guard.define_purpose('billing', 'contract');
		CREATE TABLE customers (id bigint PRIMARY KEY, email text);
		INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
		SELECT privacy_guard.protect('customers', 'id', ARRAY['billing']);
	});
}

sub forgotten_ok
{
	my ($db, $subject, $label) = @_;
	$node->safe_psql($db, "SELECT privacy_guard.forget('$subject')");
	ok($node->poll_query_until($db,
			"SELECT privacy_guard.erasure_status('$subject') = 'done'"),
		"$label: forget request carried out in $db");
	is($node->safe_psql($db, "SELECT count(*) FROM customers WHERE id = $subject"), '0',
		"$label: the subject's rows are gone in $db");
}

my $launcher_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'privacy_guard launcher'};
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'privacy_guard launcher'"),
	'the launcher runs');

setup_db('shop_a');
setup_db('shop_b');
$node->safe_psql('postgres', 'CREATE DATABASE no_extension');
forgotten_ok('shop_a', 1, 'two databases');
forgotten_ok('shop_b', 2, 'two databases');
ok($node->poll_query_until('shop_a', 'SELECT rounds > 1 AND requests_done = 1 FROM privacy_guard.worker_status'),
	'worker_status counts rounds and requests');

# check() knows the worker runs here; it warns when it is switched off
my $server_warnings = q{
	SELECT coalesce(string_agg(message, ' | '), '') FROM privacy_guard.check()
	 WHERE object = 'server' AND severity = 'warning'};
is($node->safe_psql('shop_a', $server_warnings), '', 'preloaded and enabled: check() has no warning about the worker');
$node->append_conf('postgresql.conf', 'privacy_guard.enabled = off');
$node->reload;
ok($node->poll_query_until('shop_a', qq{SELECT ($server_warnings) LIKE 'privacy_guard.enabled is off%'}),
	'switched off: check() says the worker enforces nothing');
$node->append_conf('postgresql.conf', 'privacy_guard.enabled = on');
$node->reload;
ok($node->poll_query_until('shop_a', qq{SELECT ($server_warnings) = ''}), 'switched on again: no warning');

# a mass of forget requests: carried out in chunks of 100, each chunk its own
# transaction (a row trigger logs the transaction that deleted each row: a
# request kept pending by a poll's open transaction is erased again later,
# deleting nothing), a blocked request among them neither stopping the
# others nor repeating work
$node->safe_psql('shop_a', q{
	CREATE TABLE delete_xacts (xid xid8);
	CREATE FUNCTION log_delete_xact() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.delete_xacts VALUES (pg_current_xact_id()); RETURN NULL; END$$;
	CREATE TRIGGER log_delete_xact AFTER DELETE ON customers
		FOR EACH ROW EXECUTE FUNCTION log_delete_xact();
	CREATE TABLE blockers (customer_id bigint REFERENCES customers (id));
	INSERT INTO customers SELECT g, 'm' || g FROM generate_series(1000, 1249) g;
	INSERT INTO blockers VALUES (1100);
	SELECT count(privacy_guard.forget(g::text, 'mass')) FROM generate_series(1000, 1249) g;
});
ok($node->poll_query_until('shop_a', q{
	SELECT count(*) FILTER (WHERE state = 'done') = 249 AND count(*) FILTER (WHERE state = 'blocked') = 1
	  FROM privacy_guard.erasure_requests WHERE reason = 'mass'}),
	'a mass of forget requests: all carried out but the blocked one');
is($node->safe_psql('shop_a', q{
	SELECT format('%s transactions, %s rows left', count(DISTINCT xid),
				  (SELECT count(*) FROM customers WHERE id BETWEEN 1000 AND 1249))
	  FROM delete_xacts}),
	'3 transactions, 1 rows left', 'in 3 transactions of at most 100 requests; only the blocked subject\'s row is left');
ok($node->poll_query_until('shop_a', 'SELECT requests_done = 250 FROM privacy_guard.worker_status'),
	'worker_status counts each request once (1 before, 249 now)');
$node->safe_psql('shop_a', q{
	DROP TABLE blockers, delete_xacts;
	DROP TRIGGER log_delete_xact ON customers;
});

# a database that gets the extension later is picked up
setup_db('shop_c');
forgotten_ok('shop_c', 3, 'new extension');

# DROP DATABASE is not kept waiting by the workers
$node->safe_psql('postgres', 'DROP DATABASE shop_c');
pass('DROP DATABASE of a database with the extension succeeded');

# SIGTERM: the launcher exits and the postmaster starts it again
my $pid1 = $node->safe_psql('postgres', $launcher_q);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'privacy_guard launcher' AND pid <> $pid1"),
	'launcher restarted after SIGTERM');
forgotten_ok('shop_a', 4, 'after SIGTERM');

# a crash: kill -9 of the launcher restarts the server and the launcher
my $pid2 = $node->safe_psql('postgres', $launcher_q);
kill 'KILL', $pid2;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'privacy_guard launcher' AND pid <> $pid2"),
	'launcher back after a crash');
forgotten_ok('shop_b', 5, 'after a crash');

# a restart
$node->restart;
forgotten_ok('shop_a', 6, 'after a restart');

$node->stop;
done_testing();
