-- Attempts on disclosures and the outbox: forging disclosure records,
-- disclosing what the rules hide, choosing the subject of a row, shadowing
-- pg_catalog's functions, reading or emptying the outbox without the
-- privilege.
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_rcp_attacks;
\c regress_rcp_attacks
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse
CREATE ROLE regress_rcpa_app;
CREATE ROLE regress_rcpa_evil;
SELECT privacy_guard.define_purpose('marketing', 'consent');
SELECT privacy_guard.define_purpose('analytics', 'consent');
SELECT privacy_guard.allow_purpose('regress_rcpa_app', 'marketing');
SELECT privacy_guard.allow_purpose('regress_rcpa_evil', 'marketing');
SELECT privacy_guard.define_recipient('mailco', 'processor', 'FR');
SELECT privacy_guard.define_recipient('rival', 'third_party', 'IE');
SELECT privacy_guard.disclose_to('marketing', 'mailco');
SELECT privacy_guard.disclose_to('analytics', 'rival');
CREATE TABLE rcpa_people (id text PRIMARY KEY, email text, other_id text);
INSERT INTO rcpa_people VALUES ('a', 'a@example.org', 'b'), ('b', 'b@example.org', 'a');
CREATE TABLE rcpa_plain (id text, email text);
INSERT INTO rcpa_plain VALUES ('a', 'a@example.org');
GRANT SELECT ON rcpa_people, rcpa_plain TO regress_rcpa_app, regress_rcpa_evil;
SELECT privacy_guard.protect('rcpa_people', 'id', ARRAY['marketing']);
SELECT privacy_guard.grant_consent('a', 'marketing');
SELECT privacy_guard.grant_discloser('regress_rcpa_app');

-- no record can be written but by disclose() itself
SET ROLE regress_rcpa_app;
SELECT privacy_guard._record_disclosure('rival', 'analytics', 'rcpa_people', ARRAY['id']::name[], ARRAY['b'], 1, 'someone');
INSERT INTO privacy_guard.disclosure (recipient, purpose, table_name, columns, disclosed_by, rows, subjects)
VALUES ('rival', 'analytics', 'x', '{}', 'x', 1, 1);
INSERT INTO privacy_guard.disclosure_subject VALUES (1, 'x', 1);
UPDATE privacy_guard.disclosure SET recipient = 'rival';
DELETE FROM privacy_guard.disclosure;
SELECT privacy_guard._notify_recipients('a', 'x', 'erasure', NULL, NULL);
INSERT INTO privacy_guard.recipient_notice (recipient, kind, subject_digest) VALUES ('rival', 'erasure', 'x');
SELECT * FROM privacy_guard.disclosures;
SELECT * FROM privacy_guard.recipient_notices;
SELECT privacy_guard.mark_notice_sent(1);
SELECT * FROM privacy_guard.pending_notices();
SELECT privacy_guard.grant_discloser('regress_rcpa_evil');
SELECT privacy_guard.grant_deliverer('regress_rcpa_app');
SELECT privacy_guard._disclosure_query('rival', 'analytics', 'rcpa_people', ARRAY['id']::name[]);

-- a purpose the caller is not authorised for, one that discloses elsewhere
SELECT * FROM privacy_guard.disclose('rival', 'analytics', 'rcpa_people', ARRAY['email']);
SELECT * FROM privacy_guard.disclose('rival', 'marketing', 'rcpa_people', ARRAY['email']);
-- a table privacy_guard does not protect: its rows' subjects are unknown
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_plain', ARRAY['email']);
-- a column name that is SQL
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email) FROM rcpa_plain --']);
-- asking for a subject without consent gives nothing, and records nothing for it
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email'], ARRAY['b']);
-- shadowing pg_catalog's format() to name another subject changes nothing
RESET ROLE;
CREATE SCHEMA rcpa_evil AUTHORIZATION regress_rcpa_app;
SET ROLE regress_rcpa_app;
CREATE FUNCTION rcpa_evil.format(text, text) RETURNS text LANGUAGE sql AS $$ SELECT 'b' $$;
SET search_path = rcpa_evil, public;
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email', 'other_id']);
RESET search_path;
-- a role without disclose() cannot use it
SET ROLE regress_rcpa_evil;
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email']);
RESET ROLE;

-- what was recorded: subject a twice, never b; nothing for rival
SELECT recipient, purpose, rows, subjects FROM privacy_guard.disclosures ORDER BY id;
SELECT ds.subject_digest = privacy_guard._subject_digest('a') AS is_a, count(*)
  FROM privacy_guard.disclosure_subject ds GROUP BY 1;
-- an erasure of b notifies nobody; of a, mailco once
SELECT privacy_guard.forget('b');
SELECT privacy_guard.forget('a');
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT recipients_notified FROM privacy_guard.erasure_requests ORDER BY id;
SELECT recipient, kind FROM privacy_guard.recipient_notices ORDER BY id;

-- inside a transaction block or a savepoint a ROLLBACK could take the record back: refused
BEGIN;
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email']);
ROLLBACK;
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email']) \; SELECT 1/0;
-- the read runs with the caller's privileges: without SELECT on the table, nothing goes out or is recorded
INSERT INTO rcpa_people VALUES ('c', 'c@example.org', NULL);
SELECT privacy_guard.grant_consent('c', 'marketing');
REVOKE SELECT ON rcpa_people FROM regress_rcpa_app;
SET ROLE regress_rcpa_app;
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcpa_people', ARRAY['email']);
RESET ROLE;
SELECT count(*) FROM privacy_guard.disclosures;

\c :orig_db
DROP DATABASE regress_rcp_attacks;
DROP ROLE regress_rcpa_app, regress_rcpa_evil;
