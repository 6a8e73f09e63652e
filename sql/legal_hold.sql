-- Legal holds (SPEC 3.2 rule 8): rows that expire or are forgotten in a
-- table under a hold stay, restricted, until retention_column + keep; while
-- restricted only the hold's legal_obligation purpose sees them; then a
-- round erases them and closes the request.
\set VERBOSITY terse
SET ROLE regress_owner;
CREATE TABLE hold_invoices (id int PRIMARY KEY, customer_id bigint, amount numeric,
							issued timestamptz NOT NULL);
CREATE TABLE hold_plain (id int, customer_id bigint);
INSERT INTO hold_invoices VALUES
	(1, 7101, 10, now() - interval '1 day'),		-- current
	(2, 7101, 20, now() - interval '60 days'),		-- past retention, within the hold
	(3, 7102, 30, now() - interval '11 years'),	-- past the hold too
	(4, 7103, 40, now() - interval '2 days'),		-- current; its subject will be forgotten
	(5, 7104, 50, now() - interval '12 years');	-- forgotten and past the hold
GRANT SELECT ON hold_invoices TO regress_app;
RESET ROLE;
SELECT privacy_guard.protect('hold_invoices', 'customer_id', ARRAY['billing'],
							 interval '30 days', 'issued');
SELECT privacy_guard.protect('hold_plain', 'customer_id', ARRAY['billing']);

-- the errors of set_legal_hold
SELECT privacy_guard.set_legal_hold('hold_invoices', interval '10 years', 'marketing');
SELECT privacy_guard.set_legal_hold('hold_invoices', interval '10 years', 'no_such_purpose');
SELECT privacy_guard.set_legal_hold('hold_invoices', interval '-1 day', 'tax');
SELECT privacy_guard.set_legal_hold('hold_plain', interval '10 years', 'tax');
SELECT privacy_guard.set_legal_hold('pg_class', interval '10 years', 'tax');
SET ROLE regress_app;
SELECT privacy_guard.set_legal_hold('hold_invoices', interval '10 years', 'tax');
RESET ROLE;
SELECT relid, hold_keep, hold_purpose, purposes FROM privacy_guard.protected_table
 WHERE relid = 'hold_invoices'::regclass;

-- the hold: its purpose joins the table's purposes
SELECT privacy_guard.set_legal_hold('hold_invoices', interval '10 years', 'tax');
SELECT relid, hold_keep, hold_purpose, purposes FROM privacy_guard.protected_table
 WHERE relid = 'hold_invoices'::regclass;
SELECT privacy_guard.allow_purpose('regress_app', 'tax');

-- billing sees what is within retention; tax also sees what the hold keeps
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id FROM hold_invoices ORDER BY id;
SET privacy_guard.purpose = 'tax';
SELECT id FROM hold_invoices ORDER BY id;
RESET ROLE;

-- a forget request hides the subject from billing at once; under tax the
-- row stays while the hold keeps it
SELECT privacy_guard.forget('7103') IS NOT NULL AS filed;
SELECT privacy_guard.forget('7104') IS NOT NULL AS filed;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id FROM hold_invoices ORDER BY id;
SET privacy_guard.purpose = 'tax';
SELECT id FROM hold_invoices ORDER BY id;
RESET ROLE;

-- a round: what is past the hold goes, the rest is kept and counted as
-- restricted; the request for 7103 stays open as restricted
SELECT privacy_guard.run_maintenance();
SELECT id FROM hold_invoices ORDER BY id;
SELECT privacy_guard.erasure_status('7103') AS s103, privacy_guard.erasure_status('7104') AS s104;
SELECT state, counts, completed_at IS NULL AS open
  FROM privacy_guard.erasure_requests ORDER BY id DESC LIMIT 2;
SELECT privacy_guard._restricted_rows('hold_invoices') AS restricted_by_expiry;
-- the next round changes nothing while the hold lasts
SELECT privacy_guard.run_maintenance() -> 'expired' AS expired,
	   privacy_guard.erasure_status('7103') AS s103;

-- a shorter hold: row 2 (60 days old) is now past it; row 4 (2 days old) is
-- still kept
SELECT privacy_guard.set_legal_hold('hold_invoices', interval '7 days', 'tax');
SELECT privacy_guard.run_maintenance() -> 'expired' AS expired;
SELECT id FROM hold_invoices ORDER BY id;
SELECT privacy_guard.erasure_status('7103') AS s103;

-- the hold ends: the forgotten subject's row is erased, the request done,
-- and its receipt counts the deletion
SELECT privacy_guard.set_legal_hold('hold_invoices', NULL, NULL);
SELECT privacy_guard.run_maintenance() ->> 'requests_done' AS done;
SELECT id FROM hold_invoices ORDER BY id;
SELECT state, counts FROM privacy_guard.erasure_requests ORDER BY id DESC LIMIT 2;
SELECT count(*) AS raw_keys_left FROM privacy_guard.erasure_request WHERE subject IN ('7103', '7104');

SELECT privacy_guard.unprotect('hold_invoices');
SELECT privacy_guard.unprotect('hold_plain');
DROP TABLE hold_invoices, hold_plain;
