-- Every way of reading goes through the rules.
\set VERBOSITY terse
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';

-- UPDATE and DELETE see only visible rows; RETURNING shows only those
UPDATE customers SET email = email RETURNING id;
UPDATE customers SET email = 'changed@example.org' WHERE id = 2;   -- hidden: 0 rows
DELETE FROM customers WHERE id IN (2, 8, 9);                        -- hidden: 0 rows
SET privacy_guard.purpose = 'billing';
SELECT id, email FROM customers WHERE id IN (2, 8, 9) ORDER BY id;
SET privacy_guard.purpose = 'marketing';

-- COPY, table and query form
COPY customers (id) TO STDOUT;
COPY (SELECT id FROM customers ORDER BY id) TO STDOUT;

-- cursors
BEGIN;
DECLARE cur CURSOR FOR SELECT id FROM customers ORDER BY id;
FETCH ALL FROM cur;
CLOSE cur;
COMMIT;

-- prepared statements: a generic plan follows the purpose of each execution
SET plan_cache_mode = force_generic_plan;
PREPARE by_purpose AS SELECT id FROM customers ORDER BY id;
EXECUTE by_purpose;
SET privacy_guard.purpose = 'billing';
EXECUTE by_purpose;
RESET privacy_guard.purpose;
EXECUTE by_purpose;
PREPARE one(bigint) AS SELECT id FROM customers WHERE id = $1;
SET privacy_guard.purpose = 'marketing';
EXECUTE one(2);
EXECUTE one(1);
SET privacy_guard.purpose = 'billing';
EXECUTE one(2);
DEALLOCATE ALL;
RESET plan_cache_mode;

-- SET LOCAL, as behind a transaction pooler
RESET privacy_guard.purpose;
BEGIN;
SET LOCAL privacy_guard.purpose = 'marketing';
SELECT count(*) FROM customers;
COMMIT;
SELECT count(*) FROM customers;

-- SQL (inlined) and plpgsql functions
SET privacy_guard.purpose = 'marketing';
CREATE FUNCTION pg_temp.customer_ids() RETURNS SETOF bigint
	LANGUAGE sql STABLE AS 'SELECT id FROM customers ORDER BY id';
CREATE FUNCTION pg_temp.customer_count() RETURNS bigint
	LANGUAGE plpgsql STABLE AS $$BEGIN RETURN (SELECT count(*) FROM customers); END$$;
SELECT * FROM pg_temp.customer_ids();
SELECT pg_temp.customer_count();
SET privacy_guard.purpose = 'billing';
SELECT pg_temp.customer_count();
SET privacy_guard.purpose = 'marketing';

-- subqueries, CTEs, joins and a security_invoker view
WITH c AS (SELECT id FROM customers) SELECT count(*) FROM c;
SELECT count(*) FROM (SELECT * FROM customers) s;
SELECT count(*) FROM customers a JOIN customers b USING (id);
RESET ROLE;
CREATE VIEW customer_ids_v WITH (security_invoker = true) AS SELECT id FROM customers;
GRANT SELECT ON customer_ids_v TO regress_app;
SET ROLE regress_app;
SELECT id FROM customer_ids_v ORDER BY id;

-- parallel query allowed: the same rows (where workers check them, and
-- when: parallel_reads.sql, test/specs/parallel_visibility.spec)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT count(*) FROM customers;
SELECT array_agg(id ORDER BY id) FROM customers;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- a consent written and rolled back in this session leaves nothing behind
RESET ROLE;
BEGIN;
SELECT privacy_guard.grant_consent('8', 'marketing');
SET LOCAL ROLE regress_app;
SELECT array_agg(id ORDER BY id) AS inside FROM customers;
ROLLBACK;
SET ROLE regress_app;
SELECT array_agg(id ORDER BY id) AS after_rollback FROM customers;
RESET ROLE;
BEGIN;
SAVEPOINT s;
SELECT privacy_guard.withdraw_consent('1', 'marketing');
SET LOCAL ROLE regress_app;
SELECT array_agg(id ORDER BY id) AS inside FROM customers;
RESET ROLE;
ROLLBACK TO SAVEPOINT s;
SET LOCAL ROLE regress_app;
SELECT array_agg(id ORDER BY id) AS after_rollback_to FROM customers;
COMMIT;
SET ROLE regress_app;

-- user-defined filters cannot see hidden rows first (security barrier)
CREATE FUNCTION pg_temp.peek(bigint) RETURNS boolean LANGUAGE plpgsql COST 0.0001
	AS $$BEGIN RAISE NOTICE 'saw %', $1; RETURN true; END$$;
SELECT id FROM customers WHERE pg_temp.peek(id) ORDER BY id;
RESET ROLE;
RESET privacy_guard.purpose;
