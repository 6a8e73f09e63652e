-- run_maintenance(): the synchronous enforcement round.  Rows past
-- retention are deleted or anonymised; due forget requests are carried out
-- in every protected table, children first, in full or not at all; the
-- owner's triggers run with the owner's rights.
\set VERBOSITY terse
-- a round first, for what the files run before this one left due (nothing
-- when this file runs alone), so that the rounds below show only its own
SELECT privacy_guard.run_maintenance() IS NOT NULL AS earlier_rounds_done;
-- this file's customers 1601..1610 and newsletter, in a schema of their own,
-- as rules.sql leaves its own: 1606 and a newsletter entry past retention,
-- 1607 asked to be forgotten
CREATE SCHEMA maintenance;
GRANT USAGE ON SCHEMA maintenance TO PUBLIC;
GRANT CREATE ON SCHEMA maintenance TO regress_owner;
SET ROLE regress_owner;
CREATE TABLE maintenance.customers (
	id			bigint PRIMARY KEY,
	email		text NOT NULL,
	signed_up	timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE maintenance.newsletter (
	subscriber	text,			-- a text subject key
	topic		text,
	sent_on		date
);
GRANT SELECT, INSERT, UPDATE, DELETE ON maintenance.customers, maintenance.newsletter TO PUBLIC;
RESET ROLE;
SELECT privacy_guard.protect('maintenance.customers', 'id', ARRAY['billing', 'marketing'],
							 interval '1 year', 'signed_up');
SELECT privacy_guard.protect('maintenance.newsletter', 'subscriber', ARRAY['marketing.email', 'analytics'],
							 interval '90 days', 'sent_on', on_forget => 'anonymize');
INSERT INTO maintenance.customers (id, email)
	SELECT g, 'person' || g || '@example.org' FROM generate_series(1601, 1610) g;
UPDATE maintenance.customers SET signed_up = now() - interval '2 years' WHERE id = 1606;
INSERT INTO maintenance.newsletter VALUES ('mc1', 'spring', current_date), ('mc6', 'spring', current_date - 400);
SELECT privacy_guard.forget('1607') > 0 AS filed;
SELECT privacy_guard.allow_purpose('regress_owner', 'billing');

SET ROLE regress_owner;
CREATE TABLE shop_customers (id bigint PRIMARY KEY, email text, born date, spend numeric,
							 nickname varchar(20), joined timestamptz NOT NULL DEFAULT now());
CREATE TABLE shop_orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES shop_customers,
						  note text, amount numeric, placed timestamptz NOT NULL DEFAULT now());
CREATE TABLE shop_trigger_log (who text, what text);
CREATE FUNCTION shop_log_delete() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN INSERT INTO shop_trigger_log VALUES (current_user, TG_TABLE_NAME); RETURN OLD; END$$;
CREATE TRIGGER log_delete BEFORE DELETE ON shop_orders
	FOR EACH ROW EXECUTE FUNCTION shop_log_delete();
CREATE FUNCTION public.shop_initials(varchar) RETURNS varchar LANGUAGE sql IMMUTABLE
	AS $$SELECT upper(left($1, 2))$$;
INSERT INTO shop_customers (id, email, born, spend, nickname)
	SELECT 1600 + g, 'customer' || g || '@example.org', date '1980-05-17' + g * 40, 37 * g, 'nick' || g
	  FROM generate_series(1, 6) g;
INSERT INTO shop_orders (id, customer_id, note, amount)
	SELECT g, 1600 + (g % 6) + 1, 'order note ' || g, 1234 * g FROM generate_series(1, 12) g;
GRANT SELECT ON shop_customers, shop_orders TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('shop_customers', 'id', ARRAY['billing', 'marketing']);
SELECT privacy_guard.protect('shop_orders', 'customer_id', ARRAY['billing'],
							 interval '30 days', 'placed', on_expiry => 'anonymize');

-- anonymizers, and the errors of set_anonymizer
SELECT privacy_guard.set_anonymizer('shop_orders', 'note', 'redact');
SELECT privacy_guard.set_anonymizer('shop_orders', 'amount', 'generalize');
SELECT privacy_guard.set_anonymizer('shop_orders', 'amount', 'mask');
SELECT privacy_guard.set_anonymizer('shop_orders', 'note', 'scramble');
SELECT privacy_guard.set_anonymizer('shop_orders', 'note', 'public.no_such_function');
SELECT privacy_guard.set_anonymizer('shop_orders', 'nothing', 'null');
SELECT privacy_guard.set_anonymizer('shop_trigger_log', 'who', 'null');
SELECT relid, column_name, method FROM privacy_guard.anonymizer ORDER BY 1, 2;

-- a forget request: orders first, then the customer; the owner's trigger
-- runs as the owner; the receipt counts rows and names no one
SELECT privacy_guard.grant_consent('1603', 'marketing', evidence => '{"form": "shop"}');
SELECT privacy_guard.forget('1603', 'asked at the counter') AS req \gset
SELECT privacy_guard.run_maintenance();
SELECT state, counts, error, completed_at IS NOT NULL AS completed
  FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT privacy_guard.erasure_status('1603');
SELECT count(*) AS customer_rows FROM shop_customers WHERE id = 1603;
SELECT count(*) AS order_rows FROM shop_orders WHERE customer_id = 1603;
SELECT DISTINCT who, what FROM shop_trigger_log;
-- the consent history stays, under the digest; the current state goes
SELECT l.subject = r.subject_digest AS ledger_keyed_by_digest, l.action
  FROM privacy_guard.consent_ledger l, privacy_guard.erasure_requests r
 WHERE r.id = :req AND l.evidence = '{"form": "shop"}';
SELECT count(*) FROM privacy_guard.consents WHERE subject = '1603';
SELECT count(*) FROM privacy_guard.erasure_request WHERE subject IS NOT NULL AND id = :req;
-- the erased rows become physically unreachable once the tables are vacuumed
-- by a vacuum that began after the erasure committed: the next round notes
-- each table's vacuum count, and a vacuum counted after it is one
SELECT unreachable_at IS NULL AS not_yet_vacuumed FROM privacy_guard.erasure_requests WHERE id = :req;
VACUUM shop_orders;
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
SELECT unreachable_at IS NULL AS vacuum_before_the_next_round FROM privacy_guard.erasure_requests WHERE id = :req;
VACUUM shop_orders;
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
SELECT unreachable_at IS NULL AS one_table_left FROM privacy_guard.erasure_requests WHERE id = :req;
VACUUM shop_customers, maintenance.customers;
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
SELECT unreachable_at >= completed_at AS unreachable_after_erasure
  FROM privacy_guard.erasure_requests WHERE id = :req;

-- long values live in the table's TOAST table, which a vacuum can leave out
-- (autovacuum vacuums it on its own schedule, VACUUM (PROCESS_TOAST false)
-- not at all): the receipt waits for it too
CREATE EXTENSION pgstattuple;
CREATE TABLE mt_docs (customer_id bigint, body text);
ALTER TABLE mt_docs ALTER body SET STORAGE EXTERNAL;
INSERT INTO mt_docs VALUES (1699, repeat('x', 10000)), (1698, repeat('y', 10000));
SELECT privacy_guard.protect('mt_docs', 'customer_id', ARRAY['billing']);
SELECT privacy_guard.forget('1699', 'toast') AS req_toast \gset
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
VACUUM (PROCESS_TOAST false) mt_docs;
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
SELECT unreachable_at IS NULL AS toast_not_vacuumed FROM privacy_guard.erasure_requests WHERE id = :req_toast;
SELECT dead_tuple_count > 0 AS long_value_still_there
  FROM pgstattuple((SELECT reltoastrelid FROM pg_class WHERE oid = 'mt_docs'::regclass)::regclass);
VACUUM mt_docs;
SELECT privacy_guard.run_maintenance() ->> 'requests_done';
SELECT unreachable_at >= completed_at AS unreachable_with_toast FROM privacy_guard.erasure_requests WHERE id = :req_toast;
SELECT dead_tuple_count AS long_value_left
  FROM pgstattuple((SELECT reltoastrelid FROM pg_class WHERE oid = 'mt_docs'::regclass)::regclass);
SELECT privacy_guard.unprotect('mt_docs');
DROP TABLE mt_docs;
DROP EXTENSION pgstattuple;

-- a table the extension does not protect still referring to the subject
-- blocks the request: nothing is erased, the rows stay hidden
SET ROLE regress_owner;
CREATE TABLE shop_tickets (id int, customer_id bigint REFERENCES shop_customers);
INSERT INTO shop_tickets VALUES (1, 1604);
RESET ROLE;
SELECT privacy_guard.forget('1604') AS req4 \gset
SELECT privacy_guard.run_maintenance();
SELECT state, counts, error FROM privacy_guard.erasure_requests WHERE id = :req4;
SELECT count(*) AS customer_rows, (SELECT count(*) FROM shop_orders WHERE customer_id = 1604) AS order_rows
  FROM shop_customers WHERE id = 1604;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) AS visible FROM shop_customers WHERE id = 1604;
RESET ROLE;
-- once the reference is gone, the next round finishes the request
DELETE FROM shop_tickets;
SELECT privacy_guard.run_maintenance();
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req4;

-- a trigger that silently swallows the delete makes the request fail visibly
SET ROLE regress_owner;
CREATE FUNCTION shop_keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER keep BEFORE DELETE ON shop_customers FOR EACH ROW EXECUTE FUNCTION shop_keep();
RESET ROLE;
SELECT privacy_guard.forget('1605') AS req5 \gset
SELECT privacy_guard.run_maintenance();
SELECT state, error FROM privacy_guard.erasure_requests WHERE id = :req5;
SELECT count(*) AS customer_rows, (SELECT count(*) FROM shop_orders WHERE customer_id = 1605) AS order_rows
  FROM shop_customers WHERE id = 1605;
SET ROLE regress_owner;
DROP TRIGGER keep ON shop_customers;
RESET ROLE;

-- rows past retention are anonymised once, with each column's anonymizer
-- and the subject cut; run_maintenance(tbl) limits expiry to that table
UPDATE shop_orders SET placed = now() - interval '40 days' WHERE id IN (1, 7, 8);
SELECT privacy_guard.run_maintenance('shop_customers');
SELECT count(*) AS still_linked FROM shop_orders WHERE id IN (1, 7, 8) AND customer_id IS NOT NULL;
SELECT privacy_guard.run_maintenance('shop_orders');
SELECT id, customer_id, note, amount FROM shop_orders WHERE id IN (1, 7, 8) ORDER BY id;
SELECT privacy_guard.run_maintenance();
-- the other methods, on a table anonymised on expiry
SET ROLE regress_owner;
CREATE TABLE shop_people (id bigint, email text, born date, spend numeric, nickname varchar(20),
						  added timestamptz NOT NULL DEFAULT now());
INSERT INTO shop_people SELECT id, email, born, spend, nickname, now() - interval '2 years'
  FROM shop_customers;
RESET ROLE;
SELECT privacy_guard.protect('shop_people', 'id', ARRAY['billing'], interval '1 year', 'added',
							 on_expiry => 'anonymize');
SELECT privacy_guard.set_anonymizer('shop_people', 'email', 'hash');
SELECT privacy_guard.set_anonymizer('shop_people', 'nickname', 'mask');
SELECT privacy_guard.set_anonymizer('shop_people', 'born', 'generalize');
SELECT privacy_guard.set_anonymizer('shop_people', 'spend', 'generalize');
SELECT privacy_guard.run_maintenance('shop_people');
SELECT id, email ~ '^[0-9a-f]{64}$' AS email_hashed, nickname, born, spend
  FROM shop_people ORDER BY spend, born;
SELECT count(DISTINCT email) = count(*) AS distinct_hashes FROM shop_people;
-- the hash is deterministic (equal inputs, equal outputs) and keyed (not the
-- plain sha256 of the value, which anyone could recompute from a guess)
SET ROLE regress_owner;
CREATE TABLE shop_twins (id bigint, email text, added timestamptz NOT NULL);
INSERT INTO shop_twins VALUES (1611, 'twin@example.com', now() - interval '2 years'),
	(1612, 'twin@example.com', now() - interval '2 years'),
	(1613, 'other@example.com', now() - interval '2 years');
RESET ROLE;
SELECT privacy_guard.protect('shop_twins', 'id', ARRAY['billing'], interval '1 year', 'added',
							 on_expiry => 'anonymize');
SELECT privacy_guard.set_anonymizer('shop_twins', 'email', 'hash');
SELECT privacy_guard.run_maintenance('shop_twins');
SELECT count(*) AS rows, count(DISTINCT email) AS distinct_hashes,
	   bool_and(email ~ '^[0-9a-f]{64}$') AS all_hashed,
	   bool_and(email NOT IN (encode(sha256(convert_to('twin@example.com', 'UTF8')), 'hex'),
							  encode(sha256(convert_to('other@example.com', 'UTF8')), 'hex'))) AS keyed
  FROM shop_twins;
-- a user function as anonymizer
SELECT privacy_guard.set_anonymizer('shop_people', 'nickname', 'public.shop_initials');
UPDATE shop_people SET id = 1699, nickname = 'zelda' WHERE spend = 30;
SELECT privacy_guard.run_maintenance('shop_people');
SELECT nickname FROM shop_people WHERE spend = 30;
SELECT privacy_guard.unprotect('shop_people');
SELECT privacy_guard.unprotect('shop_orders');
SELECT privacy_guard.unprotect('shop_customers');
SELECT privacy_guard.unprotect('shop_twins');
DROP TABLE shop_twins, shop_people, shop_tickets, shop_orders, shop_customers, shop_trigger_log;
DROP FUNCTION public.shop_initials(varchar);

-- a subject column of a domain over a domain: protect() looks under every
-- level (the key is matched in bigint's text form), and a forget request
-- erases its rows; the domains' checks are the owner's, not run on the key
CREATE DOMAIN shop_key AS bigint;
CREATE DOMAIN shop_key_pos AS shop_key CHECK (VALUE > 0);
CREATE TABLE shop_dd (id shop_key_pos, note text);
INSERT INTO shop_dd VALUES (987654321, 'erase me'), (987654322, 'keep me');
SELECT privacy_guard.protect('shop_dd', 'id', ARRAY['billing']);
SELECT privacy_guard.forget('987654321', 'domain over domain') > 0 AS filed;
SELECT privacy_guard.forget('0987654322', 'not the canonical form') > 0 AS filed;
SELECT r -> 'requests_done' AS done FROM privacy_guard.run_maintenance() r;
SELECT reason, state, counts, error FROM privacy_guard.erasure_requests
 WHERE reason IN ('domain over domain', 'not the canonical form') ORDER BY reason;
-- the request for another spelling found nothing and is blocked, never done
-- (issue 12.4); it would stay blocked in every later round: withdrawn here
DELETE FROM privacy_guard.erasure_request WHERE reason = 'not the canonical form';
SELECT id, note FROM shop_dd ORDER BY id;
SELECT privacy_guard.unprotect('shop_dd');
DROP TABLE shop_dd;
DROP DOMAIN shop_key_pos, shop_key;

-- privacy_guard's own logs have a retention (privacy_guard.log_retention,
-- 1095 days by default): a done receipt older than that goes once its rows
-- are unreachable, and with it the consent history kept under its digest
-- (unless another request of the subject is still kept); nothing else does
SELECT privacy_guard.grant_consent('lr-1', 'marketing', evidence => '{"form": "lr"}');
SELECT privacy_guard.withdraw_consent('lr-1', 'marketing');
SELECT privacy_guard.grant_consent('lr-2', 'marketing', evidence => '{"form": "lr"}');
SELECT privacy_guard.grant_consent('lr-3', 'marketing', evidence => '{"form": "lr"}');
SELECT privacy_guard.forget('lr-1', 'log retention 1') > 0 AS filed;
SELECT privacy_guard.forget('lr-2', 'log retention 2') > 0 AS filed;
SELECT r -> 'requests_done' AS done FROM privacy_guard.run_maintenance() r;
CREATE FUNCTION pg_temp.lr_history() RETURNS TABLE (who text, entries bigint) LANGUAGE sql AS $$
	SELECT coalesce(r.reason, l.subject), count(*)
	  FROM privacy_guard.consent_ledger l
	  LEFT JOIN privacy_guard.erasure_requests r ON r.subject_digest = l.subject
	 WHERE l.evidence = '{"form": "lr"}' OR r.reason LIKE 'log retention%'
	 GROUP BY 1 ORDER BY 1 $$;
SELECT * FROM pg_temp.lr_history();
SELECT subject_digest AS lr1_digest FROM privacy_guard.erasure_requests WHERE reason = 'log retention 1' \gset
SELECT count(*) AS lr1_entries FROM privacy_guard.consent_ledger WHERE subject = :'lr1_digest';
-- three years and a day later (receipt 1 only), the round drops receipt 1 and its history
UPDATE privacy_guard.erasure_request SET completed_at = completed_at - interval '1096 days'
 WHERE reason = 'log retention 1';
SELECT privacy_guard.run_maintenance() IS NOT NULL AS round;
SELECT reason, state FROM privacy_guard.erasure_requests WHERE reason LIKE 'log retention%' ORDER BY 1;
SELECT * FROM pg_temp.lr_history();
SELECT count(*) AS lr1_entries FROM privacy_guard.consent_ledger WHERE subject = :'lr1_digest';
-- the ledger stays append-only for everyone else, superusers included
DELETE FROM privacy_guard.consent_ledger l USING privacy_guard.erasure_requests r
 WHERE r.reason = 'log retention 2' AND l.subject = r.subject_digest;
SELECT privacy_guard._guard_suspended() AS guard_left_off;
