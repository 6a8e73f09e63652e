# The access log (privacy_guard.audit), which needs shared memory and so a
# preloaded library: reads are aggregated per role, purpose and table with
# the right statement and row counts, survive the rollback of the reading
# transaction (and of a flush), a log that cannot be written keeps the reads
# for the next round, prepared statements and cursors count, a full log
# folds into an overflow row without losing a read, access_history() finds
# the subjects that were read and not others, old rows are pruned, and the
# background round flushes within a naptime (polled with a bound).  A clean
# restart keeps the reads not yet flushed, and counts none twice; an
# immediate stop or a damaged file keeps none.  The synchronous parts use run_maintenance() with the worker off.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('audit');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.naptime = 1
privacy_guard.audit = on
max_prepared_transactions = 2
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	CREATE ROLE app LOGIN;
	CREATE ROLE app2 LOGIN;
	SELECT privacy_guard.allow_purpose(r, p)
	  FROM unnest(ARRAY['app', 'app2']::regrole[]) r, unnest(ARRAY['billing', 'marketing']) p;

	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 3) g;

	CREATE TABLE notes (subject text, body text);
	INSERT INTO notes VALUES ('alice', 'a'), ('42', 'b');
	SELECT privacy_guard.protect('notes', 'subject', ARRAY['billing']);

	CREATE TABLE parts (customer bigint, amount int) PARTITION BY RANGE (customer);
	CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (1) TO (3);
	CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (3) TO (5);
	CREATE TABLE parts_3 PARTITION OF parts FOR VALUES FROM (5) TO (7);
	INSERT INTO parts SELECT g, g FROM generate_series(1, 6) g;
	SELECT privacy_guard.protect('parts', 'customer', ARRAY['billing']);

	GRANT SELECT ON customers, notes, parts TO app, app2;
});

# psql as a role in a new backend, purpose set by connection option
sub as_role
{
	my ($role, $purpose, $sql) = @_;
	my ($stdout, $stderr);
	local $ENV{PGOPTIONS} = "-c privacy_guard.purpose=$purpose";
	$node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr,
		extra_params => [ '-U', $role ]);
	return ($stdout, $stderr);
}

my $log_q = q{
	SELECT string_agg(format('%s|%s|%s|%s|%s', role, purpose, table_name, s, r), E'\n'
					  ORDER BY role, purpose, table_name)
	  FROM (SELECT role, purpose, table_name, sum(statements) s, sum(rows) r
			  FROM privacy_guard.access_log GROUP BY 1, 2, 3) x};

sub history
{
	my ($subject) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(string_agg(DISTINCT format('%s|%s|%s', role, purpose, table_name), ','), '')
		  FROM privacy_guard.access_history('$subject', '-infinity')});
}

# ---- reads, one of them rolled back, one failing half-way
my ($out, $err) = as_role('app', 'billing', q{
	SELECT count(*) FROM customers;
	SELECT count(*) FROM parts;
	BEGIN;
	SELECT email FROM customers WHERE id = 7;
	ROLLBACK;
});
is($out, "10\n6\nc7", 'reads as app under billing');
($out, $err) = as_role('app', 'marketing', 'SELECT count(*) FROM customers');
is($out, '3', 'marketing sees the consenting subjects only');
($out, $err) = as_role('app2', 'billing', q{
	SELECT body FROM notes WHERE subject = 'alice';
	SELECT body FROM notes WHERE subject = '42';
	SELECT id / (id - 5) FROM customers ORDER BY id;
});
like($err, qr/division by zero/, 'a read that fails half-way');

is($node->safe_psql('postgres', 'SELECT count(*) FROM privacy_guard.access_log'), '0',
	'nothing in the table before a flush');

# a flush whose transaction rolls back puts the reads back into shared memory
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT privacy_guard._flush_access_log();
	ROLLBACK;
});
$node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	SELECT privacy_guard._flush_access_log();
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
});
# a transaction that flushed entries cannot be prepared (a ROLLBACK
# PREPARED would lose them); it rolls back and puts them back
my ($prep_out, $prep_err) = ('', '');
$node->psql('postgres', q{
	BEGIN;
	SELECT privacy_guard._flush_access_log() > 0 AS took;
	PREPARE TRANSACTION 'audit_flush';
}, stdout => \$prep_out, stderr => \$prep_err, on_error_stop => 1);
like($prep_err, qr/cannot PREPARE a transaction that has flushed the access log/,
	'PREPARE TRANSACTION after a flush that took entries is refused');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'nothing was prepared');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');

is($node->safe_psql('postgres', $log_q), join("\n",
		'app|billing|public.customers|2|11',
		'app|billing|public.parts|1|6',
		'app|marketing|public.customers|1|3',
		'app2|billing|public.customers|1|5',
		'app2|billing|public.notes|2|4'),
	'reads aggregated by role, purpose and table; a partitioned table counts one statement; rows are those the policy let through (before the own WHERE); '
	  . 'the rolled-back and the failed reads are there; the rolled-back flushes and the refused PREPARE lost nothing');

# ---- access_history
is(history('7'), 'app|billing|public.customers',
	'an integer subject: found where it was visible, not under marketing, '
	  . 'not in the statement that failed before reaching it');
is(history('2'), 'app2|billing|public.customers,app|billing|public.customers,'
	  . 'app|billing|public.parts,app|marketing|public.customers',
	'a consenting subject: found under both purposes and in the partitioned table');
is(history('alice'), 'app2|billing|public.notes', 'a text subject');
is(history('42'), 'app2|billing|public.notes', 'text subject 42 is found by its text form');
is(history('nobody'), '', 'a subject never read is not found');
is(history('07'), '', 'a non-canonical integer form is not the integer');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM privacy_guard.access_history('7', now() + interval '2 minutes')}),
	'0', 'since excludes earlier buckets');

# ---- a log that cannot be written: the round goes on, the reads wait
as_role('app', 'marketing', 'SELECT count(*) FROM customers');
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql
		AS $$BEGIN RAISE EXCEPTION 'log refused'; END$$;
	CREATE TRIGGER refuse BEFORE INSERT ON privacy_guard.access_log_data
		FOR EACH ROW EXECUTE FUNCTION public.refuse();
});
my ($rc, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT privacy_guard.run_maintenance() ->> 'errors'});
is($stdout, '{}', 'run_maintenance completes when the log cannot be written');
like($stderr, qr/WARNING:  privacy_guard: the access log could not be written: log refused/,
	'and warns');
$node->safe_psql('postgres', q{
	DROP TRIGGER refuse ON privacy_guard.access_log_data;
	SELECT privacy_guard.run_maintenance();
});
is($node->safe_psql('postgres', q{
	SELECT sum(statements) || '|' || sum(rows) FROM privacy_guard.access_log
	 WHERE role = 'app' AND purpose = 'marketing'}),
	'2|6', 'the read that waited is written by the next round');

# ---- prepared statements count per execution; a cursor the rows it fetched
($out, $err) = as_role('app2', 'billing', q{
	PREPARE q(bigint) AS SELECT email FROM customers WHERE id = $1;
	EXECUTE q(1);
	EXECUTE q(2);
	BEGIN;
	DECLARE c CURSOR FOR SELECT id FROM customers;
	FETCH 3 FROM c;
	CLOSE c;
	COMMIT;
});
is($out, "c1\nc2\n1\n2\n3", 'a prepared statement and a cursor');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is($node->safe_psql('postgres', q{
	SELECT sum(statements) || '|' || sum(rows) FROM privacy_guard.access_log
	 WHERE role = 'app2' AND table_name = 'public.customers'}),
	'4|10', 'two executions and a cursor add three statements and the five rows they saw');

# ---- an int subject 42 and a text subject '42' hash alike for access_history
$node->safe_psql('postgres', q{INSERT INTO customers VALUES (42, 'c42')});
as_role('app', 'billing', 'SELECT email FROM customers WHERE id = 42');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is(history('42'), 'app2|billing|public.notes,app|billing|public.customers',
	'access_history(\'42\') finds the int8 subject 42 and the text subject \'42\'');

# ---- a full log: reads fold into an overflow row, none is lost
$node->safe_psql('postgres', q{
	DO $$
	BEGIN
		FOR i IN 1..260 LOOP
			EXECUTE format('CREATE TABLE many_%s (subject bigint)', i);
			EXECUTE format('INSERT INTO many_%s VALUES (%s)', i, 100000 + i);
			PERFORM privacy_guard.protect(format('many_%s', i)::regclass, 'subject', ARRAY['billing']);
			EXECUTE format('GRANT SELECT ON many_%s TO app', i);
		END LOOP;
	END $$;
	SELECT privacy_guard.run_maintenance();
	TRUNCATE privacy_guard.access_log_data;
});
($out, $err) = as_role('app', 'billing',
	join('', map { "SELECT subject FROM many_$_;\n" } 1 .. 260));
is(scalar(split /\n/, $out), 260, 'read 260 tables');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is($node->safe_psql('postgres', q{
	SELECT format('%s|%s|%s', count(*) FILTER (WHERE role IS NOT NULL),
				  sum(statements) FILTER (WHERE role IS NULL), sum(statements))
	  FROM privacy_guard.access_log}),
	'240|20|260', 'a full log keeps 240 entries and folds 20 reads into the overflow row');
is(history('100001'), 'app|billing|public.many_1', 'a read logged with its table is found');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM privacy_guard.access_history('100260', '-infinity') WHERE role IS NULL}),
	'1', 'a read folded into the overflow row is found there');
ok($node->log_contains('the access log was full; 20 statements were logged without their role'),
	'the overflow is reported in the server log');

# ---- retention: old rows are deleted by the round
$node->safe_psql('postgres', q{
	UPDATE privacy_guard.access_log_data SET bucket = bucket - interval '31 days'
	 WHERE table_name = 'public.many_1';
	SELECT privacy_guard.run_maintenance();
});
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM privacy_guard.access_log_data WHERE table_name = 'public.many_1'}),
	'0', 'rows older than privacy_guard.audit_retention are deleted');

# ---- a clean restart keeps the reads not yet flushed; a second one counts none twice
$node->safe_psql('postgres', 'TRUNCATE privacy_guard.access_log_data');
as_role('app2', 'billing', 'SELECT count(*) FROM customers WHERE id IN (7, 8)');
as_role('app2', 'billing', 'SELECT count(*) FROM customers WHERE id = 8');
my $kept = $node->data_dir . '/pg_stat/privacy_guard_access.stat';
$node->stop;
ok(-f $kept, 'a clean stop writes the reads not yet flushed to a file');
$node->start;
ok(!-f $kept, 'the start loads them and removes the file');
$node->restart;
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is($node->safe_psql('postgres', q{
	SELECT string_agg(format('%s|%s|%s|%s|%s', role, purpose, table_name, s, r), ',')
	  FROM (SELECT role, purpose, table_name, sum(statements) s, sum(rows) r
			  FROM privacy_guard.access_log GROUP BY role, purpose, table_name) x}),
	'app2|billing|public.customers|2|3', 'reads made before two clean restarts are logged once');
is(history('7') . ';' . history('9'), 'app2|billing|public.customers;',
	'access_history finds a subject read before the restarts, and not one left unread');

# ---- an immediate stop keeps nothing: the processes it killed may have left
# an entry half-written, so the next start discards what the stop wrote
as_role('app2', 'billing', 'SELECT count(*) FROM customers WHERE id = 9');
$node->stop('immediate');
$node->start;
ok(!-f $kept, 'after an immediate stop the start removes the file');
ok($node->log_contains(
		"discarding the access log's reads kept at the last stop: the server did not stop cleanly"),
	'and says why in the server log');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is(history('9'), '', 'reads before an immediate stop are not logged');

# ---- a damaged file is discarded whole, and the server starts
as_role('app2', 'billing', 'SELECT count(*) FROM customers WHERE id = 10');
$node->stop;
ok(-f $kept, 'the stop wrote the file again');
{
	# flip one byte in the middle of the file (inside an entry's filter)
	open(my $fh, '+<', $kept) or die "open $kept: $!";
	binmode $fh;
	my $at = int((-s $kept) / 2);
	seek($fh, $at, 0);
	read($fh, my $byte, 1);
	seek($fh, $at, 0);
	print $fh chr(ord($byte) ^ 0x5a);
	close $fh;
}
$node->start;
ok(!-f $kept, 'the server starts and removes a damaged file');
ok($node->log_contains('kept at the last stop: it is incomplete, damaged or from another version'),
	'the checksum found the damage');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is(history('10'), '', 'nothing of a damaged file enters the log');

# ---- reads of a dropped database are not kept for ever
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE TABLE t (id bigint);
	INSERT INTO t VALUES (1);
	SELECT privacy_guard.protect('t', 'id', ARRAY['billing']);
	SELECT privacy_guard.allow_purpose('app', 'billing');
	GRANT SELECT ON t TO app;
});
{
	local $ENV{PGOPTIONS} = '-c privacy_guard.purpose=billing';
	my $read;
	$node->psql('gone', 'SELECT * FROM t', stdout => \$read, extra_params => [ '-U', 'app' ]);
	is($read, '1', 'a read in the database about to be dropped');
}
$node->safe_psql('postgres', 'DROP DATABASE gone');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
$node->stop;
ok(!-f $kept, 'a flush drops the entries of a dropped database: nothing is left to keep at a stop');
$node->start;

# ---- the background round flushes within a naptime
$node->append_conf('postgresql.conf', 'privacy_guard.enabled = on');
$node->reload;
as_role('app2', 'marketing', 'SELECT count(*) FROM customers');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM privacy_guard.access_log
	 WHERE role = 'app2' AND purpose = 'marketing' AND rows = 3}),
	'the worker flushes a read into access_log');

# ---- with audit off nothing is recorded
$node->append_conf('postgresql.conf', 'privacy_guard.audit = off');
$node->reload;
ok($node->poll_query_until('postgres', q{SELECT current_setting('privacy_guard.audit') = 'off'}),
	'audit switched off');
my $before = $node->safe_psql('postgres', 'SELECT sum(statements) FROM privacy_guard.access_log');
as_role('app', 'billing', 'SELECT count(*) FROM customers');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is($node->safe_psql('postgres', 'SELECT sum(statements) FROM privacy_guard.access_log'), $before,
	'audit off: reads are not logged');

$node->stop;
done_testing(42);
