-- Consent-tagged types (SPEC 1, 2 "Tagged values", 3.4): I/O round trips, tag(),
-- reveal() under every clause of rule 3.4, default tags, and the tag travelling.
\set VERBOSITY terse
SET search_path = public, privacy_guard;

SELECT privacy_guard.define_purpose('tg_billing', 'contract');
SELECT privacy_guard.define_purpose('tg_mkt', 'consent');
SELECT privacy_guard.define_purpose('tg_mkt.email', 'consent');
SELECT privacy_guard.define_purpose('tg_stats', 'legitimate_interests');
SELECT privacy_guard.define_purpose('tg_other', 'contract');
-- (the regress_tg_ roles are created in setup.sql)
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_billing');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_mkt');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_stats');
SELECT privacy_guard.allow_purpose('regress_tg_unauth', 'tg_other');

-- the text form without purpose ids (they depend on earlier tests)
CREATE FUNCTION pg_temp.lit(v anyelement) RETURNS text LANGUAGE sql AS
$$ SELECT regexp_replace(format('%s', v), '": [0-9]+([,}])', '": #\1', 'g') $$;
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- ---------------------------------------------------------------- building and reading
SELECT pg_temp.lit(tag('ZEBRA-4711@example.org'::text, ARRAY['tg_mkt', 'tg_billing', 'tg_mkt'],
					   'tg-s1', '2099-01-01 00:00:00+00'));
SELECT pg_temp.lit(tag(4711.25, ARRAY['tg_billing']));
SELECT pg_temp.lit(tag('1970-07-04'::date, ARRAY['tg_billing'], 'tg-s1'));
SELECT pg_temp.lit(tag('{"iban": "DE4711", "n": [1, 2]}'::jsonb, ARRAY['tg_billing']));
SELECT reveal(tag('x'::text, ARRAY['tg_billing'])),
	   tag_purposes(tag('x'::text, ARRAY['tg_mkt.email', 'tg_billing'])),
	   tag_retain_until(tag('x'::text, ARRAY['tg_billing'], NULL, '2099-01-01 00:00:00+00')),
	   tag_retain_until(tag('x'::text, ARRAY['tg_billing']));
SELECT tag(NULL::text, ARRAY['tg_billing']) IS NULL AS null_value_null_tag;
-- a plain value awaits its default tag: no purposes, shown as itself
SELECT 'plain value'::tagged_text, tag_purposes('plain value'::tagged_text);
SELECT pg_temp.lit('tagged:x'::text::tagged_text);   -- would read back as a literal: written as one
-- literals name purposes by name (array) or by name and id (object)
SELECT pg_temp.lit('tagged:{"value": "v1", "purposes": ["tg_billing"], "subject": "tg-s2"}'::tagged_text);
SELECT pg_temp.lit(tagged_text_in(('tagged:{"value": "v2", "purposes": {"tg_billing": ' ||
	(SELECT id FROM privacy_guard.purpose WHERE name = 'tg_billing') || '}}')::cstring));
-- a text value (not a literal) cast to a tagged type is a plain value, whatever it holds
SELECT pg_temp.lit(('tagged:{"value": "v3", "purposes": ["tg_billing"]}'::text)::tagged_text);

-- bad input: errors with SQLSTATEs, never the value
SELECT tag('x'::text, ARRAY['tg_nonexistent']);
SELECT tag('x'::text, ARRAY[]::text[]);
SELECT tag('x'::text, NULL);
SELECT tag('x'::text, ARRAY['tg_billing', NULL]);
SELECT tag('x'::text, ARRAY['tg_billing'], '');
SELECT tag('x'::text, ARRAY['tg_billing'], repeat('k', 1025));
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": ["tg_billing"], "extra": 1}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v"}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": []}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": 5, "purposes": ["tg_billing"]}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": {"tg_billing": 999999}}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": {"tg_billing": -1}}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": {"tg_billing": 1.5}}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": {"#1": 1}}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "SECRET-PLATYPUS", "purposes": ["tg_billing"], "retain_until": "soon"}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "v", "purposes": ["tg_billing"], "default": true}'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{SECRET-PLATYPUS'::tagged_text$$);
SELECT pg_temp.sqlstate_of($$SELECT 'SECRET-PLATYPUS'::tagged_date$$);
SELECT pg_temp.sqlstate_of($$SELECT 'tagged:{"value": "SECRET-PLATYPUS", "purposes": ["tg_billing"]}'::tagged_numeric$$);
SELECT pg_temp.sqlstate_of($$SELECT '{"SECRET-PLATYPUS"'::tagged_jsonb$$);
SELECT pg_temp.sqlstate_of(format($$SELECT tag('x'::text, %L)$$,
	(SELECT array_agg('tg_billing'::text) FROM generate_series(1, 65))));

-- ---------------------------------------------------------------- round trips
CREATE TABLE tg_values (id int, t tagged_text, d tagged_date, n tagged_numeric, j tagged_jsonb);
INSERT INTO tg_values VALUES
	(1, tag('ZEBRA "quoted" \ back', ARRAY['tg_billing', 'tg_mkt'], 'tg-s1', '2099-01-01'),
		tag('2001-02-03'::date, ARRAY['tg_mkt.email'], 'tg-s1'),
		tag(-0.000123::numeric, ARRAY['tg_billing'], NULL, '-infinity'),
		tag('{"a": [1, "ü", null], "b": {"c": true}}'::jsonb, ARRAY['tg_stats'], 'tg-s2')),
	(2, 'plain ünïcode', 'infinity', 'NaN', '[]'),
	(3, tag(repeat('long-', 4000), ARRAY['tg_billing']), NULL, tag(1e100::numeric, ARRAY['tg_billing']), NULL);
-- in(out(x)) = x, tag included (compared by their full text form)
SELECT id, format('%s', tagged_text_in(tagged_text_out(t))) = format('%s', t) AS t_ok,
	   format('%s', tagged_date_in(tagged_date_out(d))) IS NOT DISTINCT FROM format('%s', d) AS d_ok,
	   format('%s', tagged_numeric_in(tagged_numeric_out(n))) IS NOT DISTINCT FROM format('%s', n) AS n_ok,
	   format('%s', tagged_jsonb_in(tagged_jsonb_out(j))) IS NOT DISTINCT FROM format('%s', j) AS j_ok,
	   reveal(tagged_text_in(tagged_text_out(t))) = reveal(t) AS value_ok
  FROM tg_values ORDER BY id;
SELECT id, pg_temp.lit(d), pg_temp.lit(n), pg_temp.lit(j) FROM tg_values WHERE id < 3 ORDER BY id;
-- COPY BINARY out and in: recv(send(x)) = x, tag included
\copy tg_values TO 'results/tagged_values.bin' WITH (FORMAT binary)
CREATE TABLE tg_values2 (LIKE tg_values);
\copy tg_values2 FROM 'results/tagged_values.bin' WITH (FORMAT binary)
SELECT a.id, pg_temp.lit(a.t) = pg_temp.lit(b.t) AS t_ok, pg_temp.lit(a.d) IS NOT DISTINCT FROM pg_temp.lit(b.d) AS d_ok,
	   pg_temp.lit(a.n) IS NOT DISTINCT FROM pg_temp.lit(b.n) AS n_ok, pg_temp.lit(a.j) IS NOT DISTINCT FROM pg_temp.lit(b.j) AS j_ok
  FROM tg_values a JOIN tg_values2 b USING (id) ORDER BY id;
-- COPY text out and in
\copy tg_values TO 'results/tagged_values.txt'
TRUNCATE tg_values2;
\copy tg_values2 FROM 'results/tagged_values.txt'
SELECT count(*) AS identical FROM tg_values a JOIN tg_values2 b USING (id)
 WHERE pg_temp.lit(a.t) = pg_temp.lit(b.t) AND pg_temp.lit(a.d) IS NOT DISTINCT FROM pg_temp.lit(b.d)
   AND pg_temp.lit(a.n) IS NOT DISTINCT FROM pg_temp.lit(b.n) AND pg_temp.lit(a.j) IS NOT DISTINCT FROM pg_temp.lit(b.j);
-- a purpose dropped since tagging is written as "#id" and grants nothing
SELECT privacy_guard.define_purpose('tg_gone', 'contract');
CREATE TABLE tg_gone (v tagged_text);
INSERT INTO tg_gone VALUES (tag('GONE-VALUE', ARRAY['tg_gone', 'tg_billing']));
SELECT privacy_guard.drop_purpose('tg_gone');
SELECT regexp_replace(array_to_string(tag_purposes(v), ','), '#[0-9]+', '#id') FROM tg_gone;
SELECT regexp_replace(pg_temp.lit(tagged_text_in(tagged_text_out(v))), '#[0-9]+', '#id') FROM tg_gone;
SELECT privacy_guard.define_purpose('tg_gone', 'contract');   -- redefined: a new id, not the old rights
SELECT 'tg_gone' = ANY (tag_purposes(v)) AS regained FROM tg_gone;

-- ---------------------------------------------------------------- rule 3.4
CREATE TABLE tg_rule (id int, v tagged_text);
GRANT SELECT ON tg_rule TO regress_tg_app, regress_tg_unauth, regress_tg_bypass;
INSERT INTO tg_rule VALUES
	(1, tag('R1-consenting', ARRAY['tg_mkt'], 'tg-c1')),
	(2, tag('R2-no-consent', ARRAY['tg_mkt'], 'tg-c2')),
	(3, tag('R3-withdrawn', ARRAY['tg_mkt'], 'tg-c3')),
	(4, tag('R4-no-subject', ARRAY['tg_mkt'])),
	(5, tag('R5-expired', ARRAY['tg_mkt'], NULL, now() - interval '1 second')),
	(6, tag('R6-future', ARRAY['tg_mkt'], NULL, now() + interval '1 day')),
	(7, tag('R7-billing', ARRAY['tg_billing'], 'tg-c2')),
	(8, tag('R8-forgotten', ARRAY['tg_billing', 'tg_mkt'], 'tg-c4')),
	(9, tag('R9-objected', ARRAY['tg_stats'], 'tg-c5')),
	(10, tag('R10-stats', ARRAY['tg_stats'], 'tg-c1')),
	(11, tag('R11-child-only', ARRAY['tg_mkt.email'], 'tg-c1')),
	(12, 'R12-plain'),
	(13, tag('R13-int-objected', ARRAY['tg_stats'], '777')),   -- integer keys: probed in the integer set
	(14, tag('R14-int-stats', ARRAY['tg_stats'], '778')),
	(15, tag('R15-int-consent', ARRAY['tg_mkt'], '779'));
SELECT privacy_guard.grant_consent('tg-c1', 'tg_mkt');
SELECT privacy_guard.grant_consent('tg-c3', 'tg_mkt');
SELECT privacy_guard.withdraw_consent('tg-c3', 'tg_mkt');
SELECT privacy_guard.grant_consent('tg-c4', 'tg_mkt');
SELECT privacy_guard.forget('tg-c4', due => now() + interval '1 day') IS NOT NULL AS filed;   -- not due yet
SELECT privacy_guard.object_to('tg-c5', 'tg_stats');
SELECT privacy_guard.object_to('777', 'tg_stats');
SELECT privacy_guard.grant_consent('779', 'tg_mkt');
CREATE VIEW tg_seen AS SELECT string_agg(id::text, ',' ORDER BY id) AS revealed FROM tg_rule WHERE reveal(v) IS NOT NULL;
GRANT SELECT ON tg_seen TO regress_tg_app, regress_tg_unauth, regress_tg_bypass;

SET ROLE regress_tg_app;
SELECT revealed AS no_purpose FROM tg_seen;              -- no purpose: only the plain value, and no error
SET privacy_guard.purpose = 'tg_nonexistent';
SELECT revealed AS unknown_purpose FROM tg_seen;
SET privacy_guard.purpose = 'tg_mkt';
SELECT revealed AS mkt FROM tg_seen;                      -- consent, no subject, before retain-until, due later
SET privacy_guard.purpose = 'tg_mkt.email';
SELECT revealed AS mkt_email FROM tg_seen;                -- a child purpose: covered by parent's tags and consent
SET privacy_guard.purpose = 'tg_billing';
SELECT revealed AS billing FROM tg_seen;                  -- contract: no consent needed
SET privacy_guard.purpose = 'tg_stats';
SELECT revealed AS stats FROM tg_seen;                    -- legitimate interests: objection hides
SELECT id, reveal(v) FROM tg_rule WHERE id IN (9, 10) ORDER BY id;
RESET ROLE;
SET ROLE regress_tg_unauth;
SET privacy_guard.purpose = 'tg_mkt';                     -- not authorised for it
SELECT revealed AS unauthorised FROM tg_seen;
SET privacy_guard.purpose = 'tg_other';                   -- authorised, but no tag names it
SELECT revealed AS other FROM tg_seen;
RESET ROLE;
SET ROLE regress_tg_bypass;
RESET privacy_guard.purpose;
SELECT revealed AS bypassrls FROM tg_seen;
RESET ROLE;
SELECT revealed AS superuser FROM tg_seen;
-- consent changes count for the next statement
SELECT privacy_guard.grant_consent('tg-c2', 'tg_mkt');
SELECT privacy_guard.forget('tg-c1') IS NOT NULL AS filed;                    -- due now: hidden at once
SET ROLE regress_tg_app;
SET privacy_guard.purpose = 'tg_mkt';
SELECT revealed AS after_changes FROM tg_seen;
-- and within one transaction, under SET LOCAL
BEGIN;
SET LOCAL privacy_guard.purpose = 'tg_billing';
SELECT revealed AS set_local FROM tg_seen;
COMMIT;
RESET ROLE;

-- ---------------------------------------------------------------- default tags and travel
CREATE TABLE tg_cust (id bigint, email tagged_text, born tagged_date, score tagged_numeric,
					  prefs tagged_jsonb, signed timestamptz);
GRANT SELECT, INSERT, UPDATE ON tg_cust TO regress_tg_app;
SELECT privacy_guard.protect('tg_cust', 'id', ARRAY['tg_billing', 'tg_mkt'], '1 year', 'signed');
SET ROLE regress_tg_app;
SET privacy_guard.purpose = 'tg_billing';
-- existing INSERT and COPY statements keep working: plain values take the default tag
INSERT INTO tg_cust VALUES (101, 'DEFAULT-101@example.org', '1980-01-01', 12.5, '{"x": 1}',
							'2030-06-01 00:00:00+00');
RESET ROLE;   -- PostgreSQL refuses COPY FROM into a table with row-level security to bound roles
COPY tg_cust (id, email, born, score, prefs, signed) FROM STDIN;
102	COPIED-102@example.org	1990-02-02	7	{"y": 2}	2030-06-02 00:00:00+00
\.
SET ROLE regress_tg_app;
INSERT INTO tg_cust (id, email, signed) SELECT 103, 'SELECTED-' || 'text', '2030-06-03 00:00:00+00';
-- a value that carries a tag keeps it
INSERT INTO tg_cust (id, email, signed) VALUES (104, tag('OWN-TAG-104'::text, ARRAY['tg_billing']), now());
UPDATE tg_cust SET email = 'UPDATED-101@example.org' WHERE id = 101;
SELECT id, reveal(email), tag_purposes(email), tag_retain_until(email), reveal(born), reveal(score),
	   reveal(prefs), tag_purposes(prefs), tag_retain_until(born)
  FROM tg_cust ORDER BY id;
RESET ROLE;
SELECT id, pg_temp.lit(email) FROM tg_cust ORDER BY id;
-- the tag travels: INSERT ... SELECT into an unprotected table keeps it and its rules
CREATE TABLE tg_copy (id bigint, email tagged_text);
GRANT SELECT, INSERT ON tg_copy TO regress_tg_app;
SET ROLE regress_tg_app;
SET privacy_guard.purpose = 'tg_billing';
INSERT INTO tg_copy SELECT id, email FROM tg_cust;
SELECT id, reveal(email) FROM tg_copy ORDER BY id;
SET privacy_guard.purpose = 'tg_mkt';
SELECT id, reveal(email) FROM tg_copy ORDER BY id;        -- rule 7 for each value's subject: none consents
RESET ROLE;
SELECT privacy_guard.grant_consent('102', 'tg_mkt');
SET ROLE regress_tg_app;
SET privacy_guard.purpose = 'tg_mkt';
SELECT id, reveal(email) FROM tg_copy ORDER BY id;
RESET ROLE;
-- unprotect removes the default-tag trigger
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tg_cust'::regclass AND tgname = 'privacy_guard_default_tag';
SELECT privacy_guard.unprotect('tg_cust');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tg_cust'::regclass AND tgname = 'privacy_guard_default_tag';
INSERT INTO tg_cust (id, email) VALUES (105, 'UNPROTECTED-105');
SELECT id, tag_purposes(email) FROM tg_cust WHERE id = 105;
-- protect() tags the plain values already stored; unprotect() left them tagged
SELECT privacy_guard.protect('tg_cust', 'id', ARRAY['tg_stats'], '1 year', 'signed');
SELECT id, tag_purposes(email), tag_retain_until(email) IS NULL AS no_retain FROM tg_cust WHERE id IN (104, 105) ORDER BY id;
SELECT privacy_guard.unprotect('tg_cust');
-- partitions take the root's default tag
CREATE TABLE tg_part (id bigint, v tagged_text) PARTITION BY RANGE (id);
CREATE TABLE tg_part_1 PARTITION OF tg_part FOR VALUES FROM (0) TO (1000);
SELECT privacy_guard.protect('tg_part', 'id', ARRAY['tg_stats']);
SET privacy_guard.purpose = 'tg_stats';
INSERT INTO tg_part VALUES (707, 'PART-7');
INSERT INTO tg_part_1 VALUES (708, 'PART-8');
SELECT id, tag_purposes(v), pg_temp.lit(v) FROM tg_part ORDER BY id;
RESET privacy_guard.purpose;
-- a protected table without tagged columns carries no default-tag trigger
-- (inserts pay nothing for it); adding a tagged column later adds it, and
-- plain values written into that column take the default tag
CREATE TABLE tg_late (id bigint, note text);
SELECT privacy_guard.protect('tg_late', 'id', ARRAY['tg_stats']);
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'tg_late'::regclass AND NOT tgisinternal;
ALTER TABLE tg_late ADD COLUMN v tagged_text;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'tg_late'::regclass AND NOT tgisinternal;
SET privacy_guard.purpose = 'tg_stats';
INSERT INTO tg_late VALUES (709, 'n', 'LATE-9');
SELECT id, tag_purposes(v) FROM tg_late;
RESET privacy_guard.purpose;
SELECT privacy_guard.unprotect('tg_late');
DROP TABLE tg_late;
