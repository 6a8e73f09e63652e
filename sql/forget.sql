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
SELECT privacy_guard.forget('43', due => NULL);

-- a future due time changes nothing until then
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT count(*) FROM customers WHERE id = 9;
RESET ROLE;
SELECT privacy_guard.forget('9', due => now() + interval '1 day') > 0 AS filed;
SET ROLE regress_app;
SELECT count(*) FROM customers WHERE id = 9;
RESET ROLE;
-- once due (as if a day had passed), the subject's rows disappear
UPDATE privacy_guard.erasure_request SET due = now() - interval '1 second'
 WHERE subject_digest = privacy_guard._subject_digest('9');
SET ROLE regress_app;
SELECT count(*) FROM customers WHERE id = 9;
RESET ROLE;
RESET privacy_guard.purpose;
