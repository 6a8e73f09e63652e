-- The per-session consent cache, patched change by change, always agrees
-- with the recorded state: after a long run of grants, withdrawals, expiries
-- and forget requests, interleaved with reads (each read patches the cache),
-- the rows a session sees equal the rows the SQL definition of the rules
-- selects; first with the changes made in the reading session, then with
-- each committed by another session.
\set VERBOSITY terse
-- this file's subjects: 10001..10600, and 15000 and -7 far from them
CREATE TABLE members (id int PRIMARY KEY, joined date NOT NULL DEFAULT current_date);
INSERT INTO members SELECT g FROM generate_series(10001, 10600) g;
INSERT INTO members VALUES (15000), (-7);
-- enough consents for the dense-key bitmap (subject_set.h) to be used
SELECT count(*) FROM (SELECT privacy_guard.grant_consent(g::text, 'marketing')
						FROM generate_series(10001, 10600) g WHERE g % 3 <> 0) s;
GRANT SELECT ON members TO regress_app;
SELECT privacy_guard.protect('members', 'id', ARRAY['marketing']);

-- the rules in SQL, for comparison (superuser: not bound)
CREATE FUNCTION pg_temp.expected(p text) RETURNS int[] LANGUAGE sql AS $$
	SELECT coalesce(array_agg(m.id ORDER BY m.id), '{}') FROM members m
	 WHERE privacy_guard.has_consent(m.id::text, p)
	   AND NOT EXISTS (SELECT 1 FROM privacy_guard.erasure_request r
					    WHERE r.subject = m.id::text AND r.state <> 'done' AND r.due <= now())
$$;
CREATE FUNCTION pg_temp.seen(p text) RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
	v int[];
BEGIN
	SET LOCAL ROLE regress_app;
	PERFORM set_config('privacy_guard.purpose', p, true);
	SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v FROM members;
	RESET ROLE;
	RETURN v;
END
$$;

-- 300 pseudo-random changes, a read after every one (the first read builds the sets)
DO $$
DECLARE
	i int;
	s text;
	op int;
	mismatches int := 0;
BEGIN
	PERFORM setseed(0.42);
	FOR i IN 1..300 LOOP
		s := CASE floor(random() * 20)::int
				WHEN 0 THEN '15000' WHEN 1 THEN '-7'
				ELSE (10001 + floor(random() * 600))::int::text END;
		op := floor(random() * 10)::int;
		IF op < 5 THEN
			PERFORM privacy_guard.grant_consent(s, CASE WHEN op < 3 THEN 'marketing' ELSE 'marketing.email' END,
				CASE WHEN op = 2 THEN now() + interval '1 day' END);
		ELSIF op < 8 THEN
			PERFORM privacy_guard.withdraw_consent(s, 'marketing');
		ELSIF op = 8 THEN
			PERFORM privacy_guard.forget(s, due => now() + (CASE WHEN random() < 0.5 THEN interval '0' ELSE interval '1 day' END));
		ELSE
			UPDATE privacy_guard.consent_state SET valid_until = now() - interval '1 second'
			 WHERE subject = s AND status = 'granted';
		END IF;
		IF pg_temp.seen('marketing') IS DISTINCT FROM pg_temp.expected('marketing') THEN
			mismatches := mismatches + 1;
		END IF;
	END LOOP;
	RAISE NOTICE 'mismatches after 300 changes: %', mismatches;
END
$$;
SELECT pg_temp.seen('marketing') = pg_temp.expected('marketing') AS marketing_agrees,
	   pg_temp.seen('marketing.email') = pg_temp.expected('marketing.email') AS email_agrees,
	   cardinality(pg_temp.seen('marketing')) BETWEEN 1 AND 601 AS some_but_not_all;
-- the same with the changes committed by another session (dblink), one
-- transaction each, while this session reads after every commit: its
-- cache catches up by the transactions written since its last read
CREATE EXTENSION dblink;
SELECT dblink_connect('writer', format('dbname=%s port=%s host=%s', current_database(),
					  current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
DO $$
DECLARE
	i int;
	s text;
	op int;
	mismatches int := 0;
BEGIN
	PERFORM setseed(0.17);
	FOR i IN 1..200 LOOP
		s := (10101 + floor(random() * 500))::int::text;
		op := floor(random() * 10)::int;
		PERFORM * FROM dblink('writer', CASE
			WHEN op < 5 THEN format('SELECT ''ok'' FROM privacy_guard.grant_consent(%L, %L)', s,
									CASE WHEN op < 3 THEN 'marketing' ELSE 'marketing.email' END)
			WHEN op < 8 THEN format('SELECT ''ok'' FROM privacy_guard.withdraw_consent(%L, ''marketing'')', s)
			WHEN op = 8 THEN format('SELECT ''ok'' FROM privacy_guard.forget(%L)', s)
			ELSE format('WITH u AS (UPDATE privacy_guard.consent_state SET valid_until = now() - interval ''1 second'''
						' WHERE subject = %L AND status = ''granted'' RETURNING 1) SELECT ''ok'' FROM u', s) END)
			AS t(r text);
		IF pg_temp.seen('marketing') IS DISTINCT FROM pg_temp.expected('marketing') THEN
			mismatches := mismatches + 1;
		END IF;
	END LOOP;
	RAISE NOTICE 'mismatches after 200 changes by another session: %', mismatches;
END
$$;
SELECT dblink_disconnect('writer');
DROP EXTENSION dblink;
SELECT pg_temp.seen('marketing') = pg_temp.expected('marketing') AS marketing_agrees,
	   pg_temp.seen('marketing.email') = pg_temp.expected('marketing.email') AS email_agrees,
	   cardinality(pg_temp.seen('marketing')) BETWEEN 1 AND 601 AS some_but_not_all;
-- closing a request (an UPDATE) and deleting rows make sessions reload in full
UPDATE privacy_guard.erasure_request SET state = 'done', subject = NULL, completed_at = now()
 WHERE subject IN (SELECT id::text FROM members);
DELETE FROM privacy_guard.consent_state WHERE subject = '10001';
SELECT pg_temp.seen('marketing') = pg_temp.expected('marketing') AS agrees_after_reload;
SELECT privacy_guard.unprotect('members');
DROP TABLE members;
