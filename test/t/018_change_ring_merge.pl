# The change ring over a long run of changes: a session that learns every
# change from the ring grows its overlay; past 20,000 subjects (and with
# its shared sets older than ten seconds) it builds new shared sets by
# merging the old ones with its overlay instead of reading the consent
# tables again, for integer and for text subjects.  While writers keep
# changing consents, the merging session, a session that started before
# and a new one all count exactly the rows the tables say may be seen, and
# the new session starts over a merged set from the ring.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('ring');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
max_parallel_workers_per_gather = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('newsletter', 'consent');
	CREATE TABLE big (id int PRIMARY KEY);
	INSERT INTO big SELECT g FROM generate_series(1, 40000) g;
	CREATE TABLE notes (who text);
	INSERT INTO notes SELECT 'u' || g FROM generate_series(1, 40000) g;
	CREATE ROLE app LOGIN;
	GRANT SELECT ON big, notes TO app;
	SELECT privacy_guard.allow_purpose('app', 'newsletter');
	SELECT privacy_guard.protect('big', 'id', ARRAY['newsletter']);
	SELECT privacy_guard.protect('notes', 'who', ARRAY['newsletter']);
	INSERT INTO privacy_guard.consent_state (subject, purpose, status)
	SELECT s, 'newsletter', 'granted'
	  FROM generate_series(2, 40000, 2) g, LATERAL (VALUES (g::text), ('u' || g)) v(s);
});

my $counts_q = q{SELECT (SELECT count(*) FROM big) || '/' || (SELECT count(*) FROM notes)};
my $truth_q = q{
	SELECT (SELECT count(*) FROM big b JOIN privacy_guard.consent_state c
			 ON c.subject = b.id::text AND c.purpose = 'newsletter' AND c.status = 'granted')
		|| '/' ||
		   (SELECT count(*) FROM notes n JOIN privacy_guard.consent_state c
			 ON c.subject = n.who AND c.purpose = 'newsletter' AND c.status = 'granted')};
my $patches_q = q{RESET ROLE; SELECT from_ring || '/' || queried || '/' || merged FROM privacy_guard._store_patches(); SET ROLE app};

sub reader
{
	my $s = $node->background_psql('shop');
	$s->query_safe(q{SET ROLE app; SET privacy_guard.purpose = 'newsletter'});
	return $s;
}

my $merger = reader();
my $other = reader();
is($merger->query_safe($counts_q), '20000/20000', 'the merging session before');
is($other->query_safe($counts_q), '20000/20000', 'another session before');

# writers: each transaction grants or withdraws 25 integer and 25 text
# subjects (few enough for the ring to carry their state)
my $dir = PostgreSQL::Test::Utils::tempdir;
open(my $fh, '>', "$dir/change.sql") or die;
print $fh q{\set s random(1, 39975)
\set g random(0, 1)
SELECT count(CASE :g WHEN 1 THEN privacy_guard.grant_consent(s, 'newsletter')
	ELSE privacy_guard.withdraw_consent(s, 'newsletter') END)
  FROM generate_series(:s, :s + 24) g, LATERAL (VALUES (g::text), ('u' || g)) v(s);
};
close $fh;
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '120', '-f', "$dir/change.sql", '-d', $node->connstr('shop') ],
	'>', \$out, '2>', \$err);

# the merging session reads on until it has merged both sets (bounded)
my $deadline = time() + 100;
my ($ring, $queried, $merged) = (0, 0, 0);
my $reads = 0;
while (time() < $deadline)
{
	$merger->query_safe($counts_q);
	$reads++;
	($ring, $queried, $merged) = split m{/}, $merger->query_safe($patches_q);
	last if $merged >= 2;
	$other->query_safe($counts_q) if $reads % 10 == 0;
	$bench->pump_nb;
}
cmp_ok($merged, '>=', 2,
	"the merging session merged new shared sets for both tables ($merged, after $reads reads; "
	  . "$ring patches from the ring, $queried queried)");

# a new session starts over the newest (merged) sets, from the ring
my $new = reader();
$new->query_safe($counts_q);
$new->query_safe($counts_q);
my ($nring, $nqueried) = split m{/}, $new->query_safe($patches_q);
cmp_ok($nring, '>', 0, "a new session started over a merged set from the ring ($nring patches from the ring, $nqueried queried)");

# stop the writers, then every session counts the truth
$bench->kill_kill;
$bench->finish;
my $truth = $node->safe_psql('shop', $truth_q);
isnt($truth, '20000/20000', "the consents changed ($truth)");
is($merger->query_safe($counts_q), $truth, 'the merging session: the truth');
is($other->query_safe($counts_q), $truth, 'the other session: the truth');
is($new->query_safe($counts_q), $truth, 'the new session: the truth');
is($node->safe_psql('shop', "SET ROLE app; SET privacy_guard.purpose = 'newsletter'; $counts_q"), $truth,
	'one more new connection: the truth');

# and a change after the merges reaches all of them at once
$node->safe_psql('shop', q{
	SELECT privacy_guard.withdraw_consent(s, 'newsletter')
	  FROM (SELECT subject FROM privacy_guard.consent_state
			 WHERE status = 'granted' AND subject ~ '^[0-9]+$' LIMIT 1) c(s)});
my $truth2 = $node->safe_psql('shop', $truth_q);
isnt($truth2, $truth, 'one more withdrawal');
is($merger->query_safe($counts_q), $truth2, 'the merging session sees it');
is($other->query_safe($counts_q), $truth2, 'the other session sees it');
is($new->query_safe($counts_q), $truth2, 'the new session sees it');

$_->quit for ($merger, $other, $new);
$node->stop;
done_testing(13);
