-- privacy_guard in two minutes: the database keeps the promises.
\pset footer off
\set VERBOSITY terse
\set ON_ERROR_STOP 1
CREATE EXTENSION privacy_guard;
\pset tuples_only on

-- What we process personal data for, and on which legal basis.
SELECT privacy_guard.define_purpose('billing', 'contract', 'Invoices and payments');
SELECT privacy_guard.define_purpose('marketing', 'consent', 'Newsletters and offers');

-- The application's role may work for both purposes.
CREATE ROLE shop_app;
SELECT privacy_guard.allow_purpose('shop_app', 'billing');
SELECT privacy_guard.allow_purpose('shop_app', 'marketing');

-- An ordinary table, now protected: its subject is the customer id.
CREATE TABLE customers (id bigint PRIMARY KEY, name text, email text);
INSERT INTO customers VALUES (1, 'Ada', 'ada@example.org'), (2, 'Brian', 'brian@example.org'),
	(3, 'Chen', 'chen@example.org'), (4, 'Dana', 'dana@example.org');
GRANT SELECT ON customers TO shop_app;
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);

-- Ada and Chen said yes to the newsletter.
SELECT privacy_guard.grant_consent('1', 'marketing', evidence => '{"form": "signup"}');
SELECT privacy_guard.grant_consent('3', 'marketing');

\pset tuples_only off
SET ROLE shop_app;
-- Without a declared purpose nothing is read.
\set ON_ERROR_STOP 0
SELECT name FROM customers;
\set ON_ERROR_STOP 1
-- Billing (a contract) sees every customer ...
SET privacy_guard.purpose = 'billing';
SELECT id, name FROM customers ORDER BY id;
-- ... marketing only those who consented.
SET privacy_guard.purpose = 'marketing';
SELECT id, name, email FROM customers ORDER BY id;
RESET ROLE;

-- Chen withdraws consent; Ada asks to be forgotten.
\pset tuples_only on
SELECT privacy_guard.withdraw_consent('3', 'marketing');
SELECT privacy_guard.forget('1', 'customer request');
\pset tuples_only off

SET ROLE shop_app;
SELECT id, name, email FROM customers ORDER BY id;      -- marketing: nobody left
SET privacy_guard.purpose = 'billing';
SELECT id, name FROM customers ORDER BY id;             -- billing: Ada is gone too
RESET ROLE;

-- The receipt names Ada only by a keyed digest.
SELECT id, left(subject_digest, 16) || '...' AS subject_digest, reason, state
  FROM privacy_guard.erasure_requests;
SELECT privacy_guard.erasure_status('1');

-- An enforcement round (the background worker runs the same every naptime)
-- erases Ada's rows; the receipt counts them, still without her key.
SELECT privacy_guard.run_maintenance() -> 'requests_done' AS requests_done;
SELECT state, counts FROM privacy_guard.erasure_requests;
SELECT count(*) AS ada_rows_left FROM customers WHERE id = 1;
