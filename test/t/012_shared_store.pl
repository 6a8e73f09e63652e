# The shared consent store (library preloaded): connections read one copy
# of the subject sets in shared memory, so a new connection's first
# protected query leaves its own memory small however many consents there
# are; a kill -9 of a backend holding the store and the crash restart that
# follows rebuild it from the tables; a store too small for a set
# (privacy_guard.shared_store_size) falls back to private copies with the
# same rows, and check() says so.  Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

# a protected table of 200,000 rows; subjects with an even id consent
# (100,000 consents, written straight into the store's table for speed)
sub setup_shop
{
	my ($node, $valid_until, $db) = @_;
	$db //= 'shop';
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION privacy_guard;
		SELECT privacy_guard.define_purpose('newsletter', 'consent');
		CREATE TABLE big (id int PRIMARY KEY, v text);
		INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 200000) g;
		DO \$\$BEGIN CREATE ROLE app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$;
		GRANT SELECT ON big TO app;
		SELECT privacy_guard.allow_purpose('app', 'newsletter');
		SELECT privacy_guard.protect('big', 'id', ARRAY['newsletter']);
		INSERT INTO privacy_guard.consent_state (subject, purpose, status, valid_until)
		SELECT g::text, 'newsletter', 'granted', $valid_until
		  FROM generate_series(2, 200000, 2) g;
		ANALYZE big;
	});
}

my $as_app = q{SET ROLE app; SET privacy_guard.purpose = 'newsletter';};
my $count_q = "$as_app SELECT count(*) FROM big;";
my $mem_q = q{SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts
			   WHERE name LIKE 'privacy_guard%'};

my $node = PostgreSQL::Test::Cluster->new('shared');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
restart_after_crash = on
max_parallel_workers_per_gather = 0
});
$node->start;
setup_shop($node, 'NULL');

is($node->safe_psql('shop', 'SELECT privacy_guard._store_status()'), 'shared',
	'preloaded: the consent store is shared');
like($node->safe_psql('shop', q{SELECT message FROM privacy_guard.check() WHERE message LIKE 'consent store:%'}),
	qr/^consent store: shared\./, 'check() says the store is shared');

# the first connection builds the shared set; its memory stays small too
my $first = $node->safe_psql('shop', "$count_q RESET ROLE; $mem_q");
my ($n1, $mem1) = split /\n/, $first;
is($n1, '100000', 'first connection: the consenting half of the rows');
cmp_ok($mem1, '<', 1024 * 1024, "first connection: privacy_guard's memory stays under 1 MB ($mem1 bytes)");

# a second connection reads the same set without copying it
my ($n2, $mem2) = split /\n/, $node->safe_psql('shop', "$as_app SELECT count(*) FROM big WHERE id = 4; RESET ROLE; $mem_q");
is($n2, '1', 'second connection: a point lookup finds a consenting subject');
cmp_ok($mem2, '<', 1024 * 1024, "second connection: privacy_guard's memory stays under 1 MB ($mem2 bytes)");

# the private store for comparison: the same query in a transaction that may
# not use the shared store (it deleted a consent whose subject is too long
# to be recorded for the other sessions, a change they follow by reading anew)
my ($n3, $mem3) = split /\n/, $node->safe_psql('shop', q{
	BEGIN;
	INSERT INTO privacy_guard.consent_state (subject, purpose, status)
	VALUES (repeat('x', 200), 'newsletter', 'granted');
	DELETE FROM privacy_guard.consent_state WHERE subject = repeat('x', 200);
	SET LOCAL ROLE app; SET LOCAL privacy_guard.purpose = 'newsletter';
	SELECT count(*) FROM big;
	RESET ROLE;
	} . "$mem_q; COMMIT;");
is($n3, '100000', 'private copy (a transaction that made a change only a full read follows): the same rows');
cmp_ok($mem3, '>', 4 * 1024 * 1024, "private copy: privacy_guard's memory holds the store ($mem3 bytes)");

# changes committed by one connection are seen by the next statement of another
$node->safe_psql('shop', q{
	SELECT privacy_guard.withdraw_consent('2', 'newsletter');
	SELECT privacy_guard.grant_consent('3', 'newsletter');
});
is($node->safe_psql('shop', "$as_app SELECT string_agg(id::text, ',' ORDER BY id) FROM big WHERE id <= 4"),
	'3,4', 'a withdrawal and a new consent are seen through the shared set');

# kill -9 of a backend that holds the shared store, in the middle of a transaction
my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('shop') ],
	'<', \$in, '>', \$out, '2>', \$err);
$in .= "BEGIN; SELECT privacy_guard.grant_consent('5', 'newsletter'); $as_app SELECT count(*) FROM big; SELECT 'pid=' || pg_backend_pid();\n";
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
eval { $h->pump while $out !~ /pid=\d+/ && time() < $deadline; };
diag("psql: $err") if $err ne '';
my ($victim) = $out =~ /pid=(\d+)/;
ok(defined $victim, 'a backend holds the shared store in an open transaction');
like($out, qr/^100001$/m, 'that backend sees its own uncommitted consent');
kill 'KILL', $victim;
$h->finish;
ok($node->poll_query_until('shop', "SELECT privacy_guard._store_status() = 'shared'"),
	'the server is back after the crash restart, still sharing');
is($node->safe_psql('shop', "$as_app SELECT string_agg(id::text, ',' ORDER BY id) FROM big WHERE id <= 6"),
	'3,4,6', 'after the crash: rebuilt from the tables, the killed transaction\'s consent is not there');
is($node->safe_psql('shop', $count_q), '100000', 'after the crash: every row as before');
$node->safe_psql('shop', q{SELECT privacy_guard.withdraw_consent('6', 'newsletter')});
is($node->safe_psql('shop', "$as_app SELECT string_agg(id::text, ',' ORDER BY id) FROM big WHERE id <= 6"),
	'3,4', 'after the crash: a new withdrawal is seen at once');
# many changes at once (an overlay of more than 20,000 subjects): every
# session's count is still the truth, read as the superuser from the tables
my $truth_q = q{SELECT count(*) FROM big b JOIN privacy_guard.consent_state c
	ON c.subject = b.id::text AND c.purpose = 'newsletter' AND c.status = 'granted'};
$node->safe_psql('shop', q{
	INSERT INTO privacy_guard.consent_state (subject, purpose, status)
	SELECT g::text, 'newsletter', 'granted' FROM generate_series(7, 60001, 2) g
	ON CONFLICT DO NOTHING;
	UPDATE privacy_guard.consent_state SET status = 'withdrawn' WHERE subject IN ('8', '10', '12');
});
my $truth = $node->safe_psql('shop', $truth_q);
cmp_ok($truth, '>', 120000, "many changes: the truth moved ($truth consenting rows)");
is($node->safe_psql('shop', $count_q), $truth, 'many changes: a new connection counts the truth');
is($node->safe_psql('shop', "$count_q $count_q"), "$truth\n$truth",
	'many changes: and so does its next statement');
# more deletions in one transaction than the shared ring records (8,192):
# a session that was reading before catches up by reading anew
my $reader = $node->background_psql('shop');
$reader->query_safe($as_app);
is($reader->query_safe('SELECT count(*) FROM big'), $truth, 'a long-lived reader: the truth');
my $builds_q = 'SELECT builds FROM privacy_guard._store_stats()';
my $builds = $node->safe_psql('shop', $builds_q);
$node->safe_psql('shop', q{
	DELETE FROM privacy_guard.consent_state WHERE subject IN (SELECT g::text FROM generate_series(20002, 40000, 2) g)});
$truth = $node->safe_psql('shop', $truth_q);
is($reader->query_safe('SELECT count(*) FROM big'), $truth,
	"after 10,000 deletions at once, the long-lived reader: the truth ($truth)");
is($node->safe_psql('shop', $count_q), $truth, 'and a new connection');
cmp_ok($node->safe_psql('shop', $builds_q), '>', $builds, 'the shared set was read anew for them');

# a dropped and re-created extension: nothing of the old store is served,
# to a session that read before or to a new one
$node->safe_psql('shop', q{
	SELECT privacy_guard.unprotect('big');
	DROP EXTENSION privacy_guard;
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('newsletter', 'consent');
	SELECT privacy_guard.allow_purpose('app', 'newsletter');
	SELECT privacy_guard.protect('big', 'id', ARRAY['newsletter']);
	SELECT privacy_guard.grant_consent('4', 'newsletter');
});
is($reader->query_safe('SELECT count(*) FROM big'), '1',
	're-created extension: the long-lived reader sees only the new consent');
is($node->safe_psql('shop', $count_q), '1', 're-created extension: and so does a new connection');
$reader->quit;
$node->stop;

# a shared store too small for the set: private copies, the same rows
my $small = PostgreSQL::Test::Cluster->new('small');
$small->init(extra => ['--no-locale']);
$small->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.shared_store_size = 1
max_parallel_workers_per_gather = 0
});
$small->start;
setup_shop($small, q{'2999-01-01'::timestamptz});
is($small->safe_psql('shop', $count_q), '100000', 'store full: the same rows from a private copy');
$small->safe_psql('shop', q{SELECT privacy_guard.withdraw_consent('2', 'newsletter')});
is($small->safe_psql('shop', "$as_app SELECT string_agg(id::text, ',' ORDER BY id) FROM big WHERE id <= 6"),
	'4,6', 'store full: a withdrawal is seen at once');
is($small->safe_psql('shop', 'SELECT privacy_guard._store_status()'), 'shared, full',
	'store full: the status says so');
like($small->safe_psql('shop', q{SELECT severity || ': ' || message FROM privacy_guard.check() WHERE message LIKE 'consent store:%'}),
	qr/^warning: consent store: the shared store is full/, 'store full: check() warns');
ok($small->log_contains('the shared consent store is full'), 'store full: the server log says so');
$small->stop;

# room for one set at a time: a set nobody uses any more (another
# database's) is freed to make room for the one needed now
my $evict = PostgreSQL::Test::Cluster->new('evict');
$evict->init(extra => ['--no-locale']);
$evict->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.shared_store_size = 7
max_parallel_workers_per_gather = 0
});
$evict->start;
setup_shop($evict, q{'2999-01-01'::timestamptz}, 'shop');
setup_shop($evict, q{'2999-01-01'::timestamptz}, 'shop2');
is($evict->safe_psql('shop', $count_q), '100000', 'one set at a time: the first database');
is($evict->safe_psql('shop2', $count_q), '100000', 'one set at a time: the second database');
is($evict->safe_psql('shop2', 'SELECT privacy_guard._store_status()'), 'shared',
	'one set at a time: both were shared (the unused one made room)');
is($evict->safe_psql('shop', $count_q), '100000', 'one set at a time: the first database again');
is($evict->safe_psql('shop', q{SELECT images || '/' || builds FROM privacy_guard._store_stats()}), '1/3',
	'one set at a time: one set published, three built');
$evict->stop;

done_testing(34);
