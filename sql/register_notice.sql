-- processing_register (GDPR Art. 30) and privacy_notice(), on a small shop's
-- schema, in a database of its own (the register and the notice cover every
-- protected table of a database).
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_transp_notice;
\c regress_transp_notice
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse
CREATE ROLE regress_transp_n_admin;
CREATE ROLE regress_transp_n_plain;

SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices & payments');
SELECT privacy_guard.define_purpose('shipping', 'contract', 'Delivering your orders');
SELECT privacy_guard.define_purpose('tax', 'legal_obligation', 'Bookkeeping the <tax> law requires');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters and "special" offers');
SELECT privacy_guard.define_purpose('marketing.email', 'consent', 'Our e-mail newsletter');
SELECT privacy_guard.define_purpose('fraud', 'legitimate_interests', 'Preventing fraud');
SELECT privacy_guard.define_purpose('unused', 'consent', 'No table uses this');

-- before anything is protected
SELECT privacy_guard.privacy_notice('html');
SELECT count(*) FROM privacy_guard.processing_register;

CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, full_name text, born date,
						signed_up timestamptz NOT NULL);
COMMENT ON TABLE customers IS 'Your customer account.';
COMMENT ON COLUMN customers.id IS 'customer number';
COMMENT ON COLUMN customers.email IS 'e-mail address';
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
					 placed_at timestamptz NOT NULL, delivery_address text, total numeric(10,2));
COMMENT ON COLUMN orders.delivery_address IS 'delivery address <street & town>';
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers,
					   order_id bigint REFERENCES orders ON DELETE SET NULL, issued_on date NOT NULL,
					   amount numeric(10,2));
CREATE TABLE newsletter_subscribers (subscriber_email text, customer_id bigint REFERENCES customers,
									 subscribed_at timestamptz NOT NULL);

SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'shipping', 'marketing', 'fraud']);
SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing', 'shipping', 'fraud', 'tax'],
							 interval '2 years', 'placed_at');
SELECT privacy_guard.protect('invoices', 'customer_id', ARRAY['billing', 'tax'], interval '10 years',
							 'issued_on', on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('invoices', 'amount', 'generalize');
SELECT privacy_guard.protect('newsletter_subscribers', 'customer_id', ARRAY['marketing.email'],
							 interval '1 year 6 months', 'subscribed_at',
							 on_expiry => 'anonymize', on_forget => 'anonymize');
SELECT privacy_guard.set_anonymizer('newsletter_subscribers', 'subscriber_email', 'hash');
-- the legal hold's behaviour is built elsewhere; the register shows its settings
UPDATE privacy_guard.protected_table SET hold_keep = interval '10 years', hold_purpose = 'tax'
 WHERE relid = 'orders'::regclass;
-- tagged columns: one in a protected table, and a table privacy_guard does not
-- protect whose values carry their own tags, one with a purpose no protected
-- table uses, and one plain value (untagged: no purpose)
SELECT privacy_guard.define_purpose('testimonials', 'consent', 'Publishing your reviews');
ALTER TABLE customers ADD COLUMN phone privacy_guard.tagged_text;
COMMENT ON COLUMN customers.phone IS 'phone number';
CREATE TABLE reviews (id int PRIMARY KEY, body privacy_guard.tagged_text, stars privacy_guard.tagged_numeric,
					  posted date);
COMMENT ON COLUMN reviews.body IS 'your review';
INSERT INTO reviews VALUES
	(1, privacy_guard.tag('Great shop'::text, ARRAY['testimonials'], '7'),
		privacy_guard.tag(5::numeric, ARRAY['testimonials', 'fraud'], '7', '2030-01-01 00:00+00'), '2026-01-01'),
	(2, 'plain, untagged', NULL, '2026-01-02');

-- ---------------------------------------------------------------- register
SELECT table_name, column_name, data_type, column_role, description, purposes, legal_bases
  FROM privacy_guard.processing_register ORDER BY table_name::text, column_name;
SELECT * FROM (SELECT DISTINCT table_name, retention, retention_column, on_expiry, on_forget, hold_keep,
					  hold_purpose FROM privacy_guard.processing_register) r
 ORDER BY table_name::text;
-- tagged columns: the purposes found in their values' tags (none yet in customers.phone)
SELECT table_name, column_name, column_role, tag_purposes
  FROM privacy_guard.processing_register WHERE tag_purposes IS NOT NULL ORDER BY 1, 2;
SELECT table_name, column_name, anonymizer
  FROM privacy_guard.processing_register WHERE anonymizer IS NOT NULL ORDER BY 1, 2;

-- approximate rows: unknown until the table is vacuumed or analysed, then its count
INSERT INTO customers SELECT g, 'c' || g || '@example.org', 'Customer ' || g, date '1980-01-01' + g,
							 timestamptz '2026-01-01 00:00+00' FROM generate_series(1, 30) g;
INSERT INTO orders SELECT g, 1 + g % 30, timestamptz '2026-02-01 00:00+00', 'Street ' || g, g
  FROM generate_series(1, 70) g;
SELECT * FROM (SELECT DISTINCT table_name, approx_rows FROM privacy_guard.processing_register) r
 ORDER BY table_name::text;
ANALYZE customers, orders, invoices;
SELECT * FROM (SELECT DISTINCT table_name, approx_rows FROM privacy_guard.processing_register) r
 ORDER BY table_name::text;
-- a partitioned table: the sum over its partitions (the parent holds none)
CREATE TABLE visits (customer_id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT privacy_guard.protect('visits', 'customer_id', ARRAY['fraud'], interval '90 days', 'at');
INSERT INTO visits SELECT g, date '2025-12-01' + g FROM generate_series(1, 50) g;
ANALYZE visits;
SELECT DISTINCT approx_rows FROM privacy_guard.processing_register WHERE table_name = 'visits'::regclass;
SELECT privacy_guard.unprotect('visits');
DROP TABLE visits;
-- a tagged table outside protection: its own estimate; a value written into a
-- protected table's tagged column takes the table's purposes (its default tag)
ANALYZE reviews;
SELECT DISTINCT approx_rows FROM privacy_guard.processing_register WHERE table_name = 'reviews'::regclass;
UPDATE customers SET phone = '+1 555 0100' WHERE id = 1;
SELECT column_name, tag_purposes FROM privacy_guard.processing_register
 WHERE table_name = 'customers'::regclass AND column_role = 'tagged';

-- the register is for administrators
SET ROLE regress_transp_n_plain;
SELECT count(*) FROM privacy_guard.processing_register;
RESET ROLE;
SELECT privacy_guard.grant_admin('regress_transp_n_admin');
SET ROLE regress_transp_n_admin;
SELECT count(*) AS register_rows FROM privacy_guard.processing_register;
RESET ROLE;

-- ---------------------------------------------------------------- notice
\pset format unaligned
\pset tuples_only on
SELECT privacy_guard.privacy_notice();
SELECT privacy_guard.privacy_notice('html');
\pset format aligned
\pset tuples_only off
-- every purpose a protected table or a tagged column uses is named, in both formats; an unused one is not
SELECT f, p.name
  FROM (VALUES ('markdown'), ('html')) AS v(f), privacy_guard.purposes p
 WHERE strpos(privacy_guard.privacy_notice(f), p.name) = 0
 ORDER BY 1, 2;
-- names and descriptions are escaped: nothing of them becomes markup
SELECT strpos(n, '<tax>') > 0 AS raw_tag, strpos(n, '&lt;tax&gt;') > 0 AS escaped_tag,
	   strpos(n, '<street & town>') > 0 AS raw_comment,
	   strpos(n, '&lt;street &amp; town&gt;') > 0 AS escaped_comment,
	   strpos(n, '&quot;special&quot;') > 0 AS escaped_quotes
  FROM privacy_guard.privacy_notice('html') AS n;
SELECT strpos(n, '\<tax\>') > 0 AS md_escaped, strpos(n, 'Invoices \& payments') > 0 AS md_amp
  FROM privacy_guard.privacy_notice('markdown') AS n;
-- a markdown-looking comment stays text
COMMENT ON TABLE invoices IS '# not a heading [link](http://x) *bold*';
SELECT line FROM regexp_split_to_table(privacy_guard.privacy_notice(), E'\n') AS line
 WHERE line LIKE '%not a heading%';
SELECT line FROM regexp_split_to_table(privacy_guard.privacy_notice('HTML'), E'\n') AS line
 WHERE line LIKE '%not a heading%';
-- the notice is public information: every role may generate it
SET ROLE regress_transp_n_plain;
SELECT length(privacy_guard.privacy_notice()) > 1000 AS generated,
	   strpos(privacy_guard.privacy_notice(), 'Publishing your reviews (`testimonials`)') > 0 AS names_tagged_purpose;
RESET ROLE;
-- other formats are refused
SELECT privacy_guard.privacy_notice('pdf');
SELECT privacy_guard.privacy_notice(NULL);

\c :orig_db
DROP DATABASE regress_transp_notice;
DROP ROLE regress_transp_n_admin, regress_transp_n_plain;
