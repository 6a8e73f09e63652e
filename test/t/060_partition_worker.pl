# Retention by partition in the background worker (shared_preload_libraries):
# a round empties the partition wholly past retention with TRUNCATE, as the
# table's owner (the owner's ON TRUNCATE trigger sees the owner, not the
# worker's superuser), purges the old partition that has the owner's ON
# DELETE trigger row by row (the trigger sees every row), leaves the
# current partition alone, and worker_status and round_history count every
# row once as deleted.  Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('partition');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
privacy_guard.enabled = off
autovacuum = off
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE ROLE part_owner;
	GRANT CREATE ON SCHEMA public TO part_owner;
	SET ROLE part_owner;
	CREATE TABLE part_log (what text);
	CREATE FUNCTION part_note() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO part_log VALUES (current_user || ' ' || TG_OP || ' ' || TG_TABLE_NAME); RETURN OLD; END$$;
	CREATE TABLE events (id int, customer int, happened timestamptz NOT NULL) PARTITION BY RANGE (happened);
	CREATE TABLE events_2000_01 PARTITION OF events FOR VALUES FROM ('2000-01-01') TO ('2000-02-01');
	CREATE TABLE events_2000_02 PARTITION OF events FOR VALUES FROM ('2000-02-01') TO ('2000-03-01');
	CREATE TABLE events_now PARTITION OF events FOR VALUES FROM ('2000-03-01') TO (MAXVALUE);
	INSERT INTO events SELECT g, g, '2000-01-10' FROM generate_series(1, 500) g;
	INSERT INTO events SELECT g, g, '2000-02-10' FROM generate_series(501, 540) g;
	INSERT INTO events SELECT g, g, now() FROM generate_series(541, 550) g;
	CREATE TRIGGER note_truncate AFTER TRUNCATE ON events_2000_01 FOR EACH STATEMENT EXECUTE FUNCTION part_note();
	CREATE TRIGGER note_delete BEFORE DELETE ON events_2000_02 FOR EACH ROW EXECUTE FUNCTION part_note();
	RESET ROLE;
	SELECT privacy_guard.protect('events', 'customer', ARRAY['billing'], interval '30 days', 'happened');
});

$node->safe_psql('postgres', "ALTER SYSTEM SET privacy_guard.enabled = on");
$node->reload;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 10 FROM events"),
	'the worker purged both old partitions');
ok($node->poll_query_until('postgres',
		"SELECT coalesce((SELECT rows_deleted FROM privacy_guard.worker_status), 0) >= 540"),
	'worker_status counted the purge');

is($node->safe_psql('postgres', "SELECT count(*) FROM events_now"), '10', 'the current partition is untouched');
is($node->safe_psql('postgres', "SELECT what || ': ' || count(*) FROM part_log GROUP BY what ORDER BY what"),
	"part_owner DELETE events_2000_02: 40\npart_owner TRUNCATE events_2000_01: 1",
	'TRUNCATE ran as the owner; the partition with an ON DELETE trigger went row by row');
is($node->safe_psql('postgres', "SELECT rows_deleted FROM privacy_guard.worker_status"),
	'540', 'worker_status counts every row once as deleted, truncated ones too');
is($node->safe_psql('postgres',
		"SELECT string_agg((tables -> 'public.events')::text, ', ') FROM privacy_guard.round_history "
		  . "WHERE run_by = 'worker' AND rows_deleted > 0"),
	'{"deleted": 540, "partitions_truncated": 1}',
	"one round's history says how many partitions were truncated");
is($node->safe_psql('postgres',
		"SELECT sum(rows_deleted) FROM privacy_guard.round_history WHERE run_by = 'worker'"),
	'540', 'round_history counts them as deleted');

$node->stop;
done_testing();
