-- Adversarial tests against the transparency functions (subject_report,
-- processing_register, privacy_notice, check) and the access log's switch
-- and interfaces (the logging itself needs shared memory: see
-- test/t/011_attacks_audit.pl).  Each block is named after the attack.
\set VERBOSITY terse
SELECT current_user AS super \gset
CREATE ROLE regress_at2t_app LOGIN;
CREATE ROLE regress_at2t_owner LOGIN;
CREATE ROLE regress_at2t_rec LOGIN;
CREATE ROLE regress_at2t_adm LOGIN;
GRANT CREATE ON SCHEMA public TO regress_at2t_owner, regress_at2t_app;
SELECT privacy_guard.define_purpose('at2t_billing', 'contract', 'Billing for the transparency attacks');
SELECT privacy_guard.allow_purpose('regress_at2t_app', 'at2t_billing');
SELECT privacy_guard.grant_recorder('regress_at2t_rec');
SELECT privacy_guard.grant_admin('regress_at2t_adm');

SET ROLE regress_at2t_owner;
CREATE TABLE at2t_customers (id bigint, name text);
INSERT INTO at2t_customers VALUES (942, 'ADA-42'), (9420, 'BOB-420'), (94, 'CY-4'), (-942, 'NEG-42');
CREATE TABLE at2t_notes (who text, body text);
INSERT INTO at2t_notes VALUES ('942', 'T-42'), ('x%', 'T-PERCENT'), ('x_y', 'T-UNDERSCORE'),
	('a''b', 'T-QUOTE'), ('a\b', 'T-BACKSLASH'), ('x', 'T-X');
GRANT SELECT ON at2t_customers, at2t_notes TO regress_at2t_app;
RESET ROLE;
SELECT privacy_guard.protect('at2t_customers', 'id', ARRAY['at2t_billing']);
SELECT privacy_guard.protect('at2t_notes', 'who', ARRAY['at2t_billing']);
SELECT privacy_guard.define_purpose('at2t_news', 'consent');
SELECT privacy_guard.grant_consent('942', 'at2t_news');

-- the names of the rows a report holds, in order
CREATE FUNCTION pg_temp.names(r jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(x #>> '{}', ',' ORDER BY x #>> '{}'), '')
	  FROM jsonb_path_query(r, '$.data[*].rows[*].*') x
	 WHERE x #>> '{}' ~ '^(ADA|BOB|CY|NEG|T)-'
$$;
GRANT EXECUTE ON FUNCTION pg_temp.names(jsonb) TO PUBLIC;

-- attack: subject_report by roles that are not administrators — an
-- application authorised for the table's purpose, a recorder, the owner of
-- the protected tables, and through a SECURITY DEFINER function the
-- application owns: all refused
SET ROLE regress_at2t_app;
SET privacy_guard.purpose = 'at2t_billing';
SELECT privacy_guard.subject_report('942');
CREATE FUNCTION at2t_report(k text) RETURNS jsonb LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS $$ SELECT privacy_guard.subject_report(k) $$;
SELECT at2t_report('942');
RESET privacy_guard.purpose;
SET ROLE regress_at2t_rec;
SELECT privacy_guard.subject_report('942');
SET ROLE regress_at2t_owner;
SELECT privacy_guard.subject_report('942');
RESET ROLE;
DROP FUNCTION at2t_report(text);

-- attack: an administrator whose grant was revoked keeps nothing
SELECT privacy_guard.grant_admin('regress_at2t_app');
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy_guard FROM regress_at2t_app;
REVOKE ALL ON ALL TABLES IN SCHEMA privacy_guard FROM regress_at2t_app;
SET ROLE regress_at2t_app;
SELECT privacy_guard.subject_report('942');
SELECT count(*) FROM privacy_guard.processing_register;
RESET ROLE;

-- attack: hostile keys — quotes, backslashes, LIKE wildcards, regular
-- expression and JSON path syntax, SQL injection: each finds exactly the
-- rows of the subject whose key it is, never another's
SET ROLE regress_at2t_adm;
SELECT k, pg_temp.names(privacy_guard.subject_report(k)) AS rows_found
  FROM unnest(ARRAY['x%', 'x_', '%', '_', 'x_y', 'a''b', 'a\b', 'a''b'' OR ''1''=''1',
					'942'' OR true --', '.*', 'x|942', '$.data', '942); DROP TABLE at2t_notes; --',
					'-942', '942', 'x']) k
 ORDER BY k;
-- the report names only the key it was asked for
SELECT privacy_guard.subject_report('x%') ->> 'subject' AS subject;
RESET ROLE;

-- attack: another spelling of an integer key ('0942', '+942', ' 942') must not
-- read subject 942's rows under a label whose consents and requests are
-- another key's: like forget(), erasure_status() and access_history(), the
-- report matches only the canonical text form.
SET ROLE regress_at2t_adm;
SELECT k, pg_temp.names(r) AS rows_found, jsonb_array_length(r -> 'consents') AS consents
  FROM unnest(ARRAY['942', '0942', '+942', ' 942']) k, privacy_guard.subject_report(k) r
 ORDER BY k;
RESET ROLE;

-- attack: the compliance views and functions by non-administrators
SET ROLE regress_at2t_app;
SELECT count(*) FROM privacy_guard.processing_register;
SELECT count(*) FROM privacy_guard.check();
SELECT count(*) FROM privacy_guard.access_log;
SELECT count(*) FROM privacy_guard.access_log_data;
SELECT * FROM privacy_guard.access_history('942', '-infinity');
SELECT privacy_guard._subjects_may_include('\x00'::bytea, '942');
SET ROLE regress_at2t_rec;
SELECT count(*) FROM privacy_guard.processing_register;
SELECT * FROM privacy_guard.access_history('942', '-infinity');
RESET ROLE;

-- attack: markup smuggled into the public privacy notice through a purpose
-- description and a column comment an owner controls: line breaks that
-- would start a heading or a list, a link with a javascript: target, raw
-- HTML that closes the notice's section
SELECT privacy_guard.define_purpose('at2t_billing', 'contract',
	E'Billing\n\n# Fake heading\n- fake item </section><script>alert(1)</script>');
SET ROLE regress_at2t_owner;
COMMENT ON COLUMN at2t_customers.name IS E'name [click](javascript:alert(2))\n## also fake';
RESET ROLE;
SELECT strpos(n, '<script>') > 0 AS raw_script, strpos(n, '</section><') > 0 AS closes_section,
	   strpos(n, '&lt;script&gt;') > 0 AS escaped_script
  FROM privacy_guard.privacy_notice('html') n;
SELECT n ~ E'\n# Fake' AS md_heading, n ~ E'\n- fake' AS md_item, n ~ E'\n## also' AS md_heading2,
	   strpos(n, '[click](javascript') > 0 AS md_link, strpos(n, '<script>') > 0 AS raw_script
  FROM privacy_guard.privacy_notice('markdown') n;

-- attack: switch the access log off for one's own reads.  privacy_guard.audit
-- is a superuser setting: SET, SET LOCAL, set_config(), ALTER ROLE on
-- oneself, a function SET clause (created by a non-superuser, or owned by a
-- superuser but SECURITY INVOKER) and RESET are all refused; a superuser's
-- SECURITY DEFINER function may switch it, but only for its own body
CREATE FUNCTION at2t_audit_off_invoker() RETURNS text LANGUAGE sql
	SET privacy_guard.audit = off AS $$ SELECT current_setting('privacy_guard.audit') $$;
CREATE FUNCTION at2t_audit_off_definer() RETURNS text LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp SET privacy_guard.audit = off
	AS $$ SELECT pg_catalog.current_setting('privacy_guard.audit') $$;
GRANT EXECUTE ON FUNCTION at2t_audit_off_invoker(), at2t_audit_off_definer() TO regress_at2t_app;
SET privacy_guard.audit = on;
SET SESSION AUTHORIZATION regress_at2t_app;
SHOW privacy_guard.audit;
SET privacy_guard.audit = off;
BEGIN;
SET LOCAL privacy_guard.audit = off;
ROLLBACK;
SELECT set_config('privacy_guard.audit', 'off', false);
SELECT set_config('privacy_guard.audit', 'off', true);
ALTER ROLE regress_at2t_app SET privacy_guard.audit = off;
ALTER ROLE CURRENT_USER SET privacy_guard.audit = off;
CREATE FUNCTION at2t_mine() RETURNS int LANGUAGE sql SET privacy_guard.audit = off AS 'SELECT 1';
SELECT at2t_audit_off_invoker();
SELECT at2t_audit_off_definer() AS inside_definer;
RESET privacy_guard.audit;
SHOW privacy_guard.audit;
RESET SESSION AUTHORIZATION;
RESET privacy_guard.audit;
DROP FUNCTION at2t_audit_off_invoker(), at2t_audit_off_definer();

-- attack: RESET ALL and DISCARD ALL in a session whose audit was switched
-- on for the role (ALTER ROLE by a superuser): the role's setting stays
ALTER ROLE regress_at2t_app SET privacy_guard.audit = on;
-- (and, before the library is loaded in the session, a SET of the
-- placeholder: dropped when the library defines the setting)
\c - regress_at2t_app
\set VERBOSITY terse
SET client_min_messages = error;
SET privacy_guard.audit = off;
SET privacy_guard.purpose = 'at2t_billing';
SELECT count(*) FROM at2t_customers;	-- loads the library
SHOW privacy_guard.audit;
RESET ALL;
SHOW privacy_guard.audit;
DISCARD ALL;
SHOW privacy_guard.audit;
RESET privacy_guard.audit;
SHOW privacy_guard.audit;
\c - :super
\set VERBOSITY terse
ALTER ROLE regress_at2t_app RESET ALL;

SELECT privacy_guard.unprotect('at2t_customers');
SELECT privacy_guard.unprotect('at2t_notes');
DROP TABLE at2t_customers, at2t_notes;
REVOKE CREATE ON SCHEMA public FROM regress_at2t_owner, regress_at2t_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA privacy_guard FROM regress_at2t_adm, regress_at2t_rec;
REVOKE ALL ON ALL TABLES IN SCHEMA privacy_guard FROM regress_at2t_adm, regress_at2t_rec;
SELECT privacy_guard.disallow_purpose('regress_at2t_app', 'at2t_billing');
SELECT privacy_guard.withdraw_consent('942', 'at2t_news');
DROP ROLE regress_at2t_app, regress_at2t_owner, regress_at2t_rec, regress_at2t_adm;
