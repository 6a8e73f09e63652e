-- Arrays of tagged values (SPEC 4: forget and expiry reach "every tagged
-- column of the database"): in a column of an array of a tagged type, of a
-- domain over one, or of a domain over such an array, a forgotten
-- subject's elements and elements past their retain-until are set to NULL
-- by the round, the array's shape kept; subject_report finds such
-- elements, in any table and in a protected table's rows; the register and
-- check() list such columns; the element helpers answer only with the
-- digest key.
\set VERBOSITY terse
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

CREATE DOMAIN tg_ar_dom AS tagged_text;
CREATE DOMAIN tg_ar_list AS tagged_text[];
CREATE TABLE tg_ar_free (k int, emails tagged_text[], docs tg_ar_dom[], grid tagged_numeric[], listed tg_ar_list);
CREATE ROLE regress_tg_ar_owner;
ALTER TABLE tg_ar_free OWNER TO regress_tg_ar_owner;
GRANT SELECT ON tg_ar_free TO regress_tg_app;
SET privacy_guard.purpose = 'tg_billing';
INSERT INTO tg_ar_free VALUES
	(1, ARRAY[tag('A-301'::text, ARRAY['tg_billing'], '301'), tag('A-302'::text, ARRAY['tg_billing'], '302'), NULL,
			  tag('A-EXPIRED'::text, ARRAY['tg_billing'], NULL, now() - interval '1 minute'),
			  tag('A-LATER'::text, ARRAY['tg_billing'], NULL, now() + interval '1 day')],
		ARRAY[tag('D-301'::text, ARRAY['tg_billing'], '301')::tg_ar_dom],
		ARRAY[[tag(1.5, ARRAY['tg_billing'], '301'), tag(2.5, ARRAY['tg_billing'], '302')],
			  [tag(3.5, ARRAY['tg_billing'], '302'), tag(4.5, ARRAY['tg_billing'], '301')]],
		ARRAY[tag('L-301'::text, ARRAY['tg_billing'], '301'), tag('L-302'::text, ARRAY['tg_billing'], '302')]),
	(2, ARRAY[tag('B-302'::text, ARRAY['tg_billing'], '302')], NULL, '{}', NULL),
	(3, NULL, NULL, NULL, NULL);
-- a protected table with an array column: it gets the default-tag trigger,
-- and a plain element takes the column's default tag (the table's purposes,
-- the row's subject), element by element, elements with a tag keeping theirs
CREATE TABLE tg_ar_prot (id bigint, aliases tagged_text[]);
INSERT INTO tg_ar_prot VALUES (300, ARRAY['PLAIN-BEFORE-300'::tagged_text]);
SELECT privacy_guard.protect('tg_ar_prot', 'id', ARRAY['tg_billing']);
SELECT count(*) AS default_tag_triggers FROM pg_trigger WHERE tgrelid = 'tg_ar_prot'::regclass AND NOT tgisinternal;
INSERT INTO tg_ar_prot VALUES
	(301, ARRAY[tag('P-301'::text, ARRAY['tg_billing'], '301'), tag('P-OTHER'::text, ARRAY['tg_billing'], '999'),
				tag('P-NOBODY'::text, ARRAY['tg_billing'])]),
	(302, ARRAY[tag('P-302'::text, ARRAY['tg_billing'], '302')]),
	(303, ARRAY[['PLAIN-303'::tagged_text, NULL], [tag('P-KEEP'::text, ARRAY['tg_mkt'], '999'), 'PLAIN-303B']]);
SELECT id, array_dims(aliases) AS dims, ARRAY(SELECT tag_purposes(e)::text FROM unnest(aliases) e) AS purposes
  FROM tg_ar_prot WHERE id IN (300, 303) ORDER BY id;
SELECT r -> 'tagged_values' @> '[{"value": "PLAIN-303"}, {"value": "PLAIN-303B"}]' AS found_by_subject,
	   r::text LIKE '%P-KEEP%' AS shows_other
  FROM privacy_guard.subject_report('303') r;
SELECT jsonb_path_query_array(r -> 'tagged_values', '$[*].value') AS values_of_300
  FROM privacy_guard.subject_report('300') r;
DELETE FROM tg_ar_prot WHERE id IN (300, 303);

-- subject_report finds the elements that name the subject, and reads a
-- protected table's array column element by element (no other subject's value)
SELECT jsonb_pretty(r -> 'tagged_values') AS tagged_values,
	   jsonb_pretty(r -> 'data') AS data
  FROM privacy_guard.subject_report('301') r;
-- the register and check() know array columns
SELECT table_name, column_name, column_role, tag_purposes
  FROM privacy_guard.processing_register WHERE table_name::text LIKE '%tg_ar_%' ORDER BY 1, 2;
SELECT severity, object FROM privacy_guard.check() WHERE object LIKE '%tg_ar_%' ORDER BY 1, 2;

SELECT privacy_guard.forget('301', 'arrays') IS NOT NULL AS filed;
-- hidden at once, before any round: an element is revealed by itself
SET ROLE regress_tg_app;
SELECT k, reveal(emails[1]) AS e1, reveal(emails[2]) AS e2, reveal(grid[1][1]) AS g11, reveal(grid[1][2]) AS g12
  FROM tg_ar_free WHERE k = 1;
-- output of an array holding a withheld value fails, never printing it
SELECT emails FROM tg_ar_free WHERE k = 1;
RESET ROLE;
-- the round sets the subject's elements and expired elements to NULL, counting rows per column
CREATE FUNCTION pg_temp.mine(counts jsonb) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_object_agg(key, value) FROM jsonb_each(counts) WHERE key LIKE 'public.tg_ar%' $$;
SELECT pg_temp.mine(r -> 'expired' -> 'tagged') AS expired_tagged FROM privacy_guard.run_maintenance() r;
SELECT state, pg_temp.mine(counts -> 'tagged') AS tagged, counts -> 'public.tg_ar_prot' AS rows
  FROM privacy_guard.erasure_requests WHERE reason = 'arrays';
SELECT k, array_dims(emails) AS dims,
	   ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(emails) e) AS emails,
	   ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(docs) e) AS docs,
	   array_dims(grid) AS grid_dims,
	   ARRAY(SELECT coalesce(reveal(e)::text, '-') FROM unnest(grid) e) AS grid,
	   ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(listed) e) AS listed
  FROM tg_ar_free ORDER BY k;
-- the erasure ran as the table's owner
SELECT relowner::regrole FROM pg_class WHERE relname = 'tg_ar_free';
-- old row versions keep erased values until vacuumed: the receipt waits for
-- every table the erasure wrote to, those where it only erased tagged values too
SELECT unreachable_at IS NULL AS not_yet_vacuumed FROM privacy_guard.erasure_requests WHERE reason = 'arrays';
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round;	-- notes the vacuum counts to wait for
VACUUM tg_ar_prot;
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round;
SELECT unreachable_at IS NULL AS tagged_table_left FROM privacy_guard.erasure_requests WHERE reason = 'arrays';
VACUUM tg_ar_free;
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round;
SELECT unreachable_at >= completed_at AS unreachable_after_erasure
  FROM privacy_guard.erasure_requests WHERE reason = 'arrays';
-- a second round finds nothing left
SELECT pg_temp.mine(r -> 'expired' -> 'tagged') AS expired_tagged FROM privacy_guard.run_maintenance() r;
SELECT jsonb_array_length(r -> 'tagged_values') AS found FROM privacy_guard.subject_report('301') r;

-- the element helpers: the subject test needs the digest key; other element types are refused
SELECT _tags_erasable(emails, '302', '\x00'::bytea) FROM tg_ar_free WHERE k = 1;
SELECT _tags_erase(emails, '302', NULL) FROM tg_ar_free WHERE k = 1;
SELECT _tags_expired(ARRAY[1, 2], now());
SELECT _tags_expire(ARRAY['a'::text], now());
SELECT _tags_expired(emails, now() + interval '2 days') AS all_expired_later FROM tg_ar_free WHERE k = 1;

-- tagged values inside composite types (at any depth, in arrays too) and in
-- arrays of arrays: check() says subject_report and the register do not read
-- inside them; the erasure does not reach materialized views at all
CREATE TYPE tg_ar_contact AS (kind text, val tagged_text);
CREATE TYPE tg_ar_card AS (owner text, contacts tg_ar_contact[]);
CREATE TABLE tg_ar_nested (k int, contact tg_ar_contact, card tg_ar_card, lists tg_ar_list[], plain text);
CREATE MATERIALIZED VIEW tg_ar_mv AS SELECT k, emails, grid FROM tg_ar_free;
SELECT severity, object, message FROM privacy_guard.check()
 WHERE object ~ 'tg_ar_(nested|mv)' ORDER BY 1, 2, 3;
-- but forget and expiry reach inside them: the matching tagged values are
-- set to NULL, the rest of each value kept, as the table's owner
INSERT INTO tg_ar_nested VALUES
	(1, ROW('mail', tag('C-311'::text, ARRAY['tg_billing'], '311')),
		ROW('owner-x', ARRAY[ROW('phone', tag('C-311-P'::text, ARRAY['tg_billing'], '311')),
							 ROW('fax', tag('C-312'::text, ARRAY['tg_billing'], '312')),
							 ROW('old', tag('C-OLD'::text, ARRAY['tg_billing'], NULL, now() - interval '1 minute'))]::tg_ar_contact[]),
		ARRAY[ARRAY[tag('L-311'::text, ARRAY['tg_billing'], '311'), tag('L-312'::text, ARRAY['tg_billing'], '312')]::tg_ar_list],
		'plain'),
	(2, ROW('mail', tag('C-312-M'::text, ARRAY['tg_billing'], '312')), NULL, NULL, 'other');
SELECT privacy_guard.forget('311', 'nested') > 0 AS filed;
SELECT pg_temp.mine(r -> 'expired' -> 'tagged') AS expired_tagged FROM privacy_guard.run_maintenance() r;
SELECT state, pg_temp.mine(counts -> 'tagged') AS tagged FROM privacy_guard.erasure_requests WHERE reason = 'nested';
SELECT k, (contact).kind, coalesce(reveal((contact).val), '-') AS contact_val, (card).owner,
	   ARRAY(SELECT c.kind || ':' || coalesce(reveal(c.val), '-') FROM unnest((card).contacts) c) AS card_contacts,
	   ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(lists) l, unnest(l::tagged_text[]) e) AS lists, plain
  FROM tg_ar_nested ORDER BY k;
-- the element helpers for nested values answer only with the digest key
SELECT _tags_erasable_in(contact, '312', '\x00'::bytea) FROM tg_ar_nested WHERE k = 2;
DROP MATERIALIZED VIEW tg_ar_mv;
DROP TABLE tg_ar_nested;
DROP TYPE tg_ar_card, tg_ar_contact;
RESET privacy_guard.purpose;

-- a database whose only tagged values are in arrays: the round still finds them
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_tg_arrays_only;
\c regress_tg_arrays_only
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
SELECT privacy_guard.define_purpose('b', 'contract');
CREATE TABLE only_arrays (k int, v privacy_guard.tagged_text[]);
INSERT INTO only_arrays VALUES
	(1, ARRAY[privacy_guard.tag('X-401'::text, ARRAY['b'], '401'), privacy_guard.tag('X-402'::text, ARRAY['b'], '402')]);
SELECT privacy_guard.forget('401') > 0 AS filed;
SELECT r -> 'requests_done' AS done FROM privacy_guard.run_maintenance() r;
SELECT state, counts FROM privacy_guard.erasure_requests;
SELECT ARRAY(SELECT coalesce(privacy_guard.reveal(e), '-') FROM unnest(v) e) AS v FROM only_arrays;
\c :orig_db
DROP DATABASE regress_tg_arrays_only;
