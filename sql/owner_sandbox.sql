-- The table owner's code runs in a sandbox that ends with the statement
-- (issue 19): settings it changes, even with set_config(..., false), do
-- not reach the session of whoever runs the round (a superuser here, the
-- worker in TAP 014), and internal functions refuse NULL arguments.
\set VERBOSITY terse
SET ROLE regress_owner;
CREATE TABLE sb_events (id int, customer_id int, happened timestamptz NOT NULL);
INSERT INTO sb_events SELECT g, 6000 + g, now() - interval '3 days' FROM generate_series(1, 3) g;
INSERT INTO sb_events VALUES (4, 6004, now());
CREATE TABLE sb_seen (id int, search_path text, work_mem text, statement_timeout text, purpose text);
-- before deleting each row the trigger notes the settings it sees, then
-- plants its own for the rest of the session
CREATE FUNCTION sb_plant() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN
		INSERT INTO sb_seen VALUES (OLD.id, current_setting('search_path'), current_setting('work_mem'),
			current_setting('statement_timeout'), current_setting('privacy_guard.purpose'));
		PERFORM set_config('search_path', 'sb_evil, public', false);
		PERFORM set_config('work_mem', '1234kB', false);
		PERFORM set_config('statement_timeout', '4321', false);
		PERFORM set_config('privacy_guard.purpose', 'billing', false);
		RETURN OLD;
	END$$;
CREATE TRIGGER plant BEFORE DELETE ON sb_events FOR EACH ROW EXECUTE FUNCTION sb_plant();
RESET ROLE;
SELECT privacy_guard.protect('sb_events', 'customer_id', ARRAY['billing'],
							 interval '1 day', 'happened');

-- a superuser runs a round: one engine statement deletes the three
-- expired rows (within it the owner's code sees its own settings)
SELECT current_setting('search_path') AS path_before \gset
SELECT privacy_guard.run_maintenance('sb_events') -> 'expired' AS expired;
SELECT current_setting('search_path') = :'path_before' AS search_path_kept,
	   current_setting('work_mem') AS work_mem,
	   current_setting('statement_timeout') AS statement_timeout,
	   current_setting('privacy_guard.purpose') AS purpose;
-- row 1 saw the session's settings, rows 2 and 3 the trigger's own
SELECT id, search_path, work_mem, statement_timeout, purpose FROM sb_seen ORDER BY id;
SELECT array_agg(id ORDER BY id) AS left_over FROM sb_events;

-- the same inside the superuser's open transaction, and after it commits
TRUNCATE sb_seen;
INSERT INTO sb_events SELECT g, 6000 + g, now() - interval '3 days' FROM generate_series(5, 6) g;
BEGIN;
SELECT privacy_guard.run_maintenance('sb_events') -> 'expired' AS expired;
SELECT current_setting('search_path') = :'path_before' AS search_path_kept,
	   current_setting('work_mem') AS work_mem;
COMMIT;
SELECT current_setting('search_path') = :'path_before' AS search_path_kept,
	   current_setting('work_mem') AS work_mem,
	   current_setting('statement_timeout') AS statement_timeout,
	   current_setting('privacy_guard.purpose') AS purpose;
-- the next round's statement started from the session's settings again
SELECT id, work_mem FROM sb_seen ORDER BY id;

-- internal functions given NULL arguments: an error, never a crash
SELECT privacy_guard._policy_state('sb_events', 'sb_events', NULL, NULL);
SELECT privacy_guard._exec_as_owner('sb_events', NULL, NULL, NULL);
SELECT privacy_guard._exec_as_owner(NULL, 'SELECT 1', NULL, NULL);
SELECT count(*) AS still_connected FROM sb_events;

-- retention arithmetic at the ends of the ranges (no int64 overflow): a
-- retention longer than the timestamp range keeps every row but
-- -infinity; a date past the timestamp range (294276 AD) is within any
-- retention
CREATE TABLE sb_far (id int, customer_id int, kept date NOT NULL);
INSERT INTO sb_far VALUES (1, 6001, '2000-01-01'), (2, 6002, '1000000-01-01'), (3, 6003, '-infinity'),
	(4, 6004, 'infinity');
GRANT SELECT ON sb_far TO regress_app;
SELECT privacy_guard.protect('sb_far', 'customer_id', ARRAY['billing'], interval '100000000 years', 'kept');
SET ROLE regress_app;
SET privacy_guard.purpose = 'billing';
SELECT id FROM sb_far ORDER BY id;
RESET ROLE;
SELECT privacy_guard.unprotect('sb_far');
SELECT privacy_guard.protect('sb_far', 'customer_id', ARRAY['billing'], interval '1 day', 'kept');
SET ROLE regress_app;
SELECT id FROM sb_far ORDER BY id;
RESET privacy_guard.purpose;
RESET ROLE;
SELECT privacy_guard.unprotect('sb_far');
DROP TABLE sb_far;
