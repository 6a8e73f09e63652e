-- Recipients (administration level): defining them, the EU/EEA safeguard
-- rule, which purposes disclose to them; the register, the privacy notice
-- and the subject report name them; disclosures through disclose() with
-- the rules applied, recorded per subject; notices to recipients in the
-- outbox after a withdrawal, an objection and an erasure; the
-- investigation timeline.
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_rcp;
\c regress_rcp
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse
CREATE ROLE regress_rcp_admin;
CREATE ROLE regress_rcp_app;
CREATE ROLE regress_rcp_courier;

SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters');
SELECT privacy_guard.define_purpose('marketing.partners', 'consent', 'Offers of our partners');
SELECT privacy_guard.define_purpose('fraud', 'legitimate_interests', 'Preventing fraud');
SELECT privacy_guard.allow_purpose('regress_rcp_app', 'marketing');
SELECT privacy_guard.allow_purpose('regress_rcp_app', 'billing');
SELECT privacy_guard.allow_purpose('regress_rcp_app', 'fraud');

CREATE TABLE rcp_customers (id bigint PRIMARY KEY, email text, city text);
INSERT INTO rcp_customers VALUES (1, 'one@example.org', 'Berlin'), (2, 'two@example.org', 'Paris'),
	(3, 'three@example.org', 'Rome');
COMMENT ON TABLE rcp_customers IS 'Customer accounts';
GRANT SELECT ON rcp_customers TO regress_rcp_app;
SELECT privacy_guard.protect('rcp_customers', 'id', ARRAY['billing', 'marketing', 'fraud']);

-- administrators only
SELECT privacy_guard.grant_admin('regress_rcp_admin');
SET ROLE regress_rcp_app;
SELECT privacy_guard.define_recipient('mailco', 'processor', 'DE');
SELECT privacy_guard.disclose_to('marketing', 'mailco');
RESET ROLE;

SET ROLE regress_rcp_admin;
-- bad input
SELECT privacy_guard.define_recipient('Mail Co', 'processor', 'DE');
SELECT privacy_guard.define_recipient('mailco', 'vendor', 'DE');
SELECT privacy_guard.define_recipient('mailco', 'processor', 'Germany');
-- outside the EU/EEA: a safeguard is required
SELECT privacy_guard.define_recipient('adnet', 'third_party', 'US');
SELECT privacy_guard.define_recipient('adnet', 'third_party', 'US', '   ');
SELECT privacy_guard.define_recipient('adnet', 'third_party', 'US', 'standard contractual clauses', 'Ad network');
SELECT privacy_guard.define_recipient('mailco', 'processor', 'DE', NULL, 'Mail delivery service');
SELECT privacy_guard.define_recipient('fraudco', 'joint_controller', 'NO');
SELECT privacy_guard.disclose_to('marketing.partners', 'adnet');
SELECT privacy_guard.disclose_to('marketing', 'mailco');
SELECT privacy_guard.disclose_to('fraud', 'fraudco');
SELECT privacy_guard.disclose_to('nosuch', 'mailco');
SELECT privacy_guard.disclose_to('marketing', 'nosuch');
SELECT * FROM privacy_guard.recipients ORDER BY name;
-- a recipient a purpose discloses to cannot be dropped
SELECT privacy_guard.drop_recipient('fraudco');
-- nor a purpose that discloses
SELECT privacy_guard.drop_purpose('marketing.partners');
SELECT privacy_guard.undisclose('fraud', 'fraudco');
SELECT privacy_guard.drop_recipient('fraudco');
SELECT privacy_guard.drop_recipient('fraudco');
SELECT privacy_guard.define_recipient('fraudco', 'joint_controller', 'NO');
SELECT privacy_guard.disclose_to('fraud', 'fraudco');

-- the register: per column, the recipients the table's purposes disclose to
SELECT column_name, recipients FROM privacy_guard.processing_register
 WHERE table_name = 'rcp_customers'::regclass ORDER BY column_name;
RESET ROLE;

-- the notice names them, with the third-country transfer and its safeguard
SELECT line FROM regexp_split_to_table(privacy_guard.privacy_notice(), E'\n') AS line
 WHERE line ~ 'receives|recipients|processor|third party|joint controller|safeguards';
SELECT strpos(privacy_guard.privacy_notice('html'), '<h2>Who receives your data</h2>') > 0 AS html_section;
-- the section in German, for the notice in German
SELECT privacy_guard._notice_recipients('markdown', ARRAY['marketing'], 'de');
-- everyone may see the recipients (the notice names them)
SET ROLE regress_rcp_courier;
SELECT name, kind, country, third_country FROM privacy_guard.recipients ORDER BY name;
SELECT count(*) FROM privacy_guard.disclosures;
RESET ROLE;

-- disclosures: only roles handed disclose(), only under a disclosing purpose
SELECT privacy_guard.grant_consent('1', 'marketing');
SELECT privacy_guard.grant_consent('2', 'marketing.partners');
SET ROLE regress_rcp_app;
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcp_customers', ARRAY['id', 'email']);
RESET ROLE;
SELECT privacy_guard.grant_discloser('regress_rcp_app');
SET ROLE regress_rcp_app;
-- refused: the purpose does not disclose to the recipient
SELECT * FROM privacy_guard.disclose('adnet', 'marketing', 'rcp_customers', ARRAY['id', 'email']);
SELECT * FROM privacy_guard.disclose('mailco', 'billing', 'rcp_customers', ARRAY['id', 'email']);
SELECT * FROM privacy_guard.disclose('nosuch', 'marketing', 'rcp_customers', ARRAY['id']);
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcp_customers', ARRAY['id', 'nosuch']);
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcp_customers', ARRAY[]::name[]);
SELECT * FROM privacy_guard.disclose('mailco', NULL, 'rcp_customers', ARRAY['id']);
-- allowed: only subjects with consent (1 to marketing; 2 to marketing.partners only)
SELECT * FROM privacy_guard.disclose('mailco', 'marketing', 'rcp_customers', ARRAY['id', 'email']) ORDER BY 1::text;
-- a child purpose discloses to its ancestor's recipients and its own
SELECT * FROM privacy_guard.disclose('adnet', 'marketing.partners', 'rcp_customers', ARRAY['email', 'city']) ORDER BY 1::text;
-- limited to some subjects
SELECT * FROM privacy_guard.disclose('fraudco', 'fraud', 'rcp_customers', ARRAY['id'], ARRAY['2', '3', '99']) ORDER BY 1::text;
-- the session's purpose is left as it was
SHOW privacy_guard.purpose;
SHOW search_path;
RESET ROLE;

SELECT recipient, purpose, table_name, columns, disclosed_by, rows, subjects
  FROM privacy_guard.disclosures ORDER BY id;

-- the subject report names the recipients their data went to
SELECT jsonb_pretty(x - 'first_disclosed_at' - 'last_disclosed_at')
  FROM jsonb_array_elements(privacy_guard.subject_report('2') -> 'recipients') x;
SELECT jsonb_path_query_array(privacy_guard.subject_report('3') -> 'recipients', '$[*].recipient') AS recipients_of_3;

-- a withdrawal notifies the recipients that received the subject's data under that purpose (or a child)
SELECT privacy_guard.withdraw_consent('2', 'marketing');
SELECT recipient, kind, subject, purpose FROM privacy_guard.recipient_notice ORDER BY id;
-- withdrawing again tells nobody again
SELECT privacy_guard.withdraw_consent('2', 'marketing');
SELECT count(*) AS notices FROM privacy_guard.recipient_notice;
-- an objection likewise
SELECT privacy_guard.object_to('3', 'fraud');
-- the erasure: one notice per recipient of the subject's data; the receipt counts them
SELECT privacy_guard.forget('2');
SELECT (privacy_guard.run_maintenance() ->> 'requests_done') AS done;
SELECT state, recipients_notified FROM privacy_guard.erasure_requests ORDER BY id;
SELECT recipient, kind, subject, purpose, request_id IS NOT NULL AS has_request
  FROM privacy_guard.recipient_notice ORDER BY id;

-- delivering: a role handed the outbox reads pending notices and marks them sent
SET ROLE regress_rcp_courier;
SELECT * FROM privacy_guard.pending_notices();
RESET ROLE;
SELECT privacy_guard.grant_deliverer('regress_rcp_courier');
SET ROLE regress_rcp_courier;
SELECT recipient, kind, subject FROM privacy_guard.pending_notices(2);
SELECT privacy_guard.mark_notice_sent(id) FROM privacy_guard.pending_notices(2);
SELECT privacy_guard.mark_notice_sent(1);
SELECT count(*) AS still_pending FROM privacy_guard.pending_notices();
RESET ROLE;
-- sent notices keep no key
SELECT id, recipient, kind, subject IS NULL AS key_dropped, sent_at IS NOT NULL AS sent, sent_by
  FROM privacy_guard.recipient_notice ORDER BY id;

-- the investigation timeline: the disclosure after the withdrawal is flagged
SELECT privacy_guard.grant_consent('1', 'marketing.partners');
SELECT privacy_guard.withdraw_consent('1', 'marketing.partners');
SET ROLE regress_rcp_admin;
SELECT event, detail ->> 'purpose' AS purpose, detail ->> 'recipient' AS recipient, flag
  FROM privacy_guard.investigate('1') ORDER BY at, event;
RESET ROLE;
-- make the records say what an unchecked export would have done
UPDATE privacy_guard.disclosure SET disclosed_at = now() + interval '1 hour' WHERE recipient = 'adnet';
SELECT event, detail ->> 'purpose' AS purpose, detail ->> 'recipient' AS recipient, flag
  FROM privacy_guard.investigate('1') WHERE flag IS NOT NULL ORDER BY at, event;
SELECT event, flag FROM privacy_guard.investigate('2') ORDER BY at, event;
-- a period
SELECT count(*) FROM privacy_guard.investigate('1', now() + interval '2 hours', NULL);

\c :orig_db
DROP DATABASE regress_rcp;
DROP ROLE regress_rcp_admin, regress_rcp_app, regress_rcp_courier;
