-- Enforcement for tagged values (SPEC 4): a forget request hides the
-- subject's tagged values at once and the next round erases them in every
-- tagged column of the database, protected table or not; expired tagged
-- values are erased too; receipts and the round's result count them.
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

CREATE TABLE tg_er_prot (id bigint, email tagged_text, born tagged_date, signed timestamptz);
SELECT privacy_guard.protect('tg_er_prot', 'id', ARRAY['tg_billing']);
CREATE TABLE tg_er_free (k int, note tagged_text, amount tagged_numeric);
CREATE DOMAIN tg_er_dom AS tagged_jsonb;
CREATE TABLE tg_er_dom_t (k int, doc tg_er_dom);
CREATE ROLE regress_tg_owner;
ALTER TABLE tg_er_free OWNER TO regress_tg_owner;
SET privacy_guard.purpose = 'tg_billing';
INSERT INTO tg_er_prot VALUES (201, 'ERASE-ME-201', '1985-05-05', now()), (202, 'KEEP-202', '1986-06-06', now());
INSERT INTO tg_er_free VALUES
	(1, tag('FREE-ERASE-201'::text, ARRAY['tg_billing'], '201'), tag(201.5, ARRAY['tg_billing'], '201')),
	(2, tag('FREE-KEEP-202'::text, ARRAY['tg_billing'], '202'), tag(202.5, ARRAY['tg_billing'], '202')),
	(3, tag('FREE-EXPIRED'::text, ARRAY['tg_billing'], NULL, now() - interval '1 minute'), NULL),
	(4, tag('FREE-NOT-YET'::text, ARRAY['tg_billing'], NULL, now() + interval '1 day'), NULL),
	(5, 'FREE-PLAIN', 5);
INSERT INTO tg_er_dom_t VALUES (1, tag('{"who": "201"}'::jsonb, ARRAY['tg_billing'], '201')),
							   (2, tag('{"who": "202"}'::jsonb, ARRAY['tg_billing'], '202'));
GRANT SELECT ON tg_er_prot, tg_er_free, tg_er_dom_t TO regress_tg_app;
-- subject 201 moves its tagged values elsewhere too: the copy keeps its tag
CREATE TABLE tg_er_moved AS SELECT id, email FROM tg_er_prot WHERE id = 201;

SELECT privacy_guard.forget('201', 'test') IS NOT NULL AS filed;
-- hidden at once, everywhere, before any round
SET ROLE regress_tg_app;
SELECT k, reveal(note), reveal(amount) FROM tg_er_free ORDER BY k;
SELECT k, reveal(doc) FROM tg_er_dom_t ORDER BY k;
RESET ROLE;
-- ... but still stored until the round (a superuser sees everything)
SELECT k, reveal(note), reveal(amount) FROM tg_er_free ORDER BY k;
-- the round erases them in every tagged column and counts them; expired ones too
CREATE FUNCTION pg_temp.mine(counts jsonb) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_object_agg(key, value) FROM jsonb_each(counts) WHERE key LIKE 'public.tg_er%' $$;
SELECT pg_temp.mine(r -> 'expired' -> 'tagged') AS expired_tagged FROM privacy_guard.run_maintenance() r;
SELECT state, counts -> 'tagged' AS tagged, counts -> 'public.tg_er_prot' AS rows
  FROM privacy_guard.erasure_requests WHERE reason = 'test';
SELECT k, reveal(note), reveal(amount) FROM tg_er_free ORDER BY k;
SELECT k, reveal(doc) FROM tg_er_dom_t ORDER BY k;
SELECT id, reveal(email) FROM tg_er_prot ORDER BY id;
SELECT id, email IS NULL AS erased FROM tg_er_moved;
-- a second round finds nothing left
SELECT pg_temp.mine(r -> 'expired' -> 'tagged') AS expired_tagged FROM privacy_guard.run_maintenance() r;
-- run_maintenance(tbl) erases only that table's expired tagged values
INSERT INTO tg_er_free VALUES (6, tag('EXPIRED-6'::text, ARRAY['tg_billing'], NULL, now() - interval '1 minute'), NULL);
INSERT INTO tg_er_moved VALUES (7, tag('EXPIRED-7'::text, ARRAY['tg_billing'], NULL, now() - interval '1 minute'));
SELECT r -> 'expired' -> 'tagged' AS expired_tagged FROM privacy_guard.run_maintenance('tg_er_moved') r;
SELECT k, reveal(note) FROM tg_er_free WHERE k = 6;
-- a tagged column that cannot be erased blocks the request, naming the column; nothing is erased
CREATE TABLE tg_er_strict (k int, v tagged_text NOT NULL);
INSERT INTO tg_er_strict VALUES (1, tag('STRICT-203'::text, ARRAY['tg_billing'], '203'));
INSERT INTO tg_er_free VALUES (8, tag('FREE-203'::text, ARRAY['tg_billing'], '203'), NULL);
SELECT privacy_guard.forget('203', 'strict') IS NOT NULL AS filed;
SELECT r -> 'requests_blocked' AS blocked FROM privacy_guard.run_maintenance('tg_er_strict') r;
SELECT state, error FROM privacy_guard.erasure_requests WHERE reason = 'strict';
SELECT k, reveal(note) FROM tg_er_free WHERE k = 8;
ALTER TABLE tg_er_strict ALTER COLUMN v DROP NOT NULL;
SELECT r -> 'requests_blocked' AS blocked FROM privacy_guard.run_maintenance('tg_er_strict') r;
SELECT state, error, counts -> 'tagged' AS tagged FROM privacy_guard.erasure_requests WHERE reason = 'strict';
-- the erasure ran as the owner of each table: the owner's rights, not ours
SELECT relname, relowner::regrole FROM pg_class WHERE relname = 'tg_er_free';
RESET privacy_guard.purpose;
