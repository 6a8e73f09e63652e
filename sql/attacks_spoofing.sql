-- Purpose spoofing: ways of running under a purpose the role is not
-- authorised for.  (ALTER ROLE/DATABASE SET, connection options and
-- placeholders set before the library loads: test/t/006_attacks_settings.pl.)
\set VERBOSITY terse

SET ROLE regress_owner;
CREATE TABLE sp_people (subject text, name text);
INSERT INTO sp_people VALUES ('sp-1', 'one'), ('sp-2', 'two'), ('sp-3', 'three');
CREATE TABLE sp_mail (subject text, address text);
INSERT INTO sp_mail VALUES ('sp-1', 'one@example.org');
GRANT SELECT ON sp_people, sp_mail TO PUBLIC;
RESET ROLE;
SELECT privacy_guard.protect('sp_people', 'subject', ARRAY['billing', 'marketing', 'analytics']);
SELECT privacy_guard.protect('sp_mail', 'subject', ARRAY['marketing.email']);
SELECT privacy_guard.grant_consent('sp-1', 'marketing');
CREATE ROLE regress_sp_noinherit NOINHERIT IN ROLE regress_reporting;
CREATE ROLE regress_sp_child;
SELECT privacy_guard.allow_purpose('regress_sp_child', 'marketing.email');

-- attack: a NOINHERIT member uses its group's authorisation without SET ROLE
SET ROLE regress_sp_noinherit;
SET privacy_guard.purpose = 'analytics';
SELECT count(*) FROM sp_people;
SET ROLE regress_reporting;          -- taking the group's identity is the way
SELECT count(*) FROM sp_people;
RESET ROLE;

-- attack: a role authorised for a child purpose declares its parent
SET ROLE regress_sp_child;
SET privacy_guard.purpose = 'marketing';
SELECT count(*) FROM sp_people;
SET privacy_guard.purpose = 'marketing.email';
SELECT count(*) FROM sp_people;      -- the child: consent to the parent covers it
RESET ROLE;

-- attack: a parent purpose on a table collected only for its child
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT count(*) FROM sp_mail;
RESET ROLE;

-- attack: purpose names spelled differently (case, blanks, trailing dot,
-- newline) to match a purpose loosely
SET ROLE regress_outsider;
SET privacy_guard.purpose = 'Billing';
SELECT count(*) FROM sp_people;
SET privacy_guard.purpose = ' billing';
SELECT count(*) FROM sp_people;
SET privacy_guard.purpose = 'billing.';
SELECT count(*) FROM sp_people;
SET privacy_guard.purpose = E'billing\n';
SELECT count(*) FROM sp_people;
RESET ROLE;

-- attack: SET inside a rolled-back transaction or savepoint leaves the purpose behind
SET ROLE regress_app;
RESET privacy_guard.purpose;
BEGIN;
SET privacy_guard.purpose = 'billing';
ROLLBACK;
SELECT count(*) FROM sp_people;
BEGIN;
SAVEPOINT s;
SET LOCAL privacy_guard.purpose = 'billing';
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM sp_people;
ROLLBACK;
RESET ROLE;

-- attack: set_config() evaluated inside the statement switches the purpose
-- in the middle of a scan (the purpose is fixed at the first row)
SET ROLE regress_app;
SET privacy_guard.purpose = 'marketing';
SELECT array_agg(subject ORDER BY subject) AS seen FROM sp_people
 WHERE set_config('privacy_guard.purpose', 'billing', false) IS NOT NULL;
SHOW privacy_guard.purpose;
-- and an outsider switching to any purpose is still refused
SET ROLE regress_outsider;
SELECT set_config('privacy_guard.purpose', 'billing', true), count(*) FROM sp_people;
RESET ROLE;

-- attack: a statement prepared by an authorised role, executed after SET ROLE
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SET plan_cache_mode = force_generic_plan;
PREPARE sp_all AS SELECT count(*) FROM sp_people;
EXECUTE sp_all;
SET ROLE regress_outsider;
EXECUTE sp_all;
RESET ROLE;
DEALLOCATE sp_all;
RESET plan_cache_mode;

-- attack: a SECURITY DEFINER function without a pinned purpose lets its
-- caller choose the purpose, but only among the definer's authorisations
CREATE FUNCTION public.sp_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, public AS 'SELECT count(*) FROM public.sp_people';
ALTER FUNCTION public.sp_count() OWNER TO regress_app;
GRANT EXECUTE ON FUNCTION public.sp_count() TO regress_outsider;
SET ROLE regress_outsider;
SET privacy_guard.purpose = 'analytics';     -- regress_app is not authorised for it
SELECT public.sp_count();
RESET ROLE;
DROP FUNCTION public.sp_count();

-- attack: DISCARD ALL behind a session pooler leaves role and purpose behind
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
DISCARD ALL;
SET ROLE regress_outsider;
SELECT count(*) FROM sp_people;
RESET ROLE;

-- attack: a role recreated under the name of an authorised role inherits
-- its authorisation
CREATE ROLE regress_sp_temp;
SELECT privacy_guard.allow_purpose('regress_sp_temp', 'billing');
DROP ROLE regress_sp_temp;
CREATE ROLE regress_sp_temp;
GRANT SELECT ON sp_people TO regress_sp_temp;
SET ROLE regress_sp_temp;
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM sp_people;
RESET ROLE;
RESET privacy_guard.purpose;

-- attack: SET TimeZone moves the retention cut-off of a timestamp
-- (without time zone) column, showing rows past their retention.  The row
-- expired an hour ago in the server's zone; a session 15 hours behind UTC
-- would read it as within retention.
SET ROLE regress_owner;
CREATE TABLE sp_visits (subject text, at timestamp);
INSERT INTO sp_visits VALUES
	('sp-1', (now() AT TIME ZONE current_setting('log_timezone')) - interval '1 year 1 hour'),
	('sp-2', (now() AT TIME ZONE current_setting('log_timezone')) - interval '1 year' + interval '1 hour');
GRANT SELECT ON sp_visits TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('sp_visits', 'subject', ARRAY['billing'], interval '1 year', 'at');
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT set_config('TimeZone', current_setting('log_timezone'), false) IS NOT NULL AS server_zone;
SELECT subject FROM sp_visits ORDER BY subject;
SET TimeZone = 'UTC+15';
SELECT subject FROM sp_visits ORDER BY subject;
RESET TimeZone;
RESET ROLE;
SELECT privacy_guard.unprotect('sp_visits');
DROP TABLE sp_visits;

SELECT privacy_guard.unprotect('sp_people');
SELECT privacy_guard.unprotect('sp_mail');
DROP TABLE sp_people, sp_mail;
SELECT privacy_guard.disallow_purpose('regress_sp_child', 'marketing.email');
DROP ROLE regress_sp_noinherit, regress_sp_child, regress_sp_temp;
-- the authorisation of the dropped role (README: stored by OID) goes too
DELETE FROM privacy_guard.purpose_role r WHERE NOT EXISTS (SELECT 1 FROM pg_roles o WHERE o.oid = r.role);
