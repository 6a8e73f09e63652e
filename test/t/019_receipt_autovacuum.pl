# A receipt says its rows are physically unreachable only after a vacuum of
# each table that began after the erasure committed.  Autovacuum is the
# case that matters: the round's completion check does not wait for it, so
# an autovacuum already running when a forget request is carried out goes
# on, ends after the receipt was closed, and cannot remove the erased row
# version on a page it had already scanned.  The round after the erasure
# sees it under way (pg_stat_progress_vacuum) and waits for one more
# vacuum.  pgstattuple shows the erased row version is really still there
# when the receipt declines to say otherwise.  Everything is polled with a
# bound; the autovacuum is slowed down by its cost delay on this table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('receipt_autovacuum');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
autovacuum = on
autovacuum_naptime = 1
});
$node->start;

# fillfactor 10: pages stay far from full, so no reader prunes them on the
# way (only a vacuum removes the erased row version)
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	CREATE EXTENSION pgstattuple;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE TABLE rv (id int PRIMARY KEY, pad text)
		WITH (fillfactor = 10, autovacuum_enabled = false);
	INSERT INTO rv SELECT g, repeat('x', 100) FROM generate_series(1, 1200) g;
	SELECT privacy_guard.protect('rv', 'id', ARRAY['billing']);
});
my $pages = $node->safe_psql('postgres', "SELECT pg_relation_size('rv') / 8192");
cmp_ok($pages, '>=', 100, "the table has $pages pages");
is($node->safe_psql('postgres', "SELECT (ctid::text::point)[0] FROM rv WHERE id = 1"),
	'0', 'the subject to forget is on the first page');

# an autovacuum of the table, slowed to a crawl (20 ms a page at least)
$node->safe_psql('postgres', q{
	ALTER TABLE rv SET (autovacuum_enabled = true,
		autovacuum_vacuum_cost_delay = 20, autovacuum_vacuum_cost_limit = 1,
		autovacuum_vacuum_insert_threshold = 1, autovacuum_vacuum_insert_scale_factor = 0)
});
ok($node->poll_query_until('postgres', q{
	SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum
				   WHERE relid = 'rv'::regclass AND heap_blks_scanned >= 5)}),
	'an autovacuum of the table is under way, past its first pages');
my $count0 = $node->safe_psql('postgres', "SELECT pg_stat_get_autovacuum_count('rv'::regclass)");

# the forget request, carried out while the autovacuum runs (the
# completion check does not wait for autovacuum)
$node->safe_psql('postgres', "SELECT privacy_guard.forget('1', 'autovacuum')");
is($node->safe_psql('postgres', "SELECT privacy_guard.run_maintenance() ->> 'requests_done'"),
	'1', 'the round carries out the request');
is($node->safe_psql('postgres', "SELECT state FROM privacy_guard.erasure_requests WHERE reason = 'autovacuum'"),
	'done', 'the receipt is closed while the autovacuum still runs');

# the next round sees the erasure committed and the autovacuum under way
$node->safe_psql('postgres', "SELECT privacy_guard.run_maintenance()");
is($node->safe_psql('postgres', "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum WHERE relid = 'rv'::regclass)"),
	't', 'the autovacuum was still under way after that round');
# no autovacuum of the table after this one
$node->safe_psql('postgres', "ALTER SYSTEM SET autovacuum = off");
$node->reload;

# the autovacuum that began before the erasure ends
ok($node->poll_query_until('postgres',
		"SELECT pg_stat_get_autovacuum_count('rv'::regclass) > $count0", 't'),
	'the autovacuum ends');
$node->safe_psql('postgres', "SELECT privacy_guard.run_maintenance()");
is($node->safe_psql('postgres', q{
	SELECT pg_stat_get_last_autovacuum_time('rv'::regclass) > completed_at
	  FROM privacy_guard.erasure_requests WHERE reason = 'autovacuum'}),
	't', 'it ended after the receipt was closed');
cmp_ok($node->safe_psql('postgres', "SELECT dead_tuple_count FROM pgstattuple('rv')"),
	'>=', 1, 'the erased row version is still in the table');
is($node->safe_psql('postgres', "SELECT unreachable_at IS NULL FROM privacy_guard.erasure_requests WHERE reason = 'autovacuum'"),
	't', 'and the receipt does not claim it unreachable');

# a vacuum that begins now removes it, and the receipt says so
$node->safe_psql('postgres', "VACUUM rv");
$node->safe_psql('postgres', "SELECT privacy_guard.run_maintenance()");
is($node->safe_psql('postgres', "SELECT dead_tuple_count FROM pgstattuple('rv')"),
	'0', 'a vacuum begun after the erasure removes the erased row version');
is($node->safe_psql('postgres', q{
	SELECT unreachable_at >= completed_at FROM privacy_guard.erasure_requests WHERE reason = 'autovacuum'}),
	't', 'and the receipt now says the rows are unreachable');

$node->stop;
done_testing();
