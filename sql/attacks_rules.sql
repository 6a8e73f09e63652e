-- Ways around the rules that must not work (a first part of the hardening
-- suite; each block is named after the attack it tries).
\set VERBOSITY terse
-- this file's customers 1501..1510, in a schema of its own, registered as
-- protect.sql registers its own; 1502, 1503, 1504, 1505, 1508 and 1510 consent to
-- marketing, the others never did
CREATE SCHEMA attacks_rules;
GRANT USAGE ON SCHEMA attacks_rules TO PUBLIC;
GRANT CREATE ON SCHEMA attacks_rules TO regress_owner;
SET search_path = attacks_rules, public;
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
INSERT INTO customers (id, email) SELECT g, 'person' || g || '@example.org' FROM generate_series(1501, 1509) g;
INSERT INTO customers (id, email) VALUES (1510, 'new@example.org');
SELECT count(*) FROM (SELECT privacy_guard.grant_consent(s, 'marketing')
						FROM unnest(ARRAY['1502', '1503', '1504', '1505', '1508', '1510']) s) c;


-- attack: hostile identifiers in table and column names inject nothing
CREATE TABLE "x""; DROP TABLE customers; --" ("who$$ ; select 1" bigint, "note'" text);
INSERT INTO "x""; DROP TABLE customers; --" VALUES (1501, 'a'), (1502, 'b');
GRANT SELECT ON "x""; DROP TABLE customers; --" TO regress_app;
SELECT privacy_guard.protect('"x""; DROP TABLE customers; --"', 'who$$ ; select 1', ARRAY['marketing']);
SELECT count(*) AS customers_still_there FROM customers;
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT "who$$ ; select 1" FROM "x""; DROP TABLE customers; --" ORDER BY 1;   -- only consenting subjects
RESET ROLE;
SELECT privacy_guard.unprotect('"x""; DROP TABLE customers; --"');
DROP TABLE "x""; DROP TABLE customers; --";

-- attack: a temp table named like an internal table, first in search_path,
-- does not change what the SECURITY DEFINER functions or the checks read
CREATE TEMP TABLE purpose (name text, parent text, legal_basis text, description text);
INSERT INTO pg_temp.purpose VALUES ('evil', NULL, 'contract', NULL);
CREATE TEMP TABLE consent_state (subject text, purpose text, status text, valid_until timestamptz);
INSERT INTO pg_temp.consent_state VALUES ('1509', 'marketing', 'granted', NULL);
SET search_path = pg_temp, privacy_guard, public;
SELECT privacy_guard.has_consent('1509', 'marketing') AS spoofed_consent;
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT array_agg(id ORDER BY id) AS visible FROM attacks_rules.customers;
SET privacy_guard.purpose = 'evil';
SELECT count(*) FROM attacks_rules.customers;
RESET ROLE;
SET search_path = attacks_rules, public;
DROP TABLE pg_temp.purpose, pg_temp.consent_state;

-- attack: an operator planted in a schema searched before pg_catalog does
-- not run inside the checks (which run SPI as the extension's owner)
CREATE SCHEMA evil;
CREATE FUNCTION evil.neq(text, text) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN RAISE NOTICE 'evil operator ran as %', current_user; RETURN $1 OPERATOR(pg_catalog.<>) $2; END$$;
CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.neq);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
SET search_path = evil, pg_catalog, public;
SELECT privacy_guard.grant_consent('1509', 'marketing');     -- forces a reload in every session
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT array_agg(id ORDER BY id) AS visible FROM attacks_rules.customers;
RESET ROLE;
SET search_path = attacks_rules, public;
SELECT privacy_guard.withdraw_consent('1509', 'marketing');
DROP SCHEMA evil CASCADE;

-- attack: DISCARD ALL / RESET ALL behind a pooler leave no purpose behind
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
RESET ALL;
SELECT count(*) FROM attacks_rules.customers;
RESET ROLE;
SET search_path = attacks_rules, public;   -- which RESET ALL reset too

-- attack: a function SET clause cannot lend a purpose the role lacks
CREATE FUNCTION public.count_for_billing() RETURNS bigint LANGUAGE sql
	SET privacy_guard.purpose = 'billing' AS 'SELECT count(*) FROM attacks_rules.customers';
GRANT SELECT ON customers TO regress_outsider;
SET ROLE regress_outsider;
SELECT public.count_for_billing();
RESET ROLE;

-- attack: a SECURITY DEFINER hop reads with the definer's authorisation;
-- the definer chooses what it exposes, nothing more leaks
CREATE FUNCTION public.consenting_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, public SET privacy_guard.purpose = 'marketing'
	AS 'SELECT count(*) FROM attacks_rules.customers';
ALTER FUNCTION public.consenting_count() OWNER TO regress_app;
SET ROLE regress_outsider;
SELECT public.consenting_count();
SELECT count(*) FROM customers;                   -- the outsider itself still cannot
RESET ROLE;
DROP FUNCTION public.consenting_count(), public.count_for_billing();
REVOKE SELECT ON customers FROM regress_outsider;

-- attack: a leaky function that errors or raises on the rows it sees only
-- ever sees visible rows
CREATE FUNCTION public.leak(bigint, text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
	AS $$BEGIN RAISE NOTICE 'leaked % %', $1, $2; RETURN true; END$$;
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT count(*) FROM customers WHERE public.leak(id, email);
RESET ROLE;
SELECT count(*) AS all_rows FROM customers;
DROP FUNCTION public.leak(bigint, text);

-- attack: planner statistics of a protected table are not shown to bound roles
ANALYZE customers;
SET ROLE regress_app;
SELECT count(*) AS stats_rows FROM pg_stats WHERE tablename = 'customers';
RESET ROLE;

-- attack: the recording and administration functions are not callable by applications
SET ROLE regress_app;
SELECT privacy_guard.grant_consent('1508', 'marketing');
SELECT privacy_guard.allow_purpose('regress_app', 'analytics');
SELECT privacy_guard.unprotect('customers');
SELECT privacy_guard._guard_suspend(true);
INSERT INTO privacy_guard.consent_state (subject, purpose, status) VALUES ('1508', 'marketing', 'granted');
RESET ROLE;
RESET privacy_guard.purpose;

-- attack: row_security = off (what pg_dump sets) fails instead of reading everything
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SET row_security = off;
SELECT count(*) FROM customers;
RESET row_security;

-- attack: CREATE TABLE AS and MERGE only ever see visible rows
CREATE TEMP TABLE copied AS SELECT id FROM customers;
SELECT count(*) AS copied_rows FROM copied;
RESET ROLE;
GRANT UPDATE ON customers TO regress_app;
SET ROLE regress_app;
MERGE INTO customers c USING (SELECT g AS id FROM generate_series(1501, 1510) g) s ON c.id = s.id
	WHEN MATCHED THEN UPDATE SET email = 'merged';
RESET ROLE;
SELECT count(*) FILTER (WHERE email = 'merged') AS merged, count(*) AS all_rows FROM customers;
REVOKE UPDATE ON customers FROM regress_app;

-- attack: a cursor opened under one purpose and role keeps the rules it was
-- opened with; a new statement after SET ROLE is checked for the new role
SET ROLE regress_app;
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM customers ORDER BY id;
FETCH 1 FROM c;
SET LOCAL ROLE regress_outsider;
FETCH ALL FROM c;
SELECT count(*) FROM customers;
ROLLBACK;
RESET ROLE;
RESET privacy_guard.purpose;
RESET search_path;
