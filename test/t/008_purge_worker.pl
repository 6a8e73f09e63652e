# The worker's purge in batches (shared_preload_libraries): SIGTERM obeyed
# during the pause between batches; kill -9 in the middle of a batch (made
# slow by the owner's trigger) loses exactly that batch and nothing else,
# nor any count; SIGHUP changes the pacing of a running round (the rest of
# it finishes in seconds, not the minutes its 10 s pauses would take); and
# after all that every expired row is gone, every current row is there,
# and worker_status counted each row once.  Everything is polled with a
# bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

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

# Poll $sql every 50 ms until it returns t, for at most $max seconds from
# $t0; a failed connection (a crash restart) is retried.  Returns the
# seconds since $t0, or undef if the bound passed.
sub timed_poll
{
	my ($sql, $max, $t0) = @_;
	$t0 //= time;
	while (time - $t0 < $max)
	{
		my ($rc, $out) = $node->psql('postgres', $sql);
		return time - $t0 if $rc == 0 && $out eq 't';
		usleep(50_000);
	}
	return undef;
}

# set a sighup setting and wait until a new session sees it (the
# postmaster, and with it every process it starts, has reloaded)
sub set_sighup
{
	my ($name, $value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $name = '$value'");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('$name') = '$value'")
	  or die "$name = $value not in effect";
}

# 2,000 expired rows (20 batches) and 100 current ones; the owner's row
# trigger sleeps at the slow_at-th row of a statement, if set (9 s, within
# engine_time_limit's 10 s), so a batch can be caught with part of its
# rows deleted and not committed
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE TABLE events (id int PRIMARY KEY, customer_id int, happened timestamptz NOT NULL);
	INSERT INTO events SELECT g, g % 50, now() - interval '3 days' FROM generate_series(1, 2000) g;
	INSERT INTO events SELECT g, g % 50, now() FROM generate_series(2001, 2100) g;
	CREATE TABLE ctl (slow_at int);
	INSERT INTO ctl VALUES (NULL);
	CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		n int := coalesce(nullif(current_setting('pgtest.rows', true), ''), '0')::int + 1;
	BEGIN
		PERFORM set_config('pgtest.rows', n::text, true);
		IF n = (SELECT slow_at FROM public.ctl) THEN
			PERFORM pg_sleep(9);
		END IF;
		RETURN OLD;
	END$$;
	CREATE TRIGGER slow_delete BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION slow_delete();
	SELECT privacy_guard.protect('events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
});
my $expired_q = q{SELECT count(*) FROM events WHERE id <= 2000};
my $worker_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker'
				  AND datname = 'postgres' AND query LIKE '%purging%'};
my $pausing_q = "$worker_q AND wait_event = 'Extension'";
my $in_batch_q = "$worker_q AND wait_event = 'PgSleep'";
my $deleted_q = q{SELECT rows_deleted FROM privacy_guard.worker_status};

# ---- a round purges one batch, then pauses 10 s before the next
ok($node->poll_query_until('postgres', "SELECT ($expired_q) <= 1900"), 'the first batch is purged');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($pausing_q) w"),
	'the worker pauses between batches');

# SIGTERM during the pause: the worker leaves at once, not after the pause
my $pid = $node->safe_psql('postgres', $pausing_q);
my $t0 = time;
my $took;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'the worker exits on SIGTERM');
$took = time - $t0;
cmp_ok($took, '<', 9, sprintf('SIGTERM is obeyed during the 10 s pause between batches (%.2f s)', $took));

# ---- kill -9 in the middle of a batch: the next batch sleeps at its 50th
# row, 49 of its rows deleted and not committed; the worker is killed
# there (the server restarts); exactly that batch is lost.  Rounds are
# switched off first (the sleeping batch is unaffected: settings are
# read between batches), so that nothing runs after the restart until
# the counts are taken.  The earlier batches committed without waiting
# for their WAL flush, more than 10 s before the kill: the WAL writer has
# flushed them long since (it does within three times wal_writer_delay).
$node->safe_psql('postgres', 'UPDATE ctl SET slow_at = 50');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($in_batch_q) w"),
	'a new round: the worker is inside a batch, in the owner\'s trigger');
$pid = $node->safe_psql('postgres', $in_batch_q);
my $left_before = $node->safe_psql('postgres', $expired_q);
my $deleted_before = $node->safe_psql('postgres', $deleted_q);
cmp_ok($left_before, '<', 2000, "earlier batches were purged and committed ($left_before expired rows left)");
is($left_before + $deleted_before, 2000, 'worker_status counted each committed row once');
set_sighup('privacy_guard.enabled', 'off');
is($node->safe_psql('postgres', "SELECT count(*) FROM ($in_batch_q) w WHERE pid = $pid"), '1',
	'the worker is still inside the batch');
kill 'KILL', $pid;
ok(defined timed_poll("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid", 60),
	'the worker is gone after kill -9');
ok(defined timed_poll('SELECT true', 60), 'the server is back after the crash');
is($node->safe_psql('postgres', $expired_q), $left_before,
	'exactly the batch under way was lost: the expired rows left are those before the kill');
is($node->safe_psql('postgres', $deleted_q), $deleted_before, 'and so is worker_status\'s count');
is($node->safe_psql('postgres', 'SELECT count(*) FROM events WHERE id > 2000'), '100', 'current rows are untouched');

# ---- SIGHUP: a new round purges a batch and pauses 10 s; the delay is
# set to 0 and the running round finishes the rest (at least 15 batches,
# which its 10 s pauses would stretch over 150 s) in well under 30 s
$node->safe_psql('postgres', 'UPDATE ctl SET slow_at = NULL');
set_sighup('privacy_guard.enabled', 'on');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($pausing_q) w"),
	'a new round pauses between batches');
my $round_pid = $node->safe_psql('postgres', $pausing_q);
my $left = $node->safe_psql('postgres', $expired_q);
cmp_ok($left, '>=', 1500, "the round has $left rows left: 10 s pauses would take minutes");
$t0 = time;
$node->safe_psql('postgres', q{ALTER SYSTEM SET privacy_guard.batch_delay = 0});
$node->reload;
$took = timed_poll("SELECT ($expired_q) = 0", 40, $t0);
cmp_ok($took // 999, '<', 30, sprintf('after SIGHUP the running round purges the rest unpaced (%.2f s)', $took // 999));
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $round_pid"),
	'and that round ends');
is($node->safe_psql('postgres', q{SELECT count(*) FROM events WHERE id > 2000}), '100',
	'current rows are untouched');
ok($node->poll_query_until('postgres', "SELECT ($deleted_q) = 2000"),
	'worker_status counted every purged row exactly once, crash and all');
is($node->safe_psql('postgres', q{SHOW privacy_guard.batch_delay}), '0', 'the setting is reloaded');

$node->stop;
done_testing(20);
