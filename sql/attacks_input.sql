-- Bad input: every SQL function with NULLs, empty strings, huge values,
-- unknown purposes, subjects, roles and tables.  No crash, a clear error
-- (or a documented NULL), nothing half-done, no subject key in any error.
-- DETAIL, HINT and CONTEXT are part of what must not leak: all are shown
\set VERBOSITY default

SET ROLE regress_owner;
CREATE TABLE in_people (id bigint, email text, seen date);
CREATE TABLE in_tags (tag varchar(20), note text);
INSERT INTO in_people VALUES (2041, 'in41@example.org', current_date), (2042, 'in42@example.org', current_date);
INSERT INTO in_tags VALUES ('in-a', 'a');
GRANT SELECT ON in_people, in_tags TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('in_people', 'id', ARRAY['billing'], interval '1 year', 'seen');
SELECT privacy_guard.protect('in_tags', 'tag', ARRAY['billing']);
SELECT privacy_guard.forget('2042') > 0 AS filed;

CREATE TEMP TABLE in_before AS
SELECT (SELECT count(*) FROM privacy_guard.purpose) AS purposes,
	   (SELECT count(*) FROM privacy_guard.purpose_role) AS roles,
	   (SELECT count(*) FROM privacy_guard.consent_ledger) AS ledger,
	   (SELECT count(*) FROM privacy_guard.consent_state) AS consents,
	   (SELECT count(*) FROM privacy_guard.erasure_request) AS requests,
	   (SELECT count(*) FROM privacy_guard.protected_table) AS tables,
	   (SELECT count(*) FROM privacy_guard.anonymizer) AS anonymizers;

-- runs a statement; shows its SQLSTATE, and whether the error's message,
-- detail, hint or context contains the marker key
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v_msg text; v_detail text; v_hint text; v_ctx text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL,
							v_hint = PG_EXCEPTION_HINT, v_ctx = PG_EXCEPTION_CONTEXT;
	/* the last two context lines are this function's EXECUTE of q itself */
	v_ctx := array_to_string((string_to_array(v_ctx, E'\n'))[1:cardinality(string_to_array(v_ctx, E'\n')) - 2], E'\n');
	RETURN SQLSTATE || CASE WHEN concat_ws(' ', v_msg, v_detail, v_hint, v_ctx) LIKE '%zq-key%'
							THEN ' LEAKS THE KEY' ELSE '' END;
END
$$;

-- attack: NULL in every argument of every SQL function
SELECT q, pg_temp.try(q) FROM unnest(ARRAY[
	'SELECT privacy_guard.define_purpose(NULL)',
	'SELECT privacy_guard.define_purpose(''in_x'', NULL)',
	'SELECT privacy_guard.drop_purpose(NULL)',
	'SELECT privacy_guard.allow_purpose(NULL, ''billing'')',
	'SELECT privacy_guard.allow_purpose(''regress_app'', NULL)',
	'SELECT privacy_guard.disallow_purpose(NULL, NULL)',
	'SELECT privacy_guard.grant_consent(''zq-key'', NULL)',
	'SELECT privacy_guard.withdraw_consent(NULL, ''marketing'')',
	'SELECT privacy_guard.withdraw_consent(''zq-key'', NULL)',
	'SELECT privacy_guard.object_to(NULL, ''analytics'')',
	'SELECT privacy_guard.object_to(''zq-key'', NULL)',
	'SELECT privacy_guard.forget(NULL)',
	'SELECT privacy_guard.protect(NULL, ''id'', ARRAY[''billing''])',
	'SELECT privacy_guard.protect(''in_people'', NULL, ARRAY[''billing''])',
	'SELECT privacy_guard.protect(''in_people'', ''id'', NULL)',
	'SELECT privacy_guard.protect(''in_people'', ''id'', ARRAY[NULL])',
	'SELECT privacy_guard.protect(''in_people'', ''id'', ARRAY[''billing''], NULL, NULL, NULL)',
	'SELECT privacy_guard.unprotect(NULL)',
	'SELECT privacy_guard.set_anonymizer(NULL, ''email'', ''null'')',
	'SELECT privacy_guard.grant_admin(NULL)',
	'SELECT privacy_guard.grant_recorder(NULL)'
]) AS q;
-- STRICT or NULL-tolerant functions answer NULL
SELECT privacy_guard.has_consent(NULL, 'billing') IS NULL AS has_consent_null,
	   privacy_guard.erasure_status(NULL) IS NULL AS status_null,
	   privacy_guard.set_anonymizer('in_people', 'email', NULL) IS NULL AS anonymizer_null;

-- attack: empty strings where names, keys and methods go
SELECT q, pg_temp.try(q) FROM unnest(ARRAY[
	'SELECT privacy_guard.define_purpose(''in_x'', '''')',
	'SELECT privacy_guard.drop_purpose('''')',
	'SELECT privacy_guard.allow_purpose(''regress_app'', '''')',
	'SELECT privacy_guard.grant_consent(''zq-key'', '''')',
	'SELECT privacy_guard.withdraw_consent('''', ''marketing'')',
	'SELECT privacy_guard.object_to('''', ''analytics'')',
	'SELECT privacy_guard.has_consent(''zq-key'', '''')',
	'SELECT privacy_guard.protect(''in_people'', '''', ARRAY[''billing''])',
	'SELECT privacy_guard.protect(''in_people'', ''id'', ARRAY[''''])',
	'SELECT privacy_guard.set_anonymizer(''in_people'', '''', ''null'')',
	'SELECT privacy_guard.set_anonymizer(''in_people'', ''email'', '''')',
	'SELECT privacy_guard.set_anonymizer(''in_people'', ''email'', ''.'')'
]) AS q;
SELECT privacy_guard.erasure_status('') IS NULL AS empty_status_null;

-- attack: huge values (a 1 MB key, a 100 kB purpose, deep nesting)
SELECT q, pg_temp.try(q) FROM unnest(ARRAY[
	'SELECT privacy_guard.grant_consent(''zq-key'' || repeat(''x'', 1000000), ''marketing'')',
	'SELECT privacy_guard.withdraw_consent(''zq-key'' || repeat(''x'', 1000000), ''marketing'')',
	'SELECT privacy_guard.forget(''zq-key'' || repeat(''x'', 1000000))',
	'SELECT privacy_guard.define_purpose(repeat(''a'', 100000))',
	'SELECT privacy_guard.define_purpose(''billing.'' || repeat(''a'', 64))',
	'SELECT privacy_guard.define_purpose(''in_x'', ''contract'', repeat(''d'', 1000000))',
	'SELECT privacy_guard.grant_consent(''zq-key'', ''marketing'', evidence => (SELECT jsonb_agg(g) FROM generate_series(1, 100000) g))'
]) AS q;
SELECT privacy_guard.has_consent(repeat('x', 1000000), 'marketing') AS huge_has_consent,
	   privacy_guard.erasure_status(repeat('x', 1000000)) IS NULL AS huge_status_null;
SET ROLE regress_app;
SET privacy_guard.purpose = 'in_no_such_purpose';
SELECT pg_temp.try('SELECT count(*) FROM in_people') AS unknown_purpose;
SELECT set_config('privacy_guard.purpose', repeat('p', 100000), false) IS NOT NULL AS set_huge;
SELECT pg_temp.try('SELECT count(*) FROM in_people') AS huge_purpose;
RESET ROLE;
RESET privacy_guard.purpose;

-- attack: unknown purposes, subjects, roles and tables
SELECT q, pg_temp.try(q) FROM unnest(ARRAY[
	'SELECT privacy_guard.drop_purpose(''in_never_defined'')',
	'SELECT privacy_guard.allow_purpose(''regress_app'', ''in_never_defined'')',
	'SELECT privacy_guard.allow_purpose(0::oid::regrole, ''billing'')',
	'SELECT privacy_guard.allow_purpose(424242::oid::regrole, ''billing'')',
	'SELECT privacy_guard.disallow_purpose(''regress_app'', ''in_never_defined'')',
	'SELECT privacy_guard.grant_consent(''zq-key'', ''in_never_defined'')',
	'SELECT privacy_guard.withdraw_consent(''zq-key'', ''in_never_defined'')',
	'SELECT privacy_guard.object_to(''zq-key'', ''in_never_defined'')',
	'SELECT privacy_guard.has_consent(''zq-key'', ''in_never_defined'')',
	'SELECT privacy_guard.protect(0::oid::regclass, ''id'', ARRAY[''billing''])',
	'SELECT privacy_guard.protect(''pg_class'', ''relname'', ARRAY[''billing''])',
	'SELECT privacy_guard.unprotect(0::oid::regclass)',
	'SELECT privacy_guard.unprotect(''pg_class'')',
	'SELECT privacy_guard.set_anonymizer(0::oid::regclass, ''x'', ''null'')',
	'SELECT privacy_guard.set_anonymizer(''in_people'', ''email'', ''public.nothing'')',
	'SELECT privacy_guard.set_anonymizer(''in_people'', ''email'', ''pg_catalog.upper); DROP TABLE in_people; --'')',
	'SELECT privacy_guard.run_maintenance(0::oid::regclass)',
	'SELECT privacy_guard.run_maintenance(''pg_class'')',
	'SELECT privacy_guard.grant_recorder(0::oid::regrole)'
]) AS q;
SELECT privacy_guard.erasure_status('zq-key-never-forgotten') IS NULL AS unknown_status_null,
	   privacy_guard.has_consent('zq-key-never-seen', 'marketing') AS unknown_has_consent;

-- attack: extreme times (infinity) for consent expiry and forget due times
SELECT q, pg_temp.try(q) FROM unnest(ARRAY[
	'SELECT privacy_guard.grant_consent(''zq-key-inf'', ''marketing'', ''-infinity'')',
	'SELECT privacy_guard.grant_consent(''zq-key-inf'', ''marketing'', ''infinity'')',
	'SELECT privacy_guard.forget(''zq-key-never-due'', due => ''infinity'')',
	'SELECT privacy_guard.protect(''in_people'', ''id'', ARRAY[''billing''], interval ''-infinity'', ''seen'')',
	'SELECT privacy_guard.protect(''in_people'', ''id'', ARRAY[''billing''], interval ''0'', ''seen'')'
]) AS q;
SELECT privacy_guard.has_consent('zq-key-inf', 'marketing') AS consent_until_infinity,
	   privacy_guard.erasure_status('zq-key-never-due') AS never_due;

-- nothing half-done by any of the failures above: only the calls that
-- succeeded changed anything (purpose in_x with its 1 MB description, the
-- consents with 100,000-element evidence and until infinity, the never-due
-- request; the round run_maintenance(0) ran erased subject 2042)
SELECT (SELECT count(*) FROM privacy_guard.purpose) - b.purposes AS purposes,
	   (SELECT count(*) FROM privacy_guard.purpose_role) - b.roles AS roles,
	   (SELECT count(*) FROM privacy_guard.consent_ledger) - b.ledger AS ledger,
	   (SELECT count(*) FROM privacy_guard.consent_state) - b.consents AS consents,
	   (SELECT count(*) FROM privacy_guard.erasure_request) - b.requests AS requests,
	   (SELECT count(*) FROM privacy_guard.protected_table) - b.tables AS tables,
	   (SELECT count(*) FROM privacy_guard.anonymizer) - b.anonymizers AS anonymizers
  FROM in_before b;
SELECT count(*) AS in_people_rows FROM in_people;

-- attack: the public policy functions called directly with the wrong types,
-- NULLs, unregistered tables and wrong retention types (the rules are
-- applied to the value's text form; no crash, no wrong answer)
SELECT privacy_guard.forget('2043') > 0 AND privacy_guard.forget('in-a') > 0 AS filed;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT privacy_guard.row_visible('in_people'::regclass, 2043::bigint) AS forgotten_bigint,
	   privacy_guard.row_visible('in_people'::regclass, 2043::int2) AS forgotten_int2,
	   privacy_guard.row_visible('in_people'::regclass, '2043'::text) AS forgotten_text,
	   privacy_guard.row_visible('in_people'::regclass, 2043.0::numeric) AS numeric_text_form_43_0,
	   privacy_guard.row_visible('in_people'::regclass, 2041::bigint) AS kept;
SELECT privacy_guard.row_visible('in_tags'::regclass, 'in-a'::varchar) AS forgotten_varchar,
	   privacy_guard.row_visible('in_tags'::regclass, 'in-a'::text) AS forgotten_text,
	   privacy_guard.row_visible('in_tags'::regclass, 7::bigint) AS int_on_text_table,
	   privacy_guard.row_visible('in_tags'::regclass, '{1,2}'::int[]) AS array_on_text_table,
	   privacy_guard.row_visible('in_tags'::regclass, NULL::text) AS null_subject;
SELECT privacy_guard.row_visible('in_people'::regclass, 2041::bigint, '1900-01-01'::date) AS expired_date,
	   privacy_guard.row_visible('in_people'::regclass, 2041::bigint, NULL::date) AS null_retention,
	   privacy_guard.row_visible('in_people'::regclass, 2041::bigint, 'infinity'::timestamptz) AS infinite;
SELECT pg_temp.try('SELECT privacy_guard.row_visible(0::oid::regclass, 1)') AS unregistered_oid,
	   pg_temp.try('SELECT privacy_guard.row_visible(NULL::regclass, 1)') AS null_table,
	   pg_temp.try('SELECT privacy_guard.row_visible(''pg_class''::regclass, 1)') AS catalog_table,
	   pg_temp.try('SELECT privacy_guard.write_allowed(0::oid::regclass)') AS write_unregistered,
	   privacy_guard.write_allowed(NULL) IS NULL AS write_null;
RESET privacy_guard.purpose;
SELECT pg_temp.try('SELECT privacy_guard.row_visible(''in_people''::regclass, 2041::bigint)') AS no_purpose;
RESET ROLE;

SELECT privacy_guard.unprotect('in_people');
SELECT privacy_guard.unprotect('in_tags');
DROP TABLE in_people, in_tags;
