-- Adversarial tests against the consent-tagged types (rule 3.4), beyond
-- tagged_leaks.sql: each block is named after the attack it tries.  The
-- withheld values are distinctive (OKAPI-9931, 1961-08-13, 99.31, "MANGO")
-- so that a leak would show in this file's output.
-- DETAIL, HINT and CONTEXT are part of what must not leak: all are shown
\set VERBOSITY default
SET search_path = public, privacy_guard;

SELECT privacy_guard.define_purpose('at2_billing', 'contract');
SELECT privacy_guard.define_purpose('at2_mkt', 'consent');
SELECT privacy_guard.define_purpose('at2_old', 'contract');
CREATE ROLE regress_at2_app LOGIN;
CREATE ROLE regress_at2_writer LOGIN;
CREATE ROLE regress_at2_reader LOGIN;
CREATE ROLE regress_at2_member NOINHERIT IN ROLE regress_at2_reader;
SELECT privacy_guard.allow_purpose('regress_at2_app', 'at2_billing');
SELECT privacy_guard.allow_purpose('regress_at2_app', 'at2_old');
SELECT privacy_guard.allow_purpose('regress_at2_writer', 'at2_billing');
SELECT privacy_guard.allow_purpose('regress_at2_reader', 'at2_mkt');
SELECT privacy_guard.grant_consent('at2-s1', 'at2_mkt');
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.sqlstate_of(text) TO PUBLIC;

-- row 1 is withheld from regress_at2_app (tagged for at2_mkt only), row 2 is not
CREATE TABLE at2_vals (id int, t tagged_text, d tagged_date, n tagged_numeric, j tagged_jsonb);
INSERT INTO at2_vals VALUES
	(1, tag('OKAPI-9931'::text, ARRAY['at2_mkt'], 'at2-s1'), tag('1961-08-13'::date, ARRAY['at2_mkt'], 'at2-s1'),
		tag(99.31, ARRAY['at2_mkt'], 'at2-s1'), tag('{"fruit": "MANGO"}'::jsonb, ARRAY['at2_mkt'], 'at2-s1')),
	(2, tag('open-2'::text, ARRAY['at2_billing']), tag('2000-01-02'::date, ARRAY['at2_billing']),
		tag(2, ARRAY['at2_billing']), tag('{"fruit": "pear"}'::jsonb, ARRAY['at2_billing']));
GRANT SELECT, INSERT, UPDATE ON at2_vals TO PUBLIC;

SET ROLE regress_at2_app;
SET privacy_guard.purpose = 'at2_billing';

-- attack: record image operators (*=, *<=, *>=) compare a withheld value
-- byte by byte with a forged value carrying the same tag (purposes and
-- retain-until are public, the subject guessed): the right guess must not
-- be told from a wrong one.  Tagged values carry a random salt, so only a
-- copy of the very same value compares equal.
CREATE TYPE pg_temp.at2_box AS (v tagged_text);
WITH y AS MATERIALIZED (
	SELECT g, ROW(tag(g, tag_purposes(v.t), 'at2-s1'))::pg_temp.at2_box AS b
	  FROM at2_vals v, unnest(ARRAY['OKAPI-9931', 'OKAPI-0000']) g WHERE v.id = 1),
	 x AS MATERIALIZED (SELECT ROW(t)::pg_temp.at2_box AS b FROM at2_vals WHERE id = 1)
SELECT g, x.b *= y.b AS image_eq, (x.b *<= y.b AND x.b *>= y.b) AS image_between
  FROM x, y ORDER BY g;
SELECT x *= y AS same_copy_eq FROM (SELECT t FROM at2_vals WHERE id = 1) x, (SELECT t FROM at2_vals WHERE id = 1) y;
-- every value built gets its own salt: 200 equal values, no two alike byte-wise
WITH v AS MATERIALIZED (SELECT g, ROW(tag('OKAPI-9931'::text, ARRAY['at2_mkt'], 'at2-s1'))::pg_temp.at2_box AS b
						  FROM generate_series(1, 200) g)
SELECT count(*) AS image_equal_pairs FROM v a JOIN v b ON a.g < b.g AND a.b *= b.b;
-- the same with the other three types
SELECT x *= y AS date_eq FROM (SELECT d FROM at2_vals WHERE id = 1) x,
	   (SELECT tag('1961-08-13'::date, ARRAY['at2_mkt'], 'at2-s1') AS d) y;
SELECT x *= y AS numeric_eq FROM (SELECT n FROM at2_vals WHERE id = 1) x,
	   (SELECT tag(99.31, ARRAY['at2_mkt'], 'at2-s1') AS n) y;
SELECT x *= y AS jsonb_eq FROM (SELECT j FROM at2_vals WHERE id = 1) x,
	   (SELECT tag('{"fruit": "MANGO"}'::jsonb, ARRAY['at2_mkt'], 'at2-s1') AS j) y;

-- attack: aggregate or wrap a withheld value so that another type's output
-- prints it: array_agg, json_agg, jsonb_build_object, concat, xmlelement,
-- a record's text form.  Each fails on the value, naming none.
SELECT array_agg(t) FROM at2_vals;
SELECT array_agg(t)::text FROM at2_vals;
SELECT json_agg(t) FROM at2_vals WHERE id = 1;
SELECT jsonb_build_object('k', t) FROM at2_vals WHERE id = 1;
SELECT concat('x', t) FROM at2_vals WHERE id = 1;
SELECT concat_ws(',', d) FROM at2_vals WHERE id = 1;
SELECT xmlelement(name x, n) FROM at2_vals WHERE id = 1;
SELECT (x)::text FROM (SELECT j FROM at2_vals WHERE id = 1) x;
SELECT t::name FROM at2_vals WHERE id = 1;
SELECT t::bpchar FROM at2_vals WHERE id = 1;

-- attack: text functions on the value without a cast (string_agg, hashing,
-- full text search, regular expressions, ILIKE, SIMILAR TO, position):
-- there is no implicit path to text, and the explicit one is reveal()
SELECT string_agg(t, ',') FROM at2_vals;
SELECT hashtext(t) FROM at2_vals;
SELECT md5(t) FROM at2_vals;
SELECT to_tsvector(t) FROM at2_vals;
SELECT t ~ 'OKAPI' FROM at2_vals;
SELECT t ILIKE 'okapi%' FROM at2_vals;
SELECT t SIMILAR TO 'OKAPI%' FROM at2_vals;
SELECT position('O' IN t) FROM at2_vals;
SELECT string_agg(t::text, ',' ORDER BY id) AS agg FROM at2_vals;
SELECT id, hashtext(t::text) IS NULL AS hash_null, md5(t::text) IS NULL AS md5_null,
	   to_tsvector(t::text) IS NULL AS tsv_null, t::text ~ 'OKAPI' AS regex,
	   sha256(t::text::bytea) IS NULL AS sha_null, quote_literal(t) AS quoted
  FROM at2_vals ORDER BY id;

-- attack: let DISTINCT ON, window partitions or window ordering group or
-- order rows by the withheld content: refused; a window function that only
-- passes the value along keeps it withheld
SELECT DISTINCT ON (t) id FROM at2_vals;
SELECT id, rank() OVER (ORDER BY t) FROM at2_vals;
SELECT id, count(*) OVER (PARTITION BY t) FROM at2_vals;
SELECT id, reveal(lag(t) OVER (ORDER BY id)) AS prev, reveal(first_value(t) OVER (ORDER BY id)) AS first
  FROM at2_vals ORDER BY id;
SELECT x.* FROM (SELECT t FROM at2_vals) x ORDER BY x USING *<;

-- attack: equality probing — a right guess must look like a wrong one:
-- = with a literal, IS DISTINCT FROM, NULLIF, CASE, IN, = ANY
SELECT g, t = g::tagged_text AS eq, t IS DISTINCT FROM g::tagged_text AS distinct_,
	   reveal(NULLIF(t, g::tagged_text)) IS NULL AS nullif_null,
	   CASE t WHEN g::tagged_text THEN 'hit' ELSE 'miss' END AS case_,
	   t IN (g::tagged_text) AS in_, t = ANY (ARRAY[g::tagged_text]) AS any_,
	   t LIKE g AS like_, length(t) AS len
  FROM at2_vals, unnest(ARRAY['OKAPI-9931', 'OKAPI-0000']) g WHERE id = 1 ORDER BY g;
SELECT g, d = g::tagged_date AS d_eq, d < g::tagged_date AS d_lt, d >= g::tagged_date AS d_ge
  FROM at2_vals, unnest(ARRAY['1961-08-13', '1961-08-14']) g WHERE id = 1 ORDER BY g;
SELECT g, n = g::tagged_numeric AS n_eq, n > g::tagged_numeric AS n_gt, n <= g::tagged_numeric AS n_le
  FROM at2_vals, unnest(ARRAY[99.31, 50]) g WHERE id = 1 ORDER BY g;

-- attack: the jsonb operators on a tagged_jsonb: none without the cast,
-- which is reveal()
SELECT j -> 'fruit' FROM at2_vals WHERE id = 1;
SELECT j::jsonb -> 'fruit' AS fruit, jsonb_path_exists(j::jsonb, '$.fruit ? (@ == "MANGO")') AS path
  FROM at2_vals WHERE id = 1;

-- attack: COPY an array or a record holding a withheld value, in text and
-- binary: the value's output fails, nothing is written
COPY (SELECT ARRAY[t] FROM at2_vals WHERE id = 1) TO STDOUT;
COPY (SELECT x FROM (SELECT id, d FROM at2_vals WHERE id = 1) x) TO STDOUT (FORMAT binary);
COPY (SELECT j FROM at2_vals ORDER BY id) TO STDOUT (FORMAT csv);
RESET ROLE;

-- attack: a domain CHECK over a tagged type as an oracle: a withheld value
-- passes whatever its content (its operators are NULL), and a visible value
-- that fails is refused without its value in the message
CREATE DOMAIN at2_short AS tagged_text CHECK (length(VALUE) < 6);
CREATE DOMAIN at2_guess AS tagged_text CHECK (VALUE <> 'OKAPI-9931'::tagged_text);
CREATE TABLE at2_dom (id int, s at2_short, g at2_guess);
GRANT SELECT, INSERT ON at2_dom TO PUBLIC;
SET ROLE regress_at2_app;
SET privacy_guard.purpose = 'at2_billing';
INSERT INTO at2_dom SELECT id, t, t FROM at2_vals WHERE id = 1;
SELECT pg_temp.sqlstate_of($$INSERT INTO at2_dom VALUES (2, tag('TOO-LONG-TAPIR'::text, ARRAY['at2_billing']))$$);
SELECT pg_temp.sqlstate_of($$INSERT INTO at2_dom (id, g) VALUES (3, tag('OKAPI-9931'::text, ARRAY['at2_billing']))$$);
SELECT id, reveal(s) AS s, reveal(g) AS g FROM at2_dom ORDER BY id;
RESET ROLE;

-- attack: make a table constraint fail on a row holding a withheld value so
-- that the error's "Failing row contains (...)" prints it: the statement
-- fails on the value's output instead (a visible row is shown, as usual)
CREATE TABLE at2_chk (id int CHECK (id > 0), t tagged_text);
GRANT SELECT, INSERT ON at2_chk TO PUBLIC;
SET ROLE regress_at2_app;
SET privacy_guard.purpose = 'at2_billing';
INSERT INTO at2_chk SELECT -1, t FROM at2_vals WHERE id = 1;
-- (the error caught to show its DETAIL with the purpose's id as #: ids
-- depend on the purposes defined before)
DO $$
DECLARE
	v_detail text;
BEGIN
	INSERT INTO at2_chk SELECT -2, t FROM at2_vals WHERE id = 2;
EXCEPTION WHEN check_violation THEN
	GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
	RAISE NOTICE 'ERROR:  %', SQLERRM;
	RAISE NOTICE 'DETAIL:  %', regexp_replace(v_detail, '": [0-9]+([,}])', '": #\1', 'g');
END
$$;
SELECT count(*) AS rows_written FROM at2_chk;
RESET ROLE;

-- attack: index or statistics expressions over reveal() to order or keep
-- withheld values: reveal() depends on the session, so it is not IMMUTABLE
-- (CREATE STATISTICS does not check this: see README, Limits)
CREATE INDEX ON at2_vals (reveal(t));
CREATE INDEX ON at2_vals USING hash (reveal(j));

-- attack: forged tag.  A role may write a literal naming any purpose, even
-- one it is not authorised for, and any subject: writing is not reading.  The
-- writer cannot read the value back; readers see it only as rule 3.4 allows
-- for the tag it carries; a literal whose purpose id contradicts the
-- registry is refused.
SELECT id AS billing_id FROM privacy_guard.purpose WHERE name = 'at2_billing' \gset
SET ROLE regress_at2_writer;
SET privacy_guard.purpose = 'at2_billing';
INSERT INTO at2_vals (id, t) VALUES
	(10, 'tagged:{"value": "FORGED-10", "purposes": ["at2_mkt"], "subject": "at2-s1"}'),
	(11, 'tagged:{"value": "FORGED-11", "purposes": ["at2_mkt"], "subject": "at2-s2"}');
SELECT id, reveal(t) FROM at2_vals WHERE id >= 10 ORDER BY id;
SELECT regexp_replace(pg_temp.sqlstate_of(format(
	$$INSERT INTO at2_vals (id, t) VALUES (12, 'tagged:{"value": "x", "purposes": {"at2_mkt": %s}}')$$,
	:billing_id)), 'id [0-9]+', 'id #') AS refused;
SET ROLE regress_at2_reader;
SET privacy_guard.purpose = 'at2_mkt';
SELECT id, reveal(t) FROM at2_vals WHERE id >= 10 ORDER BY id;   -- at2-s2 has no consent
RESET ROLE;

-- attack: NOINHERIT membership in an authorised role, and SET ROLE from a
-- superuser: rule 3.4 is decided for current_user, and only by authorisations
-- it holds or inherits
SET ROLE regress_at2_member;
SET privacy_guard.purpose = 'at2_mkt';
SELECT id, reveal(t) FROM at2_vals WHERE id = 1;
RESET ROLE;
SET SESSION AUTHORIZATION regress_at2_app;
SET privacy_guard.purpose = 'at2_billing';
SELECT id, reveal(t) FROM at2_vals WHERE id = 1;
RESET SESSION AUTHORIZATION;
RESET privacy_guard.purpose;

-- attack: tag replay.  A value tagged for subject at2-s1 copied into the row
-- of subject at2-s3 of a protected table keeps its tag: the default-tag
-- trigger does not re-tag it with the row's subject, so it stays bound to
-- at2-s1's consent (withdrawn below) even though at2-s3 consents
CREATE TABLE at2_people (id int, customer text, note tagged_text);
SELECT privacy_guard.protect('at2_people', 'customer', ARRAY['at2_mkt']);
GRANT SELECT, INSERT, UPDATE ON at2_people TO regress_at2_reader;
SELECT privacy_guard.grant_consent('at2-s3', 'at2_mkt');
SET ROLE regress_at2_reader;
SET privacy_guard.purpose = 'at2_mkt';
INSERT INTO at2_people VALUES (1, 'at2-s3', 'own note of s3'), (3, 'at2-s3', 'another note of s3');
INSERT INTO at2_people SELECT 2, 'at2-s3', t FROM at2_vals WHERE id = 1;
UPDATE at2_people p SET note = v.t FROM at2_vals v WHERE p.id = 1 AND v.id = 10;
RESET ROLE;
SELECT privacy_guard.withdraw_consent('at2-s1', 'at2_mkt');
SET ROLE regress_at2_reader;
SET privacy_guard.purpose = 'at2_mkt';
SELECT id, customer, reveal(note), tag_purposes(note) FROM at2_people ORDER BY id;
RESET ROLE;
SELECT id, customer, reveal(note) FROM at2_people ORDER BY id;   -- superuser: the values are there
RESET privacy_guard.purpose;

-- attack: retain-until at the edges: a past time and -infinity are never
-- revealed, +infinity always is; the round erases the first two only
CREATE TABLE at2_retain (id int, t tagged_text);
INSERT INTO at2_retain VALUES
	(1, tag('PAST-1'::text, ARRAY['at2_billing'], NULL, now() - interval '1 second')),
	(2, tag('NEGINF-2'::text, ARRAY['at2_billing'], NULL, '-infinity')),
	(3, tag('INF-3'::text, ARRAY['at2_billing'], NULL, 'infinity')),
	(4, 'tagged:{"value": "LIT-4", "purposes": ["at2_billing"], "retain_until": "-infinity"}'),
	(5, 'tagged:{"value": "LIT-5", "purposes": ["at2_billing"], "retain_until": "infinity"}');
GRANT SELECT ON at2_retain TO regress_at2_app;
SET ROLE regress_at2_app;
SET privacy_guard.purpose = 'at2_billing';
SELECT id, reveal(t), tag_retain_until(t) < now() AS past FROM at2_retain ORDER BY id;
RESET ROLE;
SELECT privacy_guard.run_maintenance('at2_retain') -> 'expired' -> 'tagged' AS erased;
SELECT id, t IS NULL AS erased FROM at2_retain ORDER BY id;

-- attack: drop a purpose and define it again (or let another purpose take
-- its place): values tagged before keep the old id, which no new purpose
-- ever gets, so they are revealed to no bound role
INSERT INTO at2_retain VALUES (6, tag('OLD-PURPOSE-6'::text, ARRAY['at2_old']));
SELECT privacy_guard.disallow_purpose('regress_at2_app', 'at2_old');
SELECT privacy_guard.drop_purpose('at2_old');
SELECT privacy_guard.define_purpose('at2_old', 'contract');
SELECT privacy_guard.define_purpose('at2_newer', 'contract');
SELECT privacy_guard.allow_purpose('regress_at2_app', 'at2_old');
SELECT privacy_guard.allow_purpose('regress_at2_app', 'at2_newer');
SET ROLE regress_at2_app;
SET privacy_guard.purpose = 'at2_old';
SELECT reveal(t), tag_purposes(t)::text ~ '^\{"?#[0-9]+"?\}$' AS shows_dropped_id FROM at2_retain WHERE id = 6;
SET privacy_guard.purpose = 'at2_newer';
SELECT reveal(t) FROM at2_retain WHERE id = 6;
RESET ROLE;
RESET privacy_guard.purpose;

-- documented, not defended: pg_column_size() shows a withheld value's
-- stored size (README, Limits)
SET ROLE regress_at2_app;
SET privacy_guard.purpose = 'at2_billing';
SELECT pg_column_size(t) > pg_column_size(tag('x'::text, ARRAY['at2_mkt'], 'at2-s1')) AS size_shows
  FROM at2_vals WHERE id = 1;
RESET ROLE;
RESET privacy_guard.purpose;

SELECT privacy_guard.unprotect('at2_people');
DROP TABLE at2_vals, at2_dom, at2_chk, at2_people, at2_retain;
DROP DOMAIN at2_short, at2_guess;
