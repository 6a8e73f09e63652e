-- Holes found by testing from outside (issue 12): each block is a promise
-- of the README that an outside suite broke, tried again here.
-- (Erasure completion against transactions in flight:
-- test/specs/attacks_erasure_inflight.spec.)
\set VERBOSITY terse
-- the owner reads its own tables under billing below
SELECT privacy_guard.allow_purpose('regress_owner', 'billing');

-- 12.2: hiding, erasing and reporting agree on what "the same subject" is.
-- The rules know a row's subject by its value's text form; a column whose
-- equality is coarser must not make a round erase, or a report show,
-- another person's rows.
CREATE COLLATION ou_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SET ROLE regress_owner;
CREATE TABLE ou_nd (name text COLLATE ou_ci, note text);
CREATE INDEX ON ou_nd (name);
INSERT INTO ou_nd VALUES ('ou_bob', 'bob asked'), ('OU_BOB', 'another person'),
	('ou_carol', 'carol'), ('OU_CAROL', 'not carol');
GRANT SELECT ON ou_nd TO regress_app;
CREATE DOMAIN ou_ci_name AS varchar(40) COLLATE ou_ci;
CREATE TABLE ou_dom (name ou_ci_name PRIMARY KEY, note text);
INSERT INTO ou_dom VALUES ('ou_dave', 'dave asked'), ('OU_Eve', 'eve');
GRANT SELECT ON ou_dom TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('ou_nd', 'name', ARRAY['billing'], on_forget => 'delete');
SELECT privacy_guard.protect('ou_dom', 'name', ARRAY['billing'], on_forget => 'delete');
-- attack: a case-insensitive column; forget('ou_bob') must reach only ou_bob
SELECT privacy_guard.forget('ou_bob') AS req \gset
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT name, note FROM ou_nd ORDER BY note;
RESET ROLE;
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req;
SET ROLE regress_owner;
SELECT name, note FROM ou_nd ORDER BY note;
RESET ROLE;
-- attack: subject_report of one person on that column lists only that person's rows
SELECT jsonb_path_query_array(privacy_guard.subject_report('ou_carol'), '$.data[*].rows[*].note') AS carol_rows;
SELECT jsonb_path_query_array(privacy_guard.subject_report('OU_CAROL'), '$.data[*].rows[*].note') AS other_rows;
-- attack: a domain over varchar with that collation (a unique key: 'OU_DAVE'
-- cannot be added while 'ou_dave' is there); a key of another case names
-- nobody, so it erases and reports nothing
SELECT privacy_guard.forget('OU_DAVE') AS req \gset
SELECT jsonb_path_query_array(privacy_guard.subject_report('OU_DAVE'), '$.data[*].rows[*].note') AS rows_of_other_case;
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req;
SET ROLE regress_owner;
SELECT name, note FROM ou_dom ORDER BY note;
RESET ROLE;
SELECT privacy_guard.forget('ou_dave') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req;
SET ROLE regress_owner;
SELECT name, note FROM ou_dom ORDER BY note;
RESET ROLE;
SELECT privacy_guard.unprotect('ou_nd');
SELECT privacy_guard.unprotect('ou_dom');
SET ROLE regress_owner;
DROP TABLE ou_nd, ou_dom;
DROP DOMAIN ou_ci_name;
RESET ROLE;
DROP COLLATION ou_ci;

-- 12.3: a forgotten subject's tagged values stay withheld wherever they
-- are, after the request is done too.  The round reaches every table it
-- can; a session's own temporary tables and WITH HOLD cursors it cannot,
-- and the done request has dropped its raw key, so the session withholds
-- them by the receipt's digest.  (Another session's temporary table:
-- test/specs/attacks_tagged_copies.spec.)
SET ROLE regress_owner;
CREATE TABLE ou_notes (k int, v privacy_guard.tagged_text);
INSERT INTO ou_notes VALUES
	(1, privacy_guard.tag('frank''s note'::text, ARRAY['billing'], 'ou_frank')),
	(2, privacy_guard.tag('grace''s note'::text, ARRAY['billing'], 'ou_grace'));
GRANT SELECT ON ou_notes TO regress_app;
RESET ROLE;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
BEGIN;
DECLARE ou_held CURSOR WITH HOLD FOR SELECT k, v FROM ou_notes ORDER BY k;
COMMIT;
CREATE TEMP TABLE ou_copy AS SELECT k, v FROM ou_notes;
SELECT k, privacy_guard.reveal(v) FROM ou_copy ORDER BY k;
RESET ROLE;
SELECT privacy_guard.forget('ou_frank') AS req \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT k, privacy_guard.reveal(v) FROM ou_notes ORDER BY k;
-- attack: the copy in the session's temporary table, and the held cursor
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT k, privacy_guard.reveal(v) FROM ou_copy ORDER BY k;
SELECT k, privacy_guard.reveal(v) AS to_text, v::text AS cast_text FROM ou_copy ORDER BY k;
FETCH ALL FROM ou_held;
CLOSE ou_held;
DROP TABLE ou_copy;
RESET ROLE;
SET ROLE regress_owner;
DROP TABLE ou_notes;
RESET ROLE;

-- 12.5: defining or redefining a purpose never widens what roles already
-- authorised can read.  The rule: an authorisation for a purpose reaches
-- its descendants of the same legal basis only; a child of another basis
-- needs an authorisation of its own, and a changed basis withdraws the
-- purpose's authorisations.
CREATE ROLE regress_ou_app;
SELECT privacy_guard.define_purpose('ou_mkt', 'consent');
SELECT privacy_guard.define_purpose('ou_mkt.email', 'consent');
SELECT privacy_guard.define_purpose('ou_stats', 'legitimate_interests');
SELECT privacy_guard.allow_purpose('regress_ou_app', 'ou_mkt');
SELECT privacy_guard.allow_purpose('regress_ou_app', 'ou_stats');
SET ROLE regress_owner;
CREATE TABLE ou_leads (id int, note text, v privacy_guard.tagged_text);
INSERT INTO ou_leads SELECT g, 'lead ' || g, privacy_guard.tag(('tagged ' || g)::text, ARRAY['ou_mkt', 'ou_stats'], g::text)
  FROM generate_series(9601, 9603) g;
GRANT SELECT ON ou_leads TO regress_ou_app;
RESET ROLE;
SELECT privacy_guard.protect('ou_leads', 'id', ARRAY['ou_mkt', 'ou_stats']);
-- 9601 consents to ou_mkt, 9602 never did, 9603 withdrew; 9602 objects to ou_stats
SELECT privacy_guard.grant_consent('9601', 'ou_mkt');
SELECT privacy_guard.grant_consent('9603', 'ou_mkt');
SELECT privacy_guard.withdraw_consent('9603', 'ou_mkt');
SELECT privacy_guard.object_to('9602', 'ou_stats');
SET ROLE regress_ou_app;
SET privacy_guard.purpose = 'ou_mkt';
SELECT id, privacy_guard.reveal(v) FROM ou_leads ORDER BY id;
SET privacy_guard.purpose = 'ou_stats';
SELECT id, privacy_guard.reveal(v) FROM ou_leads ORDER BY id;
RESET ROLE;
-- attack: a contract child under the consent purpose would ask no consent
SELECT privacy_guard.define_purpose('ou_mkt.all', 'contract');
-- attack: a contract child under the legitimate_interests purpose would ignore the objection
SELECT privacy_guard.define_purpose('ou_stats.all', 'contract');
SET ROLE regress_ou_app;
SET privacy_guard.purpose = 'ou_mkt.all';
SELECT id FROM ou_leads ORDER BY id;
SELECT id, privacy_guard.reveal(v) FROM (VALUES (9601, privacy_guard.tag('loose 9601'::text, ARRAY['ou_mkt'], '9601'))) x(id, v);
SET privacy_guard.purpose = 'ou_stats.all';
SELECT id FROM ou_leads ORDER BY id;
-- a child of the same basis is reached, and asks what its basis asks
SET privacy_guard.purpose = 'ou_mkt.email';
SELECT id, privacy_guard.reveal(v) FROM ou_leads ORDER BY id;
RESET ROLE;
-- check() names the children no role may use (a parent's authorisation does not count)
SELECT severity, object FROM privacy_guard.check() WHERE object LIKE 'purpose ''ou\_%' ORDER BY object;
-- attack: redefine the consent purpose itself as contract
SELECT privacy_guard.define_purpose('ou_mkt', 'contract');
SELECT role, purpose FROM privacy_guard.purpose_roles WHERE purpose LIKE 'ou\_%' ORDER BY purpose;
SET ROLE regress_ou_app;
SET privacy_guard.purpose = 'ou_mkt';
SELECT id FROM ou_leads ORDER BY id;
RESET ROLE;
-- given again, knowingly, it reads under the new basis
SELECT privacy_guard.allow_purpose('regress_ou_app', 'ou_mkt');
SET ROLE regress_ou_app;
SET privacy_guard.purpose = 'ou_mkt';
SELECT id FROM ou_leads ORDER BY id;
RESET ROLE;
SELECT privacy_guard.unprotect('ou_leads');
SET ROLE regress_owner;
DROP TABLE ou_leads;
RESET ROLE;
SELECT privacy_guard.disallow_purpose('regress_ou_app', p) FROM unnest(ARRAY['ou_mkt', 'ou_stats']) p;
DROP ROLE regress_ou_app;
SELECT privacy_guard.drop_purpose(p) FROM unnest(ARRAY['ou_mkt.all', 'ou_stats.all', 'ou_mkt.email']) p;

-- 12.6: a table's own row-level security keeps working however it is
-- added or dropped, before or after protect(): privacy_guard's permissive
-- base policy (USING true) stands in only while the table has no
-- permissive policy of its own, else it would be OR-ed with them.
SET ROLE regress_owner;
CREATE TABLE ou_tenants (id bigint, tenant text, note text);
INSERT INTO ou_tenants VALUES (9701, 'a', 'a one'), (9702, 'a', 'a two'), (9703, 'b', 'b one');
GRANT SELECT, INSERT ON ou_tenants TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('ou_tenants', 'id', ARRAY['billing']);
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'ou_tenants'::regclass ORDER BY 1;
-- attack: the owner's tenant policy, added after protect(), was cancelled by the base
SET ROLE regress_owner;
CREATE POLICY ou_own_tenant ON ou_tenants USING (tenant = current_setting('app.tenant', true))
	WITH CHECK (tenant = current_setting('app.tenant', true));
RESET ROLE;
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'ou_tenants'::regclass ORDER BY 1;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SET app.tenant = 'a';
SELECT id, note FROM ou_tenants ORDER BY id;
INSERT INTO ou_tenants VALUES (9704, 'b', 'written into another tenant');
INSERT INTO ou_tenants VALUES (9704, 'a', 'a three');
SELECT id, note FROM ou_tenants ORDER BY id;
RESET ROLE;
-- the rules still narrow it: a forgotten subject goes from the tenant's view
SELECT privacy_guard.forget('9702') > 0 AS filed;
SET ROLE regress_app;
SELECT id, note FROM ou_tenants ORDER BY id;
RESET ROLE;
-- dropping the owner's last permissive policy brings the base back
SET ROLE regress_owner;
DROP POLICY ou_own_tenant ON ou_tenants;
RESET ROLE;
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'ou_tenants'::regclass ORDER BY 1;
SET ROLE regress_app;
SELECT id, note FROM ou_tenants ORDER BY id;
RESET ROLE;
-- a restrictive policy of the owner narrows without touching the base
SET ROLE regress_owner;
CREATE POLICY ou_not_b ON ou_tenants AS RESTRICTIVE USING (tenant <> 'b');
RESET ROLE;
SET ROLE regress_app;
SELECT id, note FROM ou_tenants ORDER BY id;
RESET ROLE;
-- unprotect leaves the owner's policies working: row-level security stays on
SET ROLE regress_owner;
DROP POLICY ou_not_b ON ou_tenants;
CREATE POLICY ou_own_tenant ON ou_tenants USING (tenant = current_setting('app.tenant', true));
RESET ROLE;
SELECT privacy_guard.unprotect('ou_tenants');
SELECT relrowsecurity FROM pg_class WHERE oid = 'ou_tenants'::regclass;
SET ROLE regress_app;
RESET privacy_guard.purpose;
SELECT id, note FROM ou_tenants ORDER BY id;
RESET app.tenant;
RESET ROLE;
-- and a table with an owner policy from before protect() (row-level
-- security on) keeps it in charge, as before: no base
SET ROLE regress_owner;
ALTER TABLE ou_tenants ENABLE ROW LEVEL SECURITY;
RESET ROLE;
SELECT privacy_guard.protect('ou_tenants', 'id', ARRAY['billing']);
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'ou_tenants'::regclass ORDER BY 1;
SET ROLE regress_owner;
DROP POLICY ou_own_tenant ON ou_tenants;
RESET ROLE;
SELECT polname, polpermissive FROM pg_policy WHERE polrelid = 'ou_tenants'::regclass ORDER BY 1;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) AS no_permissive_policy_no_rows FROM ou_tenants;
RESET privacy_guard.purpose;
RESET ROLE;
SELECT privacy_guard.unprotect('ou_tenants');
SET ROLE regress_owner;
DROP TABLE ou_tenants;
RESET ROLE;

-- 12.4: a key that no subject column could hold as it is — another
-- spelling of an integer or a uuid — is refused by forget(), which would
-- otherwise hide nothing, erase nothing and read done.  In a database of
-- its own, whose protected tables are keyed by uuid and bigint only (a
-- text subject column could hold any key).
SELECT current_database() AS regress_db \gset
CREATE DATABASE ou_keys;
\c ou_keys
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
RESET client_min_messages;
\set VERBOSITY default
SELECT privacy_guard.define_purpose('ou_service', 'contract');
CREATE TABLE ou_devices (owner uuid, label text);
CREATE TABLE ou_accounts (id bigint, label text);
INSERT INTO ou_devices VALUES ('6ecd8c99-4036-403d-bf84-cf8400f67836', 'phone');
INSERT INTO ou_accounts VALUES (4242, 'account 4242');
SELECT privacy_guard.protect('ou_devices', 'owner', ARRAY['ou_service']);
SELECT privacy_guard.protect('ou_accounts', 'id', ARRAY['ou_service']);
-- attack: upper case, braces, no hyphens; a sign, leading zeros, spaces
SELECT privacy_guard.forget('6ECD8C99-4036-403D-BF84-CF8400F67836');
SELECT privacy_guard.forget('{6ecd8c99-4036-403d-bf84-cf8400f67836}');
SELECT privacy_guard.forget('6ecd8c994036403dbf84cf8400f67836');
SELECT privacy_guard.forget('+4242');
SELECT privacy_guard.forget('04242');
SELECT privacy_guard.forget(' 4242');
SELECT count(*) AS requests_filed FROM privacy_guard.erasure_requests;
\set VERBOSITY terse
-- the keys as the columns hold them are accepted, and erase
SELECT privacy_guard.forget('6ecd8c99-4036-403d-bf84-cf8400f67836') > 0 AS filed;
SELECT privacy_guard.forget('4242') > 0 AS filed;
-- a key of neither type may still name a subject of tagged values or consents
SELECT privacy_guard.forget('someone@example.org') > 0 AS filed;
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT state, counts FROM privacy_guard.erasure_requests ORDER BY id;
SELECT (SELECT count(*) FROM ou_devices) AS devices, (SELECT count(*) FROM ou_accounts) AS accounts;
-- with a text subject column protected too, '04242' may be a text key: it is
-- accepted, and done when something was found under it; a misspelling
-- under which nothing was found is blocked, never done
CREATE TABLE ou_names (name text);
INSERT INTO ou_names VALUES ('04242');
SELECT privacy_guard.protect('ou_names', 'name', ARRAY['ou_service']);
SELECT privacy_guard.forget('04242') > 0 AS filed;
SELECT privacy_guard.forget('004242') > 0 AS filed;
SELECT privacy_guard.run_maintenance() - 'errors' AS round;
SELECT state, counts, error FROM privacy_guard.erasure_requests WHERE counts::text LIKE '%ou_names%' OR state = 'blocked' ORDER BY id;
\c :regress_db
DROP DATABASE ou_keys;
