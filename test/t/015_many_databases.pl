# Many databases (README "Background worker"): in a cluster of 101
# databases, 60 with the extension and 41 without, the launcher never runs
# more than privacy_guard.max_workers workers at once, serves every
# database with the extension within a bounded number of naptimes (the
# least recently served first), looks at a database without it once (no
# process is started there again until CREATE EXTENSION privacy_guard
# commits somewhere) and leaves no error in the log, and runs no round in a
# database that privacy_guard.databases leaves out.  Every wait is a poll
# with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $naptime = 1;
my $cap = 3;
my $n_ext = 60;
my $n_plain = 40;
my $node = PostgreSQL::Test::Cluster->new('many');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = $naptime
privacy_guard.max_workers = $cap
privacy_guard.enabled = off
max_worker_processes = 24
log_line_prefix = '%m [%p] %b %d: '
});
$node->start;

my @ext = map { sprintf('ext_%02d', $_) } 1 .. $n_ext;
my @plain = map { sprintf('plain_%02d', $_) } 1 .. $n_plain;

# ---- the databases, created from templates while rounds are off
my $t0 = time;
$node->safe_psql('postgres', 'CREATE DATABASE pg_tmpl');
$node->safe_psql('pg_tmpl', 'CREATE EXTENSION privacy_guard');
$node->safe_psql('postgres', 'ALTER DATABASE pg_tmpl IS_TEMPLATE true');
$node->safe_psql('postgres',
	join('', map { "CREATE DATABASE $_ TEMPLATE pg_tmpl STRATEGY file_copy;\n" } @ext)
	  . join('', map { "CREATE DATABASE $_ TEMPLATE template1 STRATEGY file_copy;\n" } @plain));
note(sprintf('created %d databases in %.1f s', $n_ext + $n_plain, time - $t0));
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_database WHERE datallowconn AND NOT datistemplate}),
	$n_ext + $n_plain + 1, "$n_ext + $n_plain + postgres databases accept connections");

# how many privacy_guard workers run at once: the most of $k samples
# taken 10 ms apart (pg_stat_activity is read afresh each time)
$node->safe_psql('postgres', q{
CREATE FUNCTION most_workers(k integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	m integer := 0;
	c integer;
BEGIN
	FOR i IN 1 .. k LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT count(*) INTO c FROM pg_stat_activity WHERE backend_type = 'privacy_guard worker';
		m := greatest(m, c);
		PERFORM pg_sleep(0.01);
	END LOOP;
	RETURN m;
END
$$});

# rounds per database with the extension (worker_status has no row before the first)
sub rounds
{
	my $script = join('', map {
			"\\c $_\nSELECT '$_', coalesce((SELECT rounds FROM privacy_guard.worker_status), 0);\n"
		} @ext);
	my %r = map { split /\|/ } split /\n/, $node->safe_psql('postgres', $script);
	return \%r;
}

sub set_sighup
{
	my ($name, $value, $shown) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $name = $value");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('$name') = '$shown'")
	  or die "$name = $shown not in effect";
}

# ---- every database with the extension served, the cap held all along
my $log_pos = -s $node->logfile;
$t0 = time;
set_sighup('privacy_guard.enabled', 'on', 'on');
my $most = 0;
my $samples = 0;
my $served_after;
my $r;
while (time - $t0 < 90)
{
	my $m = $node->safe_psql('postgres', 'SELECT most_workers(50)');
	$samples += 50;
	$most = $m if $m > $most;
	$r = rounds();
	if (!grep { $r->{$_} < 1 } @ext)
	{
		$served_after = time - $t0;
		last;
	}
}
ok(defined $served_after, sprintf("every one of the %d databases with the extension had a round (after %.1f s)", $n_ext, $served_after // -1))
  or diag('not served: ' . join(' ', grep { $r->{$_} < 1 } @ext));
note(sprintf('all served after %.1f s (%.0f naptimes)', $served_after // -1, ($served_after // -1) / $naptime));
cmp_ok($served_after // 999, '<=', 30 * $naptime, 'within 30 naptimes');
cmp_ok($most, '<=', $cap, "never more than privacy_guard.max_workers = $cap workers at once (most seen: $most in $samples samples)");
cmp_ok($most, '>=', 1, 'the samples saw the workers');

# two more cycles: each database again, and still within the cap
$t0 = time;
my $second;
while (time - $t0 < 90)
{
	my $m = $node->safe_psql('postgres', 'SELECT most_workers(50)');
	$most = $m if $m > $most;
	$samples += 50;
	$r = rounds();
	if (!grep { $r->{$_} < 3 } @ext)
	{
		$second = time - $t0;
		last;
	}
}
ok(defined $second, 'and each had two more rounds');
cmp_ok($most, '<=', $cap, "the cap held in them too (most seen: $most in $samples samples)");

# a database without the extension: one look, one process, and no more
my ($running, $started, $no_ext) = split /\|/,
  $node->safe_psql('ext_01', 'SELECT * FROM privacy_guard.launcher_status()');
is($no_ext, $n_plain + 1, "each of the $n_plain + 1 databases without the extension was looked at once, over three cycles");
cmp_ok($started, '>=', 3 * $n_ext + $n_plain + 1, "workers started: $started");
cmp_ok($running, '<=', $cap, 'launcher_status: workers running within the cap');

# the worker's rounds are in round_history, one row each
is($node->safe_psql('ext_01', q{
	SELECT count(*) FILTER (WHERE run_by = 'worker') = (SELECT rounds FROM privacy_guard.worker_status)
	  FROM privacy_guard.round_history}), 't', 'round_history: a row for each of the worker\'s rounds');

# the Prometheus query file (contrib/postgres_exporter_queries.yaml): every
# query runs, and the worker's counters come out
my $yaml = slurp_file('contrib/postgres_exporter_queries.yaml');
my @queries;
while ($yaml =~ /^(\w+):\n(?:  \w+: [^\n]*\n)*  query: \|\n((?:    [^\n]*\n)+)/mg)
{
	push @queries, [ $1, $2 ];
}
is(scalar(@queries), 4, 'postgres_exporter query file: four queries');
for my $q (@queries)
{
	my ($rc, $out, $err) = $node->psql('ext_01', $q->[1]);
	is($rc, 0, "postgres_exporter query $q->[0] runs") or diag($err);
	like($out, qr/^ext_01\|[1-9]/, "$q->[0]: the rounds counted") if $q->[0] eq 'pg_privacy_guard_worker';
}

my $log = slurp_file($node->logfile, $log_pos);
my @bad = grep { /\b(ERROR|FATAL|PANIC|WARNING):/ } split /\n/, $log;
is(scalar(@bad), 0, 'no error or warning in the server log')
  or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));

# ---- privacy_guard.databases: rounds only in the databases it names
set_sighup('privacy_guard.databases', q{'ext_01, "ext_02"'}, 'ext_01, "ext_02"');
my $r0 = rounds();
# every round under way when the setting came has ended once these two
# have each had two more
ok($node->poll_query_until('ext_01', "SELECT rounds >= $r0->{ext_01} + 2 FROM privacy_guard.worker_status"),
	'ext_01 keeps having rounds');
ok($node->poll_query_until('ext_02', "SELECT rounds >= $r0->{ext_02} + 2 FROM privacy_guard.worker_status"),
	'ext_02 keeps having rounds');
my $r1 = rounds();
ok($node->poll_query_until('ext_01', "SELECT rounds >= $r1->{ext_01} + 3 FROM privacy_guard.worker_status"),
	'ext_01: three more rounds');
my $r2 = rounds();
like($node->safe_psql('ext_03', q{SELECT string_agg(message, ' | ') FROM privacy_guard.check() WHERE object = 'server'}),
	qr/privacy_guard.databases does not name this database/, 'check() in a database left out says so');
is($node->safe_psql('ext_01', q{SELECT count(*) FROM privacy_guard.check() WHERE message LIKE 'privacy_guard.databases%'}),
	'0', 'and not in one it names');
my @moved = grep { $_ ne 'ext_01' && $_ ne 'ext_02' && $r2->{$_} != $r1->{$_} } @ext;
is(scalar(@moved), 0, 'no round in the 58 databases left out of privacy_guard.databases')
  or diag("rounds in: @moved");

# ---- a new extension in a database looked at before: picked up within a few naptimes
$node->safe_psql('postgres', 'ALTER SYSTEM RESET privacy_guard.databases');
$node->reload;
$node->poll_query_until('postgres', q{SELECT current_setting('privacy_guard.databases') = ''})
  or die 'privacy_guard.databases not reset';
$node->safe_psql('plain_01', 'CREATE EXTENSION privacy_guard');
$t0 = time;
my $picked;
while (time - $t0 < 60)
{
	my ($rc, $out) = $node->psql('plain_01', 'SELECT rounds >= 1 FROM privacy_guard.worker_status');
	if ($rc == 0 && $out eq 't')
	{
		$picked = time - $t0;
		last;
	}
	usleep(100_000);
}
ok(defined $picked, sprintf('CREATE EXTENSION in a database found without it: first round after %.1f s', $picked // -1));

# ---- privacy_guard.max_workers lowered on a running server (sighup)
set_sighup('privacy_guard.max_workers', '1', '1');
# the workers started before the reload end with their rounds
ok($node->poll_query_until('postgres', 'SELECT most_workers(1) <= 1'), 'max_workers = 1: the extra workers end');
my $before = $node->safe_psql('ext_01', 'SELECT workers_started FROM privacy_guard.launcher_status()');
$most = $node->safe_psql('postgres', 'SELECT most_workers(200)');
cmp_ok($most, '<=', 1, "then never more than one worker at once (most seen: $most in 200 samples)");
cmp_ok($node->safe_psql('ext_01', 'SELECT workers_started FROM privacy_guard.launcher_status()'), '>', $before,
	'while workers kept being started');

$node->stop;
done_testing(28);
