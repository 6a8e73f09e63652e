# The table owner's code inside the worker's round (issue 19): settings it
# changes for the session (set_config(..., false)) end with its statement,
# so they never reach the worker's next statements; and owner code that
# swallows the engine's cancel does not stall the round for ever.
# Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('sandbox');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
privacy_guard.batch_size = 1
privacy_guard.batch_delay = 0
autovacuum = off
});
$node->start;

# one engine statement per expired row: each notes the settings it
# starts with, then plants its own for the rest of the session
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE ROLE sb_owner LOGIN;
	GRANT CREATE ON SCHEMA public TO sb_owner;
	SET ROLE sb_owner;
	CREATE TABLE events (id int, customer_id int, happened timestamptz NOT NULL);
	CREATE TABLE seen (id int, search_path text, work_mem text, statement_timeout text);
	CREATE FUNCTION plant() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
		INSERT INTO seen VALUES (OLD.id, current_setting('search_path'),
			current_setting('work_mem'), current_setting('statement_timeout'));
		PERFORM set_config('search_path', 'evil, public', false);
		PERFORM set_config('work_mem', '1234kB', false);
		PERFORM set_config('statement_timeout', '4321', false);
		RETURN OLD;
	END$$;
	CREATE TRIGGER plant BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION plant();
	RESET ROLE;
	SELECT privacy_guard.protect('events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
	INSERT INTO events SELECT g, g, now() - interval '3 days' FROM generate_series(1, 5) g;
});

ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM events'),
	'the worker purged the expired rows, one statement each');
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), '5', 'the trigger ran for every row');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT search_path || ' | ' || work_mem || ' | ' || statement_timeout, '; ')
	  FROM seen}),
	'"$user", public | 4MB | 0',
	'every statement of the round started from the default settings, none from what the one before planted');

# ---- an owner's trigger that swallows the engine's cancel and loops on:
# at twice engine_time_limit (plus a second) the session running the round
# is ended, whether it is an administrator's or the worker's; the row stays
$node->append_conf('postgresql.conf', q{
privacy_guard.engine_time_limit = 300
privacy_guard.enabled = off
});
$node->reload;
$node->safe_psql('postgres', q{
	SET ROLE sb_owner;
	CREATE TABLE stall (id int, customer_id int, happened timestamptz NOT NULL);
	-- loops until cancelled twice over (bounded at 120 s should the fix fail)
	CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		t0 timestamptz := clock_timestamp();
	BEGIN
		LOOP
			BEGIN
				PERFORM pg_sleep(0.05);
			EXCEPTION WHEN query_canceled THEN
				INSERT INTO seen VALUES (-1, 'cancel swallowed', '', '');
			END;
			EXIT WHEN clock_timestamp() > t0 + interval '120 s';
		END LOOP;
		RETURN OLD;
	END$$;
	CREATE TRIGGER stall BEFORE DELETE ON stall FOR EACH ROW EXECUTE FUNCTION stall();
	RESET ROLE;
	SELECT privacy_guard.protect('stall', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
	INSERT INTO stall VALUES (1, 1, now() - interval '3 days');
});
ok($node->poll_query_until('postgres', q{SELECT current_setting('privacy_guard.engine_time_limit') = '300ms'}),
	'the time limit is 300 ms');
my $t0 = time;
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT privacy_guard.run_maintenance('stall')});
my $took = time - $t0;
like($err, qr/terminating connection/, 'the administrator\'s session running the round is ended');
cmp_ok($took, '<', 60, 'long before the owner\'s loop would have ended by itself');
is($node->safe_psql('postgres', 'SELECT count(*) FROM stall'), '1', 'the row is kept (the round did not finish it)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM seen WHERE id = -1}), '0',
	'the swallowed cancels rolled back with the session\'s transaction');

# the worker's round: it ends too, and the next round starts
$node->append_conf('postgresql.conf', 'privacy_guard.enabled = on');
$node->reload;
my $stuck_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker'
				  AND datname = 'postgres' AND wait_event = 'PgSleep'};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($stuck_q) w"),
	'a worker is inside the owner\'s loop');
my $pid = $node->safe_psql('postgres', $stuck_q);
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
	'that worker is ended');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($stuck_q) w WHERE pid <> $pid"),
	'and a later round runs');

done_testing(11);
