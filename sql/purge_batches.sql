-- The purge step the worker and run_maintenance() share: one batch of at
-- most batch rows past retention, in physical order after where the last
-- batch stopped, so no batch reads again what an earlier one finished.
\set VERBOSITY terse
SET ROLE regress_owner;
CREATE TABLE batch_events (id int, customer_id bigint, happened timestamptz NOT NULL);
-- ids 1..10 expired, 11..14 current
INSERT INTO batch_events SELECT g, 8500 + g % 3, now() - interval '2 days' FROM generate_series(1, 14) g;
UPDATE batch_events SET happened = now() WHERE id > 10;
CREATE TABLE batch_log (what text);
-- the owner's trigger logs every delete and keeps rows 2 and 6: they stay
-- expired, so a batch that read again from the start would match them again
CREATE FUNCTION batch_note() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN
		INSERT INTO batch_log VALUES (current_user || ' ' || TG_OP);
		RETURN CASE WHEN OLD.id IN (2, 6) THEN NULL ELSE OLD END;
	END$$;
CREATE TRIGGER note BEFORE DELETE ON batch_events FOR EACH ROW EXECUTE FUNCTION batch_note();
RESET ROLE;
SELECT privacy_guard.protect('batch_events', 'customer_id', ARRAY['billing'],
							 interval '1 day', 'happened');

-- batches of 4: 4, 4, then 2 and the end (fewer than asked)
CREATE TEMP TABLE batches (n int, matched bigint, processed bigint, last tid, action text, error text);
DO $$
DECLARE
	b record;
	v_after tid := '(0,0)';
	i int := 0;
	v_now timestamptz := now();
BEGIN
	LOOP
		i := i + 1;
		b := privacy_guard._expire_batch('batch_events', 'batch_events', v_now, v_after, 4, NULL);
		INSERT INTO batches VALUES (i, b.matched, b.processed, b.last, b.action, b.error);
		EXIT WHEN b.matched < 4 OR i > 10;
		v_after := b.last;
	END LOOP;
END
$$;
SELECT n, matched, processed, action, error FROM batches ORDER BY n;
-- each batch started after the previous one's last row
SELECT bool_and(b.last > p.last) AS strictly_forward
  FROM batches b JOIN batches p ON p.n = b.n - 1 WHERE b.last IS NOT NULL;
-- every expired row was matched by exactly one batch, the kept ones too
SELECT sum(matched) AS matched_in_all_batches FROM batches;
SELECT array_agg(id ORDER BY id) AS left_over FROM batch_events;
-- the owner's trigger ran as the owner, once per row
SELECT what, count(*) FROM batch_log GROUP BY what;
SET ROLE regress_owner;
CREATE OR REPLACE FUNCTION batch_note() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN INSERT INTO batch_log VALUES (current_user || ' ' || TG_OP); RETURN OLD; END$$;
RESET ROLE;
DELETE FROM batch_events WHERE id IN (2, 6);

-- a batch that the owner's trigger swallows reports it, never a silent success
INSERT INTO batch_events VALUES (20, 8501, now() - interval '5 days');
SET ROLE regress_owner;
CREATE FUNCTION batch_keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER keep BEFORE DELETE ON batch_events FOR EACH ROW EXECUTE FUNCTION batch_keep();
RESET ROLE;
SELECT matched, processed, error
  FROM privacy_guard._expire_batch('batch_events', 'batch_events', now(), '(0,0)', 100, NULL);
SELECT privacy_guard.run_maintenance('batch_events') -> 'errors' AS errors;
-- an error inside the owner's code is kept as its SQLSTATE, not its text
SET ROLE regress_owner;
DROP TRIGGER keep ON batch_events;
CREATE FUNCTION batch_fail() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN RAISE EXCEPTION 'secret-data-%', OLD.customer_id; END$$;
CREATE TRIGGER fail BEFORE DELETE ON batch_events FOR EACH ROW EXECUTE FUNCTION batch_fail();
RESET ROLE;
SELECT privacy_guard.run_maintenance('batch_events') -> 'errors' AS errors;
SET ROLE regress_owner;
DROP TRIGGER fail ON batch_events;
RESET ROLE;
SELECT privacy_guard.run_maintenance('batch_events') -> 'expired' AS expired;

-- the subject column is anonymised to NULL and nothing else
SELECT privacy_guard.set_anonymizer('batch_events', 'customer_id', 'hash');
SELECT privacy_guard.set_anonymizer('batch_events', 'customer_id', 'null');

-- the settings behind the batches
SHOW privacy_guard.batch_size;
SHOW privacy_guard.batch_delay;
SHOW privacy_guard.log_retention;
SET privacy_guard.batch_size = 10;

-- batches grow: a table's first has at most 1000 rows, each next one twice
-- as many, up to batch_size (10000 by default), while a batch takes under a
-- twentieth of engine_time_limit; a table whose rows are slow to delete (the
-- owner's trigger) keeps batches of 1000, well within the limit.  Each
-- batch's DELETE is logged by a statement trigger with its row count.
SET ROLE regress_owner;
CREATE TABLE grow_events (id int, customer_id bigint, happened timestamptz NOT NULL);
INSERT INTO grow_events SELECT g, g % 50, now() - interval '2 days' FROM generate_series(1, 25000) g;
CREATE TABLE grow_log (seq serial, tbl text, n bigint);
CREATE FUNCTION grow_note() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN
		INSERT INTO grow_log (tbl, n) SELECT TG_TABLE_NAME, count(*) FROM gone;
		RETURN NULL;
	END$$;
CREATE TRIGGER note AFTER DELETE ON grow_events REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION grow_note();
CREATE TABLE slow_events (LIKE grow_events);
INSERT INTO slow_events SELECT g, g % 50, now() - interval '2 days' FROM generate_series(1, 3000) g;
CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN
		IF OLD.id % 1000 = 1 THEN
			PERFORM pg_sleep(0.06);
		END IF;
		RETURN OLD;
	END$$;
CREATE TRIGGER slow BEFORE DELETE ON slow_events FOR EACH ROW EXECUTE FUNCTION slow_row();
CREATE TRIGGER note AFTER DELETE ON slow_events REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION grow_note();
RESET ROLE;
SELECT privacy_guard.protect('grow_events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
SELECT privacy_guard.protect('slow_events', 'customer_id', ARRAY['billing'], interval '1 day', 'happened');
SHOW privacy_guard.batch_size;
SET privacy_guard.engine_time_limit = '1s';
SELECT privacy_guard.run_maintenance('grow_events') -> 'expired' AS expired;
SELECT privacy_guard.run_maintenance('slow_events') -> 'expired' AS expired;
RESET privacy_guard.engine_time_limit;
SELECT tbl, array_agg(n ORDER BY seq) AS rows_per_batch FROM grow_log GROUP BY tbl ORDER BY tbl;
SELECT privacy_guard.unprotect('grow_events');
SELECT privacy_guard.unprotect('slow_events');
DROP TABLE grow_events, slow_events, grow_log;
DROP FUNCTION grow_note(), slow_row();

SELECT privacy_guard.unprotect('batch_events');
DROP TABLE batch_events, batch_log;
DROP FUNCTION batch_note(), batch_keep(), batch_fail();
