-- Every way of reading goes through the rules.
\set VERBOSITY terse
-- this file's customers, in a schema of its own, registered as protect.sql
-- registers its own, and its subjects 1101..1110 in the states rules.sql leaves
-- its 1..10 in
CREATE SCHEMA read_paths;
GRANT USAGE ON SCHEMA read_paths TO PUBLIC;
GRANT CREATE ON SCHEMA read_paths TO regress_owner;
SET search_path = read_paths, public;
SET ROLE regress_owner;
CREATE TABLE customers (
	id			bigint PRIMARY KEY,
	email		text NOT NULL,
	signed_up	timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE, DELETE ON customers TO PUBLIC;
RESET ROLE;
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'],
							 interval '1 year', 'signed_up');
INSERT INTO customers (id, email) SELECT g, 'person' || g || '@example.org' FROM generate_series(1101, 1109) g;
INSERT INTO customers (id, email) VALUES (1110, 'new@example.org');
UPDATE customers SET signed_up = now() - interval '2 years' WHERE id = 1106;  -- past retention
-- 1101, 1103, 1106, 1107 consent to marketing, 1102 to marketing.email only;
-- 1104 withdrew, 1105's consent lapsed, 1103 asked to be forgotten
DO $$
BEGIN
	PERFORM privacy_guard.grant_consent(s, 'marketing') FROM unnest(ARRAY['1101', '1103', '1104', '1106', '1107']) s;
	PERFORM privacy_guard.grant_consent('1102', 'marketing.email');
	PERFORM privacy_guard.withdraw_consent('1104', 'marketing');
	PERFORM privacy_guard.grant_consent('1105', 'marketing', now() + interval '1 hour');
	PERFORM privacy_guard.forget('1103');
END
$$;
UPDATE privacy_guard.consent_state SET valid_until = now() - interval '1 second'
 WHERE subject = '1105';
SELECT privacy_guard.allow_purpose('regress_owner', 'billing');

SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';

-- UPDATE and DELETE see only visible rows; RETURNING shows only those
UPDATE customers SET email = email RETURNING id;
UPDATE customers SET email = 'changed@example.org' WHERE id = 1102; -- hidden: 0 rows
DELETE FROM customers WHERE id IN (1102, 1108, 1109);                  -- hidden: 0 rows
SET privacy_guard.purpose = 'billing';
SELECT id, email FROM customers WHERE id IN (1102, 1108, 1109) ORDER BY id;
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
EXECUTE one(1102);
EXECUTE one(1101);
SET privacy_guard.purpose = 'billing';
EXECUTE one(1102);
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
SELECT privacy_guard.grant_consent('1108', 'marketing');
SET LOCAL ROLE regress_app;
SELECT array_agg(id ORDER BY id) AS inside FROM customers;
ROLLBACK;
SET ROLE regress_app;
SELECT array_agg(id ORDER BY id) AS after_rollback FROM customers;
RESET ROLE;
BEGIN;
SAVEPOINT s;
SELECT privacy_guard.withdraw_consent('1101', 'marketing');
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
RESET search_path;
