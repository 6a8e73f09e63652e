# The worker's purge in batches (shared_preload_libraries): SIGTERM obeyed
# during the pause between batches, kill -9 in the middle of a purge loses
# only the batch under way (each batch is one transaction), SIGHUP changes
# the pacing of a running round, and after all that every expired row is
# gone, every current row is there, and worker_status counted each row
# once.  Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('purge');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
privacy_guard.batch_size = 100
privacy_guard.batch_delay = '10s'
restart_after_crash = on
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE TABLE events (id int PRIMARY KEY, customer_id int, happened timestamptz NOT NULL);
	INSERT INTO events SELECT g, g % 50, now() - interval '3 days' FROM generate_series(1, 2000) g;
	INSERT INTO events SELECT g, g % 50, now() FROM generate_series(2001, 2100) g;
	SELECT privacy_guard.protect('events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
});
my $expired_q = q{SELECT count(*) FROM events WHERE id <= 2000};
my $worker_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker'
				  AND datname = 'postgres' AND query LIKE '%purging%'};

# a round purges one batch, then pauses 10 s before the next
ok($node->poll_query_until('postgres', "SELECT ($expired_q) <= 1900"), 'the first batch is purged');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_q) w"),
	'the worker is between batches');

# SIGTERM during the pause: the worker leaves at once, not after the pause
my $pid = $node->safe_psql('postgres', $worker_q);
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'the worker exits on SIGTERM');
cmp_ok(time - $t0, '<', 9, 'SIGTERM is obeyed during the 10 s pause between batches');

# kill -9 in the middle of a purge: the server restarts; only whole batches
# were purged
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($worker_q) w"),
	'a new round purges');
$pid = $node->safe_psql('postgres', $worker_q);
kill 'KILL', $pid;
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'the worker is gone after kill -9');
ok($node->poll_query_until('postgres', 'SELECT true'), 'the server is back after the crash');
my $left = $node->safe_psql('postgres', $expired_q);
cmp_ok($left, '<', 2000, 'purged batches survived the crash');
is($left % 100, 0, 'only whole batches were purged: each is one transaction');

# SIGHUP: unpaced from now on, the running round finishes the remaining
# batches long before 10 s pauses would let it (the poll gives up at 180 s)
$node->safe_psql('postgres', q{ALTER SYSTEM SET privacy_guard.batch_delay = 0});
$node->reload;
ok($node->poll_query_until('postgres', "SELECT ($expired_q) = 0"),
	'after SIGHUP the purge runs unpaced and finishes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM events WHERE id > 2000}), '100',
	'current rows are untouched');
ok($node->poll_query_until('postgres', q{SELECT rows_deleted = 2000 FROM privacy_guard.worker_status}),
	'worker_status counted every purged row exactly once, crash and all');
is($node->safe_psql('postgres', q{SHOW privacy_guard.batch_delay}), '0', 'the setting is reloaded');

$node->stop;
done_testing();
