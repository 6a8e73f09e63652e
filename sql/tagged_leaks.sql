-- Rule 3.4: no path gives a withheld tagged value or any part of it.  The
-- withheld values are distinctive (ZEBRA, 4711, 1977-03-14, "KIWI") so that
-- a leak would show in this file's output.
-- DETAIL, HINT and CONTEXT are part of what must not leak: all are shown
\set VERBOSITY default
-- the purposes of the tests of tagged values, as tagged.sql defines them
SELECT privacy_guard.define_purpose('tg_billing', 'contract');
SELECT privacy_guard.define_purpose('tg_mkt', 'consent');
SELECT privacy_guard.define_purpose('tg_mkt.email', 'consent');
SELECT privacy_guard.define_purpose('tg_stats', 'legitimate_interests');
SELECT privacy_guard.define_purpose('tg_other', 'contract');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_billing');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_mkt');
SELECT privacy_guard.allow_purpose('regress_tg_app', 'tg_stats');
SELECT privacy_guard.allow_purpose('regress_tg_unauth', 'tg_other');
SET search_path = public, privacy_guard;

CREATE TABLE tg_leak (id int, t tagged_text, d tagged_date, n tagged_numeric, j tagged_jsonb);
INSERT INTO tg_leak VALUES
	(1, tag('SECRET-ZEBRA-4711'::text, ARRAY['tg_mkt'], 'tg-nobody'),
		tag('1977-03-14'::date, ARRAY['tg_mkt'], 'tg-nobody'),
		tag(4711.0815, ARRAY['tg_mkt'], 'tg-nobody'),
		tag('{"fruit": "KIWI"}'::jsonb, ARRAY['tg_mkt'], 'tg-nobody')),
	(2, tag('open-value'::text, ARRAY['tg_billing']), tag('2000-01-01'::date, ARRAY['tg_billing']),
		tag(1.5, ARRAY['tg_billing']), tag('{"fruit": "apple"}'::jsonb, ARRAY['tg_billing']));
GRANT SELECT, INSERT ON tg_leak TO regress_tg_app;
CREATE TABLE tg_leak_copy (LIKE tg_leak);
GRANT SELECT, INSERT ON tg_leak_copy TO regress_tg_app;
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.sqlstate_of(text) TO regress_tg_app;

SET ROLE regress_tg_app;
SET privacy_guard.purpose = 'tg_billing';   -- row 2 is visible, row 1 withheld
-- output: text, binary, casts through the output function, COPY: an error without the value
SELECT regexp_replace(format('%s', t), '[0-9]+}', '#}') FROM tg_leak WHERE id = 2;  -- visible: fine
SELECT t FROM tg_leak WHERE id = 1;
SELECT d FROM tg_leak WHERE id = 1;
SELECT n FROM tg_leak WHERE id = 1;
SELECT j FROM tg_leak WHERE id = 1;
SELECT * FROM tg_leak ORDER BY id;
SELECT tg_leak FROM tg_leak WHERE id = 1;
SELECT tagged_text_out(t) FROM tg_leak WHERE id = 1;
SELECT tagged_text_send(t) FROM tg_leak WHERE id = 1;
SELECT tagged_jsonb_send(j) FROM tg_leak WHERE id = 1;
SELECT t::varchar FROM tg_leak WHERE id = 1;
SELECT format('%s', t) FROM tg_leak WHERE id = 1;
SELECT 'x' || t FROM tg_leak WHERE id = 1;
SELECT row_to_json(l) FROM tg_leak l WHERE id = 1;
SELECT to_jsonb(t) FROM tg_leak WHERE id = 1;
SELECT array_to_string(ARRAY[t], ',') FROM tg_leak WHERE id = 1;
COPY (SELECT t FROM tg_leak WHERE id = 1) TO STDOUT;
COPY (SELECT n FROM tg_leak WHERE id = 1) TO STDOUT (FORMAT binary);
COPY tg_leak TO STDOUT;
DO $$ DECLARE v privacy_guard.tagged_text; BEGIN
	SELECT t INTO v FROM tg_leak WHERE id = 1;
	RAISE NOTICE 'value: %', v;
END $$;
BEGIN;
DECLARE c CURSOR FOR SELECT t FROM tg_leak WHERE id = 1;
FETCH c;
ROLLBACK;
-- casts to the base type are reveal(): NULL
SELECT id, t::text, d::date, n::numeric, j::jsonb FROM tg_leak ORDER BY id;
-- operators and functions: NULL for a withheld value, guesses included
SELECT id, t = t AS eq, t <> t AS ne, t < t AS lt, t >= t AS ge, d = d AS d_eq, n > n AS n_gt, j = j AS j_eq,
	   t = 'SECRET-ZEBRA-4711' AS guess, t LIKE 'SECRET%' AS like_, t NOT LIKE 'x%' AS notlike,
	   length(t) AS len, md5(t::text) IS NULL AS hash_of_null, reveal(j) -> 'fruit' AS fruit
  FROM tg_leak ORDER BY id;
SELECT count(*) FILTER (WHERE t = tag('SECRET-ZEBRA-4711'::text, ARRAY['tg_billing'])) AS guessed,
	   count(*) FILTER (WHERE n = '4711.0815') AS guessed_n, sum(reveal(n)) AS sum_visible
  FROM tg_leak;
-- a value the session cannot see cannot be re-tagged into one it can
SELECT tag(reveal(t), ARRAY['tg_billing']) IS NULL AS retag_is_null FROM tg_leak WHERE id = 1;
-- the tag's non-personal parts are public; the subject is not
SELECT id, tag_purposes(t), tag_retain_until(t) FROM tg_leak ORDER BY id;
-- sorting, grouping, DISTINCT, set operations, record and array comparison: refused, never content-ordered
SELECT id FROM tg_leak ORDER BY t;
SELECT count(*) FROM tg_leak GROUP BY t;
SELECT DISTINCT t FROM tg_leak;
SELECT t FROM tg_leak UNION SELECT t FROM tg_leak;
SELECT ROW(t) = ROW(t) FROM tg_leak;
SELECT ARRAY[t] = ARRAY[t] FROM tg_leak;
-- sorting through reveal(): withheld values are NULLs, in no content order
SELECT id, reveal(t) FROM tg_leak ORDER BY reveal(t) NULLS FIRST, id;
-- EXPLAIN shows no value
EXPLAIN (VERBOSE, COSTS OFF) SELECT reveal(t) FROM tg_leak WHERE t = t AND length(t) > 3;
-- the tag travels: a copy is just as withheld
INSERT INTO tg_leak_copy SELECT * FROM tg_leak;
SELECT id, reveal(t), reveal(d), reveal(n), reveal(j) FROM tg_leak_copy ORDER BY id;
-- functions the rules reserve for the erasure answer no one else
SELECT pg_temp.sqlstate_of($$SELECT privacy_guard._tag_erasable(t, 'tg-nobody', '\x00'::bytea) FROM tg_leak$$);
RESET ROLE;

-- indexes: no operator class, so no index orders withheld values
CREATE INDEX ON tg_leak (t);
CREATE INDEX ON tg_leak USING hash (t);
-- statistics: ANALYZE keeps none for tagged columns
ANALYZE tg_leak;
SELECT attname, null_frac IS NOT NULL AS has_stats FROM pg_stats
 WHERE tablename = 'tg_leak' ORDER BY attname;
-- errors name no value: the superuser's view of the withheld row, for comparison
SELECT id, reveal(t), reveal(d), reveal(n), reveal(j) FROM tg_leak ORDER BY id;
DROP TABLE tg_leak_copy;
