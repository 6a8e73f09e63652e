-- Partitions and inheritance children are held to the same rules when
-- queried directly, including those created after protect().
\set VERBOSITY terse
-- this file's subjects 1201..1210, in the states rules.sql leaves its 1..10 in
-- 1201, 1203, 1206, 1207 consent to marketing, 1202 to marketing.email only;
-- 1204 withdrew, 1205's consent lapsed, 1203 asked to be forgotten
DO $$
BEGIN
	PERFORM privacy_guard.grant_consent(s, 'marketing') FROM unnest(ARRAY['1201', '1203', '1204', '1206', '1207']) s;
	PERFORM privacy_guard.grant_consent('1202', 'marketing.email');
	PERFORM privacy_guard.withdraw_consent('1204', 'marketing');
	PERFORM privacy_guard.grant_consent('1205', 'marketing', now() + interval '1 hour');
	PERFORM privacy_guard.forget('1203');
END
$$;
UPDATE privacy_guard.consent_state SET valid_until = now() - interval '1 second'
 WHERE subject = '1205';
SET ROLE regress_owner;
CREATE TABLE orders (id bigint, customer_id bigint, amount numeric) PARTITION BY RANGE (id);
CREATE TABLE orders_low PARTITION OF orders FOR VALUES FROM (0) TO (100);
CREATE TABLE notes (customer_id bigint, body text);
CREATE TABLE notes_archive () INHERITS (notes);
GRANT SELECT ON orders, orders_low, notes, notes_archive TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing', 'marketing']);
SELECT privacy_guard.protect('notes', 'customer_id', ARRAY['marketing']);
-- a partition made after protect() is covered at once
SET ROLE regress_owner;
CREATE TABLE orders_high PARTITION OF orders FOR VALUES FROM (100) TO (1000);
CREATE TABLE orders_spare (LIKE orders);
ALTER TABLE orders ATTACH PARTITION orders_spare FOR VALUES FROM (1000) TO (2000);
GRANT SELECT ON orders_high, orders_spare TO regress_app;
RESET ROLE;
-- a child cannot be registered on its own: its parent's rules apply
SELECT privacy_guard.protect('orders_low', 'customer_id', ARRAY['billing']);

INSERT INTO orders SELECT g * 50, 1200 + g, g * 10 FROM generate_series(1, 30) g;
INSERT INTO notes VALUES (1201, 'parent row'), (1209, 'parent row');
INSERT INTO notes_archive VALUES (1201, 'child row'), (1209, 'child row');

SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT tableoid::regclass, customer_id FROM orders ORDER BY id;
SELECT customer_id FROM orders_low ORDER BY id;
SELECT customer_id FROM orders_high ORDER BY id;
SELECT customer_id FROM orders_spare ORDER BY id;
SELECT customer_id, body FROM notes ORDER BY body, customer_id;
SELECT customer_id, body FROM notes_archive ORDER BY customer_id;
SELECT customer_id FROM ONLY notes ORDER BY customer_id;
-- a partition queried without a purpose fails like its parent
RESET privacy_guard.purpose;
SELECT count(*) FROM orders_high;
RESET ROLE;

-- attacks by the owner through the inheritance tree
SET ROLE regress_owner;
-- making a protected table the child of an unprotected parent
CREATE TABLE leak (customer_id bigint, body text);
ALTER TABLE notes INHERIT leak;
CREATE TABLE leak_p (id bigint, customer_id bigint, amount numeric) PARTITION BY RANGE (id);
CREATE TABLE solo (id bigint, customer_id bigint, amount numeric);
RESET ROLE;
SELECT privacy_guard.protect('solo', 'customer_id', ARRAY['billing']);
SET ROLE regress_owner;
ALTER TABLE leak_p ATTACH PARTITION solo FOR VALUES FROM (0) TO (10);
-- or the child of a table protected for other purposes
CREATE TABLE notes_billing (customer_id bigint, body text);
RESET ROLE;
SELECT privacy_guard.protect('notes_billing', 'customer_id', ARRAY['billing']);
SET ROLE regress_owner;
ALTER TABLE notes INHERIT notes_billing;
-- a new partition that brings its own policy named like ours gets the real one
CREATE TABLE orders_fake (id bigint, customer_id bigint, amount numeric);
CREATE POLICY privacy_guard_rules ON orders_fake AS RESTRICTIVE USING (true);
CREATE POLICY open_door ON orders_fake USING (true);
ALTER TABLE orders_fake ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders ATTACH PARTITION orders_fake FOR VALUES FROM (2000) TO (3000);
RESET ROLE;
SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
 WHERE polrelid = 'orders_fake'::regclass AND polname = 'privacy_guard_rules';
INSERT INTO orders VALUES (2500, 1209, 1);
SET ROLE regress_owner;
SELECT count(*) FROM orders_fake;                 -- no purpose: refused
-- a detached partition keeps the rules, and its root cannot be dropped from under it
ALTER TABLE orders DETACH PARTITION orders_fake;
SELECT count(*) FROM orders_fake;
ALTER TABLE orders_fake DISABLE ROW LEVEL SECURITY;
DROP TABLE orders CASCADE;
RESET ROLE;
-- a partition cannot be registered on its own
CREATE TABLE plain_parent (id int) PARTITION BY RANGE (id);
CREATE TABLE plain_child PARTITION OF plain_parent FOR VALUES FROM (0) TO (10);
SELECT privacy_guard.protect('plain_child', 'id', ARRAY['billing']);
DROP TABLE plain_parent, leak, leak_p, solo, notes_billing;
SELECT count(*) FROM privacy_guard.protected_tables WHERE table_name::text = 'solo';

-- unprotect takes the rules off the children too
SELECT privacy_guard.unprotect('orders');
SELECT count(*) FROM pg_policy
 WHERE polrelid IN ('orders'::regclass, 'orders_low'::regclass, 'orders_high'::regclass,
					'orders_spare'::regclass, 'orders_fake'::regclass)
   AND polname LIKE 'privacy_guard%';
DROP TABLE orders, orders_fake;
