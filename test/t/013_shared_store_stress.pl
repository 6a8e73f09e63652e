# The shared consent store under concurrent change: pgbench clients grant,
# withdraw, delete (followed through the subjects the deleting transactions
# record in shared memory), roll back and roll back to savepoints, write two
# purposes of the same few subjects at once (the change ring must publish
# each subject's state in commit order), and read, while two long-lived
# sessions keep reading (one inside a single REPEATABLE READ transaction
# throughout).  When the writers stop, every session -- the long-lived ones
# and a new one -- counts exactly the rows the tables say may be seen, for
# integer and for text subjects, and the readers caught up mostly from the
# change ring.  Then a prepared transaction stops the ring until restart:
# readers query the tables and stay right.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
max_parallel_workers_per_gather = 0
max_prepared_transactions = 2
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('newsletter', 'consent');
	SELECT privacy_guard.define_purpose('offers', 'consent');
	CREATE TABLE big (id int PRIMARY KEY, v text);
	INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 20000) g;
	CREATE TABLE notes (who text, v text);
	INSERT INTO notes SELECT 'u' || g, 'n' || g FROM generate_series(1, 20000) g;
	CREATE ROLE app LOGIN;
	GRANT SELECT ON big, notes TO app;
	SELECT privacy_guard.allow_purpose('app', 'newsletter');
	SELECT privacy_guard.allow_purpose('app', 'offers');
	SELECT privacy_guard.protect('big', 'id', ARRAY['newsletter', 'offers']);
	SELECT privacy_guard.protect('notes', 'who', ARRAY['newsletter']);
	INSERT INTO privacy_guard.consent_state (subject, purpose, status)
	SELECT s, 'newsletter', 'granted'
	  FROM generate_series(2, 20000, 2) g, LATERAL (VALUES (g::text), ('u' || g)) v(s);
});

my $counts_q = q{SELECT (SELECT count(*) FROM big) || '/' || (SELECT count(*) FROM notes)};
my $truth_q = q{
	SELECT (SELECT count(*) FROM big b JOIN privacy_guard.consent_state c
			 ON c.subject = b.id::text AND c.purpose = 'newsletter' AND c.status = 'granted')
		|| '/' ||
		   (SELECT count(*) FROM notes n JOIN privacy_guard.consent_state c
			 ON c.subject = n.who AND c.purpose = 'newsletter' AND c.status = 'granted')};
my $offers_q = q{SELECT count(*) FROM big};
my $offers_truth_q = q{
	SELECT count(*) FROM big b JOIN privacy_guard.consent_state c
	  ON c.subject = b.id::text AND c.purpose = 'offers' AND c.status = 'granted'};
is($node->safe_psql('shop', $truth_q), '10000/10000', 'the setup: half the subjects consent');

# two long-lived readers
my $rc = $node->background_psql('shop');
$rc->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'newsletter'});
is($rc->query_safe($counts_q), '10000/10000', 'READ COMMITTED reader before');
my $rr = $node->background_psql('shop');
$rr->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'newsletter'});
$rr->query_safe(q{BEGIN ISOLATION LEVEL REPEATABLE READ});
is($rr->query_safe($counts_q), '10000/10000', 'REPEATABLE READ reader before');

# the writers
my $dir = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	'grant.sql@6' => q{\set s random(1, 20000)
SELECT privacy_guard.grant_consent(:s::text, 'newsletter');
SELECT privacy_guard.grant_consent('u' || :s, 'newsletter');
},
	'withdraw.sql@6' => q{\set s random(1, 20000)
SELECT privacy_guard.withdraw_consent(:s::text, 'newsletter');
SELECT privacy_guard.withdraw_consent('u' || :s, 'newsletter');
},
	'rollback.sql@3' => q{\set s random(1, 20000)
BEGIN;
SELECT privacy_guard.grant_consent(:s::text, 'newsletter');
SELECT privacy_guard.withdraw_consent('u' || :s, 'newsletter');
SET LOCAL ROLE app;
SET LOCAL privacy_guard.purpose = 'newsletter';
SELECT count(*) FROM big WHERE id BETWEEN :s AND :s + 50;
ROLLBACK;
},
	'savepoint.sql@3' => q{\set s random(1, 20000)
BEGIN;
SAVEPOINT a;
SELECT privacy_guard.withdraw_consent(:s::text, 'newsletter');
SELECT privacy_guard.grant_consent('u' || :s, 'newsletter');
ROLLBACK TO SAVEPOINT a;
SELECT privacy_guard.grant_consent((:s + 1)::text, 'newsletter');
COMMIT;
},
	'collide.sql@4' => q{\set s random(1, 20)
\set p random(0, 3)
SELECT CASE :p WHEN 0 THEN privacy_guard.grant_consent(:s::text, 'newsletter')
	WHEN 1 THEN privacy_guard.withdraw_consent(:s::text, 'newsletter')
	WHEN 2 THEN privacy_guard.grant_consent(:s::text, 'offers')
	ELSE privacy_guard.withdraw_consent(:s::text, 'offers') END;
},
	'delete.sql@1' => q{\set s random(1, 20000)
DELETE FROM privacy_guard.consent_state WHERE subject IN (:s::text, 'u' || :s);
},
	'read.sql@6' => q{\set s random(1, 20000)
SET ROLE app;
SET privacy_guard.purpose = 'newsletter';
SELECT count(*) FROM big WHERE id BETWEEN :s AND :s + 100;
SELECT count(*) FROM notes WHERE who = 'u' || :s;
RESET ROLE;
},
);
my @args;
for my $name (sort keys %scripts)
{
	my ($file) = $name =~ /^([^@]+)/;
	open(my $fh, '>', "$dir/$file") or die;
	print $fh $scripts{$name};
	close $fh;
	push @args, '-f', "$dir/$name";
}
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '8', @args, '-d', $node->connstr('shop') ],
	'>', \$out, '2>', \$err);
# the long-lived readers read while the writers write (no answer to check yet)
my $reads = 0;
while ($bench->pumpable)
{
	$rc->query_safe($counts_q);
	$rr->query_safe($counts_q);
	$reads++;
	$bench->pump_nb;
}
ok($bench->finish, 'pgbench ran without errors') or diag($err);
note($out);
like($out, qr/number of failed transactions: 0|processed: [1-9]/, 'the writers got work done');
cmp_ok($reads, '>', 5, "the long-lived readers read meanwhile ($reads times)");

my $truth = $node->safe_psql('shop', $truth_q);
isnt($truth, '10000/10000', "the consents changed ($truth)");
is($rc->query_safe($counts_q), $truth, 'READ COMMITTED reader after: the truth');
is($rr->query_safe($counts_q), $truth, 'REPEATABLE READ reader after, same transaction: the truth');
$rr->query_safe('COMMIT');
is($node->safe_psql('shop', "SET ROLE app; SET privacy_guard.purpose = 'newsletter'; $counts_q"), $truth,
	'a new connection: the truth');
my $offers = $node->safe_psql('shop', $offers_truth_q);
cmp_ok($offers, '>', 0, "some subjects consent to offers ($offers)");
is($node->safe_psql('shop', "SET ROLE app; SET privacy_guard.purpose = 'offers'; $offers_q"), $offers,
	'offers, a new connection: the truth');
$rc->query_safe(q{SET privacy_guard.purpose = 'offers'});
is($rc->query_safe($offers_q), $offers, 'offers, the long-lived reader: the truth');
$rc->query_safe(q{SET privacy_guard.purpose = 'newsletter'});
my $builds = $node->safe_psql('shop', 'SELECT builds FROM privacy_guard._store_stats()');
cmp_ok($builds, '<=', 4,
	"deletions were followed without rebuilding the shared sets ($builds builds)");
# a prepared transaction that writes consents stops the ring until restart
$node->safe_psql('shop', q{
	SELECT privacy_guard.grant_consent('2', 'newsletter'), privacy_guard.grant_consent('4', 'newsletter')});
is($rc->query_safe(q{SELECT count(*) FROM big WHERE id IN (2, 4)}), '2', 'two subjects granted again');
my ($ring, $queried) = split /\|/,
	$rc->query_safe(q{RESET ROLE; SELECT from_ring || '|' || queried FROM privacy_guard._store_patches(); SET ROLE app});
cmp_ok($ring, '>', $queried,
	"the long-lived reader caught up mostly from the change ring ($ring times, queried $queried)");

my $log_offset = -s $node->logfile;
$node->safe_psql('shop', q{
	BEGIN;
	SELECT privacy_guard.withdraw_consent('2', 'newsletter');
	PREPARE TRANSACTION 'pvg_ring';
});
ok($node->log_contains('read consent changes from the tables until restart', $log_offset),
	'the server log says the ring stopped');
is($rc->query_safe(q{SELECT count(*) FROM big WHERE id = 2}), '1', 'prepared, not committed: still seen');
$node->safe_psql('shop', q{COMMIT PREPARED 'pvg_ring'});
is($rc->query_safe(q{SELECT count(*) FROM big WHERE id = 2}), '0',
	'committed elsewhere: the next statement no longer sees it');
$node->safe_psql('shop', q{SELECT privacy_guard.grant_consent('2', 'newsletter')});
is($rc->query_safe(q{SELECT count(*) FROM big WHERE id = 2}), '1', 'and sees a grant again');
my ($ring2) = split /\|/,
	$rc->query_safe(q{RESET ROLE; SELECT from_ring || '|' || queried FROM privacy_guard._store_patches(); SET ROLE app});
is($ring2, $ring, 'with the ring stopped, the reader queried the tables');
$rc->quit;
$rr->quit;

$node->restart;
my $app = $node->background_psql('shop');
$app->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'newsletter'});
is($app->query_safe(q{SELECT count(*) FROM big WHERE id = 4}), '1', 'after restart: a reader');
$node->safe_psql('shop', q{SELECT privacy_guard.withdraw_consent('4', 'newsletter')});
is($app->query_safe(q{SELECT count(*) FROM big WHERE id = 4}), '0', 'sees a withdrawal at once');
is($app->query_safe(q{RESET ROLE; SELECT from_ring > 0 AND queried = 0 FROM privacy_guard._store_patches()}), 't',
	'from the ring again, without querying the tables');
$app->quit;
$node->stop;

done_testing(24);
