-- Adversarial tests against legal holds (rule 8) and batched purges: each
-- block is named after the attack it tries.  Concurrency attacks on purges
-- are in test/specs/attacks_purge_swap.spec and attacks_purge_stall.spec.
\set VERBOSITY terse
CREATE ROLE regress_at2h_owner LOGIN;
CREATE ROLE regress_at2h_app LOGIN;
CREATE ROLE regress_at2h_adm LOGIN;
CREATE ROLE regress_at2h_other LOGIN;
GRANT CREATE ON SCHEMA public TO regress_at2h_owner, regress_at2h_adm;
SELECT privacy_guard.grant_admin('regress_at2h_adm');
SELECT privacy_guard.define_purpose('at2h_billing', 'contract');
SELECT privacy_guard.define_purpose('at2h_law', 'legal_obligation');
SELECT privacy_guard.define_purpose('at2h_law.vat', 'legal_obligation');
SELECT privacy_guard.define_purpose('at2h_law.vat.audit', 'legal_obligation');
SELECT privacy_guard.define_purpose('at2h_law.vat.promo', 'consent');
SELECT privacy_guard.define_purpose('at2h_law2', 'legal_obligation');
SELECT privacy_guard.allow_purpose('regress_at2h_app', 'at2h_billing');
SELECT privacy_guard.allow_purpose('regress_at2h_app', 'at2h_law');
-- a child of another basis is not reached by its parent's authorisation (issue 12.5)
SELECT privacy_guard.allow_purpose('regress_at2h_app', 'at2h_law.vat.promo');
SELECT privacy_guard.allow_purpose('regress_at2h_app', 'at2h_law2');
SELECT privacy_guard.allow_purpose('regress_at2h_other', 'at2h_billing');

SET ROLE regress_at2h_owner;
CREATE TABLE at2h_inv (id int PRIMARY KEY, customer_id bigint, issued timestamptz NOT NULL);
INSERT INTO at2h_inv VALUES
	(1, 501, now() - interval '1 day'),		-- current
	(2, 502, now() - interval '60 days'),		-- past retention: restricted by the hold
	(3, 503, now() - interval '1 day'),		-- current, subject forgotten: restricted
	(4, 504, now() - interval '1 day');		-- current, consenting to the promo purpose
GRANT SELECT, UPDATE, DELETE ON at2h_inv TO regress_at2h_app, regress_at2h_other;
CREATE TABLE at2h_nohold (id int, customer_id bigint, issued timestamptz NOT NULL);
INSERT INTO at2h_nohold VALUES (1, 501, now() - interval '1 day'), (2, 502, now() - interval '60 days');
GRANT SELECT ON at2h_nohold TO regress_at2h_app;
RESET ROLE;
SELECT privacy_guard.protect('at2h_inv', 'customer_id', ARRAY['at2h_billing', 'at2h_law', 'at2h_law2'],
							 interval '30 days', 'issued');
SELECT privacy_guard.protect('at2h_nohold', 'customer_id', ARRAY['at2h_billing', 'at2h_law'],
							 interval '30 days', 'issued');

-- attack: an administrator who does not own the table puts it under a hold
-- (to keep rows past their retention) or ends the owner's hold
SET ROLE regress_at2h_adm;
SELECT privacy_guard.set_legal_hold('at2h_inv', interval '10 years', 'at2h_law.vat');
RESET ROLE;
SELECT privacy_guard.set_legal_hold('at2h_inv', interval '10 years', 'at2h_law.vat');
SET ROLE regress_at2h_adm;
SELECT privacy_guard.set_legal_hold('at2h_inv', NULL, NULL);
RESET ROLE;
SELECT hold_keep, hold_purpose FROM privacy_guard.protected_table WHERE relid = 'at2h_inv'::regclass;
SELECT privacy_guard.forget('503') IS NOT NULL AS filed;
SELECT privacy_guard.grant_consent(k, 'at2h_law.vat.promo') FROM unnest(ARRAY['502', '503', '504']) k;

-- attack: use the hold's purpose without being authorised for it (the
-- role is authorised for other purposes of the table)
SET ROLE regress_at2h_other;
SET privacy_guard.purpose = 'at2h_law.vat';
SELECT id FROM at2h_inv ORDER BY id;
SET privacy_guard.purpose = 'at2h_billing';
SELECT array_agg(id ORDER BY id) AS billing FROM at2h_inv;
RESET ROLE;

-- attack: reach the restricted rows (2: past retention, 3: forgotten)
-- through a purpose near the hold's: its parent, a consent-basis child
-- (with the subjects' consent), another legal_obligation purpose of the
-- table.  Only the hold purpose and its legal_obligation children see them.
SET ROLE regress_at2h_app;
SET privacy_guard.purpose = 'at2h_billing';
SELECT current_setting('privacy_guard.purpose') AS purpose, array_agg(id ORDER BY id) AS visible FROM at2h_inv;
SET privacy_guard.purpose = 'at2h_law';
SELECT current_setting('privacy_guard.purpose') AS purpose, array_agg(id ORDER BY id) AS visible FROM at2h_inv;
SET privacy_guard.purpose = 'at2h_law.vat.promo';
SELECT current_setting('privacy_guard.purpose') AS purpose, array_agg(id ORDER BY id) AS visible FROM at2h_inv;
SET privacy_guard.purpose = 'at2h_law2';
SELECT current_setting('privacy_guard.purpose') AS purpose, array_agg(id ORDER BY id) AS visible FROM at2h_inv;
SET privacy_guard.purpose = 'at2h_law.vat';
SELECT current_setting('privacy_guard.purpose') AS purpose, array_agg(id ORDER BY id) AS visible FROM at2h_inv;
SET privacy_guard.purpose = 'at2h_law.vat.audit';
SELECT current_setting('privacy_guard.purpose') AS purpose, array_agg(id ORDER BY id) AS visible FROM at2h_inv;
RESET ROLE;

-- attack: the hold's kind of purpose on a table without a hold: rows past
-- retention stay hidden (rule 8 is only for tables under a hold)
SET ROLE regress_at2h_app;
SET privacy_guard.purpose = 'at2h_law';
SELECT array_agg(id ORDER BY id) AS nohold_law FROM at2h_nohold;
RESET ROLE;

-- attack: pull a restricted row back into view by writing to it under an
-- ordinary purpose (move its retention date forward, or delete it before
-- the hold ends): the rules hide it from UPDATE and DELETE as from SELECT
SET ROLE regress_at2h_app;
SET privacy_guard.purpose = 'at2h_billing';
UPDATE at2h_inv SET issued = now() WHERE id IN (2, 3);
DELETE FROM at2h_inv WHERE id IN (2, 3);
SELECT array_agg(id ORDER BY id) AS billing FROM at2h_inv;
RESET ROLE;
SELECT id, issued > now() - interval '2 days' AS current FROM at2h_inv ORDER BY id;

-- attack: redefine the hold's purpose as a consent purpose (define_purpose
-- updates the basis) so that restricted rows show under consent: rule 8
-- needs a legal_obligation purpose, so they show to no one, and are kept
SELECT privacy_guard.define_purpose('at2h_law.vat', 'consent');
SELECT privacy_guard.grant_consent(k, 'at2h_law.vat') FROM unnest(ARRAY['502', '503']) k;
SELECT privacy_guard.allow_purpose('regress_at2h_app', 'at2h_law.vat');
SET ROLE regress_at2h_app;
SET privacy_guard.purpose = 'at2h_law.vat';
SELECT array_agg(id ORDER BY id) AS vat_as_consent FROM at2h_inv;
RESET ROLE;
SELECT privacy_guard.run_maintenance('at2h_inv') -> 'expired' AS expired;
SELECT array_agg(id ORDER BY id) AS kept FROM at2h_inv;
SELECT privacy_guard.withdraw_consent(k, 'at2h_law.vat') FROM unnest(ARRAY['502', '503']) k;
SELECT privacy_guard.define_purpose('at2h_law.vat', 'legal_obligation');
RESET privacy_guard.purpose;

-- attack: an owner trigger that, while a purge batch deletes a row, moves
-- the batch's next row back into retention (so that the batch deletes a
-- current row, or trips over its own lock): PostgreSQL refuses the
-- delete of a row the same command changed, the table is reported with
-- its SQLSTATE, nothing of it is deleted, and the other tables are purged
SET ROLE regress_at2h_owner;
CREATE TABLE at2h_swap (id int, customer_id bigint, issued timestamptz NOT NULL);
INSERT INTO at2h_swap SELECT g, 600 + g, now() - interval '60 days' FROM generate_series(1, 4) g;
CREATE TABLE at2h_plain (id int, customer_id bigint, issued timestamptz NOT NULL);
INSERT INTO at2h_plain SELECT g, 700 + g, now() - interval '60 days' FROM generate_series(1, 3) g;
CREATE FUNCTION at2h_swap_next() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE public.at2h_swap SET issued = now() WHERE id = OLD.id + 1;
	RETURN OLD;
END
$$;
CREATE TRIGGER at2h_swap_next BEFORE DELETE ON at2h_swap FOR EACH ROW EXECUTE FUNCTION at2h_swap_next();
RESET ROLE;
SELECT privacy_guard.protect('at2h_swap', 'customer_id', ARRAY['at2h_billing'], interval '30 days', 'issued');
SELECT privacy_guard.protect('at2h_plain', 'customer_id', ARRAY['at2h_billing'], interval '30 days', 'issued');
SELECT r -> 'errors' AS errors, r -> 'expired' -> 'public.at2h_plain' AS plain
  FROM privacy_guard.run_maintenance() r;
SELECT id, issued > now() - interval '1 day' AS current FROM at2h_swap ORDER BY id;
SELECT count(*) AS plain_left FROM at2h_plain;

SELECT privacy_guard.set_legal_hold('at2h_inv', NULL, NULL);
SELECT privacy_guard.unprotect(t) FROM unnest(ARRAY['at2h_inv', 'at2h_nohold', 'at2h_swap', 'at2h_plain']::regclass[]) t;
DROP TABLE at2h_inv, at2h_nohold, at2h_swap, at2h_plain;
DROP FUNCTION at2h_swap_next();
REVOKE CREATE ON SCHEMA public FROM regress_at2h_owner, regress_at2h_adm;
