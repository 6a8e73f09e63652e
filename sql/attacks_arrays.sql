-- Adversarial tests against arrays of tagged values (rule 3.4, SPEC 4) and
-- the consent ledger's pruning past log retention: each block is named
-- after the attack it tries and says what must hold.  The withheld values
-- are distinctive (QUOKKA-7741, 77.41) so that a leak would show here.
\set VERBOSITY terse
SET search_path = public, privacy_guard;

SELECT privacy_guard.define_purpose('aa_open', 'contract');
SELECT privacy_guard.define_purpose('aa_mkt', 'consent');
CREATE ROLE regress_aa_app LOGIN;
CREATE ROLE regress_aa_owner LOGIN;
CREATE ROLE regress_aa_admin LOGIN;
CREATE ROLE regress_aa_rec LOGIN;
SELECT privacy_guard.grant_admin('regress_aa_admin');
SELECT privacy_guard.grant_recorder('regress_aa_rec');
SELECT privacy_guard.allow_purpose('regress_aa_app', 'aa_open');
SELECT privacy_guard.allow_purpose('regress_aa_owner', 'aa_open');
GRANT CREATE ON SCHEMA public TO regress_aa_owner;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;

-- element 1 is withheld from regress_aa_app (tagged for aa_mkt only, its
-- subject without consent), element 2 is not
CREATE TABLE aa_vals (id int, a tagged_text[], n tagged_numeric[]);
INSERT INTO aa_vals VALUES
	(1, ARRAY[tag('QUOKKA-7741'::text, ARRAY['aa_mkt'], 'aa-s1'), tag('open-1'::text, ARRAY['aa_open'])],
		ARRAY[tag(77.41, ARRAY['aa_mkt'], 'aa-s1'), tag(1, ARRAY['aa_open'])]);
GRANT SELECT ON aa_vals TO regress_aa_app;

SET ROLE regress_aa_app;
SET privacy_guard.purpose = 'aa_open';

-- attack: print an array holding a withheld element through another type's
-- output or a generic function (array_to_string, casts to text and json,
-- format(), COPY): each fails on the element, naming no value; the cast to
-- text[] reveals element by element (NULL for the withheld one)
SELECT pg_temp.err('SELECT array_to_string(a, '','') FROM aa_vals') AS array_to_string;
SELECT pg_temp.err('SELECT a::text FROM aa_vals') AS to_text;
SELECT pg_temp.err('SELECT to_json(a) FROM aa_vals') AS to_json;
SELECT pg_temp.err('SELECT to_jsonb(n) FROM aa_vals') AS to_jsonb;
SELECT pg_temp.err('SELECT format(''%s'', a) FROM aa_vals') AS format_;
SELECT pg_temp.err('SELECT array_to_json(n) FROM aa_vals') AS array_to_json;
SELECT pg_temp.err('SELECT row_to_json(v) FROM aa_vals v') AS row_to_json;
COPY (SELECT a FROM aa_vals) TO STDOUT;
COPY (SELECT n FROM aa_vals) TO STDOUT (FORMAT csv);
COPY (SELECT a FROM aa_vals) TO STDOUT (FORMAT binary);
SELECT a::text[] AS revealed_elements, n::numeric[] AS revealed_numbers FROM aa_vals;
SELECT string_agg(e::text, ',') AS agg, count(*) AS elements FROM aa_vals, unnest(a) e;

-- attack: search, compare, sort, group or hash arrays by their elements'
-- content (array_position, containment, =, <, ORDER BY, GROUP BY, DISTINCT,
-- hash_array, array_remove): refused, since the element types have no
-- btree or hash operator class; = ANY over the elements is NULL for the
-- withheld element whether the guess is right or wrong
SELECT pg_temp.err($q$SELECT array_position(a, tag('QUOKKA-7741'::text, ARRAY['aa_mkt'], 'aa-s1')) FROM aa_vals$q$) AS array_position;
SELECT pg_temp.err($q$SELECT a @> ARRAY[tag('QUOKKA-7741'::text, ARRAY['aa_mkt'], 'aa-s1')] FROM aa_vals$q$) AS contains;
SELECT pg_temp.err($q$SELECT a = ARRAY[tag('QUOKKA-7741'::text, ARRAY['aa_mkt'], 'aa-s1'), a[2]] FROM aa_vals$q$) AS array_eq;
SELECT pg_temp.err($q$SELECT n < ARRAY[tag(50, ARRAY['aa_mkt'], 'aa-s1')] FROM aa_vals$q$) AS array_lt;
SELECT pg_temp.err('SELECT id FROM aa_vals ORDER BY a') AS order_by;
SELECT pg_temp.err('SELECT a FROM aa_vals GROUP BY a') AS group_by;
SELECT pg_temp.err('SELECT DISTINCT n FROM aa_vals') AS distinct_;
SELECT pg_temp.err('SELECT hash_array(a) FROM aa_vals') AS hash_array;
SELECT pg_temp.err($q$SELECT array_remove(a, tag('QUOKKA-7741'::text, ARRAY['aa_mkt'], 'aa-s1')) FROM aa_vals$q$) AS array_remove;
SELECT g, tag(g, ARRAY['aa_mkt'], 'aa-s1') = ANY (a) AS any_eq,
	   tag(g, ARRAY['aa_mkt'], 'aa-s1') <> ALL (a) AS all_ne
  FROM aa_vals, unnest(ARRAY['QUOKKA-7741', 'QUOKKA-0000']) g ORDER BY g;

-- attack: the record image operators compare the array datum byte by byte
-- with a forged array carrying the same tags: the right guess must look
-- like a wrong one (each element carries its own salt)
CREATE TYPE pg_temp.aa_box AS (v tagged_text[]);
WITH x AS MATERIALIZED (SELECT ROW(ARRAY[a[1]])::pg_temp.aa_box AS b FROM aa_vals),
	 y AS MATERIALIZED (SELECT g, ROW(ARRAY[tag(g, ARRAY['aa_mkt'], 'aa-s1')])::pg_temp.aa_box AS b
						  FROM unnest(ARRAY['QUOKKA-7741', 'QUOKKA-0000']) g)
SELECT g, x.b *= y.b AS image_eq FROM x, y ORDER BY g;

-- attack: use the PUBLIC element helpers as an oracle for whose a withheld
-- element is: without the digest key (wrong bytes, right length, empty,
-- NULL) they error, naming no value; without a subject they answer false
-- or return the array unchanged, which tells nothing
SELECT pg_temp.err($q$SELECT _tags_erasable(a, 'aa-s1', '\x00') FROM aa_vals$q$) AS wrong_key;
SELECT pg_temp.err($q$SELECT _tags_erasable(a, 'aa-s1', pg_catalog.decode(repeat('00', 32), 'hex')) FROM aa_vals$q$) AS zero_key;
SELECT pg_temp.err($q$SELECT _tags_erasable(a, 'aa-s1', ''::bytea) FROM aa_vals$q$) AS empty_key;
SELECT pg_temp.err($q$SELECT _tags_erasable(a, 'aa-s1', NULL) FROM aa_vals$q$) AS null_key;
SELECT pg_temp.err($q$SELECT _tags_erase(a, 'aa-s1', NULL) FROM aa_vals$q$) AS erase_null_key;
SELECT _tags_erasable(a, NULL, NULL) AS no_subject, reveal((_tags_erase(a, NULL, NULL))[2]) AS unchanged
  FROM aa_vals;
-- the digest key is nowhere a bound role can read it
SELECT pg_temp.err('SELECT key FROM privacy_guard.secret') AS read_secret;
-- other element types, composites holding tagged values, arrays of arrays: refused
SELECT pg_temp.err($q$SELECT _tags_expired(ARRAY[ROW(ARRAY[tag('x'::text, ARRAY['aa_open'])])::pg_temp.aa_box], now())$q$) AS composite_elems;
SELECT pg_temp.err($q$SELECT _tags_expire(ARRAY[1.5], now())$q$) AS numeric_elems;
SELECT pg_temp.err($q$SELECT _tags_expired('{}'::int[], now())$q$) AS empty_int_array;
-- expiry needs no key (retain-until is public through tag_retain_until):
-- shape, bounds, NULL elements and other elements are kept
SELECT array_dims(x) AS dims, ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(x) e) AS elems
  FROM (SELECT _tags_expire('[5:6][-1:0]={{NULL,NULL},{NULL,NULL}}'::tagged_text[], now()) AS x) s;
SELECT array_dims(x) AS dims, ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(x) e) AS elems
  FROM (SELECT _tags_expire(array_fill(tag('old'::text, ARRAY['aa_open'], NULL, now() - interval '1 day'),
									   ARRAY[2, 2], ARRAY[3, -7]), now()) AS x) s;
SELECT _tags_expired('{}'::tagged_text[], now()) AS empty_expired,
	   cardinality(_tags_expire('{}'::tagged_text[], now())) AS empty_card,
	   _tags_expired(ARRAY[NULL::tagged_text], now()) AS null_elem, _tags_expired(a, NULL) AS null_time
  FROM aa_vals;
-- a large array: every element tested, the last one too
SELECT cardinality(x) AS elements, (SELECT count(*) FROM unnest(x) e WHERE e IS NULL) AS erased,
	   x[100001] IS NULL AS last_erased, reveal(x[100000]) AS kept
  FROM (SELECT _tags_expire(array_append(array_fill(tag('keep'::text, ARRAY['aa_open']), ARRAY[100000]),
										 tag('old'::text, ARRAY['aa_open'], NULL, now() - interval '1 day')),
						   now()) AS x) s;
RESET ROLE;
RESET privacy_guard.purpose;

-- attack: a forgotten subject's elements where the erasure might not look:
-- partitions, inheritance children, an array of a domain over a domain, a
-- domain over an array of a domain, a NOT NULL array column, an owner's
-- trigger that copies the old elements; each element of the subject goes,
-- the others stay, and the round runs as each table's owner
CREATE DOMAIN aa_d1 AS tagged_text;
CREATE DOMAIN aa_d2 AS aa_d1;
CREATE DOMAIN aa_dl AS aa_d2[];
CREATE DOMAIN aa_dl2 AS aa_dl;
SET ROLE regress_aa_owner;
CREATE TABLE aa_part (k int, a aa_d2[] NOT NULL) PARTITION BY LIST (k);
CREATE TABLE aa_part_1 PARTITION OF aa_part FOR VALUES IN (1);
CREATE TABLE aa_part_2 PARTITION OF aa_part FOR VALUES IN (2);
CREATE TABLE aa_parent (k int, a aa_dl2);
CREATE TABLE aa_child () INHERITS (aa_parent);
CREATE TABLE aa_seen (who name, sec text, elems int);
CREATE FUNCTION aa_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO aa_seen VALUES (current_user, pg_catalog.current_setting('privacy_guard.purpose', true),
								cardinality(OLD.a));
	RETURN NEW;
END
$$;
CREATE TRIGGER aa_copy BEFORE UPDATE ON aa_child FOR EACH ROW EXECUTE FUNCTION aa_copy();
RESET ROLE;
INSERT INTO aa_part VALUES
	(1, ARRAY[tag('P1-s2'::text, ARRAY['aa_open'], 'aa-s2'), tag('P1-s3'::text, ARRAY['aa_open'], 'aa-s3')]::aa_d2[]),
	(2, ARRAY[[tag('P2-s2'::text, ARRAY['aa_open'], 'aa-s2')], [tag('P2-s3'::text, ARRAY['aa_open'], 'aa-s3')]]::aa_d2[]);
INSERT INTO aa_parent VALUES (1, ARRAY[tag('PA-s2'::text, ARRAY['aa_open'], 'aa-s2')]::aa_dl2);
INSERT INTO aa_child VALUES (2, ARRAY[tag('CH-s3'::text, ARRAY['aa_open'], 'aa-s3'), tag('CH-s2'::text, ARRAY['aa_open'], 'aa-s2')]::aa_dl2);
SELECT privacy_guard.forget('aa-s2', 'aa arrays') > 0 AS filed;
SELECT privacy_guard.run_maintenance() -> 'requests_blocked' AS blocked;
SELECT state, (SELECT jsonb_object_agg(key, value) FROM jsonb_each(counts -> 'tagged') WHERE key LIKE 'public.aa_%') AS tagged
  FROM privacy_guard.erasure_requests WHERE reason = 'aa arrays';
SELECT tableoid::regclass AS t, k, array_dims(a) AS dims, ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(a) e) AS elems
  FROM aa_part ORDER BY k;
SELECT tableoid::regclass AS t, k, ARRAY(SELECT coalesce(reveal(e), '-') FROM unnest(a) e) AS elems
  FROM aa_parent ORDER BY k;
SELECT * FROM aa_seen;

-- attack: an array of a domain over an array holds arrays as elements; the
-- erasure cannot reach inside them, so check() must name the column (and
-- a subject report must not print its elements, some of which are another
-- subject's: see below)
CREATE TABLE aa_nested (k int, n aa_dl[]);
SELECT severity, object FROM privacy_guard.check() WHERE object LIKE '%aa_nested%';
DROP TABLE aa_nested;

-- attack: subject_report on a protected table whose columns hold other
-- subjects' tagged values where the report cannot read them one by one
-- (inside a composite type, an array of arrays): it must neither fail nor
-- print another subject's value (even for a table owned by a superuser,
-- whose reads reveal everything); the array column shows the subject's
-- elements only
CREATE TYPE aa_card AS (label text, v tagged_text);
CREATE TABLE aa_prot (id text, a tagged_text[], c aa_card, nn aa_dl[]);
INSERT INTO aa_prot VALUES
	('aa-s4', ARRAY[tag('MINE-s4'::text, ARRAY['aa_open'], 'aa-s4'), tag('QUOKKA-7741'::text, ARRAY['aa_open'], 'aa-s5'), NULL],
			  ROW('x', tag('QUOKKA-7741'::text, ARRAY['aa_open'], 'aa-s5')),
			  ARRAY[ARRAY[tag('QUOKKA-7741'::text, ARRAY['aa_open'], 'aa-s5')]::aa_dl]);
SELECT privacy_guard.protect('aa_prot', 'id', ARRAY['aa_open']);
SELECT r -> 'data' -> 0 -> 'rows' AS superuser_owned FROM privacy_guard.subject_report('aa-s4') r;
ALTER TABLE aa_prot OWNER TO regress_aa_owner;
SELECT r -> 'data' -> 0 -> 'rows' AS role_owned FROM privacy_guard.subject_report('aa-s4') r;
SELECT position('QUOKKA' IN r::text) AS leaked_at FROM privacy_guard.subject_report('aa-s4') r;
-- and the register and the notice read array columns with NULL elements, empty and NULL arrays
INSERT INTO aa_prot VALUES ('aa-s6', '{}', NULL, NULL), ('aa-s7', NULL, NULL, '{}'),
	('aa-s8', '[0:1]={NULL,NULL}', NULL, NULL);
SELECT column_name, tag_purposes FROM privacy_guard.processing_register
 WHERE table_name = 'aa_prot'::regclass AND column_name IN ('a', 'c', 'nn') ORDER BY 1;
SELECT privacy_guard.privacy_notice() IS NOT NULL AS notice;

-- attack: an array column in a protected table that anonymises on forget:
-- the row stays, and the subject's elements go, those written plain too
-- (each plain element took the column's default tag, naming the row's
-- subject); nothing of them is left for the roles that read the
-- anonymised row, and no anonymizer is needed for it
CREATE TABLE aa_anon (id int, a tagged_text[]);
SELECT privacy_guard.protect('aa_anon', 'id', ARRAY['aa_open'], on_forget => 'anonymize');
GRANT SELECT ON aa_anon TO regress_aa_app;
INSERT INTO aa_anon VALUES (5009, ARRAY[tag('A-9'::text, ARRAY['aa_open'], '5009')]), (5010, ARRAY[tag('A-10'::text, ARRAY['aa_open'], '5010')]),
	(5011, ARRAY['plain-11']::tagged_text[]);
SELECT privacy_guard.forget('5009', 'aa anon') > 0 AS filed, privacy_guard.forget('5011', 'aa anon') > 0 AS filed;
SELECT privacy_guard.run_maintenance() -> 'requests_blocked' AS blocked;
SET ROLE regress_aa_app;
SET privacy_guard.purpose = 'aa_open';
SELECT id, a::text[] AS a FROM aa_anon ORDER BY id;
RESET ROLE;
RESET privacy_guard.purpose;

-- attack: the owner's trigger runs while privacy_guard's own DDL has the
-- DDL guard switched off (the event trigger tagging the stored values of a
-- tagged column just added runs an UPDATE as the owner) and drops the
-- rules of its protected table: the drop must be refused like any other,
-- and the forgotten subject stay hidden from the owner
SET ROLE regress_aa_owner;
CREATE TABLE aa_guarded (id int, note text);
INSERT INTO aa_guarded VALUES (5021, 'QUOKKA-7741'), (5022, 'kept');
RESET ROLE;
SELECT privacy_guard.protect('aa_guarded', 'id', ARRAY['aa_open']);
SELECT privacy_guard.forget('5021', 'aa guarded') > 0 AS filed;
SET ROLE regress_aa_owner;
CREATE FUNCTION aa_unguard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE 'DROP POLICY privacy_guard_rules ON public.aa_guarded';
	RETURN NULL;
END
$$;
CREATE TRIGGER aa_unguard BEFORE UPDATE ON aa_guarded FOR EACH STATEMENT EXECUTE FUNCTION aa_unguard();
-- the refusal comes from the trigger's DROP POLICY (its error context)
DO $$
DECLARE
	ctx text;
BEGIN
	ALTER TABLE aa_guarded ADD COLUMN email tagged_text DEFAULT 'plain';
	RAISE NOTICE 'ADD COLUMN succeeded';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS ctx = PG_EXCEPTION_CONTEXT;
	RAISE NOTICE 'refused (%): %; raised inside aa_unguard: %', SQLSTATE, SQLERRM,
		ctx LIKE '%DROP POLICY privacy_guard_rules%function aa_unguard()%';
END
$$;
SELECT polname FROM pg_policy WHERE polrelid = 'aa_guarded'::regclass ORDER BY 1;
SELECT count(*) AS email_column FROM pg_attribute
 WHERE attrelid = 'aa_guarded'::regclass AND attname = 'email' AND NOT attisdropped;
SET privacy_guard.purpose = 'aa_open';
SELECT id, note FROM aa_guarded ORDER BY id;
-- positive control: without the trigger the same ADD COLUMN succeeds
DROP TRIGGER aa_unguard ON aa_guarded;
RESET privacy_guard.purpose;
ALTER TABLE aa_guarded ADD COLUMN email tagged_text DEFAULT 'plain';
SELECT count(*) AS email_column FROM pg_attribute
 WHERE attrelid = 'aa_guarded'::regclass AND attname = 'email' AND NOT attisdropped;
SET privacy_guard.purpose = 'aa_open';
CREATE TRIGGER aa_unguard BEFORE UPDATE ON aa_guarded FOR EACH STATEMENT EXECUTE FUNCTION aa_unguard();
-- the same trigger during a round's array erasure and expiry (statements
-- run as the owner): refused too, and the round reports the table
DROP TRIGGER aa_unguard ON aa_guarded;
CREATE TRIGGER aa_unguard BEFORE UPDATE ON aa_part_1 FOR EACH STATEMENT EXECUTE FUNCTION aa_unguard();
RESET privacy_guard.purpose;
RESET ROLE;
INSERT INTO aa_part VALUES (1, ARRAY[tag('old'::text, ARRAY['aa_open'], NULL, now() - interval '1 day')]::aa_d2[]);
SELECT r -> 'expired' -> 'tagged_errors' AS tagged_errors FROM privacy_guard.run_maintenance() r;
SELECT polname FROM pg_policy WHERE polrelid = 'aa_guarded'::regclass ORDER BY 1;
SET ROLE regress_aa_owner;
DROP TRIGGER aa_unguard ON aa_part_1;
RESET ROLE;

-- attack: delete or alter consent_ledger entries as an administrator, a
-- recorder or a table owner, directly or by switching the ledger's lock
-- off: all refused; the switch cannot be turned by them, and an error
-- rolled back to a savepoint leaves it on
SELECT privacy_guard.grant_consent('aa-s9', 'aa_mkt', evidence => '{"form": "aa"}');
SET ROLE regress_aa_admin;
SELECT pg_temp.err('DELETE FROM privacy_guard.consent_ledger') AS admin_delete;
SELECT pg_temp.err('UPDATE privacy_guard.consent_ledger SET evidence = NULL') AS admin_update;
SELECT pg_temp.err('TRUNCATE privacy_guard.consent_ledger') AS admin_truncate;
SELECT pg_temp.err('SELECT privacy_guard._guard_suspend(true)') AS admin_suspend;
SET ROLE regress_aa_rec;
SELECT pg_temp.err('DELETE FROM privacy_guard.consent_ledger') AS recorder_delete;
SELECT pg_temp.err('SELECT privacy_guard._guard_suspend(true)') AS recorder_suspend;
SELECT pg_temp.err('SELECT privacy_guard._close_receipts()') AS recorder_close;
SET ROLE regress_aa_owner;
SELECT pg_temp.err('SELECT privacy_guard._guard_suspend(true)') AS owner_suspend;
RESET ROLE;
BEGIN;
SAVEPOINT s;
SELECT privacy_guard._guard_suspend(true);
SELECT 1 / 0;
ROLLBACK TO SAVEPOINT s;
SELECT privacy_guard._guard_suspended() AS off_after_rollback_to_savepoint;
DELETE FROM privacy_guard.consent_ledger WHERE evidence = '{"form": "aa"}';
ROLLBACK;
SELECT count(*) AS aa_s9_entries FROM privacy_guard.consent_ledger WHERE evidence = '{"form": "aa"}';

-- attack: lose the history of a subject still being processed when an old
-- receipt of the same subject is pruned: forgotten once (receipt 1, past
-- log retention), then back and forgotten again (request 2, not yet due),
-- or back with new consents not forgotten again; only a subject with no
-- other request loses the history kept under its digest, and live
-- (undigested) history is never touched
SELECT privacy_guard.grant_consent('aa-s10', 'aa_mkt', evidence => '{"form": "aa-lr"}');
SELECT privacy_guard.grant_consent('aa-s11', 'aa_mkt', evidence => '{"form": "aa-lr"}');
SELECT privacy_guard.grant_consent('aa-s12', 'aa_mkt', evidence => '{"form": "aa-lr"}');
SELECT privacy_guard.forget('aa-s10', 'aa lr 10') > 0, privacy_guard.forget('aa-s11', 'aa lr 11') > 0,
	   privacy_guard.forget('aa-s12', 'aa lr 12') > 0;
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round;
-- all three come back; s10 is forgotten again (due tomorrow), s11 only consents again
SELECT privacy_guard.grant_consent(s, 'aa_mkt', evidence => '{"form": "aa-lr-2"}')
  FROM unnest(ARRAY['aa-s10', 'aa-s11', 'aa-s12']) s;
SELECT privacy_guard.forget('aa-s10', 'aa lr 10 again', now() + interval '1 day') > 0 AS filed;
UPDATE privacy_guard.erasure_request SET completed_at = completed_at - interval '1096 days',
	   unreachable_at = now() - interval '1095 days'
 WHERE reason IN ('aa lr 10', 'aa lr 11', 'aa lr 12');
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round;
SELECT reason, state FROM privacy_guard.erasure_requests WHERE reason LIKE 'aa lr%' ORDER BY 1;
SELECT CASE WHEN l.subject LIKE 'aa-s%' THEN l.subject ELSE 'digest of ' || coalesce(
		(SELECT min(r.reason) FROM privacy_guard.erasure_requests r WHERE r.subject_digest = l.subject), '?') END AS who,
	   l.evidence ->> 'form' AS form, count(*) AS entries
  FROM privacy_guard.consent_ledger l
 WHERE l.evidence ->> 'form' IN ('aa-lr', 'aa-lr-2')
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT privacy_guard._guard_suspended() AS guard_left_off;
