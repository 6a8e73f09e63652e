-- check(): the compliance lint, one finding per class, and none once fixed.
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_transp_check;
\c regress_transp_check
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse
CREATE ROLE regress_transp_c_app;
CREATE ROLE regress_transp_c_owner;
CREATE ROLE regress_transp_c_bypass BYPASSRLS;
CREATE ROLE regress_transp_c_plain;
CREATE SCHEMA shop AUTHORIZATION regress_transp_c_owner;
SET search_path = shop, public;

-- nothing protected, nothing to say (the server's own flaws aside, tested below)
SELECT * FROM privacy_guard.check() WHERE object <> 'server';

SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters');
SELECT privacy_guard.define_purpose('marketing.email', 'consent', 'E-mail newsletter');
SELECT privacy_guard.allow_purpose('regress_transp_c_app', 'billing');

SET ROLE regress_transp_c_owner;
CREATE TABLE customers (id bigint PRIMARY KEY, email text, full_name text,
						signed_up timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers,
					 placed_at timestamptz NOT NULL);
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers,
					   issued_on date NOT NULL);
CREATE TABLE newsletter (customer_id bigint REFERENCES customers, list text);
CREATE TABLE products (id bigint PRIMARY KEY, title text);		-- no personal data
-- tagged columns: in a protected table (no finding), in a table and in a
-- partitioned table privacy_guard does not protect (one finding each)
ALTER TABLE customers ADD COLUMN phone privacy_guard.tagged_text;
CREATE TABLE reviews (review_no int PRIMARY KEY, author text, body privacy_guard.tagged_text,
					  stars privacy_guard.tagged_numeric, posted date NOT NULL);
CREATE TABLE events (at date NOT NULL, detail privacy_guard.tagged_jsonb) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
RESET ROLE;
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'], interval '5 years', 'signed_up');
SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing']);
SELECT privacy_guard.protect('invoices', 'customer_id', ARRAY['billing'], interval '10 years', 'issued_on');
INSERT INTO customers VALUES (1, 'a@example.org', 'A', now());

-- one of each: an unprotected table referring to a protected one; views with
-- their owner's rights (an ordinary owner, and a superuser); a view on a view;
-- a materialized view; a copy made by CREATE TABLE AS; a BYPASSRLS role
-- authorised for a purpose; purposes nobody may use; a table without retention
SET ROLE regress_transp_c_owner;
CREATE VIEW customer_emails AS SELECT id, email FROM customers;
CREATE VIEW customer_emails_2 WITH (security_invoker = true) AS SELECT * FROM customer_emails;
CREATE VIEW safe_orders WITH (security_invoker = on) AS SELECT id, placed_at FROM orders;
CREATE VIEW product_titles AS SELECT title FROM products;
RESET ROLE;
CREATE VIEW shop.invoice_report AS SELECT count(*) AS n FROM invoices;	-- owned by the superuser
CREATE MATERIALIZED VIEW shop.customer_snapshot AS SELECT id, email FROM customers;
CREATE VIEW shop.snapshot_emails WITH (security_invoker) AS SELECT email FROM customer_snapshot;
CREATE TABLE shop.customers_backup AS SELECT * FROM customers;
CREATE TABLE shop.unrelated (id bigint, note text);	-- shares only "id": not flagged
SELECT privacy_guard.allow_purpose('regress_transp_c_bypass', 'billing');

SELECT severity, object, replace(message, current_user, '<superuser>') AS message
  FROM privacy_guard.check() WHERE object <> 'server';

-- fixing each finding makes it go (newsletter, now protected, has no retention yet)
SELECT privacy_guard.protect('newsletter', 'customer_id', ARRAY['marketing.email']);
SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing'], interval '2 years', 'placed_at');
SELECT privacy_guard.allow_purpose('regress_transp_c_app', 'marketing');
SELECT privacy_guard.disallow_purpose('regress_transp_c_bypass', 'billing');
ALTER VIEW customer_emails SET (security_invoker = true);
ALTER VIEW invoice_report SET (security_invoker = true);
DROP MATERIALIZED VIEW customer_snapshot CASCADE;
DROP TABLE customers_backup;
SELECT privacy_guard.protect('reviews', 'author', ARRAY['marketing'], interval '3 years', 'posted');
DROP TABLE events;
SELECT severity, object FROM privacy_guard.check() WHERE object <> 'server';
ALTER TABLE newsletter ADD COLUMN added timestamptz NOT NULL DEFAULT now();
SELECT privacy_guard.protect('newsletter', 'customer_id', ARRAY['marketing.email'], interval '2 years', 'added');
SELECT count(*) AS findings FROM privacy_guard.check() WHERE object <> 'server';

-- a view owned by a role the rules bind, which later gets BYPASSRLS
SET ROLE regress_transp_c_owner;
CREATE VIEW customer_names AS SELECT full_name FROM customers;
RESET ROLE;
SELECT severity, object FROM privacy_guard.check() WHERE object <> 'server';
ALTER ROLE regress_transp_c_owner BYPASSRLS;
SELECT severity, object FROM privacy_guard.check() WHERE object <> 'server';
ALTER ROLE regress_transp_c_owner NOBYPASSRLS;
DROP VIEW customer_names;

-- forget requests owed for more than a day: an error until carried out
CREATE TABLE helpdesk (customer_id bigint, note text);
INSERT INTO helpdesk VALUES (7077, 'call back');
SELECT privacy_guard.protect('helpdesk', 'customer_id', ARRAY['billing']);
SELECT privacy_guard.forget('7077', 'check: overdue') > 0 AS filed;
SELECT privacy_guard.forget('78', 'check: overdue too') > 0 AS filed;
SELECT severity, object FROM privacy_guard.check() WHERE object = 'erasure requests';
UPDATE privacy_guard.erasure_request SET due = now() - interval '2 days' WHERE reason LIKE 'check: overdue%';
SELECT severity, object, message FROM privacy_guard.check() WHERE object = 'erasure requests';
SELECT privacy_guard.run_maintenance() -> 'requests_done' AS done;
SELECT severity, object FROM privacy_guard.check() WHERE object = 'erasure requests';
SELECT privacy_guard.unprotect('helpdesk');
DROP TABLE helpdesk;

-- without the library in shared_preload_libraries (as here), no worker
-- enforces anything in the background: check() says so
SELECT severity, message FROM privacy_guard.check()
 WHERE object = 'server' AND severity = 'warning';

-- PostgreSQL's own row-security flaws, by server version
SELECT cve, fixed_in FROM privacy_guard._unfixed_rls_flaws(150002);
SELECT cve, fixed_in FROM privacy_guard._unfixed_rls_flaws(150013);
SELECT cve, fixed_in FROM privacy_guard._unfixed_rls_flaws(150014);
SELECT cve, fixed_in FROM privacy_guard._unfixed_rls_flaws(160004);
-- check() reports exactly those of the running server
SELECT (SELECT count(*) FROM privacy_guard.check() WHERE object = 'server' AND severity = 'error')
	 = (SELECT count(*) FROM privacy_guard._unfixed_rls_flaws(current_setting('server_version_num')::int))
	   AS server_findings_match;

-- administrators only
SET ROLE regress_transp_c_plain;
SELECT * FROM privacy_guard.check();
RESET ROLE;

\c :orig_db
DROP DATABASE regress_transp_check;
DROP ROLE regress_transp_c_app, regress_transp_c_owner, regress_transp_c_bypass, regress_transp_c_plain;
