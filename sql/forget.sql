-- forget(): the request, its receipt view and erasure_status().
\set VERBOSITY terse
SELECT privacy_guard.forget('zq-subject-4711', 'asked by e-mail') AS id \gset
SELECT state, reason, completed_at IS NULL AS open, counts,
	   subject_digest ~ '^[0-9a-f]{64}$' AS digest_is_hex
  FROM privacy_guard.erasure_requests WHERE id = :id;
-- the raw key appears nowhere in the view
SELECT count(*) AS rows_showing_the_key
  FROM privacy_guard.erasure_requests r WHERE r::text LIKE '%zq-subject%';
-- the digest is keyed: not the plain SHA-256 of the key
SELECT subject_digest = encode(sha256('zq-subject-4711'), 'hex') AS unkeyed
  FROM privacy_guard.erasure_requests WHERE id = :id;
SELECT privacy_guard.erasure_status('zq-subject-4711');
SELECT privacy_guard.erasure_status('never-asked') IS NULL AS none;
SELECT privacy_guard.forget('');
SELECT privacy_guard.forget('1443', due => NULL);

-- a future due time changes nothing until then: this file's customer 1409
CREATE SCHEMA forget;
GRANT USAGE ON SCHEMA forget TO PUBLIC;
SET search_path = forget, public;
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
ALTER TABLE customers OWNER TO regress_owner;
GRANT SELECT ON customers TO regress_app;
INSERT INTO customers VALUES (1409, 'person1409@example.org');
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM customers WHERE id = 1409;
RESET ROLE;
SELECT privacy_guard.forget('1409', due => now() + interval '1 day') > 0 AS filed;
SET ROLE regress_app;
SELECT count(*) FROM customers WHERE id = 1409;
RESET ROLE;
-- once due (as if a day had passed), the subject's rows disappear
UPDATE privacy_guard.erasure_request SET due = now() - interval '1 second'
 WHERE subject_digest = privacy_guard._subject_digest('1409');
SET ROLE regress_app;
SELECT count(*) FROM customers WHERE id = 1409;
RESET ROLE;
RESET privacy_guard.purpose;
RESET search_path;
