# The table owner's code inside the worker's round (issue 19): settings it
# changes for the session (set_config(..., false)) end with its statement,
# so they never reach the worker's next statements; and owner code that
# swallows the engine's cancel does not stall the round for ever.
# Everything is polled with a bound.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sandbox');
$node->init(extra => ['--no-locale']);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'privacy_guard'
privacy_guard.naptime = 1
privacy_guard.batch_size = 1
privacy_guard.batch_delay = 0
autovacuum = off
});
$node->start;

# one engine statement per expired row: each notes the settings it
# starts with, then plants its own for the rest of the session
$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	CREATE ROLE sb_owner LOGIN;
	GRANT CREATE ON SCHEMA public TO sb_owner;
	SET ROLE sb_owner;
	CREATE TABLE events (id int, customer_id int, happened timestamptz NOT NULL);
	CREATE TABLE seen (id int, search_path text, work_mem text, statement_timeout text);
	CREATE FUNCTION plant() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN
		INSERT INTO seen VALUES (OLD.id, current_setting('search_path'),
			current_setting('work_mem'), current_setting('statement_timeout'));
		PERFORM set_config('search_path', 'evil, public', false);
		PERFORM set_config('work_mem', '1234kB', false);
		PERFORM set_config('statement_timeout', '4321', false);
		RETURN OLD;
	END$$;
	CREATE TRIGGER plant BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION plant();
	RESET ROLE;
	SELECT privacy_guard.protect('events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
	INSERT INTO events SELECT g, g, now() - interval '3 days' FROM generate_series(1, 5) g;
});

ok($node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM events'),
	'the worker purged the expired rows, one statement each');
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'), '5', 'the trigger ran for every row');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT search_path || ' | ' || work_mem || ' | ' || statement_timeout, '; ')
	  FROM seen}),
	'"$user", public | 4MB | 0',
	'every statement of the round started from the default settings, none from what the one before planted');

done_testing();
