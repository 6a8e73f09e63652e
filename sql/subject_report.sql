-- subject_report(): everything held about one person, and nothing about
-- anyone else, whatever the caller's purpose; administrators only.
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_transp_report;
\c regress_transp_report
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse
CREATE ROLE regress_transp_r_admin;
CREATE ROLE regress_transp_r_plain;
CREATE ROLE regress_transp_r_owner;
CREATE ROLE regress_transp_r_other;

SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters');
SELECT privacy_guard.define_purpose('fraud', 'legitimate_interests', 'Preventing fraud');
SELECT privacy_guard.define_purpose('tax', 'legal_obligation', 'Bookkeeping');

-- tables owned by an ordinary role: the report reads them as that owner
CREATE SCHEMA shop AUTHORIZATION regress_transp_r_owner;
SET search_path = shop, public;
SET ROLE regress_transp_r_owner;
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, full_name text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
					 placed_at timestamptz NOT NULL, address text);
CREATE TABLE invoices (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers,
					   order_id bigint REFERENCES orders ON DELETE SET NULL, issued_on date NOT NULL,
					   amount numeric(10,2));
CREATE TABLE newsletter (customer_id bigint REFERENCES customers, list text,
						 subscribed_at timestamptz NOT NULL);
-- not protected, but about the person: found through their foreign keys
CREATE TABLE support_tickets (id int PRIMARY KEY, customer_id bigint REFERENCES customers ON DELETE CASCADE,
							  body text);
-- identifiers that need quoting, and a subject column of a domain over text
CREATE DOMAIN customer_ref AS text CHECK (VALUE ~ '^[0-9]+$');
CREATE TABLE "Odd ""Notes"" $1" ("Customer Ref" customer_ref, "note'; --" text);
-- a partitioned table: its partitions' rows appear under it
CREATE TABLE visits (customer_id bigint, at date NOT NULL, page text) PARTITION BY RANGE (at);
CREATE TABLE visits_2025 PARTITION OF visits FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE visits_2026 PARTITION OF visits FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- tagged values: a protected table's tagged column (its default tag names the
-- row's subject), a referring table's, and a table privacy_guard does not
-- protect, with a column of a domain over a tagged type
ALTER TABLE customers ADD COLUMN phone privacy_guard.tagged_text;
ALTER TABLE support_tickets ADD COLUMN attachment privacy_guard.tagged_text;
CREATE DOMAIN review_text AS privacy_guard.tagged_text;
CREATE TABLE reviews (id int PRIMARY KEY, body review_text, stars privacy_guard.tagged_numeric,
					  visited privacy_guard.tagged_date);
GRANT USAGE, CREATE ON SCHEMA shop TO regress_transp_r_other;
GRANT REFERENCES ON orders TO regress_transp_r_other;
RESET ROLE;
-- owned by another role, which may not read orders: the report reads the
-- referenced keys as the owner of orders, the notes as their own owner
SET ROLE regress_transp_r_other;
CREATE TABLE shop.order_notes (order_id bigint REFERENCES shop.orders ON DELETE CASCADE, note text);
-- and a table of tagged values only, owned by that role too
CREATE TABLE shop.preferences (settings privacy_guard.tagged_jsonb);
RESET ROLE;
SELECT privacy_guard.grant_admin('regress_transp_r_owner');
SET ROLE regress_transp_r_owner;
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing', 'fraud']);
SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing', 'fraud'], interval '2 years', 'placed_at');
SELECT privacy_guard.protect('invoices', 'customer_id', ARRAY['billing', 'tax'], interval '10 years',
							 'issued_on', on_forget => 'anonymize');
SELECT privacy_guard.protect('newsletter', 'customer_id', ARRAY['marketing']);
SELECT privacy_guard.protect('visits', 'customer_id', ARRAY['fraud'], interval '10 years', 'at');
SELECT privacy_guard.protect('"Odd ""Notes"" $1"', 'Customer Ref', ARRAY['billing']);
RESET ROLE;
-- the legal hold's behaviour is built elsewhere; the report names its settings
UPDATE privacy_guard.protected_table SET hold_keep = interval '10 years', hold_purpose = 'tax'
 WHERE relid = 'orders'::regclass;

-- subject 1001, and another person, 2002, whose values are all marked ZZ-OTHER
INSERT INTO customers VALUES (1001, 'ada@example.org', 'Ada Lovelace', '+44 1001'),
							 (2002, 'zz-other@example.org', 'ZZ-OTHER Person', 'ZZ-OTHER phone');
INSERT INTO orders VALUES (11, 1001, '2026-03-01 10:00+00', '12 Analytical Row'),
						  (12, 1001, '2020-01-01 10:00+00', 'expired order, still held'),
						  (21, 2002, '2026-03-02 10:00+00', 'ZZ-OTHER street');
INSERT INTO invoices VALUES (101, 1001, 11, '2026-03-01', 42.50), (201, 2002, 21, '2026-03-02', 99.99),
							(301, NULL, NULL, '2025-01-01', 7.00);	-- anonymised long ago: nobody's
INSERT INTO newsletter VALUES (2002, 'ZZ-OTHER-list', '2026-01-01 00:00+00');
-- ticket 1 is Ada's, but its attachment is tagged for the other person
INSERT INTO support_tickets VALUES
	(1, 1001, 'parcel never arrived', privacy_guard.tag('ZZ-OTHER attachment'::text, ARRAY['billing'], '2002')),
	(2, 2002, 'ZZ-OTHER complaint', privacy_guard.tag('ZZ-OTHER screenshot'::text, ARRAY['billing'], '2002'));
-- Ada's review, the other person's, one tagged for nobody, and one for a key
-- that only looks like Ada's ('01001' is not '1001')
INSERT INTO reviews VALUES
	(1, privacy_guard.tag('Great service'::text, ARRAY['marketing'], '1001', '2030-01-01 00:00+00'),
		privacy_guard.tag(5::numeric, ARRAY['marketing'], '1001'),
		privacy_guard.tag('2026-03-02'::date, ARRAY['fraud'], '1001')),
	(2, privacy_guard.tag('ZZ-OTHER review'::text, ARRAY['marketing'], '2002'),
		privacy_guard.tag(1::numeric, ARRAY['marketing'], '2002'), NULL),
	(3, privacy_guard.tag('ZZ-OTHER anonymous review'::text, ARRAY['marketing']), NULL, NULL),
	(4, privacy_guard.tag('ZZ-OTHER padded key'::text, ARRAY['marketing'], '01001'), NULL, NULL);
INSERT INTO preferences VALUES
	(privacy_guard.tag('{"theme": "dark", "lang": "en"}'::jsonb, ARRAY['marketing', 'billing'], '1001')),
	(privacy_guard.tag('{"theme": "ZZ-OTHER"}'::jsonb, ARRAY['marketing'], '2002'));
INSERT INTO order_notes VALUES (11, 'leave at the door'), (21, 'ZZ-OTHER note');
INSERT INTO "Odd ""Notes"" $1" VALUES ('1001', 'prefers mornings'), ('2002', 'ZZ-OTHER note');
INSERT INTO visits VALUES (1001, '2025-12-31', '/cart'), (1001, '2026-01-02', '/checkout'),
						  (2002, '2026-01-03', '/ZZ-OTHER-page');
SELECT privacy_guard.grant_consent('1001', 'marketing', NULL, '{"form": "signup"}');
SELECT privacy_guard.withdraw_consent('1001', 'marketing');
SELECT privacy_guard.object_to('1001', 'fraud');
SELECT privacy_guard.grant_consent('2002', 'marketing', NULL, '{"form": "ZZ-OTHER-form"}');
SELECT privacy_guard.forget('1001', 'asked by letter', now() + interval '30 days') > 0 AS filed;
SELECT privacy_guard.forget('2002', 'ZZ-OTHER reason', now() + interval '30 days') > 0 AS filed;

-- times vary from run to run: shown as "<time>"
CREATE FUNCTION pg_temp.stable(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE jsonb_typeof(j)
		WHEN 'object' THEN coalesce((SELECT jsonb_object_agg(k, CASE WHEN k ~ '(_at|^due)$' AND v <> 'null'
																	 THEN '"<time>"' ELSE pg_temp.stable(v) END)
									   FROM jsonb_each(j) AS e(k, v)), '{}')
		WHEN 'array' THEN coalesce((SELECT jsonb_agg(pg_temp.stable(v) ORDER BY n)
									  FROM jsonb_array_elements(j) WITH ORDINALITY AS a(v, n)), '[]')
		ELSE j END
$$;

-- not for everyone
SET ROLE regress_transp_r_plain;
SELECT privacy_guard.subject_report('1001');
RESET ROLE;
SELECT privacy_guard.grant_admin('regress_transp_r_admin');

-- an administrator, with no purpose set: every row, the expired one included
SET ROLE regress_transp_r_admin;
SHOW privacy_guard.purpose;
SELECT jsonb_pretty(pg_temp.stable(privacy_guard.subject_report('1001') - 'generated_at'));
-- rule 3.4 still binds the tables' owner: its own reads reveal nothing
-- without a purpose, and the report's keyed reader answers only the report
RESET ROLE;
SET ROLE regress_transp_r_owner;
SELECT id, privacy_guard.reveal(body) AS body, privacy_guard.reveal(stars) AS stars FROM reviews ORDER BY id;
SELECT privacy_guard._tag_report_value(body, '1001', '\x00'::bytea) FROM reviews;
SELECT privacy_guard._tag_report_value(body, '1001', NULL) FROM reviews;
RESET ROLE;
SET ROLE regress_transp_r_admin;
-- nothing about the other person: none of their values, keys or ledger entries
SELECT strpos(privacy_guard.subject_report('1001')::text, 'ZZ-OTHER') AS other_values,
	   strpos(privacy_guard.subject_report('1001')::text, '2002') AS other_key,
	   strpos(privacy_guard.subject_report('1001')::text, '"id": 21') AS other_order;
-- and the other way round
SELECT jsonb_path_query_array(privacy_guard.subject_report('2002'), '$.data[*].table') AS tables,
	   jsonb_path_query_array(privacy_guard.subject_report('2002'), '$.tagged_values[*].value') AS tagged,
	   strpos(privacy_guard.subject_report('2002')::text, 'Ada') AS first_subject,
	   jsonb_array_length(privacy_guard.subject_report('2002') -> 'erasure_requests') AS requests;
-- under a purpose that would hide the rows, or one the tables were not collected for
SET privacy_guard.purpose = 'tax';
SELECT jsonb_array_length(privacy_guard.subject_report('1001') -> 'data') AS tables_found,
	   jsonb_array_length(privacy_guard.subject_report('1001') -> 'tagged_values') AS tagged_found;
RESET privacy_guard.purpose;
RESET ROLE;

-- keys that match no column: no rows, and no error (the key is only a parameter)
SELECT privacy_guard.subject_report('nobody') - 'generated_at' AS unknown_key;
SELECT privacy_guard.subject_report('1001'' OR ''1''=''1') -> 'data' AS injection;
SELECT privacy_guard.subject_report('');
SELECT privacy_guard.subject_report(NULL);

-- the erasure: orders are under a legal hold, so its rows and the customer
-- row they refer to stay (restricted) and are still reported, with the
-- request; everything else is gone
UPDATE privacy_guard.erasure_request SET due = now() - interval '1 second'
 WHERE subject_digest = privacy_guard._subject_digest('1001');
SELECT privacy_guard.run_maintenance() -> 'requests_done' AS done;
SELECT jsonb_pretty(pg_temp.stable(privacy_guard.subject_report('1001') - 'generated_at'));
-- once the hold ends: the receipt and the consent history (kept under the
-- digest), nothing else; the other person's report is unchanged
SELECT privacy_guard.set_legal_hold('shop.orders', NULL, NULL);
SELECT privacy_guard.run_maintenance() -> 'requests_done' AS done;
SELECT jsonb_pretty(pg_temp.stable(privacy_guard.subject_report('1001') - 'generated_at'));
SELECT jsonb_array_length(privacy_guard.subject_report('2002') -> 'data') AS other_tables,
	   jsonb_path_query_array(privacy_guard.subject_report('2002'), '$.tagged_values[*].value') AS other_tagged;

-- chains of foreign keys through tables privacy_guard does not protect: the
-- messages on a person's ticket and their files are about the person too
-- (each table expanded once: a reply referring to another message of the
-- same table is found with the rest); another person's chain is not reached
INSERT INTO customers VALUES (3003, 'zz-third@example.org', 'ZZ-THIRD Person', NULL);
INSERT INTO support_tickets VALUES (3, 3003, 'ZZ-THIRD ticket', NULL);
CREATE TABLE ticket_messages (id int PRIMARY KEY, ticket_id int REFERENCES support_tickets,
							  reply_to int REFERENCES ticket_messages, body text);
CREATE TABLE message_files (message_id int REFERENCES ticket_messages, name text);
INSERT INTO ticket_messages VALUES (1, 2, NULL, 'where is my refund'), (2, 2, 1, 'still waiting'),
								   (3, 3, NULL, 'ZZ-THIRD message'), (4, NULL, 3, 'ZZ-THIRD reply');
INSERT INTO message_files VALUES (1, 'receipt.pdf'), (2, 'bank-statement.pdf'), (3, 'ZZ-THIRD.png');
SELECT x ->> 'table' AS tbl, x ->> 'references' AS via, x ->> 'foreign_key' AS fk, x -> 'rows' AS rows
  FROM jsonb_array_elements(privacy_guard.subject_report('2002') -> 'data') AS x
 WHERE x ->> 'found_by' = 'foreign key'
 ORDER BY 1, 3;
SELECT strpos(privacy_guard.subject_report('2002')::text, 'ZZ-THIRD') AS third_person;

\c :orig_db
DROP DATABASE regress_transp_report;
DROP ROLE regress_transp_r_admin, regress_transp_r_plain, regress_transp_r_owner, regress_transp_r_other;
