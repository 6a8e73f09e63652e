# privacy_guard behind a real PgBouncer in transaction pooling mode, with
# one server connection per pool (default_pool_size = 1), so that clients
# of one role take turns on the same backend:
#  - with privacy_guard.purpose_scope = 'session' (the default) a purpose a
#    client sets for the session stays on the server connection and the
#    next client reads under it (the hazard, shown);
#  - with purpose_scope = 'transaction' the session form is refused, a
#    purpose left on the connection is not used, and clients that set
#    theirs with SET LOCAL / set_config(..., true) never read under each
#    other's purpose, also when one waits for the other's transaction;
#  - consent changes and forget requests made through the pooler are seen
#    by the next transaction of every client;
#  - the access log attributes every read to the role and purpose that
#    made it.
# Needs the pgbouncer binary (Debian package pgbouncer, installed by
# bin/setup).
use strict;
use warnings;
use File::Temp ();
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pgbouncer = $ENV{PGBOUNCER} // '/usr/sbin/pgbouncer';
$pgbouncer = 'pgbouncer' unless -x $pgbouncer;
my $version = `$pgbouncer --version 2>&1`;
die "pgbouncer not found (install the Debian package pgbouncer, e.g. with bin/setup)"
  unless defined $version && $version =~ /PgBouncer/i;
note "using $version";

my $node = PostgreSQL::Test::Cluster->new('pooler');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.audit = on
privacy_guard.naptime = 3600
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	CREATE ROLE app LOGIN;
	CREATE ROLE analyst LOGIN;
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	SELECT privacy_guard.allow_purpose('analyst', 'billing');
	SELECT privacy_guard.grant_recorder('app');
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g || '@example.org' FROM generate_series(1, 10) g;
	GRANT SELECT ON customers TO app, analyst;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 3) g;
});

# ---- PgBouncer: unix socket only, trust (the server trusts local connections)
my $dir = PostgreSQL::Test::Utils::tempdir_short();
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $host = $node->host;
my $nport = $node->port;
PostgreSQL::Test::Utils::append_to_file("$dir/users.txt", qq{"app" ""\n"analyst" ""\n});
PostgreSQL::Test::Utils::append_to_file("$dir/pgbouncer.ini", qq{
[databases]
postgres = host=$host port=$nport dbname=postgres

[pgbouncer]
listen_addr =
listen_port = $bport
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
stats_users = analyst
});
my ($bout, $berr) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
	'>', \$bout, '2>', \$berr);
END { $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }

# ---- clients through the pooler: psql sessions fed one query at a time
my $seq = 0;

sub client
{
	my ($user) = @_;
	my $c = { in => '', out => '', err => '', user => $user,
		timer => IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default) };
	$c->{run} = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=0',
		  '-h', $dir, '-p', $bport, '-U', $user, '-d', 'postgres', '-f', '-' ],
		'<', \$c->{in}, '>', \$c->{out}, '2>', \$c->{err}, $c->{timer});
	return $c;
}

# queue a query without waiting for its answer
sub send_query
{
	my ($c, $sql) = @_;
	$seq++;
	$c->{banner} = "pvg-done-$seq";
	$c->{in} .= "$sql\n;\n\\echo $c->{banner}\n\\warn $c->{banner}\n";
	$c->{run}->pump_nb;
}

# the answer to the queued query: (stdout, stderr)
sub wait_query
{
	my ($c) = @_;
	my $mark = $c->{banner};
	$c->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	$c->{run}->pump until ($c->{out} =~ /$mark\n/ && $c->{err} =~ /$mark\n/)
	  || $c->{timer}->is_expired;
	die "query of $c->{user} timed out: $c->{out} / $c->{err}" if $c->{timer}->is_expired;
	my ($out, $err) = ($c->{out}, $c->{err});
	$out =~ s/\n?$mark\n//;
	$err =~ s/\n?$mark\n//;
	$c->{out} = $c->{err} = '';
	chomp $out;
	note "$c->{user}: [$out] [$err]";
	return ($out, $err);
}

sub ask
{
	my ($c, $sql) = @_;
	send_query($c, $sql);
	return wait_query($c);
}

# wait until the pooler accepts connections
my $ready = 0;
foreach my $i (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $node->installed_command('psql'), '-XAtq', '-h', $dir, '-p', $bport,
		  '-U', 'app', '-d', 'postgres', '-c', 'SELECT 1' ], '>', \$out, '2>', \$err);
	if ($out eq "1\n") { $ready = 1; last; }
	die "pgbouncer exited: $berr" unless $bouncer->pumpable;
	select(undef, undef, undef, 0.1);
}
ok($ready, 'PgBouncer (transaction pooling, one server connection per pool) accepts connections');

my $ca = client('app');
my $cb = client('app');

my ($pid_a) = ask($ca, 'SELECT pg_backend_pid()');
my ($pid_b) = ask($cb, 'SELECT pg_backend_pid()');
is($pid_b, $pid_a, 'the two clients share one server connection');
like($pid_a, qr/^[0-9]+$/, 'client A is served by a backend');

# ==== purpose_scope = 'session' (the default): the hazard
my ($out, $err) = ask($ca, "SET privacy_guard.purpose = 'marketing'");
is($err, '', 'session scope: client A sets a purpose for the session');
($out, $err) = ask($cb, "SELECT current_setting('privacy_guard.purpose'), count(*) FROM customers");
is($out, 'marketing|3',
	'session scope: client B, which set no purpose, reads under client A\'s (the hazard)');

# ==== purpose_scope = 'transaction', for the whole server
$node->safe_psql('postgres',
	"ALTER SYSTEM SET privacy_guard.purpose_scope = 'transaction'; SELECT pg_reload_conf();");
my $switched = 0;
foreach my $i (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	($out) = ask($ca, "SHOW privacy_guard.purpose_scope");
	if ($out eq 'transaction') { $switched = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($switched, 'the server connection behind the pooler took purpose_scope = transaction');

# the purpose client A left on the connection is not used any more
($out, $err) = ask($cb, "SELECT count(*) FROM customers");
like($err, qr/no purpose is declared for this transaction/,
	'transaction scope: the purpose left on the connection is refused at use');
($out, $err) = ask($ca, "RESET privacy_guard.purpose");
is($err, '', 'RESET through the pooler');

# the session forms are refused, with their SQLSTATE
($out, $err) = ask($ca, "\\set VERBOSITY verbose\nSET privacy_guard.purpose = 'marketing'");
like($err, qr/55P02.*privacy_guard.purpose can only be set for the transaction/,
	'transaction scope: SET (session) is refused with 55P02');
($out, $err) = ask($ca, "SELECT set_config('privacy_guard.purpose', 'marketing', false)");
like($err, qr/55P02/, 'transaction scope: set_config(..., false) is refused with 55P02');
($out, $err) = ask($cb, "SELECT count(*) FROM customers");
like($err, qr/no purpose is declared/, 'and client B still reads under no purpose');

# clients taking turns, each with its own purpose per transaction
my $mixed = 0;
foreach my $round (1 .. 10)
{
	my ($oa) = ask($ca, "BEGIN; SET LOCAL privacy_guard.purpose = 'marketing';
		SELECT current_setting('privacy_guard.purpose') || ':' || count(*) || ':' || pg_backend_pid() FROM customers; COMMIT;");
	my ($ob) = ask($cb, "BEGIN; SELECT set_config('privacy_guard.purpose', 'billing', true) \\g /dev/null
		SELECT current_setting('privacy_guard.purpose') || ':' || count(*) || ':' || pg_backend_pid() FROM customers; COMMIT;");
	$mixed++ unless $oa eq "marketing:3:$pid_a" && $ob eq "billing:10:$pid_a";
}
is($mixed, 0, '10 rounds of A (marketing) and B (billing) on one server connection: each read under its own purpose');

# B waits for the server connection while A's transaction holds it
ask($ca, "BEGIN; SET LOCAL privacy_guard.purpose = 'marketing'");
send_query($cb, "SELECT current_setting('privacy_guard.purpose') || ':' || count(*) FROM customers");
my $waiting = 0;
foreach my $i (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	my ($pools, $perr) = ('', '');
	IPC::Run::run([ $node->installed_command('psql'), '-XAtq', '-F', ' ', '-h', $dir, '-p', $bport,
		  '-U', 'analyst', '-d', 'pgbouncer', '-c', 'SHOW POOLS' ], '>', \$pools, '2>', \$perr);
	# database user cl_active cl_waiting ...
	if ($pools =~ /^postgres app [0-9]+ ([1-9][0-9]*) /m) { $waiting = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($waiting, 'client B waits in the pooler for the server connection A\'s transaction holds');
($out) = ask($ca, "SELECT count(*) FROM customers");
is($out, '3', 'A reads under marketing inside its transaction');
ask($ca, 'COMMIT');
($out, $err) = wait_query($cb);
like($err, qr/no purpose is declared/,
	'B, served after A\'s transaction on the same connection, does not get A\'s purpose');

# ==== consent changes and forget requests through the pooler, seen at once
my $marketing = "BEGIN; SET LOCAL privacy_guard.purpose = 'marketing'; SELECT string_agg(id::text, ',' ORDER BY id) FROM customers; COMMIT;";
my $billing = "BEGIN; SET LOCAL privacy_guard.purpose = 'billing'; SELECT count(*) || ':' || count(*) FILTER (WHERE id = 2) FROM customers; COMMIT;";
($out) = ask($ca, $marketing);
is($out, '1,2,3', 'before: subjects 1-3 consent to marketing');
($out, $err) = ask($cb, "SELECT privacy_guard.grant_consent('7', 'marketing', evidence => '{\"form\": \"signup\"}')");
is($err, '', 'client B records a consent through the pooler');
($out) = ask($ca, $marketing);
is($out, '1,2,3,7', 'client A\'s next transaction sees the new consent');
ask($cb, "SELECT privacy_guard.withdraw_consent('1', 'marketing')");
($out) = ask($ca, $marketing);
is($out, '2,3,7', 'client A\'s next transaction no longer sees the withdrawn consent');
($out) = ask($ca, $billing);
is($out, '10:1', 'billing sees every customer before the forget request');
($out, $err) = ask($cb, "SELECT privacy_guard.forget('2', 'customer asked') > 0");
is($out, 't', 'client B files a forget request through the pooler');
($out) = ask($ca, $billing);
is($out, '9:0', 'client A\'s next transaction no longer sees the forgotten subject');
($out) = ask($ca, $marketing);
is($out, '3,7', 'nor does marketing');

# ==== the access log attributes reads to the role and purpose that made them
my $cc = client('analyst');
($out) = ask($cc, "BEGIN; SET LOCAL privacy_guard.purpose = 'billing'; SELECT count(*) FROM customers; COMMIT;");
is($out, '9', 'analyst (its own pool) reads under billing');
($out, $err) = ask($cc, "BEGIN; SET LOCAL privacy_guard.purpose = 'marketing'; SELECT count(*) FROM customers; COMMIT;");
like($err, qr/not authorised for purpose "marketing"/, 'analyst is not authorised for marketing');
$_->{in} .= "\\q\n", $_->{run}->finish for ($ca, $cb, $cc);

$node->safe_psql('postgres', 'SELECT privacy_guard._flush_access_log()');
$out = $node->safe_psql('postgres', q{
	SELECT role || ':' || purpose || ':' || sum(statements)
	  FROM privacy_guard.access_log WHERE table_name IN ('customers', 'public.customers')
	 GROUP BY role, purpose ORDER BY role, purpose});
is($out, join("\n",
	'analyst:billing:1',
	'app:billing:' . (10 + 2),
	'app:marketing:' . (1 + 10 + 1 + 4)),
	'access log: every read under its own role and purpose (the hazard read of B counted under marketing)');

$bouncer->kill_kill;
$node->stop;
done_testing();
