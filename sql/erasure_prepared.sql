-- An erasure is complete only once no transaction older than it can still
-- commit rows of the subject, and a prepared transaction is such a
-- transaction (it may commit at any time, from any session).  A forget
-- request carried out while a transaction that wrote a row of the subject
-- is prepared stays pending (the row hidden); after COMMIT PREPARED the
-- next round erases that row too and closes the request.  A completion
-- check that ignores prepared transactions closes the request at once and
-- leaves the row stored and visible; before this file no test noticed
-- (docs/mutation_check.md, 4b).
CREATE TABLE ep_members (id bigint, note text);
INSERT INTO ep_members VALUES (820001, 'first'), (820002, 'other');
GRANT SELECT ON ep_members TO regress_app;
SELECT privacy_guard.protect('ep_members', 'id', ARRAY['billing']);

-- a transaction that writes a row of the subject, prepared before the erasure
BEGIN;
INSERT INTO ep_members VALUES (820001, 'late');
PREPARE TRANSACTION 'ep_late_row';
SELECT privacy_guard.forget('820001') AS req \gset
SELECT privacy_guard.run_maintenance() -> 'requests_done' IS NOT NULL AS round_ran;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT privacy_guard.erasure_status('820001');

-- the prepared transaction commits: its row is stored, and still hidden
COMMIT PREPARED 'ep_late_row';
SELECT note FROM ep_members WHERE id = 820001;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id, note FROM ep_members ORDER BY id;
RESET privacy_guard.purpose;
RESET ROLE;

-- the next round erases it and closes the request
SELECT privacy_guard.run_maintenance() -> 'requests_done' IS NOT NULL AS round_ran;
SELECT state, counts FROM privacy_guard.erasure_requests WHERE id = :req;
SELECT count(*) AS rows_of_820001 FROM ep_members WHERE id = 820001;
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id, note FROM ep_members ORDER BY id;
RESET privacy_guard.purpose;
RESET ROLE;

SELECT count(*) AS prepared_left FROM pg_prepared_xacts;
SELECT privacy_guard.unprotect('ep_members');
DROP TABLE ep_members;
