-- Partitions and inheritance children are held to the same rules when
-- queried directly, including those created after protect().
\set VERBOSITY terse
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

INSERT INTO orders SELECT g * 50, g, g * 10 FROM generate_series(1, 30) g;
INSERT INTO notes VALUES (1, 'parent row'), (9, 'parent row');
INSERT INTO notes_archive VALUES (1, 'child row'), (9, 'child row');

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

-- unprotect takes the rules off the children too
SELECT privacy_guard.unprotect('orders');
SELECT count(*) FROM pg_policy
 WHERE polrelid IN ('orders'::regclass, 'orders_low'::regclass, 'orders_high'::regclass,
					'orders_spare'::regclass);
DROP TABLE orders;
