-- Reading views (create_reading_view): an ORM's plain query over a table
-- with tagged columns gets plain values, and NULL where a value is
-- withheld, while the table itself still refuses to print a withheld value
-- (a dump or COPY by a bound role fails instead of writing less).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS privacy_guard;
RESET client_min_messages;
SET search_path = public;

SELECT privacy_guard.define_purpose('pooler_shop', 'contract');
SELECT privacy_guard.define_purpose('pooler_news', 'consent');
CREATE ROLE pooler_rv_app LOGIN;
SELECT privacy_guard.allow_purpose('pooler_rv_app', 'pooler_shop');
SELECT privacy_guard.allow_purpose('pooler_rv_app', 'pooler_news');

CREATE DOMAIN pooler_email AS privacy_guard.tagged_text;
CREATE TABLE pooler_customer (
	id int PRIMARY KEY,
	name text NOT NULL,
	email privacy_guard.tagged_text,
	born privacy_guard.tagged_date,
	spent privacy_guard.tagged_numeric,
	prefs privacy_guard.tagged_jsonb,
	alt_email pooler_email,
	phones privacy_guard.tagged_text[]
);
SELECT privacy_guard.protect('pooler_customer', 'id', ARRAY['pooler_shop', 'pooler_news']);
GRANT SELECT, INSERT, UPDATE ON pooler_customer TO pooler_rv_app;
-- plain values take the column's default tag (both purposes, the row's subject);
-- customer 2's e-mail is tagged for the newsletter only, and customer 2 has not consented
INSERT INTO pooler_customer VALUES
	(1, 'Ada', 'ada@example.org', '1990-01-02', 10.5, '{"lang": "en"}', 'ada@work.example', ARRAY['+49 1', '+49 2']),
	(2, 'Bob', NULL, NULL, NULL, NULL, NULL, ARRAY[]::privacy_guard.tagged_text[]);
UPDATE pooler_customer
   SET email = privacy_guard.tag('bob@example.org'::text, ARRAY['pooler_news'], '2'),
	   phones = ARRAY[privacy_guard.tag('+49 3'::text, ARRAY['pooler_shop'], '2'),
					  privacy_guard.tag('+49 4'::text, ARRAY['pooler_news'], '2')]
 WHERE id = 2;

SELECT privacy_guard.create_reading_view('pooler_customer');
-- the same columns in the same order; tagged ones as their base types
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'pooler_customer_read'::regclass AND attnum > 0 ORDER BY attnum;
SELECT reloptions FROM pg_class WHERE oid = 'pooler_customer_read'::regclass;
SELECT has_table_privilege('pooler_rv_app', 'pooler_customer_read', 'SELECT') AS app_may_read_view;

SET ROLE pooler_rv_app;
SET privacy_guard.purpose = 'pooler_shop';
-- the table: a plain SELECT * fails on Bob's withheld e-mail, and so does
-- COPY (the rows before it are not shown here: their tags carry purpose ids)
SELECT * FROM pooler_customer ORDER BY id;
\o /dev/null
COPY pooler_customer TO STDOUT;
COPY (SELECT * FROM pooler_customer) TO STDOUT;
COPY pooler_customer TO STDOUT (FORMAT binary);
\o
-- the reading view: the ORM's plain query, withheld values NULL
SELECT * FROM pooler_customer_read ORDER BY id;
COPY (SELECT id, email FROM pooler_customer_read ORDER BY id) TO STDOUT;
-- ordinary conditions and sorting on the plain values
SELECT id FROM pooler_customer_read WHERE email = 'ada@example.org';
SELECT id FROM pooler_customer_read WHERE email IS NULL;
SELECT name FROM pooler_customer_read ORDER BY email NULLS FIRST;
-- rules 1-8 still bind the reader: without a purpose, an error, as on the table
RESET privacy_guard.purpose;
SELECT * FROM pooler_customer_read;
-- consent: under the newsletter purpose Bob's rows are hidden until he consents
SET privacy_guard.purpose = 'pooler_news';
SELECT id, email FROM pooler_customer_read ORDER BY id;
RESET ROLE;
SELECT privacy_guard.grant_consent('1', 'pooler_news');
SELECT privacy_guard.grant_consent('2', 'pooler_news');
SET ROLE pooler_rv_app;
SELECT id, email, phones FROM pooler_customer_read ORDER BY id;
-- the view is for reading: its tagged columns cannot be written through it
SET privacy_guard.purpose = 'pooler_shop';
UPDATE pooler_customer_read SET email = 'new@example.org' WHERE id = 1;
-- writes of tagged values go to the table (a plain value takes the default tag)
UPDATE pooler_customer SET email = 'ada.l@example.org' WHERE id = 1;
SELECT id, name, email FROM pooler_customer_read WHERE id = 1;
RESET privacy_guard.purpose;
RESET ROLE;

-- a view without security_invoker would read as its owner: the function never makes one
SELECT privacy_guard.create_reading_view('pooler_customer', 'pooler_customer_read');
SELECT count(*) FROM pg_class WHERE oid = 'pooler_customer_read'::regclass
   AND reloptions @> ARRAY['security_invoker=true'];
-- a name of its own, schema-qualified; bad names and non-tables are refused
SELECT privacy_guard.create_reading_view('pooler_customer', 'public.pooler_orm_customer');
SELECT privacy_guard.create_reading_view('pooler_customer', 'a.b.c');
SELECT privacy_guard.create_reading_view('pg_catalog.pg_class_oid_index');
SELECT privacy_guard.create_reading_view(NULL);
-- a superuser sees everything, through the view as through the table
SELECT id, email, alt_email FROM pooler_orm_customer ORDER BY id;

DROP VIEW pooler_orm_customer, pooler_customer_read;
SELECT privacy_guard.unprotect('pooler_customer');
DROP TABLE pooler_customer;
DROP DOMAIN pooler_email;
SELECT privacy_guard.withdraw_consent('1', 'pooler_news');
SELECT privacy_guard.withdraw_consent('2', 'pooler_news');
SELECT privacy_guard.disallow_purpose('pooler_rv_app', 'pooler_shop');
SELECT privacy_guard.disallow_purpose('pooler_rv_app', 'pooler_news');
DROP ROLE pooler_rv_app;
