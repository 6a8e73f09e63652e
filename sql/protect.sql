-- protect() and unprotect(): registration, installed policies, errors.
\set VERBOSITY terse

SET ROLE regress_owner;
CREATE TABLE customers (
	id			bigint PRIMARY KEY,
	email		text NOT NULL,
	signed_up	timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE newsletter (
	subscriber	text,			-- a text subject key
	topic		text,
	sent_on		date
);
CREATE VIEW customer_emails AS SELECT email FROM customers;
GRANT SELECT, INSERT, UPDATE, DELETE ON customers, newsletter TO PUBLIC;
RESET ROLE;

-- errors, each leaving nothing behind
SELECT privacy_guard.protect('customer_emails', 'email', ARRAY['billing']);
SELECT privacy_guard.protect('customers', 'no_such_column', ARRAY['billing']);
SELECT privacy_guard.protect('customers', 'id', ARRAY['nonexistent']);
SELECT privacy_guard.protect('customers', 'id', ARRAY[]::text[]);
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing'], interval '1 year');
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing'], interval '-1 day', 'signed_up');
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing'], interval '1 year', 'email');
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing'], on_expiry => 'archive');
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing'], on_forget => 'anonymize');
SELECT privacy_guard.protect('customers', 'email', ARRAY['billing'], on_forget => 'anonymize');
SELECT privacy_guard.protect('privacy_guard.consent_state', 'subject', ARRAY['billing']);
-- only subject types whose text form depends on no setting
CREATE TABLE odd_keys (c char(6), b bytea, d date, f float8, u uuid, v varchar(20));
SELECT privacy_guard.protect('odd_keys', 'c', ARRAY['billing']);
SELECT privacy_guard.protect('odd_keys', 'b', ARRAY['billing']);
SELECT privacy_guard.protect('odd_keys', 'd', ARRAY['billing']);
SELECT privacy_guard.protect('odd_keys', 'f', ARRAY['billing']);
DROP TABLE odd_keys;
SELECT count(*) FROM privacy_guard.protected_tables;
SELECT count(*) FROM pg_policy WHERE polrelid = 'customers'::regclass;

SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'],
							 interval '1 year', 'signed_up');
SELECT privacy_guard.protect('newsletter', 'subscriber', ARRAY['marketing.email', 'analytics'],
							 interval '30 days', 'sent_on', on_forget => 'anonymize');
SELECT table_name, subject_column, purposes, retention, retention_column, on_expiry, on_forget
  FROM privacy_guard.protected_tables ORDER BY table_name::text;
SELECT polrelid::regclass, polname, polpermissive, polcmd,
	   pg_get_expr(polqual, polrelid) AS using_expr,
	   pg_get_expr(polwithcheck, polrelid) AS check_expr
  FROM pg_policy WHERE polrelid IN ('customers'::regclass, 'newsletter'::regclass)
 ORDER BY 1, 2;
SELECT relname, relrowsecurity, relforcerowsecurity
  FROM pg_class WHERE oid IN ('customers'::regclass, 'newsletter'::regclass) ORDER BY 1;

-- protecting again updates the registration
SELECT privacy_guard.protect('newsletter', 'subscriber', ARRAY['marketing.email', 'analytics'],
							 interval '90 days', 'sent_on', on_forget => 'anonymize');
SELECT retention FROM privacy_guard.protected_tables WHERE table_name = 'newsletter'::regclass;

-- a purpose in use by a table cannot be dropped
SELECT privacy_guard.drop_purpose('analytics');

-- the owner cannot take the rules off its table
SET ROLE regress_owner;
ALTER TABLE customers DISABLE ROW LEVEL SECURITY;
ALTER TABLE customers NO FORCE ROW LEVEL SECURITY;
DROP POLICY privacy_guard_rules ON customers;
ALTER POLICY privacy_guard_rules ON customers USING (true);
ALTER POLICY privacy_guard_rules ON customers TO regress_owner;
-- nor rename the columns the registration names
ALTER TABLE customers RENAME COLUMN id TO customer_id;
ALTER TABLE customers RENAME COLUMN signed_up TO joined;
-- but may go on changing the table otherwise, renaming included
ALTER TABLE customers ADD COLUMN phone text;
ALTER TABLE customers RENAME COLUMN email TO mail;
ALTER TABLE customers RENAME COLUMN mail TO email;
ALTER TABLE customers RENAME TO clients;
ALTER TABLE clients RENAME TO customers;
RESET ROLE;
SELECT count(*) FROM pg_policy WHERE polrelid = 'customers'::regclass;

-- unprotect removes everything protect installed
CREATE TABLE scratch (who bigint, what text);
SELECT privacy_guard.protect('scratch', 'who', ARRAY['billing']);
SELECT privacy_guard.unprotect('scratch');
SELECT privacy_guard.unprotect('scratch');
SELECT count(*) FROM pg_policy WHERE polrelid = 'scratch'::regclass;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'scratch'::regclass;

-- dropping a protected table drops its registration
SELECT privacy_guard.protect('scratch', 'who', ARRAY['billing']);
DROP TABLE scratch;
SELECT count(*) FROM privacy_guard.protected_tables;
