# The background worker (shared_preload_libraries): the launcher runs rounds
# in every database with the extension and only there (a database without
# it is visited once, cleanly: no error in the log or in pg_stat_database,
# and not again), stops
# them while privacy_guard.enabled is off, picks up a newly created
# extension within a naptime, keeps neither DROP DATABASE nor DROP
# EXTENSION waiting during a paced round, comes back within a second or so
# after SIGTERM and after a crash, and keeps carrying out forget requests;
# check() warns when it is switched off.  Every wait is a poll with a
# bound, and the promised times are asserted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $naptime = 1;
my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = $naptime
restart_after_crash = on
});
$node->start;

# Poll $sql in $db every 50 ms until it returns t, for at most $max seconds
# from $t0 (default: now); a failed connection (a crash restart) is retried.
# Returns the seconds since $t0, or undef if the bound passed.
sub timed_poll
{
	my ($db, $sql, $max, $t0) = @_;
	$t0 //= time;
	while (time - $t0 < $max)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return time - $t0 if $rc == 0 && $out eq 't';
		usleep(50_000);
	}
	return undef;
}

# set a sighup setting and wait until a new session sees it (the
# postmaster, and with it the launcher, has reloaded)
sub set_sighup
{
	my ($name, $value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $name = '$value'");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('$name') = '$value'")
	  or die "$name = $value not in effect";
}

sub log_since
{
	my ($pos) = @_;
	return slurp_file($node->logfile, $pos);
}

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
my $workers_q = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker'};
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

# ---- a database without the extension: a worker looked once and left
# without an error (in the log or in its statistics: nobody else connects
# to it), and no worker is started there again while rounds go on
# elsewhere (the postmaster logs each start at DEBUG1; test/t/015 has the
# cluster of many databases)
my $noext_oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'no_extension'});
ok($node->poll_query_until('postgres', q{
	SELECT xact_commit >= 1 AND xact_rollback = 0 FROM pg_stat_database WHERE datname = 'no_extension'}),
	'pg_stat_database: a worker looked at the database without the extension, its transaction committed');
my $pos = -s $node->logfile;
set_sighup('log_min_messages', 'debug1');
my $starts_re = qr/starting background worker process "privacy_guard worker for database $noext_oid"/;
my $rounds_q = 'SELECT rounds FROM privacy_guard.worker_status';
my $r0 = $node->safe_psql('shop_a', $rounds_q);
ok($node->poll_query_until('shop_a', "SELECT rounds >= $r0 + 3 FROM privacy_guard.worker_status"),
	'three more rounds in shop_a');
my $starts = () = log_since($pos) =~ /$starts_re/g;
is($starts, 0, 'meanwhile no worker was started for the database without the extension');
set_sighup('log_min_messages', 'warning');
my $log = log_since($pos);
unlike($log, qr/\b(ERROR|FATAL|PANIC):/, 'no worker error in the server log meanwhile');
unlike($log, qr/exited with exit code [1-9]|terminated by signal/, 'every worker exited cleanly');
my $t0;

# ---- check() knows the worker runs here; it warns when it is switched
# off; switched off, no round runs (over several naptimes); switched on,
# rounds resume within a naptime or so
my $server_warnings = q{
	SELECT coalesce(string_agg(message, ' | '), '') FROM privacy_guard.check()
	 WHERE object = 'server' AND severity = 'warning'};
is($node->safe_psql('shop_a', $server_warnings), '', 'preloaded and enabled: check() has no warning about the worker');
set_sighup('privacy_guard.enabled', 'off');
ok($node->poll_query_until('shop_a', qq{SELECT ($server_warnings) LIKE 'privacy_guard.enabled is off%'}),
	'switched off: check() says the worker enforces nothing');
# the round under way when the setting changed finishes
ok($node->poll_query_until('postgres', "SELECT ($workers_q) = 0"), 'switched off: the last round ends');
my $rounds0 = $node->safe_psql('shop_a', 'SELECT rounds FROM privacy_guard.worker_status');
$node->safe_psql('shop_a', q{SELECT privacy_guard.forget('7')});
my ($samples, $moved) = (0, '');
$t0 = time;
while (time - $t0 < 4 * $naptime + 0.5)
{
	my $s = $node->safe_psql('shop_a', qq{
		SELECT (SELECT rounds FROM privacy_guard.worker_status) || ' ' || ($workers_q)});
	$samples++;
	if ($s ne "$rounds0 0")
	{
		$moved = $s;
		last;
	}
	usleep(100_000);
}
is($moved, '', "switched off: no worker started and rounds stayed at $rounds0 over 4 naptimes");
cmp_ok($samples, '>=', 10, 'switched off: the window was sampled throughout');
is($node->safe_psql('shop_a', q{SELECT privacy_guard.erasure_status('7')}), 'pending',
	'switched off: a forget request made meanwhile waits');
set_sighup('privacy_guard.enabled', 'on');
$t0 = time;
my $took = timed_poll('shop_a', "SELECT rounds > $rounds0 FROM privacy_guard.worker_status", 30, $t0);
cmp_ok($took // 99, '<', $naptime + 2,
	sprintf('switched on again: a round within a naptime, plus the round itself (%.2f s)', $took // 99));
ok($node->poll_query_until('shop_a', q{SELECT privacy_guard.erasure_status('7') = 'done'}),
	'switched on again: the waiting forget request is carried out');
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
ok($node->poll_query_until('shop_a', 'SELECT requests_done = 251 FROM privacy_guard.worker_status'),
	'worker_status counts each request once (2 before, 249 now)');
$node->safe_psql('shop_a', q{
	DROP TABLE blockers, delete_xacts;
	DROP TRIGGER log_delete_xact ON customers;
});

# ---- a database that gets the extension later is picked up within a
# naptime: its first round has run (and shows in worker_status) within a
# naptime of CREATE EXTENSION, plus the round itself
$node->safe_psql('postgres', 'CREATE DATABASE shop_c');
$node->safe_psql('shop_c', 'CREATE EXTENSION privacy_guard');
$t0 = time;
$took = timed_poll('shop_c', 'SELECT rounds >= 1 FROM privacy_guard.worker_status', 30, $t0);
ok(defined $took, 'a newly created extension: a round runs');
# when the first round began (server clock): last_round_at less its duration
my ($rounds_c, $start_c) = split / /, $node->safe_psql('shop_c', q{
	SELECT rounds || ' ' || extract(epoch FROM last_round_at - last_round_duration) FROM privacy_guard.worker_status});
if ($rounds_c == 1)
{
	cmp_ok($start_c - $t0, '<', $naptime + 0.5,
		sprintf('a newly created extension: its first round began within a naptime (%.2f s)', $start_c - $t0));
}
else
{
	# polled too late to see the first round alone (a loaded machine)
	cmp_ok($took, '<', 2 * $naptime,
		sprintf('a newly created extension: its first round began within a naptime (polled: %.2f s)', $took));
}
$node->safe_psql('shop_c', q{
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing']);
});
forgotten_ok('shop_c', 3, 'new extension');

# ---- DROP DATABASE and DROP EXTENSION during a paced round: 100 expired
# rows, batches of 10, 5 s apart, so a round lasts about 45 s; each DROP
# is run while the worker pauses between batches, and must not wait
set_sighup('privacy_guard.batch_size', '10');
set_sighup('privacy_guard.batch_delay', '5s');
my $paced_setup = q{
	CREATE TABLE events (id int, customer_id int, happened timestamptz NOT NULL);
	INSERT INTO events SELECT g, g, now() - interval '3 days' FROM generate_series(1, 100) g;
	SELECT privacy_guard.protect('events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
};
sub paced_round_ok
{
	my ($db) = @_;
	$node->safe_psql($db, $paced_setup);
	ok($node->poll_query_until($db, 'SELECT count(*) <= 90 FROM events'), "$db: the first batch is purged");
	ok($node->poll_query_until('postgres', qq{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE backend_type = 'privacy_guard worker' AND datname = '$db'
		   AND query LIKE '%purging%' AND wait_event = 'Extension'}),
		"$db: the worker pauses between batches");
	my $left = $node->safe_psql($db, 'SELECT count(*) FROM events');
	ok($left > 0 && $left < 100, "$db: the round is under way ($left expired rows left)");
}

paced_round_ok('shop_c');
$t0 = time;
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop_c');
$took = time - $t0;
is($rc . $err, '0', 'DROP DATABASE during a paced round succeeds');
cmp_ok($took, '<', 2, sprintf('DROP DATABASE during a paced round is not kept waiting (%.2f s)', $took));
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'shop_c'}), '0',
	'the database is gone');

$pos = -s $node->logfile;
paced_round_ok('shop_b');
my $worker_b = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker' AND datname = 'shop_b'});
$t0 = time;
($rc, $out, $err) = $node->psql('shop_b', 'DROP EXTENSION privacy_guard CASCADE');
$took = time - $t0;
is($rc, 0, 'DROP EXTENSION during a paced round succeeds');
cmp_ok($took, '<', 2, sprintf('DROP EXTENSION during a paced round is not kept waiting (%.2f s)', $took));
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $worker_b"),
	'the worker of that round ends');
# later rounds visit the database, now without the extension, and leave:
# the launcher starts them with the rounds of shop_a
my $rounds_a = $node->safe_psql('shop_a', 'SELECT rounds FROM privacy_guard.worker_status');
ok($node->poll_query_until('shop_a', "SELECT rounds >= $rounds_a + 2 FROM privacy_guard.worker_status"),
	'two more rounds have been started since');
$log = log_since($pos);
unlike($log, qr/\b(ERROR|FATAL|PANIC):|exited with exit code [1-9]/,
	'the round ends quietly once the extension is gone: no error in the log');
set_sighup('privacy_guard.batch_size', '1000');
set_sighup('privacy_guard.batch_delay', '2ms');

# ---- SIGTERM: the launcher exits and the postmaster starts it again one
# second later (bgw_restart_time)
my $pid1 = $node->safe_psql('postgres', $launcher_q);
$t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)");
my $new_launcher_q = q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'privacy_guard launcher' AND pid <> %d};
ok(defined timed_poll('postgres', sprintf($new_launcher_q, $pid1), 30), 'launcher restarted after SIGTERM');
my $launcher_start_q = q{SELECT extract(epoch FROM backend_start) FROM pg_stat_activity WHERE backend_type = 'privacy_guard launcher'};
$took = $node->safe_psql('postgres', $launcher_start_q) - $t0;
cmp_ok($took, '<', 1.5, sprintf('the new launcher started within about a second, bgw_restart_time 1 s (%.2f s)', $took));
forgotten_ok('shop_a', 4, 'after SIGTERM');

# a crash: kill -9 of the launcher restarts the server and the launcher
my $pid2 = $node->safe_psql('postgres', $launcher_q);
$t0 = time;
kill 'KILL', $pid2;
ok(defined timed_poll('postgres', sprintf($new_launcher_q, $pid2), 60), 'launcher back after a crash');
$took = $node->safe_psql('postgres', $launcher_start_q) - $t0;
cmp_ok($took, '<', 5, sprintf('the new launcher started within seconds, with the server (%.2f s)', $took));
forgotten_ok('shop_a', 5, 'after a crash');

# a restart
$node->restart;
forgotten_ok('shop_a', 6, 'after a restart');

$node->stop;
done_testing(51);
