# What worker_status promises (README "Background worker"): rows_deleted,
# rows_anonymized, rows_restricted (kept under a legal hold), errors and
# last_error ("an SQLSTATE and a table, never data": an owner's trigger
# whose message carries a subject key, which appears neither there nor in
# the server log), last_error_at, last_round_duration; readable by
# administrators only.  And a kill -9 during a chunk of forget requests
# loses at most the chunk under way, which the next round finishes:
# exact counts.  Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('promises');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
privacy_guard.batch_delay = 0
privacy_guard.enabled = off
restart_after_crash = on
autovacuum = off
});
$node->start;

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

# Poll $sql every 50 ms until it returns t, for at most $max seconds; a
# failed connection (a crash restart) is retried.  Returns the seconds
# it took, or undef if the bound passed.
sub timed_poll
{
	my ($db, $sql, $max) = @_;
	my $t0 = time;
	while (time - $t0 < $max)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return time - $t0 if $rc == 0 && $out eq 't';
		usleep(50_000);
	}
	return undef;
}

# ---- worker_status: one table of each kind, all set up while rounds are off
my $marker = '987654321';
$node->safe_psql('postgres', qq{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('tax', 'legal_obligation');
	-- deleted at expiry: 30 expired rows, 5 current
	CREATE TABLE purged (id int, customer_id int, at timestamptz NOT NULL);
	INSERT INTO purged SELECT g, g, now() - interval '3 days' FROM generate_series(1, 30) g;
	INSERT INTO purged SELECT g, g, now() FROM generate_series(31, 35) g;
	SELECT privacy_guard.protect('purged', 'customer_id', ARRAY['billing'], interval '1 day', 'at');
	-- anonymised at expiry: 20 expired rows, 5 current
	CREATE TABLE anon (id int, customer_id int, at timestamptz NOT NULL);
	INSERT INTO anon SELECT g, g, now() - interval '3 days' FROM generate_series(1, 20) g;
	INSERT INTO anon SELECT g, g, now() FROM generate_series(21, 25) g;
	SELECT privacy_guard.protect('anon', 'customer_id', ARRAY['billing'], interval '1 day', 'at',
								 on_expiry => 'anonymize');
	-- under a 30-day legal hold: 10 rows past retention but within the
	-- hold (restricted), 5 past the hold too (deleted), 5 current
	CREATE TABLE held (id int, customer_id int, at timestamptz NOT NULL);
	INSERT INTO held SELECT g, g, now() - interval '3 days' FROM generate_series(1, 10) g;
	INSERT INTO held SELECT g, g, now() - interval '60 days' FROM generate_series(11, 15) g;
	INSERT INTO held SELECT g, g, now() FROM generate_series(16, 20) g;
	SELECT privacy_guard.protect('held', 'customer_id', ARRAY['billing'], interval '1 day', 'at');
	SELECT privacy_guard.set_legal_hold('held', interval '30 days', 'tax');
	-- the owner's trigger refuses every delete, after 1.2 s, naming the
	-- subject in its message: each round fails on this table and lasts
	-- at least 1.2 s
	CREATE TABLE failing (id int, customer_id int, at timestamptz NOT NULL);
	INSERT INTO failing SELECT g, $marker, now() - interval '3 days' FROM generate_series(1, 3) g;
	CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN
		PERFORM pg_sleep(1.2);
		RAISE EXCEPTION 'refusing to delete the rows of subject %', OLD.customer_id;
	END\$\$;
	CREATE TRIGGER refuse BEFORE DELETE ON failing FOR EACH ROW EXECUTE FUNCTION refuse();
	SELECT privacy_guard.protect('failing', 'customer_id', ARRAY['billing'], interval '1 day', 'at');
	-- the positive control of the marker: what the trigger says, caught
	-- here so that the server log does not get it
	CREATE FUNCTION try_delete() RETURNS text LANGUAGE plpgsql AS \$\$BEGIN
		DELETE FROM failing WHERE id = 1;
		RETURN 'deleted';
	EXCEPTION WHEN OTHERS THEN
		RETURN SQLSTATE || ': ' || SQLERRM;
	END\$\$;
	CREATE ROLE plain;
	CREATE ROLE admin;
});
is($node->safe_psql('postgres', 'SELECT try_delete()'),
	"P0001: refusing to delete the rows of subject $marker",
	'the owner\'s trigger fails with the subject key in its message');

my $pos = -s $node->logfile;
my $t_on = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
set_sighup('privacy_guard.enabled', 'on');
ok($node->poll_query_until('postgres', q{SELECT rounds >= 2 FROM privacy_guard.worker_status}),
	'two rounds have run');
is($node->safe_psql('postgres', q{
	SELECT format('deleted %s, anonymized %s, restricted %s', rows_deleted, rows_anonymized, rows_restricted)
	  FROM privacy_guard.worker_status}),
	'deleted 35, anonymized 20, restricted 10',
	'worker_status: rows deleted (30 + 5 past the hold), anonymised (20), restricted under the hold (10)');
is($node->safe_psql('postgres', q{
	SELECT format('purged %s, anon %s with a subject of %s, held %s', (SELECT count(*) FROM purged),
				  (SELECT count(*) FROM anon), (SELECT count(customer_id) FROM anon),
				  (SELECT count(*) FROM held))}),
	'purged 5, anon 25 with a subject of 5, held 15',
	'the tables agree: expired rows deleted, anonymised rows kept without their subject, restricted rows kept');
my $status = $node->safe_psql('postgres', q{
	SELECT errors || '|' || last_error || '|' || (last_error_at >= '} . $t_on . q{' AND last_error_at <= now())
		   || '|' || (errors >= rounds)
	  FROM privacy_guard.worker_status});
my ($errors, $last_error, $at_ok, $per_round) = split /\|/, $status;
cmp_ok($errors, '>=', 2, 'worker_status: errors counts the failing table in each round');
is($per_round, 'true', 'one error per round');
is($last_error, '{"public.failing": "error P0001 while purging public.failing"}',
	'last_error: the SQLSTATE and the table');
unlike($last_error, qr/$marker/, 'last_error does not carry the subject key');
is($at_ok, 'true', 'last_error_at: during the rounds');
is($node->safe_psql('postgres', q{
	SELECT last_round_duration >= interval '1.2 s' AND last_round_duration < interval '10 s'
		   AND last_round_at > '} . $t_on . q{'
	  FROM privacy_guard.worker_status}),
	't', 'last_round_duration: at least the 1.2 s the owner\'s trigger slept, and bounded');
my $log = slurp_file($node->logfile, $pos);
unlike($log, qr/$marker/, 'the server log does not carry the subject key');

# who may read worker_status: administrators only
my ($rc, $out, $err) = $node->psql('postgres', 'SET ROLE plain; SELECT count(*) FROM privacy_guard.purposes');
is("$rc $out", '0 2', 'a plain role reads what everyone may');
($rc, $out, $err) = $node->psql('postgres', 'SET ROLE plain; SELECT rounds FROM privacy_guard.worker_status');
like($err, qr/permission denied for view worker_status/, 'a plain role may not read worker_status');
($rc, $out, $err) = $node->psql('postgres', 'SET ROLE admin; SELECT rounds FROM privacy_guard.worker_status');
like($err, qr/permission denied for view worker_status/, 'nor may a role before grant_admin()');
$node->safe_psql('postgres', q{SELECT privacy_guard.grant_admin('admin')});
is($node->safe_psql('postgres', 'SET ROLE admin; SELECT rows_deleted FROM privacy_guard.worker_status'),
	'35', 'an administrator made with grant_admin() reads worker_status');

# ---- a kill -9 during a chunk of forget requests, in a database of its own
# (polls from elsewhere do not keep its requests pending): 250 requests,
# chunks of 100; the owner's trigger sleeps at the 150th subject, 49
# requests of the second chunk erased and not committed; rounds are
# switched off, then the worker is killed there
$node->safe_psql('postgres', 'CREATE DATABASE forgetdb');
$node->safe_psql('forgetdb', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 250) g;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing']);
	CREATE TABLE ctl (slow_id bigint);
	INSERT INTO ctl VALUES (150);
	CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
		IF OLD.id = (SELECT slow_id FROM public.ctl) THEN
			PERFORM pg_sleep(9);
		END IF;
		RETURN OLD;
	END$$;
	CREATE TRIGGER slow_delete BEFORE DELETE ON customers FOR EACH ROW EXECUTE FUNCTION slow_delete();
	SELECT count(privacy_guard.forget(g::text, 'mass')) FROM generate_series(1, 250) g;
});
my $in_chunk_q = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker'
					AND datname = 'forgetdb' AND query LIKE '%forget requests%' AND wait_event = 'PgSleep'};
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($in_chunk_q) w"),
	'the worker is inside the second chunk, in the owner\'s trigger');
my $pid = $node->safe_psql('postgres', $in_chunk_q);
my $states_q = q{
	SELECT format('%s done, %s pending; worker_status: %s; %s customers left',
				  count(*) FILTER (WHERE state = 'done'), count(*) FILTER (WHERE state = 'pending'),
				  (SELECT requests_done FROM privacy_guard.worker_status),
				  (SELECT count(*) FROM customers))
	  FROM privacy_guard.erasure_requests WHERE reason = 'mass'};
is($node->safe_psql('forgetdb', $states_q), '100 done, 150 pending; worker_status: 100; 150 customers left',
	'the first chunk is committed, the second under way');
set_sighup('privacy_guard.enabled', 'off');
is($node->safe_psql('postgres', "SELECT count(*) FROM ($in_chunk_q) w WHERE pid = $pid"), '1',
	'the worker is still inside the chunk');
kill 'KILL', $pid;
ok(defined timed_poll('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid", 60),
	'the worker is gone after kill -9');
ok(defined timed_poll('postgres', 'SELECT true', 60), 'the server is back after the crash');
is($node->safe_psql('forgetdb', $states_q), '100 done, 150 pending; worker_status: 100; 150 customers left',
	'only the chunk under way was lost: the first is done and counted once, the second untouched');
$node->safe_psql('forgetdb', 'UPDATE ctl SET slow_id = NULL');
set_sighup('privacy_guard.enabled', 'on');
ok($node->poll_query_until('forgetdb', q{
	SELECT count(*) FILTER (WHERE state = 'done') = 250 FROM privacy_guard.erasure_requests WHERE reason = 'mass'}),
	'the next rounds finish the requests');
is($node->safe_psql('forgetdb', $states_q), '250 done, 0 pending; worker_status: 250; 0 customers left',
	'every request done, each counted once');

$node->stop;
done_testing(23);
