-- Forget requests in sets: when many requests are due at once, a round
-- erases them with one statement per table for a set of subjects, children
-- before parents, as each table's owner; every request ends as it would
-- alone (the same receipt, blocked or restricted for the same reasons, its
-- tagged values and anonymized rows, the recipients' notices).
SELECT current_database() AS orig_db \gset
CREATE DATABASE regress_fset;
\c regress_fset
SET client_min_messages = warning;
CREATE EXTENSION privacy_guard;
\set VERBOSITY terse
CREATE ROLE regress_fset_owner;
CREATE ROLE regress_fset_app;
GRANT CREATE ON SCHEMA public TO regress_fset_owner;

SELECT privacy_guard.define_purpose('fs_billing', 'contract', 'Invoices');
SELECT privacy_guard.define_purpose('fs_tax', 'legal_obligation', 'Tax records');
SELECT privacy_guard.define_purpose('fs_news', 'consent', 'Newsletters');
SELECT privacy_guard.allow_purpose('regress_fset_app', 'fs_billing');
SELECT privacy_guard.define_recipient('fs_mailco', 'processor', 'DE');
SELECT privacy_guard.disclose_to('fs_billing', 'fs_mailco');
SELECT privacy_guard.grant_discloser('regress_fset_app');

SET ROLE regress_fset_owner;
CREATE TABLE fs_accounts (id bigint PRIMARY KEY, email text NOT NULL);
CREATE TABLE fs_orders (id serial PRIMARY KEY, account_id bigint NOT NULL REFERENCES fs_accounts (id),
						amount numeric NOT NULL);
CREATE TABLE fs_profiles (account_id bigint, nickname text, city text);
CREATE TABLE fs_invoices (id serial PRIMARY KEY, account_id bigint NOT NULL, issued timestamptz NOT NULL);
-- not protected: a reference from here blocks the erasure of an account
CREATE TABLE fs_blockers (account_id bigint REFERENCES fs_accounts (id));
-- the owner's statement trigger on the orders: which statements, and as whom
CREATE TABLE fs_log (who name, op text);
CREATE FUNCTION fs_log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.fs_log VALUES (current_user, TG_OP);
	RETURN NULL;
END
$$;
CREATE TRIGGER fs_orders_stmt AFTER DELETE ON fs_orders FOR EACH STATEMENT EXECUTE FUNCTION fs_log_stmt();
-- and a row trigger that keeps the account of 8
CREATE FUNCTION fs_keep_8() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.id = 8 THEN
		RETURN NULL;
	END IF;
	RETURN OLD;
END
$$;
CREATE TRIGGER fs_accounts_keep BEFORE DELETE ON fs_accounts FOR EACH ROW EXECUTE FUNCTION fs_keep_8();
-- subjects 1 to 42: an account, two orders, a profile
INSERT INTO fs_accounts SELECT g, 'user' || g || '@example.org' FROM generate_series(1, 42) g;
INSERT INTO fs_orders (account_id, amount) SELECT g, 10 * k FROM generate_series(1, 42) g, generate_series(1, 2) k;
INSERT INTO fs_profiles SELECT g, 'nick' || g, 'Town' || g FROM generate_series(1, 42) g;
-- 5 and 42 have an invoice the legal hold keeps, 6 one past it
INSERT INTO fs_invoices (account_id, issued) VALUES (5, now() - interval '60 days'),
	(6, now() - interval '20 years'), (42, now() - interval '60 days');
-- 7 and 41 are referred to from a table that is not protected
INSERT INTO fs_blockers VALUES (7), (41);
GRANT SELECT ON fs_accounts, fs_orders, fs_profiles, fs_invoices TO regress_fset_app;
RESET ROLE;
SELECT privacy_guard.protect('fs_accounts', 'id', ARRAY['fs_billing']);
SELECT privacy_guard.protect('fs_orders', 'account_id', ARRAY['fs_billing']);
SELECT privacy_guard.protect('fs_profiles', 'account_id', ARRAY['fs_billing'], on_forget => 'anonymize');
SELECT privacy_guard.protect('fs_invoices', 'account_id', ARRAY['fs_billing'], interval '30 days', 'issued');
SELECT privacy_guard.set_legal_hold('fs_invoices', interval '10 years', 'fs_tax');
SELECT privacy_guard.set_anonymizer('fs_profiles', 'nickname', 'hash');

-- a tagged value of 9, in a table that is not protected
CREATE TABLE fs_notes (k int, note privacy_guard.tagged_text);
INSERT INTO fs_notes VALUES (1, privacy_guard.tag('NOTE-OF-9'::text, ARRAY['fs_billing'], '9')),
	(2, privacy_guard.tag('NOTE-OF-50'::text, ARRAY['fs_billing'], '50'));
-- 3's consent history, and its data disclosed to a recipient
SELECT privacy_guard.grant_consent('3', 'fs_news');
SET ROLE regress_fset_app;
SELECT count(*) AS disclosed
  FROM privacy_guard.disclose('fs_mailco', 'fs_billing', 'fs_accounts', ARRAY['id', 'email'], ARRAY['3']);
RESET ROLE;

-- 40 requests due at once (11 twice), one round
SELECT count(privacy_guard.forget(g::text, 'closed account')) AS filed FROM generate_series(1, 40) g;
SELECT privacy_guard.forget('11', 'again') IS NOT NULL AS filed;
SELECT r - 'expired' - 'errors' AS round FROM privacy_guard.run_maintenance() r;
SELECT state, count(*) FROM privacy_guard.erasure_requests GROUP BY state ORDER BY state;

-- the receipts: the set's requests count their rows per table as one alone does
SELECT e.id, e.state, e.counts, e.error, e.completed_at IS NOT NULL AS completed
  FROM privacy_guard.erasure_requests e WHERE e.id IN (1, 3, 5, 6, 7, 8, 9, 11, 41) ORDER BY e.id;
SELECT count(*) AS receipts_like_1
  FROM privacy_guard.erasure_requests e, privacy_guard.erasure_requests one
 WHERE one.id = 1 AND e.counts = one.counts AND e.state = 'done';
-- the request of 11 filed again (request 41) came after the first, alone: nothing left to erase
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = 41;

-- the same shapes one at a time (requests 42 and 43): subject 41 blocked and
-- 42 restricted, as 7 and 5 were in the set
SELECT privacy_guard.forget('41') IS NOT NULL AS filed, privacy_guard.forget('42') IS NOT NULL AS filed;
SELECT r - 'expired' - 'errors' AS round FROM privacy_guard.run_maintenance() r;
SELECT e.id, e.state, e.counts, e.error FROM privacy_guard.erasure_requests e WHERE e.id > 41 ORDER BY e.id;
SELECT a.error = replace(b.error, '41', '7') AS same_blocking, c.counts = d.counts AS same_restriction
  FROM privacy_guard.erasure_requests a, privacy_guard.erasure_requests b,
	   privacy_guard.erasure_requests c, privacy_guard.erasure_requests d
 WHERE a.id = 7 AND b.id = 42 AND c.id = 5 AND d.id = 43;

-- the rows are gone (as the superuser, who sees everything): only those of
-- 7, 8 and 41 (blocked: all of 8's rows, though only its account was kept)
-- and the held invoices of 5 and 42 are left
SELECT array_agg(id ORDER BY id) AS accounts_left FROM fs_accounts;
SELECT array_agg(DISTINCT account_id ORDER BY account_id) AS orders_left FROM fs_orders;
SELECT account_id, issued < now() - interval '1 year' AS old FROM fs_invoices ORDER BY account_id;
-- the profiles are anonymized, not deleted: no subject or nickname of a
-- forgotten subject is left (the city has no anonymizer and stays), hashed
-- as one request alone hashes (42 was alone)
SELECT count(*) AS profiles, count(account_id) AS with_subject,
	   count(*) FILTER (WHERE nickname LIKE 'nick%') AS nicknames, count(city) AS cities
  FROM fs_profiles WHERE account_id IS NULL OR account_id NOT IN (7, 8, 41);
SELECT count(*) AS hashed_alike FROM fs_profiles
 WHERE (city = 'Town1' AND nickname = privacy_guard._hmac(privacy_guard._secret(), 'nick1'))
	OR (city = 'Town42' AND nickname = privacy_guard._hmac(privacy_guard._secret(), 'nick42'));
SELECT account_id, nickname, city FROM fs_profiles WHERE account_id IN (7, 8) ORDER BY 1;
-- 9's tagged value is erased, 50's kept
SELECT k, note IS NULL AS erased FROM fs_notes ORDER BY k;
-- 3's consent history is kept under the digest, no longer under the key
SELECT count(*) FILTER (WHERE subject = '3') AS under_key,
	   count(*) FILTER (WHERE subject = privacy_guard._subject_digest('3')) AS under_digest
  FROM privacy_guard.consent_ledger;

-- the recipient of 3's data is told of the erasure
SELECT recipient, kind, subject, request_id = 3 AS of_request FROM privacy_guard.recipient_notice ORDER BY id;
SELECT recipients_notified FROM privacy_guard.erasure_requests WHERE id = 3;

-- one statement on the orders for many subjects, run by the table's owner
SELECT count(*) < 40 AS fewer_statements_than_requests, array_agg(DISTINCT who) AS run_as FROM fs_log;

-- a key that spells an integer otherwise ('0061') erases nothing of 61 in an
-- integer column, in a set as alone (a table keyed by text lets forget()
-- take the key; there it finds its row)
SET ROLE regress_fset_owner;
CREATE TABLE fs_handles (handle text);
CREATE TABLE fs_cards (owner bigint);
INSERT INTO fs_handles VALUES ('0061'), ('61'), ('62');
INSERT INTO fs_cards SELECT g FROM generate_series(60, 84) g;
RESET ROLE;
SELECT privacy_guard.protect('fs_handles', 'handle', ARRAY['fs_billing']);
SELECT privacy_guard.protect('fs_cards', 'owner', ARRAY['fs_billing']);
SELECT count(privacy_guard.forget(k, 'bulk')) AS filed
  FROM unnest(ARRAY['0061'] || ARRAY(SELECT g::text FROM generate_series(62, 84) g)) AS k;
SELECT r -> 'requests_done' AS done FROM privacy_guard.run_maintenance() r;
SELECT array_agg(owner ORDER BY owner) AS cards_left FROM fs_cards;
SELECT array_agg(handle ORDER BY handle) AS handles_left FROM fs_handles;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE subject_digest = privacy_guard._subject_digest('0061');

-- a uuid subject column: a set names each deleted row's key by the uuid's
-- text form (the key, lower case with hyphens), formatted once per key
SET ROLE regress_fset_owner;
CREATE TABLE fs_devices (owner uuid, serial int);
INSERT INTO fs_devices SELECT md5('d' || g)::uuid, k FROM generate_series(1, 25) g, generate_series(1, 2) k;
RESET ROLE;
SELECT privacy_guard.protect('fs_devices', 'owner', ARRAY['fs_billing']);
SELECT count(privacy_guard.forget(md5('d' || g)::uuid::text, 'devices')) AS filed FROM generate_series(1, 24) g;
SELECT r -> 'requests_done' AS done FROM privacy_guard.run_maintenance() r;
SELECT count(*) AS devices_left, count(*) FILTER (WHERE owner = md5('d25')::uuid) AS of_the_25th FROM fs_devices;
SELECT state, counts, count(*) FROM privacy_guard.erasure_requests WHERE reason = 'devices' GROUP BY 1, 2;

-- a table with a part detached from it since it was protected: a set runs a
-- statement on each, and each receipt adds up the table's rows of both
-- (2, not the 1 of either) and names both parts as written to
SET ROLE regress_fset_owner;
CREATE TABLE fs_shipments (id int, owner bigint) PARTITION BY RANGE (id);
CREATE TABLE fs_shipments_old PARTITION OF fs_shipments FOR VALUES FROM (0) TO (100);
CREATE TABLE fs_shipments_new PARTITION OF fs_shipments FOR VALUES FROM (100) TO (200);
INSERT INTO fs_shipments SELECT g, 100 + g FROM generate_series(1, 25) g;
INSERT INTO fs_shipments SELECT 100 + g, 100 + g FROM generate_series(1, 25) g;
RESET ROLE;
SELECT privacy_guard.protect('fs_shipments', 'owner', ARRAY['fs_billing']);
SET ROLE regress_fset_owner;
ALTER TABLE fs_shipments DETACH PARTITION fs_shipments_old;
RESET ROLE;
SELECT count(privacy_guard.forget((100 + g)::text, 'shipments')) AS filed FROM generate_series(1, 24) g;
SELECT r -> 'requests_done' AS done FROM privacy_guard.run_maintenance() r;
SELECT (SELECT array_agg(owner) FROM fs_shipments) AS left_attached,
	   (SELECT array_agg(owner) FROM fs_shipments_old) AS left_detached;
SELECT state, counts, count(*) FROM privacy_guard.erasure_requests WHERE reason = 'shipments' GROUP BY 1, 2;
SELECT count(*) AS receipts_naming_both_parts FROM privacy_guard.erasure_request
 WHERE reason = 'shipments'
   AND touched @> ARRAY['fs_shipments_old'::regclass, 'fs_shipments_new'::regclass]::oid[];

\c :orig_db
DROP DATABASE regress_fset;
DROP ROLE regress_fset_owner, regress_fset_app;
