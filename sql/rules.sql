-- SPEC 3.2: errors 1-4 and row rules 5-7, for every bound role.
\set VERBOSITY terse

-- this file's tables, in a schema of its own, registered as protect.sql
-- leaves its own
CREATE SCHEMA rules;
GRANT USAGE ON SCHEMA rules TO PUBLIC;
GRANT CREATE ON SCHEMA rules TO regress_owner;
SET search_path = rules, public;
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
GRANT SELECT, INSERT, UPDATE, DELETE ON customers, newsletter TO PUBLIC;
RESET ROLE;
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'],
							 interval '1 year', 'signed_up');
SELECT privacy_guard.protect('newsletter', 'subscriber', ARRAY['marketing.email', 'analytics'],
							 interval '90 days', 'sent_on', on_forget => 'anonymize');
-- subscribers: rc1 consents to marketing, rc2 to marketing.email only, rc5
-- objects to analytics, rc6 did nothing
SELECT privacy_guard.grant_consent('rc1', 'marketing');
SELECT privacy_guard.grant_consent('rc2', 'marketing.email');
SELECT privacy_guard.object_to('rc5', 'analytics');

INSERT INTO customers (id, email) SELECT g, 'person' || g || '@example.org' FROM generate_series(1, 9) g;
UPDATE customers SET signed_up = now() - interval '2 years' WHERE id = 6;  -- past retention
INSERT INTO newsletter VALUES ('rc1', 'spring', current_date), ('rc2', 'spring', current_date),
	('rc5', 'spring', current_date), ('rc6', 'spring', current_date - 400);
SELECT privacy_guard.grant_consent('1', 'marketing');
SELECT privacy_guard.grant_consent('2', 'marketing.email');
SELECT privacy_guard.grant_consent('3', 'marketing');
SELECT privacy_guard.grant_consent('4', 'marketing');
SELECT privacy_guard.grant_consent('6', 'marketing');
SELECT privacy_guard.withdraw_consent('4', 'marketing');
SELECT privacy_guard.grant_consent('5', 'marketing', now() + interval '1 hour');
-- let consent 5 lapse (as if an hour had passed)
UPDATE privacy_guard.consent_state SET valid_until = now() - interval '1 second'
 WHERE subject = '5';
GRANT SELECT ON customers TO regress_bypass;

-- shows an error with its SQLSTATE
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- error 1: no purpose
SET ROLE regress_app;
SELECT id FROM customers;
SELECT pg_temp.sqlstate_of('SELECT id FROM customers');
SELECT pg_temp.sqlstate_of($$INSERT INTO customers (id, email) VALUES (100, 'x@example.org')$$);
-- error 2: unknown purpose
SET privacy_guard.purpose = 'nonexistent';
SELECT pg_temp.sqlstate_of('SELECT id FROM customers');
-- error 3: role not authorised
SET ROLE regress_outsider;
SET privacy_guard.purpose = 'billing';
SELECT pg_temp.sqlstate_of('SELECT id FROM customers');
-- error 4: table not collected for the purpose (authorised through membership)
SET ROLE regress_analyst;
SET privacy_guard.purpose = 'analytics';
SELECT pg_temp.sqlstate_of('SELECT id FROM customers');
-- error 3 comes before error 4
SET privacy_guard.purpose = 'billing';
SELECT pg_temp.sqlstate_of('SELECT id FROM customers');
-- the hint names the setting
\set VERBOSITY default
RESET privacy_guard.purpose;
SELECT id FROM customers;
\set VERBOSITY terse

-- contract purpose: every row within retention (6 is past it)
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id FROM customers ORDER BY id;
-- consent purpose: 1, 3 (consent); not 2 (consented to the child only), 4 (withdrawn),
-- 5 (expired), 6 (past retention), 7-9 (never consented)
SET privacy_guard.purpose = 'marketing';
SELECT id FROM customers ORDER BY id;
-- a child purpose is covered by consent to its parent
SET privacy_guard.purpose = 'marketing.email';
SELECT id FROM customers ORDER BY id;
SELECT subscriber FROM newsletter ORDER BY subscriber;
-- legitimate interests: everyone who has not objected (rc5 did), within retention
SET ROLE regress_analyst;
SET privacy_guard.purpose = 'analytics';
SELECT subscriber FROM newsletter ORDER BY subscriber;

-- rule 5: a forget request hides the subject from its due time on
RESET ROLE;
SELECT privacy_guard.forget('3') > 0 AS filed;
SELECT privacy_guard.forget('rc2', 'customer asked', now() + interval '30 days') > 0 AS filed;
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT id FROM customers ORDER BY id;
SET privacy_guard.purpose = 'billing';
SELECT id FROM customers ORDER BY id;
SET privacy_guard.purpose = 'marketing.email';
SELECT subscriber FROM newsletter ORDER BY subscriber;    -- rc2 not due yet

-- INSERT needs rules 1-4 only: a new subject without consent can be added
SET privacy_guard.purpose = 'marketing';
INSERT INTO customers (id, email) VALUES (10, 'new@example.org');
SELECT count(*) FROM customers WHERE id = 10;               -- but is not visible
SET privacy_guard.purpose = 'billing';
SELECT id FROM customers WHERE id = 10;

-- the owner is bound too (as with FORCE ROW LEVEL SECURITY)
SET ROLE regress_owner;
SELECT id FROM customers;
RESET ROLE;
SELECT privacy_guard.allow_purpose('regress_owner', 'billing');
SET ROLE regress_owner;
SELECT count(*) FROM customers;

-- superusers and BYPASSRLS roles are not bound
SET ROLE regress_bypass;
RESET privacy_guard.purpose;
SELECT count(*) FROM customers;
RESET ROLE;
SELECT count(*) FROM customers;

-- the rules are re-read at every statement: a new consent shows at once
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT id FROM customers ORDER BY id;
RESET ROLE;
SELECT privacy_guard.grant_consent('7', 'marketing');
SELECT privacy_guard.disallow_purpose('regress_app', 'marketing');
SET ROLE regress_app;
SELECT id FROM customers ORDER BY id;                        -- no longer authorised
RESET ROLE;
SELECT privacy_guard.allow_purpose('regress_app', 'marketing');
SET ROLE regress_app;
SELECT id FROM customers ORDER BY id;                        -- 7 now visible
RESET ROLE;
RESET privacy_guard.purpose;
RESET search_path;
