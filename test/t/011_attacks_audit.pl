# Attacks on the access log (privacy_guard.audit, which needs the library
# preloaded), each test named after the attack: switching audit off with a
# connection option, reading through a cursor and then killing one's own
# backend, EXPLAIN ANALYZE, COPY, a rolled-back savepoint, a SECURITY
# DEFINER hop, and flooding the log so that another role's reads overflow.
# The reads must all be logged and access_history() must still find them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('attacks_audit');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.enabled = off
privacy_guard.audit = on
privacy_guard.audit_max_entries = 32
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE ROLE app LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE hopper LOGIN;
	SELECT privacy_guard.allow_purpose(r, 'billing')
	  FROM unnest(ARRAY['app', 'mallory', 'hopper']::regrole[]) r;
	CREATE TABLE customers (id bigint PRIMARY KEY, email text);
	INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing']);
	GRANT SELECT ON customers TO app, mallory, hopper;
	GRANT CREATE ON SCHEMA public TO hopper, app;
});

# psql as a role in a new backend, with connection options
sub as_role
{
	my ($role, $options, $sql) = @_;
	my ($stdout, $stderr);
	local $ENV{PGOPTIONS} = $options;
	$node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr,
		on_error_stop => 0, extra_params => [ '-U', $role ]);
	return ($stdout, $stderr);
}

# flush, then the log's rows for one role as role|purpose|table|statements|rows
sub logged
{
	my ($role) = @_;
	$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(string_agg(format('%s|%s|%s|%s|%s', role, purpose, table_name, s, r), ','
								   ORDER BY role, purpose, table_name), '')
		  FROM (SELECT role, purpose, table_name, sum(statements) s, sum(rows) r
				  FROM privacy_guard.access_log WHERE role = '$role' GROUP BY 1, 2, 3) x});
}

sub clear_log
{
	$node->safe_psql('postgres',
		'SELECT privacy_guard.run_maintenance(); TRUNCATE privacy_guard.access_log_data;');
}

my $billing = '-c privacy_guard.purpose=billing';

# ---- attack: switch audit off at connection time
my ($out, $err) = as_role('app', "$billing -c privacy_guard.audit=off",
	'SELECT count(*) FROM customers');
like($err, qr/permission denied to set parameter "privacy_guard.audit"/,
	'audit off as a connection option: the connection is refused');
is($out, '', 'audit off as a connection option: nothing is read');
($out, $err) = as_role('app', $billing,
	q{SET privacy_guard.audit = off; SELECT set_config('privacy_guard.audit', 'off', true);
	  SELECT count(*) FROM customers WHERE id <= 2;});
like($err, qr/permission denied to set parameter "privacy_guard.audit"/, 'SET and set_config are refused');
is(logged('app'), 'app|billing|public.customers|1|2', 'the read after the refused switch is logged');
clear_log();

# ---- attack: read through a cursor, then kill one's own backend before
# the cursor is closed (FATAL: no orderly end of the statement)
($out, $err) = as_role('app', $billing, q{
	BEGIN;
	DECLARE c CURSOR FOR SELECT id FROM customers WHERE id IN (3, 4, 5) ORDER BY id;
	FETCH 2 FROM c;
	SELECT pg_terminate_backend(pg_backend_pid());
});
like($out, qr/^3\n4/, 'the cursor fetched rows before the backend ended');
like($err, qr/terminating connection/, 'the backend was terminated with the cursor open');
is(logged('app'), 'app|billing|public.customers|1|2',
	'a cursor cut off by the end of its backend is logged with the rows it fetched');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM privacy_guard.access_history('4', '-infinity') WHERE role = 'app'}),
	'1', 'access_history finds a subject read through the cut-off cursor');
clear_log();

# ---- attack: read in forms that print no rows or undo themselves:
# EXPLAIN ANALYZE, COPY TO, a savepoint rolled back, a transaction rolled back
($out, $err) = as_role('app', $billing, q{
	EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM customers WHERE id = 6;
	COPY (SELECT email FROM customers WHERE id = 7) TO STDOUT;
	BEGIN;
	SAVEPOINT s;
	SELECT email FROM customers WHERE id = 8;
	ROLLBACK TO SAVEPOINT s;
	ROLLBACK;
});
is($err, '', 'the reads ran');
is(logged('app'), 'app|billing|public.customers|3|3',
	'EXPLAIN ANALYZE, COPY and a rolled-back savepoint are each logged');
is($node->safe_psql('postgres', q{
	SELECT string_agg(k, ',' ORDER BY k) FROM unnest(ARRAY['6', '7', '8', '9']) k
	 WHERE EXISTS (SELECT FROM privacy_guard.access_history(k, '-infinity') WHERE role = 'app')}),
	'6,7,8', 'access_history finds each of them, and not a subject that was not read');
clear_log();

# ---- attack: hop through a SECURITY DEFINER function owned by another
# bound role: logged under the role that read (the function's owner),
# never skipped
$node->safe_psql('postgres', q{
	SET ROLE hopper;
	CREATE FUNCTION hop(k bigint) RETURNS text LANGUAGE sql SECURITY DEFINER
		SET search_path = public, pg_temp SET privacy_guard.purpose = 'billing'
		AS $$ SELECT email FROM customers WHERE id = k $$;
	GRANT EXECUTE ON FUNCTION hop(bigint) TO app;
});
($out, $err) = as_role('app', '', 'SELECT hop(9)');
is($out, 'c9', 'the function read the row');
is(logged('hopper'), 'hopper|billing|public.customers|1|1', 'the read is logged under the function owner');
clear_log();

# ---- attack: forge reads of a table one cannot read, by calling the
# policy's function directly; while a read through a view owned by a role
# that may read the table (the reader has no privilege on the table) is
# logged as usual
$node->safe_psql('postgres', q{
	CREATE ROLE forger LOGIN;
	CREATE ROLE viewer LOGIN;
	SELECT privacy_guard.allow_purpose(r, 'billing') FROM unnest(ARRAY['forger', 'viewer']::regrole[]) r;
	SET ROLE app;
	CREATE VIEW customer_ids AS SELECT id FROM customers;
	GRANT SELECT ON customer_ids TO viewer;
	RESET ROLE;
});
($out, $err) = as_role('forger', '-c privacy_guard.purpose=billing', q{
	SELECT count(*) FROM customers;
});
like($err, qr/permission denied for table customers/, 'the forger cannot read the table');
($out, $err) = as_role('forger', '-c privacy_guard.purpose=billing', q{
	SELECT count(*) FILTER (WHERE privacy_guard.row_visible('customers'::regclass, 4242::bigint))
	  FROM generate_series(1, 1000);
});
is($err, '', 'the forger called row_visible directly');
is(logged('forger'), '', 'direct calls are not logged as reads of the table');
is($node->safe_psql('postgres', q{SELECT count(*) FROM privacy_guard.access_history('4242', '-infinity')}),
	'0', 'and the subject they named was not read');
($out, $err) = as_role('viewer', '-c privacy_guard.purpose=billing', q{
	SELECT count(*) FROM customer_ids WHERE id <= 3;
});
is($out, '3', 'the viewer read three rows through the view');
like(logged('viewer'), qr/^viewer\|billing\|public\.customers\|1\|\d+$/,
	'a read through a view is logged under the reader');

# ---- attack: flood the log so that another role's reads are dropped.
# mallory reads 20 tables (32 entries, 16 reserved for overflow), then app
# reads one row: app's read folds into the overflow row, counted, and
# access_history still finds its subject there.
$node->safe_psql('postgres', q{
	DO $$
	BEGIN
		FOR i IN 1..20 LOOP
			EXECUTE format('CREATE TABLE flood_%s (subject bigint)', i);
			EXECUTE format('INSERT INTO flood_%s VALUES (%s)', i, 900000 + i);
			PERFORM privacy_guard.protect(format('flood_%s', i)::regclass, 'subject', ARRAY['billing']);
			EXECUTE format('GRANT SELECT ON flood_%s TO mallory', i);
		END LOOP;
	END $$;
});
clear_log();
($out, $err) = as_role('mallory', $billing,
	join('', map { "SELECT subject FROM flood_$_;\n" } 1 .. 20));
is($err, '', 'mallory read 20 tables');
($out, $err) = as_role('app', $billing, 'SELECT email FROM customers WHERE id = 10');
is($out, 'c10', 'app read after the flood');
$node->safe_psql('postgres', 'SELECT privacy_guard.run_maintenance()');
is($node->safe_psql('postgres', q{
	SELECT format('%s|%s', sum(statements), sum(rows)) FROM privacy_guard.access_log}),
	'21|21', 'every statement and row of the flood and of the victim is counted');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM privacy_guard.access_history('10', '-infinity') WHERE role IS NULL}),
	'1', 'the victim\'s read, folded into the overflow row, is found by access_history');

$node->stop;
done_testing(23);
